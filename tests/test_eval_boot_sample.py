#!/usr/bin/env python3
"""`rtr eval --bootstrap-queries M`: above M evaluated queries the bootstrap
resamples only the M with the smallest hash of (seed, query id) and scales
each resample's deviation by sqrt(M/N) around the estimate on every query
(the m-out-of-n bootstrap, docs/METRICS.md).

Checked against a direct computation: the sample is recomputed here from
the ids (the hash as src/eval/bootstrap.c defines it); a second corpus
holding only the training rows and the sampled evaluated rows, evaluated
with its whole bootstrap (the same resample weights, which depend only on
seed, id and resample), gives θ*_M and θ̂_M; the first corpus's intervals
of the pairs, the Oracle and the calibration bins must be θ̂_N +
sqrt(M/N)·(q(θ*_M) − θ̂_M) to rounding. A statistic the sample shows no
variation in where the split varies gets no interval. At M >= N the file is the one
without the option; M = 0 is a usage error naming the option; the
summary and the report say the intervals come from a sample."""
import json
import math
import os
import tempfile

from rtrtest import check, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

SEED = 3


def corpus_of(tmp, name, lines):
    """Ingest the outcome lines; stand-in embeddings and a table that is a
    fixed function of each row's outcomes (so a query's table is the same
    in both corpora)."""
    src = os.path.join(tmp, name + ".jsonl")
    with open(src, "w") as f:
        f.writelines(lines)
    corpus = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(tmp, "demo", "catalog.json"), "--out", corpus, src)
    check(r.returncode == 0, "ingest: " + r.stderr)
    rng = np.random.default_rng(1)

    def unit_rows(path):
        emb = rng.standard_normal((h5py.File(path, "r").attrs["n_queries"], 16))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    rtrdata.write_embeddings(corpus, "e", "test-encoder", unit_rows, (np.ones((4, 16)), np.ones((4, 16))))
    rtrdata.write_table(corpus, "t", rtrdata.outcome_table, "h", "e", "test-encoder")
    return corpus


def evaluate(corpus, out, *extra):
    r = run("eval", corpus, "--out", out, "--no-embedllm", "--arch", "paper", "--bootstrap", "200", "--seed",
            str(SEED), "--device", "cpu", *extra)
    check(r.returncode == 0, f"eval {' '.join(extra)}: " + r.stderr)
    return (json.load(open(out)) if r.returncode == 0 else None), r.stdout


def clamp(x, lo=0.0, hi=math.inf):
    """The scaled value kept within the statistic's range, as rtr keeps it."""
    return min(max(x, lo), hi)


def close(got, want, what):
    ok = got is not None and want is not None and math.isfinite(want) and abs(got - want) <= 1e-9 * max(1, abs(want))
    check(ok, f"{what}: {got} != {want}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_bootm_")
    r = run("gen-demo", "--queries", "2000", "--seed", "4", os.path.join(tmp, "demo"))
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    lines = open(os.path.join(tmp, "demo", "outcomes.jsonl")).readlines()
    rows = [json.loads(x) for x in lines]
    test_ids = [x["id"] for x in rows if x["split"] == "test"]
    n = len(test_ids)
    m = n // 4
    keep = set(sorted(test_ids, key=lambda q: rtrdata.sample_hash(SEED, q))[:m])
    big = corpus_of(tmp, "big", lines)
    small = corpus_of(tmp, "small", [x for x, row in zip(lines, rows) if row["split"] != "test" or row["id"] in keep])

    a, out = evaluate(big, os.path.join(tmp, "a.json"), "--bootstrap-queries", str(m))
    b, _ = evaluate(small, os.path.join(tmp, "b.json"))
    if not a or not b:
        return finish()
    check(a["n_queries"] == n and b["n_queries"] == m, f"{a['n_queries']} and {b['n_queries']} queries, not {n} and {m}")
    check(a["bootstrap"].get("queries") == m and a["bootstrap"]["method"].startswith("m-out-of-n"),
          f"the file records the sample: {a['bootstrap']}")
    check("queries" not in b["bootstrap"], "no sample recorded when every query is resampled")
    check(f"200 paired bootstrap resamples of {m} of the {n} evaluated queries (m-out-of-n" in out,
          "the summary says the intervals come from a sample: " + out)
    r = run("report", os.path.join(tmp, "a.json"), "--no-figures")
    md = os.path.join(tmp, "a.md")
    check(r.returncode == 0 and f"bootstrap resamples of a sample of {m} queries" in open(md).read(),
          "the report says the intervals come from a sample: " + r.stderr)
    s = math.sqrt(m / n)

    # the pairs: every pair's accuracy and mean cost
    for pa, pb in zip(a["pairs"], b["pairs"]):
        for key in ("acc", "cost"):
            for e in range(2):
                close(pa["ci"][key][e], clamp(pa[key] + s * (pb["ci"][key][e] - pb[key]), 0, 1 if key == "acc" else math.inf),
                      f"{pa['name']} {key}[{e}]")
    # the Oracle: each query's choice is its own, so the sample's Oracle is the small corpus's
    oa = next(x for x in a["routers"] if x["name"] == "Oracle")
    ob = next(x for x in b["routers"] if x["name"] == "Oracle")
    for key in ("acc", "cost"):
        for e in range(2):
            close(oa["ci"][key][e], clamp(oa["op"][key] + s * (ob["ci"][key][e] - ob["op"][key]), 0,
                                          1 if key == "acc" else math.inf), f"Oracle {key}[{e}]")
    # the calibration bins (by their mean prediction's tenth)
    ca, cb = a["calibration"], b["calibration"]
    bins_b = {math.floor(10 * p): i for i, p in enumerate(cb["mean_pred"])}
    checked = 0
    for i, p in enumerate(ca["mean_pred"]):
        j = bins_b.get(math.floor(10 * p))
        if j is None:
            continue
        for e in range(2):
            close(ca["ci"]["mean_true"][i][e],
                  clamp(ca["mean_true"][i] + s * (cb["ci"]["mean_true"][j][e] - cb["mean_true"][j]), 0, 1),
                  f"calibration bin {i}[{e}]")
        checked += 1
    check(checked >= 3, f"{checked} calibration bins compared")
    # every interval within its statistic's range (scaled deviations can
    # pass a bound: RTR's and the Oracle's accuracy reached 100.24% here)
    bounds = {"acc": 1, "aiq": 1, "aiq_from_zero": 1, "cost": math.inf, "cost_to_match": math.inf}
    outside = [(x["name"], key, v) for x in a["routers"] + a["pairs"] for key, hi in bounds.items()
               for v in (x.get("ci", {}).get(key) or []) if v is not None and not 0 <= v <= hi]
    check(not outside, f"intervals outside their statistic's range: {outside}")
    check("no_interval" not in a["bootstrap"], f"no interval left out where the sample varies: {a['bootstrap']}")

    # a pair right on every sampled query and wrong on 5 others: the sample
    # shows no variation where the split varies, and every resample's value
    # was the split's estimate (a zero-width interval, which the split's
    # own bootstrap would not give): no interval, said in the file, the
    # summary and the report. One of the 5 inside the sample: an interval.
    first = rows[0]["outcomes"][0]
    pair = f"{first['model']}|{first['strategy']}"
    outside_ids = [q for q in test_ids if q not in keep][:5]
    inside_id = sorted(keep)[0]
    for name, wrong in (("flat", set(outside_ids)), ("varied", set(outside_ids[:4]) | {inside_id})):
        def edited(row):
            row = json.loads(json.dumps(row))
            if row["split"] == "test":
                for o in row["outcomes"]:
                    if (o["model"], o["strategy"]) == (first["model"], first["strategy"]):
                        o["correct"] = 0 if row["id"] in wrong else 1
            return json.dumps(row) + "\n"
        cp = corpus_of(tmp, name, [edited(row) for row in rows])
        e, out = evaluate(cp, os.path.join(tmp, name + ".json"), "--bootstrap-queries", str(m))
        if not e:
            continue
        pe = next(x for x in e["pairs"] if x["name"] == pair)
        close(pe["acc"], 1 - 5 / n, f"{name}: {pair} accuracy")
        if name == "flat":
            check(pe["ci"]["acc"] == [None, None], f"flat: {pair}'s accuracy gets no interval: {pe['ci']}")
            check(all(v is not None for v in pe["ci"]["cost"]), f"flat: its cost still has one: {pe['ci']}")
            check(e["bootstrap"].get("no_interval", 0) >= 1, f"flat: the file counts it: {e['bootstrap']}")
            check("intervals left out: the sample showed no variation" in out, "flat: the summary says so: " + out)
            r = run("report", os.path.join(tmp, name + ".json"), "--no-figures")
            check(r.returncode == 0 and "left out (—): the sample showed no variation where the split varies"
                  in open(os.path.join(tmp, name + ".md")).read(), "flat: the report says so: " + r.stderr)
        else:
            lo, hi = pe["ci"]["acc"]
            check(lo is not None and hi is not None and lo < pe["acc"] <= hi,
                  f"varied: {pair}'s accuracy has an interval around {pe['acc']}: {pe['ci']}")

    # M >= N: the file without the option, bit for bit (but its seconds)
    c, _ = evaluate(big, os.path.join(tmp, "c.json"), "--bootstrap-queries", str(n))
    d, _ = evaluate(big, os.path.join(tmp, "d.json"))
    if c and d:
        c.pop("seconds"), d.pop("seconds")
        check(c == d and "queries" not in c["bootstrap"], "--bootstrap-queries N equals the default run")
    r = run("eval", big, "--out", os.path.join(tmp, "x.json"), "--bootstrap-queries", "0")
    check(r.returncode == 2 and "--bootstrap-queries" in r.stderr and not os.path.exists(os.path.join(tmp, "x.json")),
          f"--bootstrap-queries 0: exit {r.returncode}, {r.stderr}")
    finish()


if __name__ == "__main__":
    main()
