#!/usr/bin/env bash
# Runs the prebuilt GPU suite (from bench/gpu-bundle.sh) against the real
# CUDA driver and prints one table. Needs no Rust toolchain. When there is
# no NVIDIA driver or GPU it says so and exits 0 without running anything.
# Usage: bench/gpu-check.sh [BUNDLE_DIR]   (default: gpu-bundle next to this repo)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bundle="${1:-$here/../gpu-bundle}"
driver_dir="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}' | xargs -r dirname)"
if [[ -z "$driver_dir" ]] || ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu-check: no CUDA device here (libcuda.so.1: ${driver_dir:-not found}; nvidia-smi: $(command -v nvidia-smi || echo missing)); nothing to run"
    exit 0
fi
if [[ ! -x "$bundle/cuda_ops" ]]; then
    echo "gpu-check: no test binaries in $bundle; build them with bench/gpu-bundle.sh on a machine with Rust" >&2
    exit 2
fi
export LD_LIBRARY_PATH="$driver_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1)"
log="$(mktemp -d)"
status=0
timeout 300 "$bundle/cuda_ops" --test-threads=1 --nocapture >"$log/ops.txt" 2>&1 || status=1
timeout 120 "$bundle/ferrograd_engine" cuda >"$log/lib.txt" 2>&1 || status=1
timeout 120 "$bundle/cuda_ops" --ignored gemm_throughput --nocapture >"$log/gemm.txt" 2>&1 || status=1
torch="n/a"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    torch="$(python3 - <<'PY'
import torch, time
a = torch.randn(4096, 4096, device="cuda"); b = torch.randn(4096, 4096, device="cuda")
a @ b; torch.cuda.synchronize(); t = time.time()
for _ in range(3): a @ b
torch.cuda.synchronize(); print(f"{2 * 4096**3 / ((time.time() - t) / 3) / 1e9:.1f}")
PY
)"
fi
echo "## GPU check $(date -u +%Y-%m-%d) on $gpu (commit $(cat "$bundle/COMMIT" 2>/dev/null || echo ?))"
echo "| check | result |"
echo "|---|---|"
echo "| GPU op suite (cuda_ops) | $(grep -E '^test result' "$log/ops.txt" | head -n1) |"
echo "| engine lib cuda tests | $(grep -E '^test result' "$log/lib.txt" | head -n1) |"
grep -E '^gemm ' "$log/gemm.txt" | while read -r _ dtype n gf; do echo "| GEMM $dtype ${n}^3 | $gf GFLOP/s |"; done
echo "| PyTorch GEMM f32 4096^3 | $torch GFLOP/s |"
grep -E 'skipped:|panicked|FAILED' "$log/ops.txt" | head -n 10
[[ $status == 0 ]] || echo "gpu-check: FAILED (logs in $log)"
exit $status
