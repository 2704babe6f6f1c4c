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

The instances come from `ferrograd data` (the same generator as the race).
Standard library only.

    cargo build --release
    python3 bench/zero_mean_ceiling.py bench/races/champion/recalibrated/race.jsonl
"""

import argparse
import ast
import json
import os
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("races", nargs="+", help="race.jsonl files")
    parser.add_argument("--ferrograd", default="target/release/ferrograd", help="the ferrograd binary")
    args = parser.parse_args()
    runs = {}
    for path in args.races:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    if r.get("recalibrated_quality") is None:
                        sys.exit(f"{path}: a run without recalibrated_quality; rerun the race with this ferrograd")
                    runs.setdefault((r["n_hidden"], r["entrant"]), {})[r["seed"]] = r
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    with tempfile.TemporaryDirectory() as scratch:
        ceiling = {s: zero_mean_ceiling(args.ferrograd, s, scratch) for s in seeds}
    print("seed  zero-mean ceiling")
    for s in seeds:
        print(f"{s:>4}  {ceiling[s]:>17,}")
    print()
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


if __name__ == "__main__":
    main()
