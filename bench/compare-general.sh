#!/usr/bin/env bash
# ferrograd against PyTorch on the CPU for models beyond the task's MLP, same
# machine, one invocation. Now one model: the CNN of examples/digits_cnn.rs
# (conv 3x3 -> ReLU -> max pool 2x2 -> Linear on the 8x8 digits), trained
# by the example (`--bench`) and by bench/torch_cnn.py with the same data
# sizes, network, batch, optimizer (AdamW lr 2e-3) and epochs. Prints the
# median training time of each over ROUNDS runs (alternating), the ratio
# ferrograd / PyTorch (below 1: ferrograd is faster), both accuracies, and
# the CPU model.
#
#   bash bench/compare-general.sh
#   ROUNDS=7 THREADS=2 EPOCHS=20 bash bench/compare-general.sh
#
# Environment:
#   ROUNDS   runs per framework           default 5
#   THREADS  threads for both frameworks  default 2
#   EPOCHS   training epochs per run      default 20
#   PYTHON   a python with torch          default: bench/.venv's, else python3
#
# Nothing here runs in CI. Raw JSON lines are kept in
# target/compare-general/<date>/ for the record.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

ROUNDS="${ROUNDS:-5}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-20}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    py="$root/bench/.venv/bin/python"
    "$py" -c "import torch" 2>/dev/null || py=python3
fi
"$py" -c "import torch" || { echo "compare-general.sh: $py has no torch; set PYTHON" >&2; exit 1; }

echo "compare-general.sh: building examples/digits_cnn (release)" >&2
cargo build --quiet --release --example digits_cnn
fg="$root/target/release/examples/digits_cnn"

out="$root/target/compare-general/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for round in $(seq "$ROUNDS"); do
    echo "compare-general.sh: round $round of $ROUNDS" >&2
    RAYON_NUM_THREADS="$THREADS" "$fg" --bench --epochs "$EPOCHS" >>"$out/ferrograd.jsonl"
    "$py" "$root/bench/torch_cnn.py" --epochs "$EPOCHS" --threads "$THREADS" >>"$out/pytorch.jsonl"
done

python3 - "$out" "$THREADS" "$EPOCHS" <<'PY'
import json, statistics, subprocess, sys
out, threads, epochs = sys.argv[1:]
runs = {name: [json.loads(l) for l in open(f"{out}/{name}.jsonl")] for name in ("ferrograd", "pytorch")}
med = {n: statistics.median(r["train_seconds"] for r in rs) for n, rs in runs.items()}
acc = {n: statistics.median(r["test_accuracy"] for r in rs) for n, rs in runs.items()}
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")), "?")
print(f"digits CNN, {epochs} epochs, batch 32, AdamW lr 2e-3, f32, {threads} threads, {len(runs['pytorch'])} runs each; CPU: {cpu}")
print(f"{'':10} {'median s':>9} {'min s':>7} {'accuracy':>9}")
for n, rs in runs.items():
    print(f"{n:10} {med[n]:9.3f} {min(r['train_seconds'] for r in rs):7.3f} {100 * acc[n]:8.2f}%")
print(f"ratio ferrograd / PyTorch (medians): {med['ferrograd'] / med['pytorch']:.2f}")
print(f"raw runs: {out}")
PY
