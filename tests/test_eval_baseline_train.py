#!/usr/bin/env python3
"""`rtr eval --baseline-train-max T`: above T training queries the baselines
(kNN router, dataset prior, default router, EmbedLLM-style) are fitted on
the T training queries with the smallest hash of (seed, query id), while
the budget and the reference pairs still come from every training query
(docs/METRICS.md, "Large training splits").

Checked against a direct computation: the sample is recomputed here from
the ids (the bootstrap's hash, src/eval/bootstrap.c); a second corpus
holding only the sampled training rows and every evaluated row, evaluated
without a cap, must give every baseline's curve bit for bit (its AIQs and
its points: the same training rows in the same order), and the capped run
must keep the whole split's budget, pairs and n_train. The sample must not
depend on how the corpus is sharded (1 shard against 3: the same file) or
on the rows' order (reversed rows: the same kNN router, to rounding). At
T >= the split the file is the one without the option; T = 0 is a usage
error naming the option."""
import json
import os
import tempfile

from rtrtest import check, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

SEED = 5
BASELINES = ("kNN router", "Dataset prior", "EmbedLLM-style", "RTR")


def corpus_of(tmp, name, lines, *ingest):
    """Ingest the outcome lines; each query's embedding a function of its id
    and its table a function of its outcomes, so a query has the same inputs
    in every corpus whatever its row."""
    src = os.path.join(tmp, name + ".jsonl")
    with open(src, "w") as f:
        f.writelines(lines)
    corpus = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(tmp, "demo", "catalog.json"), "--out", corpus, src, *ingest)
    check(r.returncode == 0, "ingest: " + r.stderr)

    def emb_of(path):
        with h5py.File(path, "r") as f:
            ids = rtrdata.strings(f, "id")
        e = np.stack([np.random.default_rng(rtrdata.fnv(q) & 0xffffffff).standard_normal(16) for q in ids])
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    rtrdata.write_embeddings(corpus, "e", "test-encoder", emb_of, (np.ones((4, 16)), np.ones((4, 16))))
    rtrdata.write_table(corpus, "t", rtrdata.outcome_table, "h", "e", "test-encoder")
    return corpus


def evaluate(corpus, out, *extra):
    r = run("eval", corpus, "--out", out, "--bootstrap", "0", "--seed", str(SEED), "--device", "cpu", *extra)
    check(r.returncode == 0, f"eval {' '.join(extra)}: " + r.stderr)
    if r.returncode:
        return None, r.stdout
    e = json.load(open(out))
    for key in ("seconds", "corpus", "title"):
        e.pop(key, None)
    return e, r.stdout


def router(e, name):
    return next(x for x in e["routers"] if x["name"] == name)


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_btrain_")
    r = run("gen-demo", "--queries", "1500", "--seed", "6", "--test-fraction", "0.5", os.path.join(tmp, "demo"))
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    lines = open(os.path.join(tmp, "demo", "outcomes.jsonl")).readlines()
    rows = [json.loads(x) for x in lines]
    train_ids = [x["id"] for x in rows if x["split"] == "train"]
    n = len(train_ids)
    t = n // 3
    keep = set(sorted(train_ids, key=lambda q: rtrdata.sample_hash(SEED, q))[:t])
    one = corpus_of(tmp, "one", lines)
    three = corpus_of(tmp, "three", lines, "--shard-size", str(len(lines) // 3 + 1))
    rev = corpus_of(tmp, "rev", lines[::-1])
    small = corpus_of(tmp, "small", [x for x, row in zip(lines, rows) if row["split"] != "train" or row["id"] in keep])
    check(len(rtrdata.shards(three)) == 3, "three shards")

    cap = ("--baseline-train-max", str(t))
    a, out = evaluate(one, os.path.join(tmp, "a.json"), *cap)
    b, _ = evaluate(three, os.path.join(tmp, "b.json"), *cap)
    c, _ = evaluate(rev, os.path.join(tmp, "c.json"), *cap)
    s, _ = evaluate(small, os.path.join(tmp, "s.json"))
    full, _ = evaluate(one, os.path.join(tmp, "full.json"))
    if not (a and b and c and s and full):
        return finish()
    # what the file says: the whole split, the rows the baselines used, the rule
    check(a["n_train"] == n and a["baseline_train"]["queries"] == t and a["baseline_train"]["max"] == t,
          f"n_train {a['n_train']} (want {n}), baseline_train {a['baseline_train']} (want {t} queries)")
    check("smallest hash" in a["baseline_train"]["rule"] and "hash sample" in a["notes"], "the rule is stated")
    check(full["baseline_train"]["queries"] == n and s["n_train"] == t, "uncapped: every training query")
    check(f"baselines fitted on {n} train queries, a hash sample of {t} of them" in out, "the summary says so: " + out)
    r = run("report", os.path.join(tmp, "a.json"), "--no-figures")
    md = os.path.join(tmp, "a.md")
    check(r.returncode == 0 and f"on a hash sample of {t} of them" in open(md).read(),
          "the report says the baselines used a sample: " + r.stderr)
    # the budget and the reference pairs from every training query
    check(a["budget_reference"] == full["budget_reference"] and a["budget_reference"] != s["budget_reference"],
          f"budget {a['budget_reference']} vs the whole split's {full['budget_reference']}")
    rl_a, rl_f = router(a, "RouteLLM-style (kNN win estimate)"), router(full, "RouteLLM-style (kNN win estimate)")
    check(rl_a.get("note") == rl_f.get("note"), "RouteLLM-style's two pairs from the whole split")
    # every baseline fitted on exactly the sample: the small corpus's curves, bit for bit
    for name in BASELINES:
        ra, rs = router(a, name), router(s, name)
        for key in ("aiq", "aiq_from_zero", "points"):
            check(ra[key] == rs[key], f"{name} {key}: capped run {str(ra[key])[:80]} != the sample's corpus "
                                      f"{str(rs[key])[:80]}")
    check(router(a, "kNN router")["aiq"] != router(full, "kNN router")["aiq"], "the cap changed the kNN router")
    # the same sample for 3 shards (the whole file) and for reversed rows (the kNN router, to rounding)
    check(a == b, "1 shard and 3 shards: the same file")
    ka, kc = router(a, "kNN router"), router(c, "kNN router")
    check(abs(ka["aiq"] - kc["aiq"]) <= 1e-9 and abs(ka["op"]["acc"] - kc["op"]["acc"]) <= 1e-9,
          f"reversed rows: kNN AIQ {kc['aiq']} vs {ka['aiq']}")
    # a cap at the split's size is no cap; 0 is a usage error
    d, _ = evaluate(one, os.path.join(tmp, "d.json"), "--baseline-train-max", str(n))
    if d:
        d["baseline_train"]["max"] = full["baseline_train"]["max"]
    check(d == full, "--baseline-train-max N equals the default run (but the max it records)")
    x = os.path.join(tmp, "x.json")
    r = run("eval", one, "--out", x, "--baseline-train-max", "0")
    check(r.returncode == 2 and "--baseline-train-max" in r.stderr and not os.path.exists(x),
          f"--baseline-train-max 0: exit {r.returncode}, {r.stderr}")
    finish()


if __name__ == "__main__":
    main()
