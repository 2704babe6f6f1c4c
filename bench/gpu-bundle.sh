#!/usr/bin/env bash
# Builds the GPU suite's test binaries (engine: cuda_ops and the lib tests;
# root: cuda_gradcheck, cuda_optim, cuda_train) and the `ferrograd` binary
# here (no GPU needed: linked against the stub libcuda, no rpath) into
# gpu-bundle/ (git-ignored), for
# bench/gpu-check.sh to run on a GPU machine that may have no Rust:
#   bench/gpu-bundle.sh && scp -r gpu-bundle bench/gpu-check.sh gpu-host:
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bash scripts/cuda-stub.sh
export CUDA_LIBRARY_PATH="$root/target/cuda-stub" CARGO_TARGET_DIR="$root/target/cuda-build"
out="$root/gpu-bundle"
rm -rf "$out" && mkdir -p "$out"
# Prints "name path" for every executable cargo reports.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])
'
}
# The engine's GPU suite and its lib tests (kernel-name checks).
cargo test -p ferrograd-engine --features cuda --no-run --message-format=json 2>/dev/null | executables |
    while read -r name exe; do
        case "$name" in cuda_ops | cuda_mlp | ferrograd_engine) cp "$exe" "$out/$name" ;; esac
    done
# The root GPU tests (gradcheck on the GPU, fused optimizers vs the catalog,
# track 4 on both devices) and the `ferrograd` binary that integration tests
# get built with (test profile: opt-level 2), for the per-epoch timings.
gpu_tests=(cuda_gradcheck cuda_optim cuda_train)
cargo test -p ferrograd --features cuda --no-run --message-format=json "${gpu_tests[@]/#/--test=}" 2>/dev/null |
    executables | while read -r name exe; do
        case "$name" in cuda_gradcheck | cuda_optim | cuda_train | ferrograd) cp "$exe" "$out/$name" ;; esac
    done
for name in cuda_ops cuda_mlp ferrograd_engine "${gpu_tests[@]}" ferrograd; do
    [[ -x "$out/$name" ]] || { echo "gpu-bundle: $name was not built" >&2; exit 1; }
done
if readelf -d "$out"/* | grep -qiE 'rpath|runpath'; then
    echo "gpu-bundle: a binary carries an rpath; it would hide the real driver" >&2
    exit 1
fi
cp bench/torch_task.py "$out/" # PyTorch CUDA eager on the same task, for gpu-check.sh
git rev-parse HEAD >"$out/COMMIT"
ls -l "$out"
