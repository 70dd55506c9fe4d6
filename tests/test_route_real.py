"""`rtr sweep` on real outcomes: RouterBench zero-shot (../shared/data), with
routing tables written here from the dataset prior (per-dataset, per-pair
mean correctness and output tokens of the training split). The reference
routers that `rtr sweep` reports are checked against the raw CSV files read
independently here (single-pair accuracy and USD cost on the test files,
Random as their mean, Oracle as the cheapest correct model), and the metric
relations that must hold on any data (Oracle >= best single, AIQ in (0, 1],
a non-empty Pareto front). Skips (77) without the shared data or h5py."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

csv.field_size_limit(1 << 30)
from rtrtest import RTR, SHARED_DATA, SRC, check, finish, require_numpy_h5py, require_rtr, skip

DATA = os.path.join(SHARED_DATA, "routerbench_zs")
require_numpy_h5py()
require_rtr()
if not os.path.isdir(DATA):
    skip("needs $RTR_SHARED_DATA/routerbench_zs")
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def raw_test_outcomes():
    """Per model: (correct, usd) lists over every test-file row, None when empty."""
    out = {}
    for path in sorted(glob.glob(os.path.join(DATA, "*_test.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        models = [c for c in rows[0] if c + "|total_cost" in rows[0]]
        for m in models:
            acc, usd = out.setdefault(m, ([], []))
            for r in rows:
                ok = r[m].strip() != "" and r[m + "|total_cost"].strip() != ""
                acc.append(float(r[m]) if ok else None)
                usd.append(float(r[m + "|total_cost"]) if ok else None)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_route_real_")
    conv, corpus = os.path.join(tmp, "conv"), os.path.join(tmp, "corp")
    r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "convert-outcomes"), "routerbench-csv",
                        *sorted(glob.glob(os.path.join(DATA, "*.csv"))), "--out", conv], capture_output=True, text=True)
    check(r.returncode == 0, "convert: " + r.stderr)
    r = subprocess.run([RTR, "ingest", "--catalog", os.path.join(conv, "catalog.json"), "--out", corpus,
                        os.path.join(conv, "outcomes.jsonl")], capture_output=True, text=True)
    check(r.returncode == 0, "ingest: " + r.stderr)

    # routing tables: the dataset prior fitted on the train split
    def prior(path):
        with h5py.File(path, "r") as h:
            ds, split = np.array(rtrdata.strings(h, "dataset")), np.array(rtrdata.strings(h, "split"))
            corr, tok, usd = h["outcomes/correct"][()], h["outcomes/tokens"][()], h["outcomes/cost"][()]
        p, t, u = (np.zeros(corr.shape, np.float32) for _ in range(3))
        for d in set(ds):
            tr = (ds == d) & (split == "train")
            p[ds == d] = np.nanmean(corr[tr], axis=0)
            t[ds == d] = np.nanmean(tok[tr], axis=0)
            u[ds == d] = np.nanmean(usd[tr], axis=0)
        # RouterBench gives USD per call but no prices: predicted USD goes in /routing/cost
        return {"p_correct": p, "tokens": t, "cost": u}
    rtrdata.write_table(corpus, "prior", prior, "prior")

    out = os.path.join(tmp, "sweep")
    r = subprocess.run([RTR, "sweep", corpus, "--cost", "usd", "--checkpoint-hash", "prior", "--out", out, "--json"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "sweep: " + r.stderr)
    s = json.loads(r.stdout)
    ref, m = s["reference"], s["metrics"]
    raw = raw_test_outcomes()
    check(s["n_queries"] == 445 + 128 + 380, "test queries %d" % s["n_queries"])
    singles = {x["pair"].split("|")[0]: x for x in ref["single_pairs"]}
    check(set(singles) == set(raw), "models %s" % sorted(singles))
    for model, (acc, usd) in raw.items():
        have = [i for i, a in enumerate(acc) if a is not None]
        a = sum(acc[i] for i in have) / len(have)
        c = sum(usd[i] for i in have) / len(have)
        check(abs(singles[model]["accuracy"] - a) < 1e-6, "%s accuracy %s vs raw %s" % (model, singles[model]["accuracy"], a))
        check(abs(singles[model]["mean_cost"] - c) < 1e-6 * max(c, 1e-3), "%s cost" % model)
        check(singles[model]["n_missing"] == len(acc) - len(have), "%s missing" % model)
    mean_acc = sum(x["accuracy"] for x in singles.values()) / len(singles)
    check(abs(ref["random"]["accuracy"] - mean_acc) < 1e-9, "Random = mean of the single pairs")
    best = max(singles.values(), key=lambda x: (x["accuracy"], -x["mean_cost"]))
    check(ref["oracle"]["accuracy"] >= best["accuracy"], "Oracle >= best single")
    check(ref["oracle"]["mean_cost"] <= best["mean_cost"], "Oracle is cheap")
    check(0 < m["aiq"] <= 1 and 0 < m["aiq_single_pairs"] <= 1 and m["x_max"] >= best["mean_cost"], "AIQ %s" % m)
    check(len(s["pareto_front"]) >= 1 and s["n_points"] >= 2, "path and front")
    print("routerbench_zs test, dataset-prior router, USD: %d path points, AIQ %.4f (single pairs %.4f), "
          "best single %s %.4f, Oracle %.4f, cost-to-match %s" % (s["n_points"], m["aiq"], m["aiq_single_pairs"],
                                                                 best["pair"], best["accuracy"], ref["oracle"]["accuracy"],
                                                                 m["cost_to_match_best_single"]))
    shutil.rmtree(tmp)

if __name__ == "__main__":
    main()
    finish()
