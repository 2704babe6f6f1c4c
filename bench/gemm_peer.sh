#!/usr/bin/env bash
# Runs bench/gemm_peer.py in bench/.venv (run bench/peer_env.sh first).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when this machine sets them, slow a
# current NumPy's OpenBLAS: they are unset for this one command only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$here/.venv/bin/python" "$here/gemm_peer.py" "$@"
