#!/usr/bin/env bash
# Ablations of `anneal` (docs/champion.md): the full optimizer and one variant
# per part removed, on the tuning seeds 0..19 of tracks 4 and 10, then one
# report that pairs every variant with the full optimizer seed by seed.
# Usage: bash bench/champion-ablations.sh [OUT_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/races/champion/ablations}
cargo build --release --quiet
bin=target/release/ferrograd
common=(--optimizers anneal --tracks 4,10 --seeds 0..19 --jobs 2 --quiet --no-plots --resume)
run() { # NAME [--hp anneal.KEY=VALUE]
    local name=$1
    shift
    "$bin" race "${common[@]}" "$@" --out "$out/$name"
}
run full
run no_spread --hp anneal.spread=0
run adam_direction --hp anneal.adam=1
run no_decay --hp anneal.final=1
run no_warmup --hp anneal.warmup=0
run no_settle --hp anneal.settle=0
"$bin" race report "$out"/*/race.jsonl --baseline anneal --no-plots --out "$out/report"
cat "$out/report/report.txt"
