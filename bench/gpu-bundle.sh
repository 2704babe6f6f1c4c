#!/usr/bin/env bash
# Builds the GPU suite's test binaries here (no GPU needed: linked against
# the stub libcuda, no rpath) into gpu-bundle/ (git-ignored), for
# bench/gpu-check.sh to run on a GPU machine that may have no Rust:
#   bench/gpu-bundle.sh && scp -r gpu-bundle bench/gpu-check.sh gpu-host:
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bash scripts/cuda-stub.sh
export CUDA_LIBRARY_PATH="$root/target/cuda-stub" CARGO_TARGET_DIR="$root/target/cuda-build"
out="$root/gpu-bundle"
rm -rf "$out" && mkdir -p "$out"
cargo test -p ferrograd-engine --features cuda --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("cuda_ops", "ferrograd_engine"):
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$out/$name"; done
if readelf -d "$out"/* | grep -qiE 'rpath|runpath'; then
    echo "gpu-bundle: a binary carries an rpath; it would hide the real driver" >&2
    exit 1
fi
git rev-parse HEAD >"$out/COMMIT"
ls -l "$out"
