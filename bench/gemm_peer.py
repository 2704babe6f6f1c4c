#!/usr/bin/env python3
"""Peer GEMM timings for bench/benches/matmul.rs: NumPy (and PyTorch CPU when
importable) on the same shapes and dtypes, on a fixed number of threads
(default 2), printing the median time and GFLOP/s (2*m*n*k / median) per shape.

Launch it through bench/gemm_peer.sh, which uses bench/.venv (made by
bench/peer_env.sh) and unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for this one
command: a forced core type or L2 size makes a current NumPy's OpenBLAS slower.

Shapes follow the Rust bench's ids, `m x k x n` with `C = op(A) op(B)`:
`_tn` reads A transposed (A^T*B), `_nt` reads B transposed (A*B^T). Transposes
are NumPy/torch views, so the BLAS call gets a transpose flag, not a copy.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = [
    # (m, k, n, transpose_a, transpose_b)
    (128, 256, 256, False, False),
    (256, 128, 256, True, False),
    (128, 256, 256, False, True),
    (104, 256, 256, False, False),
    (1024, 1024, 1024, False, False),
]


def case_id(m, k, n, ta, tb):
    suffix = {(False, False): "", (True, False): "_tn", (False, True): "_nt", (True, True): "_tt"}[(ta, tb)]
    return f"{m}x{k}x{n}{suffix}"


def median_seconds(fn, min_reps, budget_s):
    """Median wall time of `fn()` over at least `min_reps` calls, spending about
    `budget_s` seconds after a short warm-up."""
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    reps = max(min_reps, int(budget_s / once))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), reps


def bench_numpy(dtype_name, threads, min_reps, budget_s, rows):
    import numpy as np

    rng = np.random.default_rng(0)
    dtype = {"f32": np.float32, "f64": np.float64}[dtype_name]
    for m, k, n, ta, tb in CASES:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        opa = a.T if ta else a
        opb = b.T if tb else b
        c = np.empty((m, n), dtype=dtype)
        med, reps = median_seconds(lambda: np.matmul(opa, opb, out=c), min_reps, budget_s)
        rows.append(("numpy", dtype_name, case_id(m, k, n, ta, tb), m * n * k * 2, med, reps))


def bench_torch(dtype_name, threads, min_reps, budget_s, rows):
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    dtype = {"f32": torch.float32, "f64": torch.float64}[dtype_name]
    with torch.inference_mode():
        for m, k, n, ta, tb in CASES:
            a = torch.randn((k, m) if ta else (m, k), generator=gen, dtype=dtype)
            b = torch.randn((n, k) if tb else (k, n), generator=gen, dtype=dtype)
            opa = a.t() if ta else a
            opb = b.t() if tb else b
            c = torch.empty((m, n), dtype=dtype)
            med, reps = median_seconds(lambda: torch.mm(opa, opb, out=c), min_reps, budget_s)
            rows.append(("torch", dtype_name, case_id(m, k, n, ta, tb), m * n * k * 2, med, reps))


def run_child(impl, args):
    """Times one implementation in a fresh interpreter: OpenBLAS's worker
    threads keep spinning after NumPy's last call and would starve torch's
    OpenMP threads on a 2-core machine if both ran in one process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--impl", impl, "--threads", str(args.threads),
           "--min-reps", str(args.min_reps), "--budget", str(args.budget), "--child"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"{impl}: child exited with {proc.returncode}; skipped")
        return None
    *lines, last = proc.stdout.strip().splitlines()
    for line in lines:
        print(line)
    return json.loads(last)


def time_one(impl, args):
    """Times `impl` in this process; prints info lines, returns the results."""
    meta, rows = {}, []
    if impl == "numpy":
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits

        meta["numpy"] = np.__version__
        with threadpool_limits(limits=args.threads):
            blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
            meta["numpy_blas"] = [
                {key: info.get(key) for key in ("internal_api", "version", "architecture", "threading_layer",
                                                "num_threads")}
                for info in blas
            ]
            for b in meta["numpy_blas"]:
                print("numpy {}: BLAS {internal_api} {version}, kernel (architecture) {architecture}, "
                      "threading {threading_layer}, num_threads {num_threads}".format(np.__version__, **b))
            for dt in ("f32", "f64"):
                bench_numpy(dt, args.threads, args.min_reps, args.budget, rows)
    else:
        try:
            import torch
        except Exception as e:  # noqa: BLE001 - any import failure means "skip torch"
            print(f"torch: not importable ({type(e).__name__}: {e}); skipped")
            return {"meta": {}, "rows": []}
        meta["torch"] = torch.__version__
        for dt in ("f32", "f64"):
            bench_torch(dt, args.threads, args.min_reps, args.budget, rows)
        print(f"torch {torch.__version__}: {torch.get_num_threads()} threads, "
              f"mkldnn {torch.backends.mkldnn.is_available()}, mkl {torch.backends.mkl.is_available()}")
    return {"meta": {"threads": args.threads, **meta}, "rows": [
        {"impl": i, "dtype": d, "shape": s, "median_s": med, "gflops": f / med / 1e9, "reps": r}
        for i, d, s, f, med, r in rows
    ]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-reps", type=int, default=20)
    p.add_argument("--budget", type=float, default=1.5, help="seconds of timing per implementation, dtype and shape")
    p.add_argument("--impl", choices=["numpy", "torch", "all"], default="all",
                   help="which peer to time; each runs in its own child process")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args()

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var}={os.environ[var]} is set (gemm_peer.sh unsets it)", file=sys.stderr)

    if args.child:
        print(json.dumps(time_one(args.impl, args)))
        return

    out = {"meta": {"threads": args.threads}, "rows": []}
    for impl in ("numpy", "torch") if args.impl == "all" else (args.impl,):
        res = run_child(impl, args)
        if res:
            out["meta"].update(res["meta"])
            out["rows"].extend(res["rows"])

    print(f"{'impl':8} {'dtype':5} {'shape':20} {'median_us':>11} {'GFLOP/s':>9} {'reps':>6}")
    for r in out["rows"]:
        print(f"{r['impl']:8} {r['dtype']:5} {r['shape']:20} {r['median_s'] * 1e6:11.1f} {r['gflops']:9.1f} "
              f"{r['reps']:6d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
