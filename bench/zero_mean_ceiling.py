#!/usr/bin/env python3
"""How far a race's scores are from the best score an honest model can reach.

The task's model cannot represent a constant offset: its last BatchNorm and
output layer are frozen, so its output has zero mean over every mini-batch,
and, with BatchNorm statistics recomputed on the training set, zero mean
over the training inputs (up to a term of order 1/n: tests/task_offset.rs). The best such predictor is `f(x) - mean(f)` (the
mean over the training inputs); its quality is the *zero-mean ceiling* of
the seed. A kept model can score above it only through the lag of its
BatchNorm running averages (docs/champion.md, "What the score measures").

For every track and entrant of the given race files (which need the
`recalibrated_quality` field), prints the median of

  * headroom: zero-mean ceiling - recalibrated quality (what a better model
    could still win), and
  * over: quality - zero-mean ceiling (above zero only by the luck of the
    running averages), with how many runs score above the ceiling.

With `--baseline NAME` it prints instead, per track, the median over seeds
of `zero-mean ceiling - baseline's quality` with a 95 % percentile-bootstrap
interval (any race file will do; no recalibrated field needed). An entrant
whose kept model has zero-mean output cannot have a larger median paired
difference against that baseline, since each of its paired differences is
at most this one (up to the 1/n term above, and to where the test inputs
happen to fall, which no model trained without them can exploit). Where the
bound is negative, beating the baseline on the median takes an offset from
the running averages.

The instances come from `ferrograd data` (the same generator as the race).
Standard library only.

    cargo build --release
    python3 bench/zero_mean_ceiling.py bench/races/champion/recalibrated/race.jsonl
    python3 bench/zero_mean_ceiling.py bench/races/champion/eval/race.jsonl --baseline adam_tuned
"""

import argparse
import ast
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile


def read_npy(path):
    """A little-endian float32/float64 .npy file as a list of rows."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            sys.exit(f"{path}: not a .npy file")
        major = f.read(2)[0]
        header_len = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))[0]
        header = ast.literal_eval(f.read(header_len).decode("latin1"))
        code = {"<f4": "f", "<f8": "d"}.get(header["descr"])
        if code is None or header["fortran_order"]:
            sys.exit(f"{path}: expected a C-order float32 or float64 array, got {header}")
        rows, cols = header["shape"]
        values = struct.unpack(f"<{rows * cols}{code}", f.read())
    return [list(values[r * cols : (r + 1) * cols]) for r in range(rows)]


def quality(prediction, targets, clean):
    """The task's score (TIG_TASK.md section 4), as src/train/score.rs computes it."""
    pairs = [(p, y, f) for pr, yr, fr in zip(prediction, targets, clean) for p, y, f in zip(pr, yr, fr)]
    eps2 = 4.0 / len(targets) * sum((y - f) ** 2 for _, y, f in pairs)
    loss = sum((p - y) ** 2 for p, y, _ in pairs) / len(pairs)
    return round(max(-10.0, min(10.0, (eps2 - loss) / eps2)) * 1_000_000)


def zero_mean_ceiling(ferrograd, seed, scratch):
    out = os.path.join(scratch, str(seed))
    subprocess.run([ferrograd, "data", "--seed", str(seed), "--out", out], check=True, capture_output=True)
    load = lambda name: read_npy(os.path.join(out, f"{name}.npy"))  # noqa: E731
    train_f, test_f, test_y = load("train_f"), load("test_f"), load("test_y")
    means = [statistics.fmean(col) for col in zip(*train_f)]
    prediction = [[f - m for f, m in zip(row, means)] for row in test_f]
    return quality(prediction, test_y, test_f)


def bootstrap_median_interval(values, resamples=10_000, seed=24301):
    """The 95 % percentile-bootstrap interval of the median (the race report's method)."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def print_diagnosis(runs, ceiling):
    """Per track and entrant: the headroom left to a better model, and the score above the ceiling."""
    width = max(len("entrant"), *(len(e) for _, e in runs))
    print(f"{'track':>5}  {'entrant':<{width}}  {'runs':>4}  {'median headroom':>15}  {'median over':>11}  above ceiling")
    for (track, entrant), by_seed in sorted(runs.items()):
        headroom = [ceiling[s] - r["recalibrated_quality"] for s, r in by_seed.items()]
        over = [r["quality"] - ceiling[s] for s, r in by_seed.items()]
        above = sum(x > 0 for x in over)
        print(
            f"{track:>5}  {entrant:<{width}}  {len(by_seed):>4}  {statistics.median(headroom):>15,.0f}"
            f"  {statistics.median(over):>+11,.0f}  {above}/{len(over)}"
        )


def print_bound(runs, ceiling, baseline):
    """Per track: the largest median paired difference a zero-mean model could reach against `baseline`."""
    print(f"best median paired difference against {baseline} that a zero-mean model can reach")
    print(f"{'track':>5}  {'seeds':>5}  {'median ceiling - baseline':>25}  {'95% interval':>24}  baseline above ceiling")
    for track in sorted({t for t, _ in runs}):
        by_seed = runs.get((track, baseline))
        if not by_seed:
            sys.exit(f"track {track}: no runs of the baseline {baseline!r} in the race files")
        bound = [ceiling[s] - by_seed[s]["quality"] for s in sorted(by_seed)]  # seed order: reproducible
        low, high = bootstrap_median_interval(bound)
        interval = f"[{low:+,.0f}, {high:+,.0f}]"
        above = sum(x < 0 for x in bound)
        print(f"{track:>5}  {len(bound):>5}  {statistics.median(bound):>+25,.0f}  {interval:>24}  {above}/{len(bound)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("races", nargs="+", help="race.jsonl files")
    parser.add_argument("--ferrograd", default="target/release/ferrograd", help="the ferrograd binary")
    parser.add_argument("--baseline", help="print the bound on the paired difference against this entrant")
    args = parser.parse_args()
    runs = {}
    for path in args.races:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    if r.get("recalibrated_quality") is None and not args.baseline:
                        sys.exit(f"{path}: a run without recalibrated_quality; rerun the race with this ferrograd")
                    runs.setdefault((r["n_hidden"], r["entrant"]), {})[r["seed"]] = r
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    with tempfile.TemporaryDirectory() as scratch:
        ceiling = {s: zero_mean_ceiling(args.ferrograd, s, scratch) for s in seeds}
    print("seed  zero-mean ceiling")
    for s in seeds:
        print(f"{s:>4}  {ceiling[s]:>17,}")
    print()
    if args.baseline:
        print_bound(runs, ceiling, args.baseline)
    else:
        print_diagnosis(runs, ceiling)

if __name__ == "__main__":
    main()
