#!/usr/bin/env bash
# ferrograd's general path (modules, autograd, a catalog optimizer) against
# PyTorch eager on the CPU, same machine, one invocation, for models beyond
# the task's MLP (issue 20's table):
#
# * MLPs (bench/src/bin/general_mlp.rs against bench/torch_mlp.py): widths
#   128-512, depths 2-6, tanh / ReLU / ReLU+BatchNorm / GELU, batches 32-256,
#   Adam, cross-entropy, 1,024 random samples; median ms per epoch of each.
# * The CNN of examples/digits_cnn.rs (conv 3x3 -> ReLU -> max pool 2x2 ->
#   Linear on the 8x8 digits), trained by the example (`--bench`) and by
#   bench/torch_cnn.py with the same data sizes, network, batch, optimizer
#   (AdamW lr 2e-3) and epochs; median training time and accuracy.
#
# Each round runs every model in both frameworks, alternating, so a slow
# spell of the machine hits both. Prints one ratio ferrograd / PyTorch per
# model (below 1: ferrograd is faster) and the CPU model.
#
#   bash bench/compare-general.sh
#   ROUNDS=7 THREADS=1 bash bench/compare-general.sh
#   ONLY=mlp bash bench/compare-general.sh      # or ONLY=cnn
#
# Environment:
#   ROUNDS   runs per framework and model   default 5
#   THREADS  threads for both frameworks    default 2
#   EPOCHS   CNN training epochs per run    default 20
#   ONLY     mlp or cnn to run one part     default both
#   PYTHON   a python with torch            default: bench/.venv's, else python3
#
# Nothing here runs in CI. Raw JSON lines are kept in
# target/compare-general/<date>/ for the record.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

ROUNDS="${ROUNDS:-5}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-20}"
ONLY="${ONLY:-}"
# widths activation batch
MLPS=(
    "64,256,256,256,10 tanh 128"
    "64,256,256,256,10 relu_bn 128"
    "64,128,128,10 relu 32"
    "64,512,512,10 gelu 256"
    "64,256,256,256,256,256,256,10 relu 64"
)
py="${PYTHON:-}"
if [ -z "$py" ]; then
    py="$root/bench/.venv/bin/python"
    "$py" -c "import torch" 2>/dev/null || py=python3
fi
"$py" -c "import torch" || { echo "compare-general.sh: $py has no torch; set PYTHON" >&2; exit 1; }

echo "compare-general.sh: building examples/digits_cnn and general_mlp (release)" >&2
cargo build --quiet --release --example digits_cnn -p ferrograd
cargo build --quiet --release -p ferrograd-bench --bin general_mlp
fg="$root/target/release/examples/digits_cnn"
mlp="$root/target/release/general_mlp"

out="$root/target/compare-general/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for round in $(seq "$ROUNDS"); do
    echo "compare-general.sh: round $round of $ROUNDS" >&2
    if [ "$ONLY" != cnn ]; then
        for spec in "${MLPS[@]}"; do
            read -r widths act batch <<<"$spec"
            args=(--widths "$widths" --act "$act" --batch "$batch" --threads "$THREADS")
            RAYON_NUM_THREADS="$THREADS" "$mlp" "${args[@]}" >>"$out/mlp-ferrograd.jsonl"
            "$py" "$root/bench/torch_mlp.py" "${args[@]}" >>"$out/mlp-pytorch.jsonl"
        done
    fi
    if [ "$ONLY" != mlp ]; then
        RAYON_NUM_THREADS="$THREADS" "$fg" --bench --epochs "$EPOCHS" >>"$out/ferrograd.jsonl"
        "$py" "$root/bench/torch_cnn.py" --epochs "$EPOCHS" --threads "$THREADS" >>"$out/pytorch.jsonl"
    fi
done

python3 - "$out" "$THREADS" "$EPOCHS" <<'PY'
import json, os, statistics, subprocess, sys
out, threads, epochs = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")), "?")
flags = open("/proc/cpuinfo").read()
isa = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
print(f"CPU: {cpu} ({isa}), {threads} threads")
if os.path.exists(f"{out}/mlp-ferrograd.jsonl"):
    rows = {}
    for name in ("ferrograd", "pytorch"):
        for line in open(f"{out}/mlp-{name}.jsonl"):
            r = json.loads(line)
            rows.setdefault((r["widths"], r["act"], r["batch"]), {}).setdefault(name, []).append(r["ms_per_epoch"])
    runs = len(next(iter(rows.values()))["pytorch"])
    print(f"MLPs, Adam, cross-entropy, 1,024 samples, f32: median ms per epoch over {runs} runs each")
    print(f"{'widths':32} {'act':8} {'batch':>5} {'ferrograd':>10} {'PyTorch':>9} {'ratio':>6}")
    for (widths, act, batch), r in rows.items():
        f, t = statistics.median(r["ferrograd"]), statistics.median(r["pytorch"])
        print(f"{widths:32} {act:8} {batch:5} {f:10.2f} {t:9.2f} {f / t:6.2f}")
if os.path.exists(f"{out}/ferrograd.jsonl"):
    runs = {name: [json.loads(l) for l in open(f"{out}/{name}.jsonl")] for name in ("ferrograd", "pytorch")}
    med = {n: statistics.median(r["train_seconds"] for r in rs) for n, rs in runs.items()}
    acc = {n: statistics.median(r["test_accuracy"] for r in rs) for n, rs in runs.items()}
    print(f"digits CNN, {epochs} epochs, batch 32, AdamW lr 2e-3, f32, {len(runs['pytorch'])} runs each")
    print(f"{'':10} {'median s':>9} {'min s':>7} {'accuracy':>9}")
    for n, rs in runs.items():
        print(f"{n:10} {med[n]:9.3f} {min(r['train_seconds'] for r in rs):7.3f} {100 * acc[n]:8.2f}%")
    print(f"ratio ferrograd / PyTorch (medians): {med['ferrograd'] / med['pytorch']:.2f}")
print(f"raw runs: {out}")
PY
