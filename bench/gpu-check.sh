#!/usr/bin/env bash
# Runs the prebuilt GPU suite (from bench/gpu-bundle.sh) against the real
# CUDA driver and prints one table: the engine's op suite and lib tests, the
# root GPU tests (gradcheck in f64 on the GPU, fused optimizer kernels vs the
# catalog optimizers, track 4 trained on both devices), GEMM throughput, and
# per-epoch training time GPU vs CPU on tracks 4 and 18 (`ferrograd train
# --max-epochs 5 --json`, mean over the 5 epochs), and against PyTorch CUDA
# eager on the same task (bench/torch_task.py --device cuda, when torch with
# CUDA is installed). Needs no Rust toolchain. When there is
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
missing=""
for name in cuda_ops cuda_mlp ferrograd_engine cuda_gradcheck cuda_optim cuda_train ferrograd; do
    [[ -x "$bundle/$name" ]] || missing="$missing $name"
done
if [[ -n "$missing" ]]; then
    echo "gpu-check: missing from $bundle:$missing" >&2
    echo "gpu-check: no test binaries in $bundle; build them with bench/gpu-bundle.sh on a machine with Rust" >&2
    exit 2
fi
export LD_LIBRARY_PATH="$driver_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1)"
log="$(mktemp -d)"
status=0
timeout 300 "$bundle/cuda_ops" --test-threads=1 --nocapture >"$log/ops.txt" 2>&1 || status=1
timeout 120 "$bundle/cuda_mlp" --test-threads=1 --nocapture >"$log/mlp.txt" 2>&1 || status=1
timeout 120 "$bundle/ferrograd_engine" cuda >"$log/lib.txt" 2>&1 || status=1
timeout 120 "$bundle/cuda_ops" --ignored gemm_throughput --nocapture >"$log/gemm.txt" 2>&1 || status=1
for t in cuda_gradcheck cuda_optim cuda_train; do
    timeout 240 "$bundle/$t" --test-threads=1 --nocapture >"$log/$t.txt" 2>&1 || status=1
done
# Mean seconds per epoch of `ferrograd train` on one device, in ms.
epoch_ms() {
    local json
    json="$(timeout 180 "$bundle/ferrograd" train --device "$1" --n-hidden "$2" --max-epochs 5 --json 2>>"$log/train.txt")" ||
        { echo "failed"; return 1; }
    echo "$json" | grep -o '"seconds_per_epoch":[0-9.eE+-]*' | cut -d: -f2 | awk '{printf "%.1f", 1e3 * $1}'
}
timings=()
gpu_ms=()
for track in 4 18; do
    g="$(epoch_ms cuda "$track")" || status=1
    gpu_ms+=("$g")
    c="$(epoch_ms cpu "$track")" || status=1
    ratio="$(awk -v g="$g" -v c="$c" 'BEGIN { if (g + 0 > 0 && c + 0 > 0) printf "%.2fx", c / g; else print "n/a" }')"
    timings+=("| track $track ms/epoch (5 epochs), GPU vs CPU ($(nproc) threads) | $g vs $c (GPU speed-up $ratio) |")
done
# PyTorch CUDA eager on the same task and protocol (bench/torch_task.py
# --device cuda, median ms per epoch over 5 epochs after 2 warm-up ones).
torch_script="$bundle/torch_task.py"
[[ -f "$torch_script" ]] || torch_script="$here/torch_task.py"
torch_epoch_ms() {
    timeout 300 python3 "$torch_script" --device cuda --n-hidden "$1" --epochs 5 --warmup 2 2>>"$log/torch.txt" |
        grep -o '"ms_per_epoch_median": [0-9.eE+-]*' | awk '{printf "%.1f", $2}'
}
torch="n/a"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    for i in 0 1; do
        track=$((i == 0 ? 4 : 18))
        t="$(torch_epoch_ms "$track")"
        g="${gpu_ms[$i]}"
        ratio="$(awk -v g="$g" -v t="$t" 'BEGIN { if (g + 0 > 0 && t + 0 > 0) printf "%.2fx", t / g; else print "n/a" }')"
        timings+=("| track $track ms/epoch, ferrograd GPU vs PyTorch CUDA eager | $g vs ${t:-n/a} (ferrograd speed-up $ratio) |")
    done
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
echo "| fused MLP kernels and multi-tensor Adam (cuda_mlp) | $(grep -E '^test result' "$log/mlp.txt" | head -n1) |"
echo "| engine lib cuda tests | $(grep -E '^test result' "$log/lib.txt" | head -n1) |"
echo "| gradcheck on the GPU, f64 (cuda_gradcheck) | $(grep -E '^test result' "$log/cuda_gradcheck.txt" | head -n1) |"
echo "| fused optimizers vs catalog (cuda_optim) | $(grep -E '^test result' "$log/cuda_optim.txt" | head -n1) |"
echo "| track 4 losses GPU vs CPU (cuda_train) | $(grep -E '^test result' "$log/cuda_train.txt" | head -n1) |"
printf '%s\n' "${timings[@]}"
grep -E '^gemm ' "$log/gemm.txt" | while read -r _ dtype n gf; do echo "| GEMM $dtype ${n}^3 | $gf GFLOP/s |"; done
echo "| PyTorch GEMM f32 4096^3 | $torch GFLOP/s |"
grep -hE 'skipped:|panicked|FAILED' "$log"/*.txt | head -n 10
grep -hE '^cuda_train (f32|f64): epoch' "$log/cuda_train.txt"
# On a GPU machine nothing may skip for want of a device.
if grep -qE 'skipped: (no CUDA device|device cuda:[0-9]+ is unavailable)' "$log"/*.txt; then
    echo "gpu-check: tests skipped although nvidia-smi sees a GPU (driver not loadable?)"
    status=1
fi
[[ $status == 0 ]] || echo "gpu-check: FAILED (logs in $log)"
exit $status
