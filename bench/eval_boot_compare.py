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
Evaluations already in WORKDIR are reused.

  bench/eval_boot_compare.py --sample RTR SEEDS WORKDIR F1,F2.. -- EVAL_ARGS...

The m-out-of-n bootstrap against the whole one (docs/METRICS.md): RTR's
eval for s = 1..SEEDS without --bootstrap-queries and with
--bootstrap-queries round(F·N) for each fraction F (N the evaluated
queries), interleaved by seed; for each router and interval (ci.acc,
ci.cost, ci.aiq, ci.cost_to_match) the mean over seeds of the sampled
width / the whole width, and the shift of the mean centre as a share of
the whole width; then the medians over routers and intervals, beside the
whole bootstrap's own seed-to-seed SD of widths and centres on that
scale."""
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


def eval_once(exe, args, seed, out, extra=()):
    if not os.path.exists(out):  # a rerun reuses the evaluations already written
        subprocess.run([exe, "eval", *args, *extra, "--seed", str(seed), "--device", "cpu", "--out", out], check=True,
                       stdout=subprocess.DEVNULL)
    return json.load(open(out))


def sample_main():
    exe, seeds, work, fracs = sys.argv[2], int(sys.argv[3]), sys.argv[4], [float(f) for f in sys.argv[5].split(",")]
    args = sys.argv[sys.argv.index("--") + 1:]
    os.makedirs(work, exist_ok=True)
    n = eval_once(exe, args, 1, os.path.join(work, "full-1.json"))["n_queries"]
    ms = [max(1, round(f * n)) for f in fracs]
    runs = {m: [] for m in [None] + ms}
    for s in range(1, seeds + 1):
        for m in runs:
            name = f"full-{s}.json" if m is None else f"m{m}-{s}.json"
            runs[m].append(eval_once(exe, args, s, os.path.join(work, name),
                                     () if m is None else ("--bootstrap-queries", str(m))))
    keys = ("acc", "cost", "aiq", "cost_to_match")

    def intervals(run):
        """{(router, key): (lo, hi)} of the finite intervals"""
        out = {}
        for r in run["routers"]:
            for k in keys:
                ci = r.get("ci", {}).get(k)
                if ci and None not in ci and all(math.isfinite(v) for v in ci):
                    out[(r["name"], k)] = tuple(ci)
        return out
    full = [intervals(r) for r in runs[None]]
    common = [key for key in full[0] if all(key in f for f in full)]
    mean = lambda xs: sum(xs) / len(xs)
    sd = lambda xs: math.sqrt(sum((x - mean(xs)) ** 2 for x in xs) / (len(xs) - 1))
    print(f"N = {n} evaluated queries, {seeds} seeds, {runs[None][0]['bootstrap']['resamples']} resamples")
    noise_w, noise_c = [], []
    for k in common:
        widths = [f[k][1] - f[k][0] for f in full]
        if seeds > 1 and mean(widths) > 0:
            noise_w.append(sd(widths) / mean(widths))
            noise_c.append(sd([(f[k][0] + f[k][1]) / 2 for f in full]) / mean(widths))
    if noise_w:
        noise_w.sort(), noise_c.sort()
        print(f"whole bootstrap's own noise, seed-to-seed SD / mean width: width median {noise_w[len(noise_w) // 2]:.3f}, "
              f"centre median {noise_c[len(noise_c) // 2]:.3f}")
    for m in ms:
        samp = [intervals(r) for r in runs[m]]
        print(f"\nM = {m} (M/N = {m / n:.3f}): per router, sampled width / whole width (mean over seeds), "
              f"centre shift / whole width")
        wr, cs = [], []
        for key in common:
            if not all(key in x for x in samp):
                print(f"  {key[0]:<42} {key[1]:<14} not finite in every sampled run")
                continue
            w_full = mean([f[key][1] - f[key][0] for f in full])
            w_samp = mean([x[key][1] - x[key][0] for x in samp])
            c_full = mean([(f[key][0] + f[key][1]) / 2 for f in full])
            c_samp = mean([(x[key][0] + x[key][1]) / 2 for x in samp])
            if w_full <= 0:
                continue
            wr.append(w_samp / w_full)
            cs.append((c_samp - c_full) / w_full)
            print(f"  {key[0]:<42} {key[1]:<14} width {w_samp / w_full:6.3f}  centre {cs[-1]:+.3f}")
        wr.sort(), cs.sort(key=abs)
        print(f"  median width ratio {wr[len(wr) // 2]:.3f} (10%-90%: {wr[len(wr) // 10]:.3f}-{wr[9 * len(wr) // 10]:.3f}); "
              f"median |centre shift| {abs(cs[len(cs) // 2]):.3f}, 90% {abs(cs[9 * len(cs) // 10]):.3f} of the width")


def main():
    if sys.argv[1] == "--sample":
        return sample_main()
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
