"""`rtr report` on the file `rtr eval` really writes: a small demo corpus
(some outcomes dropped so that pairs and budgets miss some), stand-in
embeddings written with h5py, a small network trained and scored, then
`rtr eval --checkpoint --bootstrap`. Every field of the evaluation file is
one the report draws or is listed here as knowingly left out, so a field
`rtr eval` adds fails this test until the report shows it; and each field
the report draws is checked against the file, value for value, in the
markdown summary (and the sentences on the page too): the budgets and what
they are fractions of, the two-pair router's shares, P(RTR beats X), the
default router's choice, the AIQ note, the bootstrap's seed, missing
outcomes per pair. Hand-made files with every edge case:
tests/test_report_render.py."""
import html as htmlmod
import json
import os
import random
import re
import shutil
import tempfile

from rtrtest import check, finish, md_cells, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

# What the report does with each field of the evaluation file: drawn, or
# left out on purpose (with why).
ROOT_KEYS = {"title", "corpus", "split", "train_split", "test_dataset", "train_skip_dataset", "n_queries", "n_train",
             "cost_unit", "checkpoint_hash", "device", "x_max", "budget_reference", "notes", "aiq_note", "bootstrap",
             "pairs", "routers", "default_router", "tables", "mix", "calibration", "knn_search",
             "baseline_train",  # the provenance sentence says a sample when queries < n_train
             "cost_scale",  # an internal scale of the λ rule: no reader's number
             "seconds"}     # how long eval ran: not a result
ROUTER_KEYS = {"name", "unavailable", "points", "aiq", "aiq_from_zero", "apgr", "cpt50", "cpt80", "cost_to_match",
               "oracle_gap", "op", "ci", "budgets", "shares", "p_beats"}
DEFAULT_ROUTER_KEYS = {"chosen", "n_val", "n_unseen", "cv_logloss", "cv_se", "weights", "note",
                       "checkpoint"}  # the path given to rtr eval: the hash is on the page already


def md_tables(md):
    """{the paragraph or heading before it: rows of cells} of every table."""
    out, before, cur = {}, None, None
    for line in md.splitlines():
        if line.startswith("|"):
            if cur is None:
                cur = out.setdefault(before, [])
            if not re.fullmatch(r"\|( -+:? \|)+", line):
                cur.append(md_cells(line, unescape=True))
        else:
            cur = None
            if line.strip():
                before = line
    return out


def pct(v):
    return "—" if v is None else f"{100 * v:.2f}%"


def interval(iv):
    if iv is None or (iv[0] is None and iv[1] is None):
        return ""
    return " [" + ", ".join("—" if x is None else f"{100 * x:.2f}" for x in iv) + "]"


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_report_eval_")
    demo = os.path.join(tmp, "demo")
    run("gen-demo", "--queries", "800", "--seed", "3", demo)
    rnd = random.Random(1)
    lines = []
    for line in open(os.path.join(demo, "outcomes.jsonl")):
        q = json.loads(line)
        if rnd.random() < 0.05:  # a few queries lose one pair's outcome
            del q["outcomes"][rnd.randrange(len(q["outcomes"]))]
        lines.append(json.dumps(q))
    open(os.path.join(demo, "outcomes.jsonl"), "w").write("\n".join(lines) + "\n")
    corpus = os.path.join(tmp, "corp")
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, "--shard-size", "300",
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0, "ingest: " + r.stderr)
    rng, centres = np.random.default_rng(5), {}

    def emb_of(path):  # a noisy centre per dataset: kNN and the network have something to learn
        with h5py.File(path, "r") as h:
            datasets = rtrdata.strings(h, "dataset")
        rows = []
        for d in datasets:
            v = centres.setdefault(d, rng.standard_normal(16)) + 0.7 * rng.standard_normal(16)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows)
    rtrdata.write_embeddings(corpus, "stand-in", "stand-in-hash", emb_of,
                             (rng.standard_normal((4, 16)), rng.standard_normal((4, 16))))
    ck = os.path.join(tmp, "ck.safetensors")
    for args in (("train", corpus, "--out", ck, "--hidden", "32", "--learn-dim", "8", "--epochs", "20"),
                 ("score", "--checkpoint", ck, corpus)):
        r = run(*args, "--device", "cpu", "--quiet")
        check(r.returncode == 0, f"{args[0]}: {r.stderr}")
    out = os.path.join(tmp, "eval.json")
    r = run("eval", corpus, "--checkpoint", ck, "--bootstrap", "100", "--seed", "3", "--out", out, "--device", "cpu",
            "--quiet")
    check(r.returncode == 0, "eval: " + r.stderr)
    if r.returncode:
        return
    ev = json.load(open(out))
    r = run("report", out, "--no-figures")
    check(r.returncode == 0, "report: " + r.stderr)
    if r.returncode:
        return
    md = open(os.path.join(tmp, "eval.md")).read()
    page = open(os.path.join(tmp, "eval.html")).read()
    text = htmlmod.unescape(re.sub(r"<[^>]+>", "", page))

    # Every field rtr eval writes is drawn or knowingly left out.
    check(set(ev) <= ROOT_KEYS, f"fields of the evaluation file the report does not know: {set(ev) - ROOT_KEYS}")
    for x in ev["routers"]:
        check(set(x) <= ROUTER_KEYS, f"{x['name']}: fields the report does not know: {set(x) - ROUTER_KEYS}")
    dr = ev.get("default_router", {})
    check(set(dr) <= DEFAULT_ROUTER_KEYS, f"default_router fields the report does not know: "
                                          f"{set(dr) - DEFAULT_ROUTER_KEYS}")
    for key in ("budget_reference", "bootstrap", "aiq_note", "default_router"):
        check(key in ev, f"rtr eval --checkpoint --bootstrap writes {key}")

    # kNN search: exact here (few training rows), unsaid; an index is named with its probes and recall
    check(ev["knn_search"]["method"] == "exact" and "inverted-file" not in text, "exact kNN search goes unsaid")
    ix = dict(ev, knn_search={"method": "index", "exact_max": 50000, "lists": 512, "nprobe": 24, "recall": 0.9812})
    ix_path = os.path.join(tmp, "eval_ix.json")
    json.dump(ix, open(ix_path, "w"))
    r = run("report", ix_path, "--no-figures")
    ix_md = open(os.path.join(tmp, "eval_ix.md")).read() if r.returncode == 0 else ""
    check("kNN neighbours from an inverted-file index (24 of 512 lists probed, recall 0.981)" in ix_md,
          "an index search is named in the provenance: " + r.stderr)

    tables = md_tables(md)
    routers = {x["name"]: x for x in ev["routers"]}
    check("RTR" in routers and "RTR (paper)" in routers, "the default router and the paper's model are rows")

    # The budgets: what they are fractions of, then a row per router with a cell per budget.
    ref = ev["budget_reference"]
    sentence = (f"Budgets are fractions of the best training pair's mean cost on the training split: {ref['pair']}, "
                f"{ref['cost']:.6g} {ev['cost_unit']}.")
    check(sentence in md.replace("\\|", "|") and sentence in text, "what the budgets are fractions of: " + sentence)
    budgets = next((t for k, t in tables.items() if k.startswith("Budgets are fractions")), [])
    check(budgets and budgets[0][1:] == [f"{100 * f:g}% ({f * ref['cost']:.6g})" for f in ref["fractions"]],
          "a budget column per fraction: " + repr(budgets[:1]))
    rows = {x[0]: x[1:] for x in budgets[1:]}
    with_budgets = [x for x in ev["routers"] if x.get("budgets")]
    check(list(rows) == [x["name"] for x in with_budgets], "a budgets row per router with budgets")
    for x in with_budgets:
        for j, b in enumerate(x["budgets"]):
            want = pct(b["acc"])
            if b["acc"] is not None:
                want += interval(x["ci"]["budgets"][j]) + f", cost {b['cost']:.6g}"
                want += f", λ {b['lambda']:.4g}" if b["lambda"] is not None else ""
                want += f", {b['n_missing']} missing" if b.get("n_missing") else ""
            check(rows.get(x["name"], [None] * 4)[j] == want,
                  f"{x['name']} at budget {b['fraction']}: {rows.get(x['name'], ['?'] * 4)[j]!r} == {want!r}")
    check(any(b.get("n_missing") for x in with_budgets for b in x["budgets"]),
          "dropped outcomes show in some budget cell")

    # The two-pair router's shares to the strong pair.
    two = [x for x in ev["routers"] if x.get("shares")]
    shares = next((t for k, t in tables.items() if k.startswith("The RouteLLM-style router sends")), [])
    check(len(two) == 1 and len(shares) == 2 and shares[1][0] == two[0]["name"], "a shares row for the two-pair router")
    for j, s in enumerate(two[0]["shares"] if two else []):
        want = f"{pct(s['acc'])}{interval(s['acc_ci'])}, cost {s['cost']:.6g}, share {100 * s['share']:.1f}%"
        check(shares[1][j + 1] == want and shares[0][j + 1] == f"≤ {100 * s['target']:g}% to strong",
              f"share {s['target']}: {shares[1][j + 1]!r} == {want!r}")

    # P(RTR beats X): RTR's table, value for value; RTR (paper) when it
    # routes alike gets a sentence instead of a repeat.
    beats = tables.get(f"How often RTR beats router X in the {ev['bootstrap']['resamples']} paired resamples: on AIQ, "
                       "AIQ from 0, accuracy at the operating points and cost to match (lower wins); ties count one "
                       "half.", [])
    want = [[x] + ["—" if v[k] is None else f"{v[k]:.3f}" for k in ("aiq", "aiq_from_zero", "acc", "cost_to_match")]
            for x, v in routers["RTR"]["p_beats"].items()]
    check(beats[1:] == want, "P(RTR beats X) for every X: " + repr(beats[1:3]))
    paper = routers["RTR (paper)"]["p_beats"]
    alike = all(v == 0.5 for v in paper["RTR"].values()) and all(
        paper[x] == v for x, v in routers["RTR"]["p_beats"].items() if x != "RTR (paper)")
    check(("RTR (paper): P = 0.500 against RTR on every count" in md) == alike,
          f"RTR (paper)'s table is replaced by a sentence exactly when it repeats RTR's (alike: {alike})")

    # The default router: what it kept and why.
    chosen = dr["chosen"]
    kept = (f"The default router kept the {chosen}: cross-validated log-loss {dr['cv_logloss'][chosen]:.3f} ± "
            f"{dr['cv_se'][chosen]:.3f} over {dr['n_val']} validation rows")
    check(kept in md and kept in text, "the default router's choice and its log-loss: " + kept)
    for c, v in dr["cv_logloss"].items():
        check(f"{c} {v:.3f} ± {dr['cv_se'][c]:.3f}" in md, f"candidate {c}'s log-loss")
    check("RTR is rtr's default router; RTR (paper) is the paper's model" in md, "the RTR rows named")

    # Missing outcomes per pair; the AIQ note; the bootstrap with its seed.
    pairs = next((t for k, t in tables.items() if k == "## Single pairs"), [])
    check(pairs and pairs[0][-1] == "missing" and [x[-1] for x in pairs[1:]] ==
          [str(p["n_missing"]) for p in ev["pairs"]] and any(p["n_missing"] for p in ev["pairs"]),
          "the pairs' missing outcomes: " + repr([x[-1] for x in pairs[1:]]))
    check(ev["aiq_note"] in text and ev["aiq_note"] in md.replace("\\", ""), "the AIQ note is printed")
    b = ev["bootstrap"]
    check(f"Brackets: {100 * b['level']:g}% intervals from {b['resamples']} bootstrap resamples (seed {b['seed']}; "
          in md, "the bootstrap's level, resamples and seed")
    check(not re.search(r"\b(nan|inf)\b", md, re.I) and not re.search(r">[^<]*\b(nan|inf)\b", page, re.I),
          "no nan or inf printed")
    shutil.rmtree(tmp)


main()
finish()
