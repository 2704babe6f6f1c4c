#!/usr/bin/env bash
# ferrograd against PyTorch on the CPU, same task protocol, same machine, one
# invocation. For each track it runs bench/src/bin/task_epochs.rs (ferrograd)
# and bench/torch_task.py (PyTorch) with the same thread count, model, batch,
# optimizer (Adam lr 1e-3, gradients clipped to +-1) and epochs, and prints:
# per-epoch median time of each, the ratio ferrograd / PyTorch (below 1 means
# ferrograd is faster; the goal of issue 6 is <= 0.5), and each one's GEMM
# rate at 128x256x256 (the forward of a hidden layer).
#
#   bash bench/compare.sh                      # tracks 4 and 18, 2 threads
#   TRACKS="4 10 18" THREADS=2 EPOCHS=30 ROUNDS=3 bash bench/compare.sh
#
# Environment:
#   TRACKS   tracks (hidden layers) to run          default "4 18"
#   THREADS  threads for both frameworks            default 2
#   EPOCHS   timed epochs per run                   default 30
#   WARMUP   untimed epochs before them             default 3
#   ROUNDS   runs per framework and track; the table shows the median of the
#            per-run medians (runs alternate between the two frameworks)
#                                                   default 3
#   FERROGRAD_ISA  ferrograd's GEMM kernels (avx512, avx2, native: the
#            default); the table's ISA column says which ran
#   QUIET    1: run each measurement through bench/quiet.py (top priority,
#            rerun when another process took CPU meanwhile); 0: run directly
#                                                   default 1
#
# PyTorch comes from bench/.venv; when that lacks torch, bench/peer_env.sh
# creates it (a large download: the torch wheel). Nothing here runs in CI:
# .ci/run never calls this script. Raw JSON lines are kept in
# target/compare/<date>/ for the record.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

TRACKS="${TRACKS:-4 18}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-30}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-3}"
QUIET="${QUIET:-1}"

py="$root/bench/.venv/bin/python"
if ! "$py" -c "import torch" 2>/dev/null; then
    echo "compare.sh: no torch in bench/.venv; installing it with bench/peer_env.sh" >&2
    bash "$root/bench/peer_env.sh" >&2
    "$py" -c "import torch" || { echo "compare.sh: torch is still missing; giving up" >&2; exit 1; }
fi

echo "compare.sh: building ferrograd's benchmark (release)" >&2
cargo build --quiet --release -p ferrograd-bench --bin task_epochs
fg="$root/target/release/task_epochs"

out="$root/target/compare/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

run() { # run <json-file> <command...>: append the command's JSON line to the file
    local file="$1"
    shift
    if [ "$QUIET" = 1 ]; then
        python3 "$root/bench/quiet.py" --tries 3 -- "$@" >>"$file" || {
            local rc=$?
            # 3 = every try saw foreign load; the last try's line is kept but flagged.
            if [ "$rc" = 3 ]; then
                echo "compare.sh: $(basename "$file"): machine was busy in every try" | tee -a "$out/busy.txt" >&2
            else
                exit "$rc"
            fi
        }
    else
        "$@" >>"$file"
    fi
}

for track in $TRACKS; do
    for round in $(seq "$ROUNDS"); do
        echo "compare.sh: track $track, round $round/$ROUNDS" >&2
        run "$out/ferrograd_$track.jsonl" "$fg" --n-hidden "$track" --threads "$THREADS" \
            --epochs "$EPOCHS" --warmup "$WARMUP" --json
        run "$out/pytorch_$track.jsonl" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" \
            "$root/bench/torch_task.py" --n-hidden "$track" --threads "$THREADS" \
            --epochs "$EPOCHS" --warmup "$WARMUP"
    done
done

python3 - "$out" "$TRACKS" "$THREADS" "$EPOCHS" "$ROUNDS" <<'PY'
import json, statistics, sys, os
out, tracks, threads, epochs, rounds = sys.argv[1], sys.argv[2].split(), *sys.argv[3:]
def load(name):
    with open(os.path.join(out, name)) as fh:
        return [json.loads(l) for l in fh if l.strip().startswith("{")]
print(f"\nTask protocol per-epoch time, {threads} threads, batch 128, Adam lr 1e-3 clip 1, f32;")
print(f"median over {rounds} run(s) of each run's median over {epochs} epochs. Raw lines: {out}\n")
def cpu():
    info = open("/proc/cpuinfo").read().split("\n\n")[0]
    field = lambda k: next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith(k)), "?")
    simd = [f for f in field("flags").split() if f.startswith(("avx", "fma", "amx"))]
    return f"{field('model name')}; {' '.join(simd)}"
print(f"Host: {cpu()}")
print("floor = model GFLOP/epoch / (threads x ferrograd's one-thread GEMM rate): the epoch if it were")
print("nothing but GEMMs at that rate on every core; epoch/floor says how close the step comes to it.\n")
print("| track | ISA | ferrograd ms/epoch | PyTorch ms/epoch | ratio ferrograd/PyTorch | ferrograd GEMM GFLOP/s (1 thread) | PyTorch GEMM GFLOP/s | model GFLOP/epoch | GEMM-bound floor ms | epoch/floor |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in tracks:
    fg, pt = load(f"ferrograd_{t}.jsonl"), load(f"pytorch_{t}.jsonl")
    f = statistics.median(r["ms_per_epoch_median"] for r in fg)
    p = statistics.median(r["ms_per_epoch_median"] for r in pt)
    fgg = statistics.median(r["gemm_gflops"] for r in fg)
    ptg = statistics.median(r["gemm_gflops"] for r in pt)
    flops = fg[0]["flops_per_epoch"] / 1e9
    floor = flops / (fgg * int(threads)) * 1e3
    isa = fg[0].get("isa", "?")
    print(f"| {t} | {isa} | {f:.2f} | {p:.2f} | {f / p:.2f} | {fgg:.0f} | {ptg:.0f} | {flops:.2f} | {floor:.2f} | {f / floor:.2f} |")
print(f"\n{pt[0]['framework']}; GEMM = 128x256x256 with the weight read transposed, each framework's own call:")
print(f"PyTorch's torch.mm on {threads} threads; ferrograd's gemm_into on one thread (the training step runs")
print("two half-size GEMMs side by side on the two cores instead of threading each GEMM).")
busy = os.path.join(out, "busy.txt")
if os.path.exists(busy):
    print("WARNING: other processes took CPU during some runs (see " + busy + "); rerun on a quiet machine.")
PY
