#!/usr/bin/env bash
# Rewrites the race figures of docs/optimizers.md (the all-defaults table and
# every optimizer's "Race:" line) from bench/races/all-defaults/race.jsonl.
# tests/docs_race_figures.rs computes the same figures and fails when the
# page and the results file disagree; this runs it in its writing mode.
set -euo pipefail
cd "$(dirname "$0")/.."
FERROGRAD_UPDATE_DOCS=1 cargo test --quiet --test docs_race_figures the_optimizer_pages_race_figures
git --no-pager diff --stat -- docs/optimizers.md
