#!/usr/bin/env bash
# Trains the task's track-4 MLP on the CPU and on the emulated CUDA device
# (ptx/emu), in f64 and in f32, and prints how far apart the losses are,
# two ways (bench/cuda_emu_train.py says which bars hold):
#  - whole runs, each device on its own: next to the CPU's own spread (the
#    CPU run against itself with one weight matrix moved by one rounding),
#    since training amplifies any rounding difference about tenfold an
#    epoch;
#  - epoch by epoch from the same state (each GPU checkpoint's next epoch
#    also run on the CPU, in f32 checkpoints also in f64): f64 within 1e-9;
#    f32: the GPU's distance from the f64 result no larger than the CPU's
#    own f32-vs-f64 difference.
# It also records the emulator's counters (CUDA_EMU_STATS) for one epoch in
# steady state, per training step. Exits 1 when a bar is missed.
#
# Usage: bench/cuda-emu-train.sh [EPOCHS]   (default 30; results under
# target/cuda-emu-train). Builds `ferrograd` with --features cuda in release
# mode against the stub libcuda, and the emulator, first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
epochs="${1:-30}"
bash scripts/cuda-stub.sh >/dev/null
export CUDA_LIBRARY_PATH="$root/target/cuda-stub"
export CARGO_TARGET_DIR="$root/target/cuda-build"
cargo build --release --quiet -p ferrograd --features cuda --bin ferrograd
emu="$(bash scripts/cuda-emu.sh)"
bin="$CARGO_TARGET_DIR/release/ferrograd"
out="$root/target/cuda-emu-train"
rm -rf "$out"
mkdir -p "$out"
args=(train --n-hidden 4 --seed 0 --json)
for dtype in f64 f32; do
    for device in cpu cuda; do
        echo "cuda-emu-train: $device $dtype, $epochs epochs" >&2
        LD_LIBRARY_PATH="$emu" CUDA_EMU_STATS="$out/stats-$device-$dtype.json" \
            "$bin" "${args[@]}" --device "$device" --dtype "$dtype" --max-epochs "$epochs" \
            --out "$out/$device-$dtype" >"$out/$device-$dtype.json"
    done
done
# The CPU's own spread: the same runs with the first layer's initial
# weights moved by about one rounding (bench/src/bin/rounding_spread.rs).
CARGO_TARGET_DIR="$root/target" cargo build --release --quiet -p ferrograd-bench --bin rounding_spread
"$root/target/release/rounding_spread" --dtype f64 --rel 1e-15 --epochs "$epochs" --out "$out/cpu-f64-moved"
"$root/target/release/rounding_spread" --dtype f32 --rel 1e-7 --epochs "$epochs" --out "$out/cpu-f32-moved"

# Epoch by epoch from the same state: the GPU run checkpoints after every
# epoch; a copy of each checkpoint runs its next epoch on the CPU, so both
# devices start every epoch from the same bits and only that epoch's
# rounding separates them.
step_args=("${args[@]}" --max-epochs "$epochs" --checkpoint-every 1 --stop-after 1)
: >"$out/step-f32-cpu64.jsonl"
for dtype in f64 f32; do
    echo "cuda-emu-train: $dtype epoch by epoch from the GPU's checkpoints" >&2
    gpu_dir="$out/step-$dtype-gpu"
    : >"$out/step-$dtype-cpu.jsonl"
    LD_LIBRARY_PATH="$emu" "$bin" "${step_args[@]}" --device cuda --dtype "$dtype" --out "$gpu_dir" >/dev/null
    for ((e = 1; e < epochs; e++)); do
        rm -rf "$out/step-cpu"
        cp -r "$gpu_dir" "$out/step-cpu"
        LD_LIBRARY_PATH="$emu" "$bin" "${step_args[@]}" --device cpu --dtype "$dtype" --resume "$out/step-cpu" >/dev/null
        tail -n1 "$out/step-cpu/metrics.jsonl" >>"$out/step-$dtype-cpu.jsonl"
        if [[ $dtype == f32 ]]; then
            # The f64 reference from the same state (widened exactly).
            rm -rf "$out/step-cpu"
            cp -r "$gpu_dir" "$out/step-cpu"
            LD_LIBRARY_PATH="$emu" "$bin" "${step_args[@]}" --device cpu --dtype f64 --resume "$out/step-cpu" >/dev/null
            tail -n1 "$out/step-cpu/metrics.jsonl" >>"$out/step-f32-cpu64.jsonl"
        fi
        LD_LIBRARY_PATH="$emu" "$bin" "${step_args[@]}" --device cuda --dtype "$dtype" --resume "$gpu_dir" >/dev/null
    done
done

# The counters of one epoch in steady state: a 2-epoch run minus a 1-epoch
# run (set-up, moving the data and model, and the final test evaluation
# cancel), so what is left is 8 training steps and one validation pass.
for n in 1 2; do
    echo "cuda-emu-train: $n epoch(s) on the emulated device, f32, for the counters" >&2
    LD_LIBRARY_PATH="$emu" CUDA_EMU_STATS="$out/stats-epochs-$n.json" \
        "$bin" "${args[@]}" --device cuda --max-epochs "$n" >"$out/epochs-$n.json"
done
python3 "$root/bench/cuda_emu_train.py" "$out"
