#!/usr/bin/env python3
"""Two rtr binaries' bootstrap intervals on one evaluation, several seeds
each: do they agree to within Monte Carlo noise?

  bench/eval_boot_compare.py RTR_A RTR_B SEEDS WORKDIR -- EVAL_ARGS...

Runs `RTR eval EVAL_ARGS --seed s --out ...` for s = 1..SEEDS with each
binary (interleaved), checks that the point estimates are identical, and
for every interval endpoint (routers' ci.*, ci.budgets, shares' acc_ci,
pairs' ci, calibration ci, p_beats) compares the mean over seeds of A and
of B with the seeds' spread: z = (mean_B - mean_A) / sqrt(sd_A^2/S +
sd_B^2/S). Prints the endpoints' |z| quantiles, how many exceed 2 and 3
(about 5% and 0.3% under noise alone, more with few seeds: the SDs are
estimated), the largest differences of the means relative to the
interval's width, and one run's noise (A's seed-to-seed SD) on that scale.
Evaluations already in WORKDIR are reused."""
import json
import math
import os
import subprocess
import sys


def flat(x, pre, out, ci):
    """Numbers of x by path; ci: under an interval or p_beats key."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("seconds", "device", "bootstrap", "notes", "points"):
                continue
            flat(v, pre + "/" + k, out, ci or k in ("ci", "p_beats", "acc_ci"))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            flat(v, f"{pre}[{i}]", out, ci)
    elif isinstance(x, (int, float)) or x is None:
        out[(ci, pre)] = x


def main():
    a, b, seeds, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    args = sys.argv[sys.argv.index("--") + 1:]
    os.makedirs(work, exist_ok=True)
    runs = {a: [], b: []}
    for s in range(1, seeds + 1):
        for exe in (a, b):
            out = os.path.join(work, f"{'AB'[exe == b]}-{s}.json")
            if not os.path.exists(out):  # a rerun reuses the evaluations already written
                subprocess.run([exe, "eval", *args, "--seed", str(s), "--device", "cpu", "--out", out], check=True,
                               stdout=subprocess.DEVNULL)
            d = {}
            flat(json.load(open(out)), "", d, False)
            runs[exe].append(d)
    pa = {k: v for k, v in runs[a][0].items() if not k[0]}
    pb = {k: v for k, v in runs[b][0].items() if not k[0]}
    same = pa == pb
    print(f"point estimates identical: {same}" + ("" if same else
          f" ({sum(pa.get(k) != pb.get(k) for k in pa)} differ, e.g. "
          f"{[k[1] for k in pa if pa.get(k) != pb.get(k)][:5]})"))
    zs, rel, noise = [], [], []
    for key in runs[a][0]:
        if not key[0]:
            continue
        xa = [r.get(key) for r in runs[a]]
        xb = [r.get(key) for r in runs[b]]
        if any(v is None or not math.isfinite(v) for v in xa + xb):
            continue
        ma, mb = sum(xa) / seeds, sum(xb) / seeds
        va = sum((v - ma) ** 2 for v in xa) / (seeds - 1)
        vb = sum((v - mb) ** 2 for v in xb) / (seeds - 1)
        se = math.sqrt(va / seeds + vb / seeds)
        if se == 0:
            if ma != mb:
                zs.append((math.inf, key[1], ma, mb))
            continue
        zs.append((abs(mb - ma) / se, key[1], ma, mb))
        # the interval's width: its other endpoint (…[0] / …[1])
        p = key[1]
        if p.endswith("[0]") or p.endswith("[1]"):
            other = (key[0], p[:-3] + ("[1]" if p.endswith("[0]") else "[0]"))
            w = [r.get(other) for r in runs[a]]
            if all(v is not None and math.isfinite(v) for v in w):
                width = abs(sum(w) / seeds - ma)
                if width > 0:
                    rel.append((abs(mb - ma) / width, p, ma, mb))
                    noise.append(math.sqrt(va) / width)
    zs.sort(reverse=True)
    n = len(zs)
    q = lambda f: zs[min(n - 1, int((1 - f) * n))][0]
    print(f"{n} interval endpoints and p_beats figures compared over {seeds} seeds each")
    print(f"|z| median {q(0.5):.2f}, 90% {q(0.9):.2f}, max {zs[0][0]:.2f}; "
          f"|z| > 2: {sum(z > 2 for z, *_ in zs)} ({100 * sum(z > 2 for z, *_ in zs) / n:.1f}%), "
          f"> 3: {sum(z > 3 for z, *_ in zs)}")
    for z, p, ma, mb in zs[:5]:
        print(f"  z {z:.2f} {p}: {ma:.6g} -> {mb:.6g}")
    rel.sort(reverse=True)
    if rel:
        print(f"mean endpoint change / interval width: median {rel[len(rel) // 2][0]:.3f}, max {rel[0][0]:.3f} "
              f"({rel[0][1]})")
        noise.sort()
        print(f"one run's Monte Carlo noise (A's seed-to-seed SD) / interval width: median "
              f"{noise[len(noise) // 2]:.3f}, 90% {noise[int(0.9 * len(noise))]:.3f}")


main()
