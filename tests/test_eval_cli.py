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
import json
import os
import re
import shutil
import subprocess
import tempfile

from rtrtest import RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def bytes_read(*args):
    """rtr's bytes read through system calls (rchar: a shell's /proc io counts its reaped child's)."""
    r = subprocess.run(["sh", "-c", '"$@" >/dev/null 2>&1 || exit 1; grep "^rchar:" /proc/$$/io', "sh", RTR, *args],
                       capture_output=True, text=True)
    return int(r.stdout.split()[1]) if r.returncode == 0 else None


def check_reads_embeddings_once(tmp):
    """The default router reads the training split's tables, not its
    embeddings again (the training split's are already held): eval with it
    reads less than half the embeddings' bytes more than eval without it
    (--arch paper). It read them all again before (4.9 MB more for 4.1 MB
    of embeddings; 0.7 MB now)."""
    os.mkdir(os.path.join(tmp, "wide"))
    corpus = demo_corpus(os.path.join(tmp, "wide"), 2000, 5, 500)
    rng = np.random.default_rng(1)

    def unit_rows(path):
        emb = rng.standard_normal((h5py.File(path, "r").attrs["n_queries"], 512))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def outcomes(path):
        with h5py.File(path, "r") as h:
            return {"p_correct": np.nan_to_num(h["outcomes/correct"][()], nan=0.0),
                    "tokens": np.nan_to_num(h["outcomes/tokens"][()], nan=0.0)}
    rtrdata.write_embeddings(corpus, "wide", "test-encoder", unit_rows, (np.ones((4, 512)), np.ones((4, 512))))
    rtrdata.write_table(corpus, "perfect", outcomes, "perfect", "wide", "test-encoder")
    emb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(corpus, "embeddings")) for f in fs)
    common = ("eval", corpus, "--out", os.path.join(tmp, "wide.json"), "--bootstrap", "0", "--no-embedllm")
    with_default, paper = bytes_read(*common), bytes_read(*common, "--arch", "paper")
    check(with_default is not None and paper is not None, "eval on 512-d embeddings runs")
    if with_default is not None and paper is not None:
        check(with_default - paper < emb / 2, f"the default router reads {with_default - paper} bytes more, "
              f"not the {emb} bytes of embeddings again")


def check_reads_what_it_uses(tmp):
    """Each of eval's passes reads the columns it uses: the passes over the
    embeddings, over a further table and over the training split's table
    (the default router's) read no outcome, and the --test-dataset check
    reads the datasets alone (each read every row's outcomes before). Two
    corpora that differ only in how many bytes their outcomes take on disk
    (token counts as demo-made, or with an incompressible fraction added):
    eval reads the outcomes twice more on the second (the evaluated split's
    pass, the training split's), a further table and the dataset check add
    no outcome bytes. Old code: 4x the growth, and each check about 1x."""
    base = os.path.join(tmp, "reads")
    os.mkdir(base)
    demo = os.path.join(base, "demo")
    r = run("gen-demo", "--queries", "4000", "--seed", "3", demo)
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    rng = np.random.default_rng(5)

    def noisy_tokens(row):
        for o in row["outcomes"]:
            o["tokens"] += float(rng.random())
        return row
    src = os.path.join(demo, "outcomes.jsonl")
    sources = {"small": src, "big": rtrdata.edited_outcomes(src, os.path.join(base, "big.jsonl"), noisy_tokens)}

    def seeded(path):  # the same embeddings and table in both corpora: drawn from the shard's file name
        return np.random.default_rng(int(os.path.basename(path).split("-")[1].split(".")[0]))

    def unit_rows(path):
        emb = seeded(path).standard_normal((h5py.File(path, "r").attrs["n_queries"], 8))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def table(path):
        n, k = h5py.File(path, "r")["outcomes/correct"].shape
        g = seeded(path)
        return {"p_correct": g.random((n, k)), "tokens": 1 + 500 * g.random((n, k))}
    reads, outcome_bytes = {}, {}
    for name, jsonl in sources.items():
        corpus = os.path.join(base, name)
        r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, "--shard-size", "2000", jsonl)
        check(r.returncode == 0, "ingest: " + r.stderr)
        rtrdata.write_embeddings(corpus, "e", "test-encoder", unit_rows, (np.ones((4, 8)), np.ones((4, 8))))
        rtrdata.write_table(corpus, "t", table, "h", "e", "test-encoder")
        rtrdata.write_table(corpus, "t2", table, "h", "e", "test-encoder")  # a second table, the same values
        outcome_bytes[name] = 0
        for path, _, _, _ in rtrdata.shards(corpus):
            with h5py.File(path, "r") as h:
                outcome_bytes[name] += sum(h["outcomes/" + c].id.get_storage_size() for c in ("correct", "tokens"))
        common = ("eval", corpus, "--out", os.path.join(base, name + ".json"), "--bootstrap", "0", "--no-embedllm")
        reads[name] = {"one": bytes_read(*common, "--table", "t"), "two": bytes_read(*common, "--table", "t,t2"),
                       "dataset": bytes_read(*common, "--table", "t", "--test-dataset", "shopping")}
    if any(v is None for x in reads.values() for v in x.values()):
        check(False, f"eval runs on both corpora: {reads}")
        return
    grow = outcome_bytes["big"] - outcome_bytes["small"]
    check(grow > 50_000, f"the outcomes take {grow} bytes more on the second corpus")
    more = {key: reads["big"][key] - reads["small"][key] for key in ("one", "two", "dataset")}
    check(abs(more["one"] - 2 * grow) < grow / 2,
          f"eval reads the outcomes twice (evaluated and training splits): {more['one']} bytes more for {grow}")
    check(abs(more["two"] - more["one"]) < grow / 4,
          f"a further table's pass reads no outcome: {more['two'] - more['one']} bytes more for {grow}")
    check(abs(more["dataset"] - more["one"]) < grow / 4,
          f"the --test-dataset check reads no outcome: {more['dataset'] - more['one']} bytes more for {grow}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_eval_")
    corpus = demo_corpus(tmp, 600, 5, 250)
    rng = np.random.default_rng(11)

    def unit_rows(path):
        emb = rng.standard_normal((h5py.File(path, "r").attrs["n_queries"], 16))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def outcomes(path):  # perfect tables: the outcomes themselves (the demo corpus misses none)
        with h5py.File(path, "r") as h:
            return {"p_correct": np.nan_to_num(h["outcomes/correct"][()], nan=0.0),
                    "tokens": np.nan_to_num(h["outcomes/tokens"][()], nan=0.0)}
    rtrdata.write_embeddings(corpus, "stand-in", "test-encoder", unit_rows, (np.ones((4, 16)), np.ones((4, 16))))
    rtrdata.write_table(corpus, "perfect", outcomes, "perfect", "stand-in", "test-encoder")

    out = os.path.join(tmp, "eval.json")
    r = run("eval", corpus, "--out", out, "--json")
    check(r.returncode == 0, "eval: " + r.stderr)
    if r.returncode != 0:
        return
    summary = json.loads(r.stdout)
    check(summary["out"] == out, "eval --json summary names the file")

    # progress into a log: the bootstrap's resamples (eval) and the queries read (sweep); none when quiet
    os.environ["RTR_PROGRESS_SECONDS"] = "0"
    try:
        e = run("eval", corpus, "--out", os.path.join(tmp, "ep.json"), "--bootstrap", "50")
        sw = run("sweep", corpus, "--out", os.path.join(tmp, "sw"))
        q = run("eval", corpus, "--out", os.path.join(tmp, "eq.json"), "--bootstrap", "50", "--quiet")
    finally:
        del os.environ["RTR_PROGRESS_SECONDS"]
    check(e.returncode == 0 and re.search(r"^eval: bootstrap: \d+/50 ", e.stderr, re.M)
          and re.search(r"^eval: bootstrap: 50 in ", e.stderr, re.M), "eval's bootstrap progress: " + e.stderr)
    check(sw.returncode == 0 and re.search(r"^sweep: [0-9,]+ in ", sw.stderr, re.M), "sweep's progress: " + sw.stderr)
    check(q.returncode == 0 and "bootstrap" not in q.stderr, "no progress under --quiet: " + q.stderr)
    # each single pair's accuracy and cost get the routers' paired intervals (the report's error bars)
    pairs = json.load(open(os.path.join(tmp, "ep.json")))["pairs"]
    for key in ("acc", "cost"):
        ok = all(p["ci"][key][0] <= p[key] <= p["ci"][key][1] for p in pairs)
        check(ok and any(p["ci"][key][0] < p["ci"][key][1] for p in pairs),
              f"pairs[].ci.{key} brackets each pair's {key}: " + str([(p[key], p["ci"][key]) for p in pairs][:3]))
    cal = json.load(open(os.path.join(tmp, "ep.json")))["calibration"]
    iv = cal.get("ci", {}).get("mean_true", [])
    check(len(iv) == len(cal["mean_true"]) > 0
          and all(lo is not None and hi is not None and lo <= m <= hi for m, (lo, hi) in zip(cal["mean_true"], iv)),
          f"calibration.ci.mean_true: one interval around each bin's observed rate: {cal['mean_true']} {iv}")
    ev = json.load(open(out))
    check(all("ci" not in p for p in ev["pairs"]) == ("bootstrap" not in ev),
          "pairs carry intervals exactly when the file has a bootstrap")
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
    ks = ev.get("knn_search", {})
    check(ks.get("method") == "exact" and ev["n_train"] <= ks.get("exact_max", 0) and ks.get("recall") == 1,
          f"kNN search is exact below its index threshold and says so: {ks}")

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
    # Two predictors' tables over one corpus: one RTR row each, judged on the same queries.
    def noisy(path):
        t = outcomes(path)
        return {"p_correct": np.clip(t["p_correct"] * 0.5 + rng.uniform(0, 0.5, t["p_correct"].shape), 0, 1),
                "tokens": t["tokens"] * rng.uniform(0.5, 1.5, t["tokens"].shape)}
    rtrdata.write_table(corpus, "noisy", noisy, "noisy", "stand-in", "test-encoder")
    r = run("eval", corpus, "--out", os.path.join(tmp, "none.json"))
    check(r.returncode == 1 and "--table" in r.stderr and not os.path.exists(os.path.join(tmp, "none.json")),
          "two tables and no --table: " + r.stderr)
    both = os.path.join(tmp, "both.json")
    r = run("eval", corpus, "--out", both, "--table", "perfect,noisy", "--json")
    check(r.returncode == 0, "eval --table perfect,noisy: " + r.stderr)
    if r.returncode == 0:
        rows = {x["name"]: x for x in json.load(open(both))["routers"]}
        perfect = [x for n, x in rows.items() if n.startswith("RTR") and n.endswith(": perfect")]
        noisy_rows = [x for n, x in rows.items() if n.startswith("RTR") and n.endswith(": noisy")]
        check(perfect and noisy_rows, "one RTR row per table: %s" % sorted(rows))
        check(any(abs(x["aiq"] - routers["RTR"]["aiq"]) < 1e-12 for x in perfect), "a perfect row is the single-table RTR")
        check(perfect and noisy_rows and min(x["aiq"] for x in perfect) > max(x["aiq"] for x in noisy_rows),
              "the perfect table beats the noisy one")
        check(rows["Oracle"]["op"] == routers["Oracle"]["op"], "both judged on the same queries")

    # More tables than the eight eval once held: one row each (their arrays
    # are allocated); a table is named once, so copies under other names.
    many_corpus = os.path.join(tmp, "many")
    shutil.copytree(corpus, many_corpus)
    for i in range(1, 5):
        rtrdata.write_table(many_corpus, f"perfect{i}", outcomes, "perfect", "stand-in", "test-encoder")
        rtrdata.write_table(many_corpus, f"noisy{i}", noisy, "noisy", "stand-in", "test-encoder")
    many = os.path.join(tmp, "many.json")
    names = ["perfect", "noisy"] + [f"{t}{i}" for i in range(1, 5) for t in ("perfect", "noisy")]
    r = run("eval", many_corpus, "--out", many, "--table", ",".join(names), "--bootstrap", "20", "--no-embedllm")
    check(r.returncode == 0, "eval with 10 tables: " + r.stderr)
    if r.returncode == 0:
        paper = [x for x in json.load(open(many))["routers"] if x["name"].startswith("RTR (paper): ")]
        check(len(paper) == 10, "10 tables: %d RTR (paper) rows" % len(paper))

    r = run("eval", corpus, "--out", os.path.join(tmp, "z.json"), "--device", "tpu", "--table", "perfect")
    check(r.returncode == 1 and "tpu" in r.stderr and not os.path.exists(os.path.join(tmp, "z.json")),
          f"unknown device: exit {r.returncode} {r.stderr}")

    # Bad input: a test split without outcomes to judge, an unknown split.
    for args, what in (((corpus, "--out", os.path.join(tmp, "x.json"), "--split", "nope", "--table", "perfect"), "empty split"),
                       ((corpus, "--out", os.path.join(tmp, "y.json"), "--checkpoint-hash", "other", "--table", "perfect"),
                        "hash mismatch")):
        r = run("eval", *args)
        check(r.returncode == 1 and "error" in r.stderr, f"{what}: exit {r.returncode} {r.stderr}")
        check(not os.path.exists(args[2]), f"{what}: no output file")
    r = run("eval", corpus)
    check(r.returncode == 2, "missing --out is a usage error")
    check_reads_embeddings_once(tmp)
    check_reads_what_it_uses(tmp)
    shutil.rmtree(tmp)



if __name__ == "__main__":
    main()
    finish()
