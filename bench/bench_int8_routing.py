#!/usr/bin/env python3
"""Does int8 (or bf16) encoding change routing? The mot_date dev set (369
queries, 28 pairs) end to end: converted, ingested, encoded by `rtr encode`
(fp32), a predictor trained on those embeddings, then the same corpus
re-embedded with int8 GEMMs (bench_encode_cpu --precision int8: queries,
model and strategy descriptions; --precision bf16 or bf16-model for the CPU's
bf16 path or its model), both scored with the same checkpoint and routed on
the test split at several lambdas. Prints the per-text cosine of the reduced
precision's embeddings to fp32's and, per lambda, how many routing decisions
differ.

    bench/bench_int8_routing.py --build BUILD [--model data/models/all-mpnet-base-v2] [--work DIR]
                                [--precision int8|bf16|bf16-model]

Needs h5py and ../shared/data/mot_date."""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw).stdout


def reduced_embed(bench, model, precision, texts):
    """Rows of `texts` embedded in `precision` (one text per line: inner newlines become spaces)."""
    with tempfile.NamedTemporaryFile(suffix=".f32") as out:
        run(bench, "--model", model, "--precision", precision, "--out", out.name,
            input="\n".join(" ".join(t.split("\n")) for t in texts) + "\n")
        return np.fromfile(out.name, np.float32).reshape(len(texts), -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, "data", "models", "all-mpnet-base-v2"))
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--lambdas", default="0.1,0.3,0.5,0.7,0.9")
    ap.add_argument("--precision", default="int8", choices=["int8", "bf16", "bf16-model"])
    args = ap.parse_args()
    rtr, bench = os.path.join(args.build, "rtr"), os.path.join(args.build, "bench", "bench_encode_cpu")
    work = args.work or tempfile.mkdtemp(prefix="rtr-int8-routing.")
    os.makedirs(work, exist_ok=True)
    canon, fp, i8 = (os.path.join(work, x) for x in ("mot-canon", "mot-fp32", "mot-" + args.precision))
    if not os.path.exists(fp):
        run(sys.executable, os.path.join(ROOT, "tools", "convert-outcomes"), "mot-json",
            os.path.join(SHARED, "mot_date"), "--out", canon)
        run(rtr, "ingest", "--catalog", os.path.join(canon, "catalog.json"), "--out", fp,
            os.path.join(canon, "outcomes.jsonl"))
        run(rtr, "encode", "--model", args.model, "--device", "cpu", fp)
    ck = os.path.join(work, "mot.safetensors")
    if not os.path.exists(ck):
        run(rtr, "train", fp, "--out", ck, "--device", "cpu")
    shutil.rmtree(i8, ignore_errors=True)
    shutil.copytree(fp, i8)
    cos_all = []
    # the layout of docs/FORMAT.md: texts and catalog in the shards, embeddings
    # beside them in embeddings/ENCODER/ (same datasets rewritten: attributes kept)
    emb = os.path.join(i8, "embeddings", os.path.basename(os.path.normpath(args.model)))

    def reembed(path, key, texts):
        with h5py.File(path, "r+") as e:
            old = e["embedding/" + key][()]
            new = reduced_embed(bench, args.model, args.precision, texts)
            cos_all.append(np.sum(old * new, 1) / (np.linalg.norm(old, axis=1) * np.linalg.norm(new, axis=1)))
            e["embedding/" + key][...] = new

    cat = None
    for name in sorted(os.listdir(i8)):
        if not name.startswith("shard-"):
            continue
        with h5py.File(os.path.join(i8, name), "r") as f:
            # strings as stored: UTF-8 bytes back to back, n + 1 offsets
            raw, off = f["queries/text/bytes"][()].tobytes(), f["queries/text/offsets"][()]
            texts = [raw[off[i]:off[i + 1]].decode() for i in range(len(off) - 1)]
            cat = json.loads(f["catalog_json"][()].tobytes())
        reembed(os.path.join(emb, name), "query", texts)
    descs = os.path.join(emb, "descriptions.h5")
    reembed(descs, "model_desc", [m["description"] for m in cat["models"]])
    reembed(descs, "strategy_desc", [s["description"] for s in cat["strategies"]])
    cos = np.concatenate(cos_all)
    print(f"mot_date, {os.path.basename(args.model)}: {args.precision} vs fp32 embeddings of {len(cos)} texts: "
          f"cosine min {cos.min():.5f}, mean {cos.mean():.6f}")
    for corpus in (fp, i8):
        run(rtr, "score", "--checkpoint", ck, "--device", "cpu", corpus)
    total_diff = 0
    # the routing tables themselves: how far the reduced precision's predictions moved
    tables = []
    for corpus in (fp, i8):
        (table,) = os.listdir(os.path.join(corpus, "tables"))
        with h5py.File(os.path.join(corpus, "tables", table, "shard-00000.h5"), "r") as f:
            tables.append(f["routing/p_correct"][()])
    dp = np.abs(tables[0] - tables[1])
    print(f"  predicted p_correct, {args.precision} vs fp32 embeddings: max |diff| {dp.max():.4f}, mean {dp.mean():.5f}")
    for lam in args.lambdas.split(","):
        picks = []
        for corpus in (fp, i8):
            out = os.path.join(work, f"route-{os.path.basename(corpus)}-{lam}.csv")
            run(rtr, "route", corpus, "--lambda", lam, "--split", "test", "--out", out)
            with open(out, newline="") as f:
                picks.append([(r["id"], r["model"], r["strategy"]) for r in csv.DictReader(f)])
        diff = sum(a != b for a, b in zip(*picks))
        total_diff += diff
        print(f"  lambda {lam}: {diff} of {len(picks[0])} test queries routed differently")
    print(f"decisions changed in all: {total_diff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
