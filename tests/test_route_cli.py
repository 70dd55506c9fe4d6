"""End-to-end test of `rtr route` and `rtr sweep` on a small demo corpus whose
routing tables are written here with h5py (noisy versions of the outcomes),
so the test does not depend on training. The path that `rtr sweep` writes is
checked point by point against a NumPy brute force, `rtr route` decisions
against a NumPy argmax, and every bad input must fail with exit status 1
and leave no output file behind."""
import csv
import json
import os
import shutil
import tempfile

from rtrtest import check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def load(corpus, split, table="noisy"):
    """Tables and truth of one split, in corpus order, as rtr reads them."""
    rows = {k: [] for k in ("p", "tok", "correct", "tokens", "cost", "id")}
    for path, file, _, _ in rtrdata.shards(corpus):
        with h5py.File(path, "r") as h, h5py.File(os.path.join(corpus, "tables", table, file), "r") as t:
            keep = np.array(rtrdata.strings(h, "split")) == split
            ids = rtrdata.strings(h, "id")
            rows["p"].append(t["routing/p_correct"][()][keep])
            rows["tok"].append(t["routing/tokens"][()][keep])
            for k in ("correct", "tokens", "cost"):
                rows[k].append(h["outcomes/" + k][()][keep])
            rows["id"] += [i for i, k in zip(ids, keep) if k]
    return {k: (np.concatenate(v) if k != "id" else v) for k, v in rows.items()}


def argmax(p, c, lam):
    """route_argmax in NumPy: highest score, ties to the cheaper, then the more accurate."""
    s = lam * (p.astype(np.float64) + c) - c
    out = np.empty(len(p), dtype=int)
    for i in range(len(p)):
        best = np.flatnonzero(s[i] == s[i].max())
        best = best[c[i, best] == c[i, best].min()]
        best = best[p[i, best] == p[i, best].max()]
        out[i] = best[0]
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_route_")
    corpus = demo_corpus(tmp, 400, 3, 150)
    rng = np.random.default_rng(7)

    rtrdata.write_table(corpus, "noisy", rtrdata.noisy_table(rng), "abc123")

    # --- sweep: the exact path against a brute force at every point
    out = os.path.join(tmp, "sweep")
    r = run("sweep", corpus, "--out", out, "--grid", "11", "--json")
    check(r.returncode == 0, "sweep: " + r.stderr)
    summary = json.loads(r.stdout)
    d = load(corpus, "test")
    c = d["tok"].astype(np.float64)
    scale = c.mean(axis=0).max()
    check(abs(summary["cost_scale"] - scale) <= 1e-3 * scale, "cost scale %s vs %s" % (summary["cost_scale"], scale))
    cs = (d["tok"] / np.float32(scale)).astype(np.float32).astype(np.float64)
    with open(os.path.join(out, "path.csv")) as f:
        path = list(csv.DictReader(f))
    check(len(path) == summary["n_points"] and len(path) > 3, "path rows %d" % len(path))
    check(float(path[-1]["lambda_hi"]) == 1.0, "path ends at lambda 1")
    n = len(d["id"])
    for row in path:
        lam = 0.5 * (float(row["lambda_lo"]) + float(row["lambda_hi"]))
        ch = argmax(d["p"], cs, lam)
        idx = (np.arange(n), ch)
        check(abs(float(row["pred_accuracy"]) - d["p"][idx].astype(np.float64).mean()) < 1e-6, "pred acc at %g" % lam)
        check(abs(float(row["pred_mean_cost"]) - d["tok"][idx].astype(np.float64).mean()) < 1e-3, "pred cost at %g" % lam)
        have = ~(np.isnan(d["correct"][idx]) | np.isnan(d["tokens"][idx]))
        check(int(row["n_missing"]) == int((~have).sum()), "missing at %g" % lam)
        check(abs(float(row["accuracy"]) - d["correct"][idx][have].mean()) < 1e-6, "accuracy at %g" % lam)
        check(abs(float(row["mean_cost"]) - d["tokens"][idx][have].astype(np.float64).mean()) < 1e-3, "cost at %g" % lam)
    front = [row for row in path if row["pareto"] == "1"]
    check(len(front) == len(summary["pareto_front"]) > 0, "Pareto front size")
    for a, b in zip(front, front[1:]):
        check(float(b["mean_cost"]) >= float(a["mean_cost"]) and float(b["accuracy"]) > float(a["accuracy"]), "front order")
    check(len(open(os.path.join(out, "grid.csv")).read().splitlines()) == 12, "grid rows")
    svg = open(os.path.join(out, "plot.svg")).read()
    check(svg.startswith("<svg") and "<path" in svg and svg.rstrip().endswith("</svg>"), "svg")
    import xml.dom.minidom
    check(len(xml.dom.minidom.parseString(svg).getElementsByTagName("path")) >= 2, "svg: well-formed, with the path drawn")
    # the cost axis is logarithmic exactly when the drawn costs (path, pairs, references) span more than a decade
    drawn = [float(row[k]) for row in path for k in ("pred_mean_cost", "mean_cost") if row[k] not in ("", "nan")]
    drawn += [p["mean_cost"] for p in summary["reference"]["single_pairs"]]
    spread = max(drawn) / min(drawn) if min(drawn) > 0 else 0
    check(("log scale" in svg) == (spread > 10), "sweep plot: log cost axis iff costs span > 10x (%.1fx)" % spread)
    m = summary["metrics"]
    check(0 < m["aiq"] <= 1 and m["x_max"] > 0, "AIQ %s" % m)
    oracle = summary["reference"]["oracle"]
    best = max(summary["reference"]["single_pairs"], key=lambda s: s["accuracy"])
    check(oracle["accuracy"] >= best["accuracy"], "oracle at least the best single")

    # --- route at a lambda: decisions equal the NumPy argmax (all splits)
    dec = os.path.join(tmp, "dec.csv")
    r = run("route", corpus, "--lambda", "0.7", "--split", "test", "--out", dec, "--json")
    check(r.returncode == 0, "route --lambda: " + r.stderr)
    with open(dec) as f:
        rows = list(csv.DictReader(f))
    pairs = json.load(open(os.path.join(tmp, "demo", "catalog.json")))
    names = [m_["name"] + "|" + s_["name"] for m_ in pairs["models"] for s_ in pairs["strategies"]]
    ch = argmax(d["p"], cs, 0.7)
    check([r_["id"] for r_ in rows] == d["id"], "decision ids in corpus order")
    check([r_["model"] + "|" + r_["strategy"] for r_ in rows] == [names[j] for j in ch], "decisions = argmax")
    # the same decisions as HDF5, read as docs/ROUTING.md says
    r = run("route", corpus, "--lambda", "0.7", "--split", "test", "--out", os.path.join(tmp, "dec.h5"))
    check(r.returncode == 0, "route to .h5: " + r.stderr)
    with h5py.File(os.path.join(tmp, "dec.h5"), "r") as h:
        pairs = list(h["pairs"].asstr()[()])
        check(list(h["id"].asstr()[()]) == d["id"], "h5 decision ids")
        check([pairs[j] for j in h["pair"][()]] == [names[j] for j in ch], "h5 decisions = argmax")
        check(np.allclose(h["p_correct"][()], d["p"][np.arange(len(ch)), ch]), "h5 p_correct of the choice")
        check(h.attrs["lambda"] == 0.7 and h.attrs["cost_model"] == b"tokens" and h.attrs["checkpoint_hash"] == b"abc123",
              "h5 attributes: %s" % dict(h.attrs))

    # --- route under a budget: the most expensive path point within it
    budget = 0.5 * (float(path[1]["pred_mean_cost"]) + float(path[-1]["pred_mean_cost"]))
    r = run("route", corpus, "--budget", str(budget), "--split", "test", "--out", os.path.join(tmp, "b.jsonl"), "--json")
    check(r.returncode == 0, "route --budget: " + r.stderr)
    info = json.loads(r.stdout)
    fits = [row for row in path if float(row["pred_mean_cost"]) <= budget]
    check(info["pred_mean_cost"] <= budget + 1e-9, "budget respected")
    check(abs(info["pred_mean_cost"] - float(fits[-1]["pred_mean_cost"])) < 1e-6, "largest routing within budget")
    check(abs(info["lambda"] - float(fits[-1]["lambda_hi"])) < 1e-12, "budget lambda")
    r = run("route", corpus, "--budget", str(budget * n), "--budget-mode", "total", "--split", "test",
            "--out", os.path.join(tmp, "t.jsonl"), "--json")
    check(r.returncode == 0 and abs(json.loads(r.stdout)["lambda"] - info["lambda"]) < 1e-12, "total budget")
    lines = open(os.path.join(tmp, "b.jsonl")).read().splitlines()
    check(len(lines) == n and "p_correct" in json.loads(lines[0]), "jsonl decisions")

    # --- exclusions and the other cost models
    r = run("route", corpus, "--lambda", "1", "--exclude", "demo-400b", "--out", os.path.join(tmp, "x.csv"))
    check(r.returncode == 0 and "demo-400b" not in open(os.path.join(tmp, "x.csv")).read(), "exclude a model")
    r = run("sweep", corpus, "--cost", "usd", "--out", os.path.join(tmp, "usd"), "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["cost_model"] == "usd", "usd sweep: " + r.stderr)
    pc = os.path.join(tmp, "pc.json")
    json.dump({nm: float(i + 1) for i, nm in enumerate(names)}, open(pc, "w"))
    r = run("sweep", corpus, "--cost", "user", "--pair-cost", pc, "--out", os.path.join(tmp, "user"), "--json")
    check(r.returncode == 0, "user-cost sweep: " + r.stderr)

    # --- the backend: --device cpu and auto (the CPU here, CUDA on a GPU node)
    # give the same path and decisions byte for byte, and say where they ran
    check(summary["device"].startswith("CPU") or "GPU" in summary["device"] or "sm_" in summary["device"],
          "sweep reports its device: %s" % summary.get("device"))
    check(info.get("device") == summary["device"], "route reports its device")
    runs = {}
    for dev in ("cpu", "auto", "cuda"):
        sw = os.path.join(tmp, "sweep_" + dev)
        r1 = run("sweep", corpus, "--out", sw, "--grid", "11", "--device", dev, "--json")
        r2 = run("route", corpus, "--lambda", "0.7", "--split", "test", "--device", dev,
                 "--out", os.path.join(tmp, "dec_%s.csv" % dev))
        r3 = run("route", corpus, "--budget", str(budget), "--split", "test", "--device", dev,
                 "--out", os.path.join(tmp, "b_%s.jsonl" % dev))
        if dev == "cuda" and r1.returncode != 0:
            # no GPU (or a build without CUDA): a clear error, no output
            for r_, f in ((r1, os.path.join(sw, "path.csv")), (r2, os.path.join(tmp, "dec_cuda.csv")),
                          (r3, os.path.join(tmp, "b_cuda.jsonl"))):
                check(r_.returncode == 1 and "error" in r_.stderr and not os.path.exists(f),
                      "--device cuda without a GPU: %d %s" % (r_.returncode, r_.stderr.strip()))
            continue
        check(r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0,
              "--device %s: %s %s %s" % (dev, r1.stderr, r2.stderr, r3.stderr))
        runs[dev] = [open(os.path.join(sw, f)).read() for f in ("path.csv", "grid.csv")] + \
                    [open(os.path.join(tmp, f % dev)).read() for f in ("dec_%s.csv", "b_%s.jsonl")]
    check(json.loads(run("sweep", corpus, "--out", os.path.join(tmp, "sweep_cpu"), "--device", "cpu",
                         "--json").stdout)["device"].startswith("CPU"), "--device cpu computes on the CPU")
    for dev, files in runs.items():
        check(files == runs["cpu"], "--device %s: the same path, grid and decisions as --device cpu" % dev)
        check(files[0] == open(os.path.join(out, "path.csv")).read(), "--device %s: the same path as before" % dev)
    r = run("route", corpus, "--lambda", "0.5", "--device", "tpu", "--out", os.path.join(tmp, "tpu.csv"))
    check(r.returncode == 1 and "tpu" in r.stderr and not os.path.exists(os.path.join(tmp, "tpu.csv")),
          "unknown device: %d %s" % (r.returncode, r.stderr.strip()))

    # --- bad input: exit 1, a clear message, no output file
    bad = [  # (arguments, exit status: 2 for a usage error, what the message names)
        (["route", corpus, "--lambda", "1.5"], 2, "[0, 1]"),
        (["route", corpus, "--lambda", "-0.1"], 2, "[0, 1]"),
        (["route", corpus, "--budget", "0.001"], 1, "cheapest"),
        (["route", corpus, "--lambda", "0.5", "--checkpoint-hash", "ffff"], 1, "checkpoint"),
        (["route", corpus, "--lambda", "0.5", "--split", "nosuch"], 1, "no query in split"),
        (["route", corpus, "--lambda", "0.5", "--exclude", "gpt-9"], 1, "gpt-9"),
        (["route", corpus, "--lambda", "0.5", "--max-tokens", "0.5"], 1, "excluded"),
        (["route", corpus, "--lambda", "0.5", "--cost", "euros"], 1, "cost model"),
        (["route", corpus, "--lambda", "0.5", "--budget-mode", "all"], 2, "mean or total"),
    ]
    for args, rc, msg in bad:
        target = os.path.join(tmp, "bad.csv")
        r = run(*args, "--out", target)
        check(r.returncode == rc and msg in r.stderr, "%s -> %d %s" % (args[2:], r.returncode, r.stderr.strip()))
        check(not os.path.exists(target), "no output after a failure")
    # a second table: the corpus then needs --table, and the two coexist
    rtrdata.write_table(corpus, "flat", lambda path: {"p_correct": np.full_like(h5py.File(path)["outcomes/correct"][()], 0.5),
                                                      "tokens": np.full_like(h5py.File(path)["outcomes/tokens"][()], 10)}, "flat0")
    r = run("route", corpus, "--lambda", "0.5", "--out", os.path.join(tmp, "amb.csv"))
    check(r.returncode == 1 and "noisy" in r.stderr and "flat" in r.stderr and "--table" in r.stderr, "ambiguous table: " + r.stderr)
    r = run("route", corpus, "--lambda", "0.5", "--table", "flat", "--split", "test", "--out", os.path.join(tmp, "flat.csv"), "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["checkpoint_hash"] == "flat0", "route --table flat: " + r.stderr)
    r = run("sweep", corpus, "--table", "noisy", "--out", out, "--grid", "11", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["n_points"] == summary["n_points"], "sweep --table noisy replaces its folder")
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], "no temporary left: %s" % os.listdir(tmp))
    os.makedirs(os.path.join(tmp, "busy"))
    open(os.path.join(tmp, "busy", "notes.txt"), "w").write("mine")
    r = run("sweep", corpus, "--table", "noisy", "--out", os.path.join(tmp, "busy"))
    check(r.returncode == 1 and "notes.txt" in r.stderr and os.listdir(os.path.join(tmp, "busy")) == ["notes.txt"],
          "a folder holding other files is refused, untouched: " + r.stderr)
    r = run("sweep", corpus, "--table", "noisy", "--out", os.path.join(tmp, "g"), "--grid", "100000000")
    check(r.returncode == 2 and "grid" in r.stderr and not os.path.exists(os.path.join(tmp, "g")),
          "--grid 1e8 refused as a usage error (exit 2)")
    r = run("sweep", corpus, "--table", "noisy", "--out", os.path.join(tmp, "n"), "--cost-scale", "nan")
    check(r.returncode in (1, 2) and "cost-scale" in r.stderr and not os.path.exists(os.path.join(tmp, "n")),
          "--cost-scale nan refused: " + r.stderr)
    r = run("sweep", corpus, "--table", "noisy", "--split", "nosuch", "--out", os.path.join(tmp, "none"))
    check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "none")), "sweep on an empty split")
    check(run("route", corpus, "--out", os.path.join(tmp, "u.csv")).returncode == 2, "no --lambda/--budget is a usage error")

    shutil.rmtree(tmp)

if __name__ == "__main__":
    main()
    finish()
