#!/usr/bin/env bash
# Rewrites the race figures of docs/optimizers.md from the committed results:
# the all-defaults table and every optimizer's "Race:" line from
# bench/races/all-defaults/race.jsonl, and the second-order table from
# bench/races/second-order/race.jsonl. tests/docs_race_figures.rs computes
# the same figures and fails when the page and the files disagree (it also
# checks the quoted `ferrograd race report` block, which this does not
# rewrite: paste the command's output); this runs it in its writing mode.
set -euo pipefail
cd "$(dirname "$0")/.."
FERROGRAD_UPDATE_DOCS=1 cargo test --quiet --test docs_race_figures the_optimizer_pages_race_figures
git --no-pager diff --stat -- docs/optimizers.md
