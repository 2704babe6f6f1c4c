#!/usr/bin/env bash
# Rewrites the race figures of the docs from the committed results:
# - docs/optimizers.md: the all-defaults table and every optimizer's "Race:"
#   line from bench/races/all-defaults/race.jsonl, and the second-order
#   table from bench/races/second-order/race.jsonl (tests/docs_race_figures.rs;
#   its quoted `ferrograd race report` block is checked, not rewritten:
#   paste the command's output);
# - docs/champion.md: every table and both quoted reports from
#   bench/races/champion/ (tests/docs_champion_figures.rs);
# - bench/RESULTS.md: the second-order table, the champion's held-out table
#   and the quoted all-defaults report (tests/docs_results_figures.rs).
# Each test computes the same figures and fails when a page and the files
# disagree; this runs them in their writing mode. Figures quoted in prose
# are checked by the same tests but not rewritten: fix the sentence.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERROGRAD_UPDATE_DOCS=1
cargo test --quiet --test docs_race_figures the_optimizer_pages_race_figures
cargo test --quiet --test docs_champion_figures the_champion_pages_tables_and_reports
cargo test --quiet --test docs_results_figures the_results_pages_race_figures
git --no-pager diff --stat -- docs/optimizers.md docs/champion.md bench/RESULTS.md
