"""Peer of bench_sweep.c: the λ sweep the way a NumPy user writes it, on a
grid. Reads the raw float32 tables bench_sweep wrote (p, c, cost, true
correct, true cost; each n x k), routes every query at each of G λ values
(argmax of λ·(p + c) − c, ties to the lower index), and prints one line of
timing followed by one line per λ: lambda pred_acc pred_cost real_acc
real_cost, so bench_sweep can check the grid against its exact path.

usage: python3 bench_sweep_numpy.py TABLES.f32 N K G
"""
import sys
import time

import numpy as np


def main():
    path, n, k, g = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t = np.fromfile(path, dtype=np.float32).reshape(5, n, k)
    p, c, cost, tc, tk = t
    lambdas = (np.arange(g) + 0.5) / g  # interior points: no exact ties at 0
    rows = []
    start = time.perf_counter()
    a = p.astype(np.float64) + c.astype(np.float64)  # the same double lines as rtr
    b = -c.astype(np.float64)
    idx = np.arange(n)
    have_cost = np.where(np.isnan(tc) | np.isnan(tk), 0.0, tk)
    have_corr = np.where(np.isnan(tc) | np.isnan(tk), 0.0, tc)
    present = ~(np.isnan(tc) | np.isnan(tk))
    for lam in lambdas:
        choice = np.argmax(lam * a + b, axis=1)
        have = present[idx, choice]
        m = have.sum()
        rows.append((lam, p[idx, choice].mean(dtype=np.float64), cost[idx, choice].mean(dtype=np.float64),
                     have_corr[idx, choice].sum(dtype=np.float64) / m, have_cost[idx, choice].sum(dtype=np.float64) / m))
    elapsed = time.perf_counter() - start
    print(f"seconds {elapsed:.6f} numpy {np.__version__}")
    for r in rows:
        print(" ".join(f"{v:.17g}" for v in r))


if __name__ == "__main__":
    main()
