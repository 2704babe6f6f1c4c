#!/usr/bin/env python3
"""Builds the GEMM table of bench/RESULTS.md: median GFLOP/s per
implementation x dtype x shape, over one or more saved runs of
bench/run_gemm.sh (each a folder holding criterion's `matmul` output of the
workspace bench as ws/, of bench/mm-threaded as mt/, and gemm_peer.py's JSON).

    python3 bench/gemm_table.py target/gemm-runs/*/

Per run, GFLOP/s = 2*m*n*k / criterion's median time per iteration (its
`median` point estimate, not the mean `cargo bench` prints) or gemm_peer.py's
median. A cell shows the median over the runs, and with more than one run the
lowest and highest run in brackets.
"""

import argparse
import glob
import json
import os
import statistics

SHAPES = ["128x256x256", "256x128x256_tn", "128x256x256_nt", "104x256x256", "1024x1024x1024"]
# (row label, function id: "{}" is replaced by f32/f64)
IMPLS = [
    ("engine `matmul_t` (matrixmultiply, 1 thread)", "engine_{}"),
    ("matrixmultiply 0.3.11, 1 thread", "matrixmultiply_{}"),
    ("matrixmultiply 0.3.11 `threading`, MATMUL_NUM_THREADS=2", "matrixmultiply_{}_mt2"),
    ("gemm 0.19.0, `Parallelism::None`", "gemm_{}"),
    ("gemm 0.19.0, `Parallelism::Rayon(2)`", "gemm_{}_rayon2"),
]


def flops(shape):
    m, k, n = (int(x) for x in shape.split("_")[0].split("x"))
    return 2 * m * n * k


def load_run(folder, meta):
    vals = {}
    for sub in ("ws", "mt"):
        for path in glob.glob(os.path.join(folder, sub, "*", "*", "new", "estimates.json")):
            shape_dir = os.path.dirname(os.path.dirname(path))
            func = os.path.basename(os.path.dirname(shape_dir))
            shape = os.path.basename(shape_dir)
            with open(path) as fh:
                median_ns = json.load(fh)["median"]["point_estimate"]
            vals[(func, shape)] = flops(shape) / median_ns  # FLOP/ns == GFLOP/s
    for path in sorted(glob.glob(os.path.join(folder, "gemm_peer_*.json"))):
        with open(path) as fh:
            peer = json.load(fh)
        meta.update(peer["meta"])
        for row in peer["rows"]:
            vals[(f"peer_{row['impl']}_{row['dtype']}", row["shape"])] = row["gflops"]
    return vals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="run folders (target/gemm-runs/*/)")
    args = p.parse_args()
    meta = {}
    runs = [load_run(r, meta) for r in args.runs]
    impls = list(IMPLS)
    if "numpy" in meta:
        blas = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}" for b in meta.get("numpy_blas", []))
        impls.append((f"NumPy {meta['numpy']} ({blas}), 2 threads", "peer_numpy_{}"))
    if "torch" in meta:
        impls.append((f"PyTorch {meta['torch']} CPU, 2 threads", "peer_torch_{}"))
    print(f"{len(runs)} run(s): " + ", ".join(os.path.basename(os.path.normpath(r)) for r in args.runs))
    for dt in ("f32", "f64"):
        print(f"\n**{dt}**, GFLOP/s (median over runs" + (", [lowest-highest run]" if len(runs) > 1 else "") + ")\n")
        print("| implementation | " + " | ".join(SHAPES) + " |")
        print("|---|" + "---:|" * len(SHAPES))
        for label, func in impls:
            cells = []
            for shape in SHAPES:
                v = [r[(func.format(dt), shape)] for r in runs if (func.format(dt), shape) in r]
                if not v:
                    cells.append("—")
                elif len(v) == 1:
                    cells.append(f"{v[0]:.1f}")
                else:
                    cells.append(f"{statistics.median(v):.0f} [{min(v):.0f}-{max(v):.0f}]")
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
