#!/usr/bin/env bash
# Scaling of ferrograd's task-protocol epoch with depth and batch size:
# per-epoch median time, peak resident memory (VmHWM of the whole process),
# the model's GEMM FLOPs per epoch, the rate reached, and that rate as a
# fraction of this machine's measured GEMM peak (the engine's single-thread
# GEMM at 128x256x256, measured in the same process, times THREADS).
#
#   bash bench/scaling.sh                 # tracks 4 7 10 14 18, batches 32..1024
#   TRACKS="4 18" BATCHES="128" THREADS=2 EPOCHS=5 bash bench/scaling.sh
#
# Batch 1024 is outside the protocol (one batch of all 1000 samples).
# Each run goes through bench/quiet.py (top priority, one retry when other
# processes took CPU). Median of 10 timed epochs after 2 warm-up ones. Prints a Markdown table; raw JSON in target/scaling/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
TRACKS="${TRACKS:-4 7 10 14 18}"
BATCHES="${BATCHES:-32 64 128 256 512 1024}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-10}"
WARMUP="${WARMUP:-2}"

cargo build --quiet --release -p ferrograd-bench --bin task_epochs
out="$root/target/scaling/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for track in $TRACKS; do
    for batch in $BATCHES; do
        python3 "$root/bench/quiet.py" --tries 2 --wait 5 -- "$root/target/release/task_epochs" \
            --n-hidden "$track" --batch "$batch" --threads "$THREADS" --epochs "$EPOCHS" \
            --warmup "$WARMUP" --json >>"$out/runs.jsonl" || true
    done
done

python3 - "$out/runs.jsonl" "$THREADS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
threads = int(sys.argv[2])
# One peak for the whole table: the median of the runs' GEMM timings (each
# run's own timing moves with the host's load from one process to the next).
gemm = sorted(r["gemm_gflops"] for r in rows)[len(rows) // 2]
peak = threads * gemm
print(f"| track | batch | ms/epoch | peak RSS MiB | GFLOP/epoch | GFLOP/s | fraction of {threads}-core GEMM peak |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    rate = r["flops_per_epoch"] / (r["ms_per_epoch_median"] / 1e3) / 1e9
    print(f"| {r['n_hidden']} | {r['batch']} | {r['ms_per_epoch_median']:.1f} | {r['peak_rss_mib']:.0f} "
          f"| {r['flops_per_epoch'] / 1e9:.2f} | {rate:.0f} | {rate / peak:.2f} |")
print(f"\nGEMM peak: the engine's single-thread 128x256x256 GEMM, median "
      f"{gemm:.0f} GFLOP/s over the runs, times {threads}.")
PY
