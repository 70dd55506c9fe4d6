#!/usr/bin/env python3
"""`rtr eval` and `rtr report` end to end on a small demo corpus whose
embeddings and routing tables are written here with h5py, so the test does
not depend on the encoder or on training.

With *perfect* tables (p = the true outcome, tokens = the true tokens) RTR at
λ = 1 must make exactly the Oracle's choices, so its best realised point must
equal the Oracle's accuracy and cost; Random must be the mean of the single
pairs; every router's operating point must stay within the Oracle's accuracy;
AIQs must lie in [0, 1]; and the report must render. Bad input must fail with
exit status 1 and leave no file."""
import glob
import json
import os
import shutil
import tempfile

from rtrtest import check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_eval_")
    corpus = demo_corpus(tmp, 600, 5, 250)
    rng = np.random.default_rng(11)
    for f in sorted(glob.glob(os.path.join(corpus, "shard-*.h5"))):
        with h5py.File(f, "a") as h:
            n = h.attrs["n_queries"]
            correct = h["outcomes/correct"][()]
            tokens = h["outcomes/tokens"][()]
            emb = rng.standard_normal((n, 16)).astype(np.float32)
            h["embedding/query"] = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            h["embedding/query"].attrs["encoder_hash"] = "test-encoder"
            h["routing/p_correct"] = correct.astype(np.float32)
            h["routing/tokens"] = tokens.astype(np.float32)
            h["routing/p_correct"].attrs["checkpoint_hash"] = "perfect"

    out = os.path.join(tmp, "eval.json")
    r = run("eval", corpus, "--out", out, "--json")
    check(r.returncode == 0, "eval: " + r.stderr)
    if r.returncode != 0:
        return
    summary = json.loads(r.stdout)
    check(summary["out"] == out, "eval --json summary names the file")
    ev = json.load(open(out))
    routers = {x["name"]: x for x in ev["routers"]}
    for name in ("RTR", "Dataset prior", "kNN router", "EmbedLLM-style", "Random (expectation)", "Oracle"):
        check(name in routers, f"router {name} present")
    check(any(n.startswith("RouteLLM-style") for n in routers), "RouteLLM-style router present")
    oracle = routers["Oracle"]["op"]
    rtr = routers["RTR"]
    best_acc = max(p[1] for p in rtr["points"])
    last = rtr["points"][-1]
    check(abs(last[1] - oracle["acc"]) < 1e-9 and abs(last[0] - oracle["cost"]) < 1e-6 * max(1, oracle["cost"]),
          f"perfect tables: RTR at lambda=1 {last} equals the Oracle {oracle}")
    check(abs(best_acc - oracle["acc"]) < 1e-9, "perfect tables: RTR reaches the Oracle's accuracy")
    pairs = ev["pairs"]
    mean_acc = np.mean([p["acc"] for p in pairs])
    check(abs(routers["Random (expectation)"]["op"]["acc"] - mean_acc) < 1e-9, "Random is the mean of the pairs")
    for name, x in routers.items():
        check(x["op"]["acc"] is None or x["op"]["acc"] <= oracle["acc"] + 1e-9, f"{name}: op within the Oracle")
        check(x["aiq"] is None or 0 <= x["aiq"] <= 1, f"{name}: AIQ in [0, 1]")
    check(routers["RTR"]["aiq"] > routers["Dataset prior"]["aiq"], "perfect RTR beats the dataset prior on AIQ")
    costs = [p[0] for x in ev["routers"] for p in x["points"]] + [p["cost"] for p in pairs]
    check(abs(ev["x_max"] - max(costs)) < 1e-6 * ev["x_max"], "x_max is the largest cost in the table")
    check(len(ev["mix"]["lambda"]) == 101 and all(abs(sum(f) - 1) < 1e-6 for f in ev["mix"]["fraction"]),
          "mix fractions sum to 1 along lambda")
    check(ev["calibration"]["ece"] < 1e-6, "perfect tables are perfectly calibrated")

    r = run("report", out)
    check(r.returncode == 0 and os.path.exists(os.path.join(tmp, "eval.html")), "report: " + r.stderr)
    html = open(os.path.join(tmp, "eval.html")).read()
    check(html.count("<svg") == 4 and "Dataset prior" in html, "report has the 4 plots and the baselines")

    # The paths and RTR's mix computed on the CPU backend and on --device auto
    # (the CPU here, CUDA on a GPU node): the same file but for the device and
    # the time taken; the device is reported.
    check(summary.get("device") and ev.get("device") == summary["device"], "eval reports its device")
    outs = {}
    for dev in ("cpu", "auto"):
        outs[dev] = os.path.join(tmp, f"eval_{dev}.json")
        r = run("eval", corpus, "--out", outs[dev], "--device", dev, "--json")
        check(r.returncode == 0, f"eval --device {dev}: {r.stderr}")
    if all(os.path.exists(f) for f in outs.values()):
        a, b = (json.load(open(outs[d])) for d in ("cpu", "auto"))
        check(a["device"].startswith("CPU"), "--device cpu computes on the CPU")
        for x in (a, b):
            for key in ("seconds", "device"):
                x.pop(key)
        check(a == b, "eval on --device cpu and auto: the same evaluation")
    r = run("eval", corpus, "--out", os.path.join(tmp, "z.json"), "--device", "tpu")
    check(r.returncode == 1 and "tpu" in r.stderr and not os.path.exists(os.path.join(tmp, "z.json")),
          f"unknown device: exit {r.returncode} {r.stderr}")

    # Bad input: a test split without outcomes to judge, an unknown split.
    for args, what in (((corpus, "--out", os.path.join(tmp, "x.json"), "--split", "nope"), "empty split"),
                       ((corpus, "--out", os.path.join(tmp, "y.json"), "--checkpoint-hash", "other"), "hash mismatch")):
        r = run("eval", *args)
        check(r.returncode == 1 and "error" in r.stderr, f"{what}: exit {r.returncode} {r.stderr}")
        check(not os.path.exists(args[2]), f"{what}: no output file")
    r = run("eval", corpus)
    check(r.returncode == 2, "missing --out is a usage error")
    shutil.rmtree(tmp)



if __name__ == "__main__":
    main()
    finish()
