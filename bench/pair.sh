#!/usr/bin/env bash
# Does the engine's spinning pair helper (engine/src/ops/pair.rs) pay? The
# task's epoch (bench/src/bin/task_epochs.rs, Adam) with the helper off and
# on, alternating, on two CPUs and on one (taskset), for each track:
#
#   bash bench/pair.sh                         # tracks 4 and 18, 5 rounds
#   TRACKS="4" ROUNDS=3 EPOCHS=10 bash bench/pair.sh
#
# `FERROGRAD_PAIR=off|on` overrides the automatic choice (on only when the
# process may use two CPUs or more). Prints the median of the per-run median
# ms/epoch and the on/off ratio; raw JSON in target/pair/<date>/. Each run
# goes through bench/quiet.py. Not run in CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
TRACKS="${TRACKS:-4 18}"
ROUNDS="${ROUNDS:-5}"
EPOCHS="${EPOCHS:-20}"
WARMUP="${WARMUP:-2}"

cargo build --quiet --release -p ferrograd-bench --bin task_epochs
bin="$root/target/release/task_epochs"
out="$root/target/pair/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cpus_two="0-$(($(nproc) - 1))"
for track in $TRACKS; do
    for round in $(seq "$ROUNDS"); do
        for cpus in "$cpus_two" 0; do
            for pair in off on; do
                line="$(FERROGRAD_PAIR=$pair python3 "$root/bench/quiet.py" --tries 2 --wait 5 -- \
                    taskset -c "$cpus" "$bin" --n-hidden "$track" --threads 2 --epochs "$EPOCHS" \
                    --warmup "$WARMUP" --json --no-gemm | grep '^{' || true)"
                [[ -n "$line" ]] && echo "{\"cpus\":\"$cpus\",\"pair\":\"$pair\",\"round\":$round,\"run\":$line}" >>"$out/runs.jsonl"
            done
        done
    done
done

python3 - "$out/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def key(r):
    return (r["run"]["n_hidden"], "2 CPUs" if r["cpus"] != "0" else "1 CPU")
print("| track | CPUs | helper off ms/epoch | helper on ms/epoch | on/off | rounds |")
print("|---:|---|---:|---:|---:|---:|")
for k in sorted({key(r) for r in rows}):
    ms = {p: [r["run"]["ms_per_epoch_median"] for r in rows if key(r) == k and r["pair"] == p] for p in ("off", "on")}
    if not ms["off"] or not ms["on"]:
        continue
    off, on = statistics.median(ms["off"]), statistics.median(ms["on"])
    print(f"| {k[0]} | {k[1]} | {off:.1f} | {on:.1f} | {on / off:.2f} | {len(ms['on'])} |")
PY
