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
  predicted operating point (a baseline fitted on train + test would move);
- a shard with more ids than queries, or of an older schema version, is
  refused by name; a query id repeated (across shards or within one) is
  refused by info, route, sweep, score and train, naming the id and both
  shards; ingest refuses a pair given twice in one query (also when
  the first gave no correctness), empty ids, datasets and splits, and a
  catalog with a key given twice.

Embeddings and routing tables (noisy outcomes) are written beside the
shards with tests/rtrdata.py, so no encoder or training is needed."""
import csv
import glob
import json
import os
import shutil
import tempfile

from rtrtest import MODELS, check, finish, require_numpy_h5py, require_rtr, run, skip_part

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

# ids a user may well have: quotes, separators, spaces at the ends
ODD_IDS = ['say "hi"', 'a,b', '"', '""', ' both, "sides" ', ',', 'tab\there']


def demo_outcomes(tmp):
    """The demo outcomes (catalog.json, outcomes.jsonl) with some odd ids."""
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
    return demo


def unit(rng, n):
    x = rng.standard_normal((n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def corpus_with_tables(tmp, name, seed, edit=None, like=None):
    """A demo corpus (each outcome row passed through edit(row) before ingest:
    shards are never rewritten) with stand-in embeddings and a routing table
    "guards" (noisy outcomes), or with the embeddings and table of the corpus
    `like` (same rows, same shards)."""
    demo = demo_outcomes(tmp)
    src = os.path.join(demo, "outcomes.jsonl")
    if edit:
        src = rtrdata.edited_outcomes(src, os.path.join(tmp, name + ".jsonl"), edit)
    corpus = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, "--shard-size", "120", src)
    check(r.returncode == 0, "ingest: " + r.stderr)
    cat = rtrdata.manifest(corpus)["catalog"]
    rng = np.random.default_rng(seed)
    if like:
        def beside(kind, folder, key):
            return lambda path: h5py.File(os.path.join(like, kind, folder, os.path.basename(path)), "r")[key][()]
        with h5py.File(os.path.join(like, "embeddings", "stand-in", "descriptions.h5"), "r") as h:
            desc = (h["embedding/model_desc"][()], h["embedding/strategy_desc"][()])
        emb_of = beside("embeddings", "stand-in", "embedding/query")
        p_of, tok_of = beside("tables", "guards", "routing/p_correct"), beside("tables", "guards", "routing/tokens")
        table_of = lambda path: {"p_correct": p_of(path), "tokens": tok_of(path)}  # noqa: E731
    else:
        desc = (unit(rng, len(cat["models"])), unit(rng, len(cat["strategies"])))

        def emb_of(path):
            with h5py.File(path, "r") as h:
                return unit(rng, int(h.attrs["n_queries"]))

        table_of = rtrdata.noisy_table(rng, 0.1, 0.8, 1.2)
    rtrdata.write_embeddings(corpus, "stand-in", "test-encoder", emb_of, desc, encoder="test")
    rtrdata.write_table(corpus, "guards", table_of, "guards", "stand-in", "test-encoder")
    return corpus


def text(x):
    return x.decode() if isinstance(x, bytes) else x


def corpus_rows(corpus):
    ids, splits = [], []
    for path, _, _, _ in rtrdata.shards(corpus):
        with h5py.File(path, "r") as h:
            ids += rtrdata.strings(h, "id")
            splits += rtrdata.strings(h, "split")
    return ids, splits, rtrdata.read_table(corpus, "guards", "p_correct"), rtrdata.read_table(corpus, "guards", "tokens")


def check_route_outputs(tmp, corpus):
    ids, _, p, tok = corpus_rows(corpus)
    lam = 0.6
    outs = {ext: os.path.join(tmp, "dec." + ext) for ext in ("csv", "jsonl", "h5")}
    for ext, path in outs.items():
        r = run("route", corpus, "--lambda", str(lam), "--split", "all", "--out", path, "--json")
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

    def upside_down(row):  # the evaluated (test) split's outcomes turned upside down
        if row["split"] == "test":
            o = row["outcomes"]
            tokens = [x.get("tokens") for x in o][::-1]
            for x, t in zip(o, tokens):
                if "correct" in x:
                    x["correct"] = 1 - x["correct"]
                if t is None:
                    x.pop("tokens", None)
                else:
                    x["tokens"] = t
        return row

    b = corpus_with_tables(tmp, "eval_b", 11, edit=upside_down, like=a)

    def outcomes(corpus):
        rows = [h5py.File(path, "r")["outcomes/correct"][()] for path, _, _, _ in rtrdata.shards(corpus)]
        return np.nan_to_num(np.concatenate(rows), nan=-1)
    test = np.array(corpus_rows(a)[1]) == "test"
    oa, ob = outcomes(a), outcomes(b)
    check(np.array_equal(oa[~test], ob[~test]) and not np.array_equal(oa[test], ob[test]),
          "corpus b differs from a in the test split's outcomes only")
    check(np.array_equal(rtrdata.read_table(a, "guards", "p_correct"), rtrdata.read_table(b, "guards", "p_correct")),
          "corpora a and b have the same routing table")
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


def check_store_refusals(tmp, corpus):
    def damaged(name, edit, cmd=("info",)):
        c = os.path.join(tmp, name)
        shutil.copytree(corpus, c)
        with h5py.File(os.path.join(c, "shard-00000.h5"), "a") as h:
            edit(h)
        return run(*cmd, c)

    def more_ids(h):
        data, off = h["queries/id/bytes"][()], h["queries/id/offsets"][()]
        extra = np.frombuffer(b"one-too-many", dtype=np.uint8)
        for key, v in (("bytes", np.concatenate([data, extra])), ("offsets", np.append(off, off[-1] + len(extra)))):
            del h["queries/id/" + key]
            h["queries/id/" + key] = v

    r = damaged("more_ids", more_ids)
    check(r.returncode == 1 and "/queries/id" in r.stderr, f"a shard with more ids than queries: {r.stderr}")
    # refused on open, also by a stage that never reads the ids (train)
    r = damaged("more_ids_train", more_ids, ("train", "--out", os.path.join(tmp, "t.safetensors"), "--hidden", "4",
                                             "--learn-dim", "0", "--epochs", "1", "--device", "cpu"))
    check(r.returncode == 1 and "/queries/id" in r.stderr, f"train on a shard with more ids than queries: {r.stderr}")
    r = damaged("old_schema", lambda h: h.attrs.__setitem__("rtr_schema_version", np.int64(0)))
    check(r.returncode == 1 and "rtr_schema_version" in r.stderr, f"a shard of schema version 0: {r.stderr}")

    demo = os.path.join(tmp, "demo")
    base = {"id": "q", "text": "t", "dataset": "d", "split": "train"}
    twice = dict(base, outcomes=[{"model": "demo-1b", "strategy": "cot", "tokens": 5},
                                 {"model": "demo-1b", "strategy": "cot", "correct": 1}])
    for name, row, field in (("twice", twice, "given twice"), ("empty-id", dict(base, id=""), "field id"),
                             ("empty-dataset", dict(base, dataset=""), "field dataset"),
                             ("empty-split", dict(base, split=""), "field split")):
        log = os.path.join(tmp, name + ".jsonl")
        open(log, "w").write(json.dumps(row) + "\n")
        out = os.path.join(tmp, name)
        r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", out, log)
        check(r.returncode == 1 and field in r.stderr and not os.path.exists(out), f"ingest {name}: {r.stderr}")

    # a key given twice in a catalog (cJSON would keep the first silently)
    log = os.path.join(tmp, "one.jsonl")
    open(log, "w").write(json.dumps(dict(base, outcomes=[{"model": "a", "strategy": "s", "correct": 1}])) + "\n")
    for name, cat, field in (("cat-models-twice", '{"models": [{"name": "a"}], "strategies": [{"name": "s"}], '
                                                  '"models": [{"name": "b"}]}', "field models: given twice"),
                             ("cat-name-twice", '{"models": [{"name": "b", "name": "a"}], "strategies": [{"name": "s"}]}',
                              "models[0].name: given twice")):
        p = os.path.join(tmp, name + ".json")
        open(p, "w").write(cat)
        out = os.path.join(tmp, name)
        r = run("ingest", "--catalog", p, "--out", out, log)
        check(r.returncode == 1 and field in r.stderr and not os.path.exists(out), f"ingest --catalog {name}: {r.stderr}")


def check_duplicate_ids(tmp, corpus):
    """A shard edited to repeat a query id (of another shard, or its own) is
    refused by every stage that reads the corpus, naming the id and both
    shards: the row reader checks ids over all the shards it reads (info
    alone did before, and route, sweep, score and train counted the query
    twice; score and encode, which read each shard alone, check the ids
    first)."""
    ck = os.path.join(tmp, "dup-ck.safetensors")
    r = run("train", corpus, "--out", ck, "--hidden", "4", "--learn-dim", "0", "--epochs", "1", "--device", "cpu")
    check(r.returncode == 0, "train: " + r.stderr)

    def set_id(h, row, qid):
        ids = rtrdata.strings(h, "id")
        ids[row] = qid
        data = [x.encode() for x in ids]
        for key, v in (("bytes", np.frombuffer(b"".join(data), dtype=np.uint8)),
                       ("offsets", np.cumsum([0] + [len(x) for x in data]).astype(np.int64))):
            del h["queries/id/" + key]
            h["queries/id/" + key] = v

    with h5py.File(os.path.join(corpus, "shard-00001.h5"), "r") as h:
        other = rtrdata.strings(h, "id")[0]
    with h5py.File(os.path.join(corpus, "shard-00000.h5"), "r") as h:
        own = rtrdata.strings(h, "id")[0]
    model = os.path.join(MODELS, "all-MiniLM-L6-v2")
    encode = ("encode", "--model", model, "--name", "dup", "--device", "cpu") if os.path.isdir(model) else None
    if not encode:
        skip_part(f"encode on duplicate ids: no model at {model} (tools/fetch-encoder)")
    for name, qid, shards in (("dup-across", other, ("shard-00000.h5", "shard-00001.h5")),
                              ("dup-within", own, ("shard-00000.h5", "this shard"))):
        c = os.path.join(tmp, name)
        shutil.copytree(corpus, c)
        with h5py.File(os.path.join(c, "shard-00000.h5"), "a") as h:
            set_id(h, 3, qid)
        for cmd in (("info", c), ("route", c, "--lambda", "0.5", "--out", os.path.join(tmp, name + ".csv")),
                    ("sweep", c, "--out", os.path.join(tmp, name + "-sweep"), "--device", "cpu"),
                    ("score", "--checkpoint", ck, "--device", "cpu", c),
                    ("train", c, "--out", os.path.join(tmp, name + ".safetensors"), "--hidden", "4", "--learn-dim", "0",
                     "--epochs", "1", "--device", "cpu")) + ((encode + (c,),) if encode else ()):
            r = run(*cmd)
            named = all(x in r.stderr for x in (f'"{qid}"',) + shards)
            check(r.returncode == 1 and named, f"{name}: rtr {cmd[0]} refuses id {qid!r} naming {shards}: "
                  f"exit {r.returncode}: {r.stderr.strip()[-300:]}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_guards_")
    corpus = corpus_with_tables(tmp, "corp", 7)
    check_route_outputs(tmp, corpus)
    check_eval_fits_on_train(tmp)
    check_store_refusals(tmp, corpus)
    check_duplicate_ids(tmp, corpus)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
