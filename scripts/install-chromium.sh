#!/usr/bin/env bash
# Installs Debian's headless Chromium for the browser tests of
# `ferrograd serve` (tests/serve_browser.rs), unless it is already there.
# Idempotent: a second run installs nothing. Needs root (CI runs as root).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: $(chromium --version 2>/dev/null || echo chromium) is already installed; nothing to do"
    exit 0
fi
echo "install-chromium: chromium is missing; installing Debian's package 'chromium' with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "install-chromium: installed $(chromium --version)"
