"""`rtr sweep` never holds the λ path: its points are sorted on cost in
runs that go to temporary files past a bound, and the Pareto front and
curve metrics come from one pass over them. RTR_SWEEP_SPILL=3 makes every
sorter (the path builder's events and the points on cost) spill after 3
records, so hundreds of runs and their compaction are exercised at this
small size; every output must be byte for byte the in-memory run's. The
front and the metrics are also checked against a NumPy brute force over
path.csv (the definitions of src/eval/metrics.c), and a bad knob must fail
with an error naming it."""
import json
import math
import os
import re
import shutil
import subprocess
import tempfile

from rtrtest import RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def sweep(corpus, out, spill=None):
    env = dict(os.environ)
    env.pop("RTR_SWEEP_SPILL", None)
    if spill is not None:
        env["RTR_SWEEP_SPILL"] = spill
    return subprocess.run([RTR, "sweep", corpus, "--out", out, "--grid", "7", "--json"], capture_output=True,
                          text=True, env=env)


def no_seconds(text):
    return re.sub(r'"seconds":[^,}]*', "", text)


def front_of(cost, acc):
    """rtr_pareto_front: in cost order (ties: more accurate, then earlier first), a point more accurate than all before."""
    order = sorted((c, -a, j) for j, (c, a) in enumerate(zip(cost, acc)) if not (math.isnan(c) or math.isnan(a)))
    out, best = [], None
    for c, na, j in order:
        if best is None or -na > best:
            out.append(j)
            best = -na
    return out


def sorted_xy(x, y):
    return sorted(((a, b) for a, b in zip(x, y) if math.isfinite(a) and math.isfinite(b)), key=lambda p: (p[0], -p[1]))


def aiq(cost, acc, x_max):
    pt, h = sorted_xy(cost, acc), []
    for x, y in pt:
        if h and h[-1][0] == x:
            continue
        while len(h) >= 2 and (h[-1][0] - h[-2][0]) * (y - h[-2][1]) - (h[-1][1] - h[-2][1]) * (x - h[-2][0]) >= 0:
            h.pop()
        h.append((x, y))
    top = max(i for i in range(len(h)) if h[i][1] >= max(p[1] for p in h))
    area = h[top][1] * (x_max - h[top][0])
    area += sum(0.5 * (h[t][1] + h[t + 1][1]) * (h[t + 1][0] - h[t][0]) for t in range(top))
    return area / x_max


def area01(x, y):
    pt = sorted_xy(x, y)
    area = pt[0][1] * min(max(pt[0][0], 0), 1)
    for (x0, y0), (x1, y1) in zip(pt, pt[1:]):
        lo, hi = max(x0, 0), min(x1, 1)
        if hi > lo:
            area += 0.5 * (2 * y0 + (y1 - y0) / (x1 - x0) * (lo - x0 + hi - x0)) * (hi - lo)
    return area + pt[-1][1] * (1 - min(max(pt[-1][0], 0), 1))


def cpt(x, y, target):
    pt = sorted_xy(x, y)
    for t, (a, b) in enumerate(pt):
        if b >= target:
            return a if t == 0 else pt[t - 1][0] + (target - pt[t - 1][1]) * (a - pt[t - 1][0]) / (b - pt[t - 1][1])
    return None


def close(a, b, what):
    ok = (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-9 * max(1, abs(b)))
    check(ok, "%s: %s, brute force %s" % (what, a, b))


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_sweep_spill_")
    corpus = demo_corpus(tmp, 600, 5, 200)
    rtrdata.write_table(corpus, "noisy", rtrdata.noisy_table(np.random.default_rng(11)), "abc123")
    mem, disk = os.path.join(tmp, "mem"), os.path.join(tmp, "disk")
    a = sweep(corpus, mem)
    check(a.returncode == 0, "sweep in memory: " + a.stderr)
    b = sweep(corpus, disk, "3")
    check(b.returncode == 0, "sweep spilled: " + b.stderr)
    for f in ("path.csv", "grid.csv", "plot.svg"):
        same = open(os.path.join(mem, f), "rb").read() == open(os.path.join(disk, f), "rb").read()
        check(same, f + ": spilled and in-memory runs differ")
    sa, sb = (open(os.path.join(d, "summary.json")).read() for d in (mem, disk))
    check(no_seconds(sa) == no_seconds(sb), "summary.json: spilled and in-memory runs differ")
    check(no_seconds(a.stdout) == no_seconds(sa) + "\n", "--json prints summary.json")

    # the front and the metrics against a brute force over the path written
    s = json.loads(sa)
    rows = [line.split(",") for line in open(os.path.join(mem, "path.csv")).read().splitlines()[1:]]
    num = lambda v: float(v) if v else float("nan")  # noqa: E731
    acc, cost = [num(r[6]) for r in rows], [num(r[7]) for r in rows]
    front = front_of(cost, acc)
    check(len(rows) == s["n_points"] > 100, "path rows %d" % len(rows))
    check([j for j, r in enumerate(rows) if r[3] == "1"] == sorted(front), "path.csv's pareto flags")
    check(len(s["pareto_front"]) == len(front), "front size %d vs %d" % (len(s["pareto_front"]), len(front)))
    near = lambda u, v: abs(u - v) <= 1e-9 * max(1, abs(v))  # noqa: E731 (path.csv has 10 digits)
    check(all(near(e["accuracy"], acc[j]) and near(e["mean_cost"], cost[j]) for e, j in zip(s["pareto_front"], front)),
          "summary's front: the brute force's points in cost order")
    m, ref = s["metrics"], s["reference"]
    singles = ref["single_pairs"]
    best = next(p for p in singles if p["pair"] == ref["best_single"])
    cheap = next(p for p in singles if p["pair"] == ref["cheapest_single"])
    close(m["aiq"], aiq(cost, acc, m["x_max"]), "AIQ")
    x = [(c - cheap["mean_cost"]) / (best["mean_cost"] - cheap["mean_cost"]) for c in cost]
    close(m["apgr_normalised_cost"], (area01(x, acc) - cheap["accuracy"]) / (best["accuracy"] - cheap["accuracy"]), "APGR")
    for key, frac in (("cpt50_normalised_cost", 0.5), ("cpt80_normalised_cost", 0.8)):
        close(m[key], cpt(x, acc, cheap["accuracy"] + frac * (best["accuracy"] - cheap["accuracy"])), key)
    gap = [a for a, c in zip(acc, cost) if c <= ref["oracle"]["mean_cost"]]
    close(m["oracle_gap"], ref["oracle"]["accuracy"] - max(gap) if gap else None, "oracle gap")

    bad = sweep(corpus, os.path.join(tmp, "bad"), "lots")
    check(bad.returncode == 1 and "RTR_SWEEP_SPILL=lots" in bad.stderr, "a bad knob is refused: " + bad.stderr)
    check(not os.path.exists(os.path.join(tmp, "bad")), "a refused sweep leaves no folder")
    shutil.rmtree(tmp)
    finish()


if __name__ == "__main__":
    main()
