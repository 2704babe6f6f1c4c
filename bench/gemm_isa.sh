#!/usr/bin/env bash
# The engine's f32 GEMM per instruction set and thread count against
# PyTorch's torch.mm on 1 and 2 threads, in one invocation: ROUNDS rounds,
# each running bench/src/bin/gemm_isa.rs (every ISA and thread count,
# alternating inside the process), then PyTorch on 1 thread, then on 2.
# Prints the host (CPU model and SIMD flags), then per shape and variant the
# median GFLOP/s over rounds, and its fraction of PyTorch's on the same
# thread count.
#
#   ROUNDS=5 bash bench/gemm_isa.sh
#
# PyTorch comes from bench/.venv (bench/peer_env.sh makes it). Raw lines
# are kept in target/gemm-isa/<date>/. Nothing here runs in CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-5}"
cargo build --quiet --release -p ferrograd-bench --bin gemm_isa
out="$root/target/gemm-isa/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for round in $(seq "$ROUNDS"); do
    echo "gemm_isa.sh: round $round/$ROUNDS" >&2
    target/release/gemm_isa --rounds 5 --json >>"$out/ferrograd.jsonl"
    for t in 1 2; do
        bash bench/gemm_peer.sh --impl torch --threads "$t" --budget 0.5 \
            --json "$out/torch_${t}_$round.json" >/dev/null
    done
done
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
info = open("/proc/cpuinfo").read().split("\n\n")[0]
field = lambda k: next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith(k)), "?")
simd = " ".join(f for f in field("flags").split() if f.startswith(("avx", "fma", "amx")))
print(f"Host: {field('model name')}; {simd}; {os.cpu_count()} CPUs\n")
fg = {}
for line in open(os.path.join(out, "ferrograd.jsonl")):
    r = json.loads(line)
    fg.setdefault((r["shape"], r["isa"], r["threads"]), []).append(r["gflops"])
pt = {}
for path in glob.glob(os.path.join(out, "torch_*_*.json")):
    threads = int(os.path.basename(path).split("_")[1])
    for r in json.load(open(path))["rows"]:
        if r["dtype"] == "f32":
            pt.setdefault((r["shape"], threads), []).append(r["gflops"])
print("| shape | variant | GFLOP/s (median, [min-max] of rounds) | PyTorch same threads | fraction of PyTorch |")
print("|---|---|---:|---:|---:|")
for (shape, isa, threads), v in sorted(fg.items()):
    p = pt.get((shape, threads))
    pm = statistics.median(p) if p else float("nan")
    m = statistics.median(v)
    print(f"| {shape} | ferrograd {isa}, {threads} thread(s) | {m:.0f} [{min(v):.0f}-{max(v):.0f}] | {pm:.0f} | {m / pm:.2f} |")
for (shape, threads), p in sorted(pt.items()):
    print(f"| {shape} | PyTorch, {threads} thread(s) | {statistics.median(p):.0f} [{min(p):.0f}-{max(p):.0f}] | | |")
print(f"\nRaw lines: {out}")
PY
