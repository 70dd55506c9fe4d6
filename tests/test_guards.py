#!/usr/bin/env python3
"""Outputs and behaviour the rest of the suite left unchecked, each guarded
here because a deliberate bug in it survived every other test
(docs/robustness.md, "Mutation pass"):

- `rtr route --out X.h5` (never run elsewhere): the same decisions as the
  JSONL and CSV outputs and as a NumPy argmax of the tables, with its
  attributes;
- CSV fields holding quotes and commas (ids written by users) read back
  exactly with Python's csv module;
- `rtr eval` fits its baselines on the training split only: n_train counts
  it, and changing the evaluated split's outcomes moves no baseline's
  predicted operating point (a baseline fitted on train + test would move).

Routing tables are written with h5py (noisy outcomes), so no encoder or
training is needed."""
import csv
import glob
import json
import os
import shutil
import tempfile

from rtrtest import check, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402

# ids a user may well have: quotes, separators, spaces at the ends
ODD_IDS = ['say "hi"', 'a,b', '"', '""', ' both, "sides" ', ',', 'tab\there']


def corpus_with_tables(tmp, name, seed):
    """A demo corpus with some odd ids, embeddings and routing tables."""
    demo = os.path.join(tmp, "demo")
    if not os.path.exists(demo):
        r = run("gen-demo", "--queries", "300", "--seed", "3", demo)
        check(r.returncode == 0, "gen-demo: " + r.stderr)
        lines = open(os.path.join(demo, "outcomes.jsonl")).read().splitlines()
        for i, odd in enumerate(ODD_IDS):
            row = json.loads(lines[5 * i])
            row["id"] = odd
            lines[5 * i] = json.dumps(row)
        with open(os.path.join(demo, "outcomes.jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")
    corpus = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, "--shard-size", "120",
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0, "ingest: " + r.stderr)
    rng = np.random.default_rng(seed)
    for f in sorted(glob.glob(os.path.join(corpus, "shard-*.h5"))):
        with h5py.File(f, "a") as h:
            n = h.attrs["n_queries"]
            correct = np.nan_to_num(h["outcomes/correct"][()], nan=0.5)
            tokens = np.nan_to_num(h["outcomes/tokens"][()], nan=100.0)
            emb = rng.standard_normal((n, 16)).astype(np.float32)
            h["embedding/query"] = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            h["embedding/query"].attrs["encoder_hash"] = "test-encoder"
            p = np.clip(0.6 * correct + 0.2 + rng.normal(0, 0.1, correct.shape), 0, 1).astype(np.float32)
            h["routing/p_correct"] = p
            h["routing/tokens"] = (tokens * rng.uniform(0.8, 1.2, tokens.shape) + 1).astype(np.float32)
            h["routing/p_correct"].attrs["checkpoint_hash"] = "guards"
    return corpus


def text(x):
    return x.decode() if isinstance(x, bytes) else x


def corpus_rows(corpus):
    ids, splits, p, tok = [], [], [], []
    for f in sorted(glob.glob(os.path.join(corpus, "shard-*.h5"))):
        with h5py.File(f, "r") as h:
            ids += [text(s) for s in h["queries/id"][()]]
            splits += [text(s) for s in h["queries/split"][()]]
            p.append(h["routing/p_correct"][()])
            tok.append(h["routing/tokens"][()])
    return ids, splits, np.concatenate(p), np.concatenate(tok)


def check_route_outputs(tmp, corpus):
    ids, _, p, tok = corpus_rows(corpus)
    lam = 0.6
    outs = {ext: os.path.join(tmp, "dec." + ext) for ext in ("csv", "jsonl", "h5")}
    for ext, path in outs.items():
        r = run("route", corpus, "--lambda", str(lam), "--out", path, "--json")
        check(r.returncode == 0 and os.path.exists(path), f"route --out .{ext}: {r.stderr}")
    if not all(os.path.exists(x) for x in outs.values()):
        return
    scale = float(json.loads(r.stdout)["cost_scale"])
    with open(outs["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    jl = [json.loads(x) for x in open(outs["jsonl"])]
    check([x["id"] for x in rows] == ids, "CSV ids (quotes, commas) read back exactly: %s" %
          [x["id"] for x in rows if x["id"] not in ids][:3])
    check([x["id"] for x in jl] == ids, "JSONL ids read back exactly")
    check(all(o in ids for o in ODD_IDS), "the odd ids are in the corpus")
    names = [f'{x["model"]}|{x["strategy"]}' for x in jl]
    check(names == [f'{x["model"]}|{x["strategy"]}' for x in rows], "CSV and JSONL make the same choices")
    # the λ rule in NumPy (double, ties to the cheaper then the more accurate)
    c = (tok / np.float32(scale)).astype(np.float32).astype(np.float64)
    s = lam * (p.astype(np.float64) + c) - c
    want = []
    for i in range(len(ids)):
        best = np.flatnonzero(s[i] == s[i].max())
        best = best[c[i, best] == c[i, best].min()]
        best = best[p[i, best] == p[i, best].max()]
        want.append(int(best[0]))
    with h5py.File(outs["h5"], "r") as h:
        pairs = [text(x) for x in h["pairs"][()]]
        check([text(x) for x in h["id"][()]] == ids, "HDF5 ids are the corpus ids, in order")
        pair = h["pair"][()]
        check(pair.dtype.kind == "i" and list(pair) == want, "HDF5 /pair is the λ rule's choice of every query")
        check([pairs[j] for j in pair] == names, "HDF5 choices are the JSONL choices")
        rows_i = np.arange(len(ids))
        check(np.array_equal(h["p_correct"][()], p[rows_i, pair]), "HDF5 /p_correct is the chosen pair's p")
        check(np.array_equal(h["pred_tokens"][()], tok[rows_i, pair]), "HDF5 /pred_tokens is the chosen pair's tokens")
        check(np.allclose(h["pred_cost"][()], [x["pred_cost"] for x in jl]), "HDF5 /pred_cost is the JSONL's")
        check(float(h.attrs["lambda"]) == lam and text(h.attrs["cost_model"]) == "tokens"
              and text(h.attrs["checkpoint_hash"]) == "guards" and float(h.attrs["cost_scale"]) == scale,
              "HDF5 attributes: lambda, cost_model, checkpoint_hash, cost_scale")
    # a failed HDF5 write leaves no file: a directory where the file would go
    bad = os.path.join(tmp, "taken.h5")
    os.mkdir(bad)
    r = run("route", corpus, "--lambda", "0.5", "--out", bad)
    check(r.returncode == 1 and os.path.isdir(bad) and not glob.glob(bad + ".tmp*"),
          f"route --out onto a directory: exit {r.returncode}, no temporary left: {r.stderr}")


def check_eval_fits_on_train(tmp):
    a = corpus_with_tables(tmp, "eval_a", 11)
    b = corpus_with_tables(tmp, "eval_b", 11)
    # b: the evaluated (test) split's outcomes turned upside down
    for f in sorted(glob.glob(os.path.join(b, "shard-*.h5"))):
        with h5py.File(f, "a") as h:
            test = np.array([text(s) for s in h["queries/split"][()]]) == "test"
            corr = h["outcomes/correct"][()]
            tokens = h["outcomes/tokens"][()]
            corr[test] = 1 - corr[test]
            tokens[test] = tokens[test][:, ::-1]
            h["outcomes/correct"][...] = corr
            h["outcomes/tokens"][...] = tokens
    _, splits, _, _ = corpus_rows(a)
    evs = {}
    for name, corpus in (("a", a), ("b", b)):
        out = os.path.join(tmp, f"eval_{name}.json")
        r = run("eval", corpus, "--out", out, "--json")
        check(r.returncode == 0, f"eval {name}: {r.stderr}")
        if r.returncode == 0:
            evs[name] = json.load(open(out))
    if len(evs) != 2:
        return
    ea, eb = evs["a"], evs["b"]
    check(ea["n_train"] == splits.count("train") and ea["n_queries"] == splits.count("test"),
          f"n_train {ea['n_train']} / n_queries {ea['n_queries']} are the train / test counts "
          f"{splits.count('train')} / {splits.count('test')}")
    check(ea["notes"] == eb["notes"], "the operating budget comes from the training split only")
    ra = {x["name"]: x for x in ea["routers"]}
    rb = {x["name"]: x for x in eb["routers"]}
    fitted = [n for n in ra if ra[n]["op"].get("lambda") is not None]
    check(len(fitted) >= 3, f"routers with a λ operating point: {fitted}")
    for n in fitted:
        check(n in rb and ra[n]["op"]["lambda"] == rb[n]["op"]["lambda"],
              f"{n}: predicted operating point does not depend on the evaluated split's outcomes "
              f"({ra[n]['op'].get('lambda')} vs {rb.get(n, {}).get('op', {}).get('lambda')})")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_guards_")
    corpus = corpus_with_tables(tmp, "corp", 7)
    check_route_outputs(tmp, corpus)
    check_eval_fits_on_train(tmp)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
