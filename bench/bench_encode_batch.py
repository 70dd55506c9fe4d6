#!/usr/bin/env python3
"""Does a text's embedding depend on the batch it is encoded in? For each
precision, the same texts through bench_encode_cpu twice: all in one
encode call (the encoder batches them by length, as `rtr encode` does for a
corpus) and one call per text (--each, as online `route --batch-size 1`
encodes); per text the largest |difference| of an embedding element and the
cosine between the two. The answer decides whether CPU `--precision auto`
may pick bf16 (docs/ENCODER.md, "What auto should pick"): online routing
and a batch-encoded corpus must agree.

    bench/bench_encode_batch.py --rtr-bench BUILD/bench/bench_encode_cpu --model DIR
                                [--precisions fp32,bf16-model] [--texts 64] [--long-words 200] [--threads 2]

Texts: the first --texts questions of ../shared/data/rtr_questions
($RTR_SHARED_DATA), and as many again made by joining consecutive questions
to --long-words words (long texts, cut at the model's max length), so the batch
holds texts of very different lengths and most are padded in it.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def texts(n, words_per_long):
    with open(os.path.join(SHARED, "rtr_questions", "all_questions_merged.csv"), encoding="utf-8-sig", newline="") as f:
        qs = [" ".join(r["question"].split()) for r in csv.DictReader(f)]
    short = qs[:n]
    longs, i = [], n
    while len(longs) < n:
        words = []
        while len(words) < words_per_long:
            words += qs[i % len(qs)].split()
            i += 1
        longs.append(" ".join(words))
    # interleaved, so a batch sorted by length moves every text
    return [t for pair in zip(short, longs) for t in pair]


def encode(args, precision, ts, each, out):
    cmd = [args.rtr_bench, "--model", args.model, "--precision", precision, "--threads", str(args.threads),
           "--out", out] + (["--each"] if each else [])
    r = subprocess.run(cmd, input="\n".join(ts).encode() + b"\n", capture_output=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)}: failed ({r.returncode}): {r.stderr.decode()[-600:]}")
    d = json.loads(r.stdout.decode().splitlines()[-1])["dim"]
    return np.fromfile(out, np.float32).reshape(len(ts), d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtr-bench", required=True, help="bench_encode_cpu")
    ap.add_argument("--model", required=True)
    ap.add_argument("--precisions", default="fp32,bf16-model")
    ap.add_argument("--texts", type=int, default=64, help="short questions, and as many long texts")
    ap.add_argument("--long-words", type=int, default=200, help="words per long text")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ts = texts(args.texts, args.long_words)
    print(f"{os.path.basename(os.path.normpath(args.model))}: {len(ts)} texts ({args.texts} questions, {args.texts} "
          f"of ~{args.long_words} words), {args.threads} threads; each text alone (one call per text) against all in "
          f"one call")
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.precisions.split(","):
            batch = encode(args, p, ts, False, os.path.join(tmp, "batch.f32"))
            alone = encode(args, p, ts, True, os.path.join(tmp, "alone.f32"))
            diff = np.abs(batch.astype(np.float64) - alone).max(1)
            cos = np.sum(batch * alone, 1, dtype=np.float64) / (np.linalg.norm(batch, axis=1) * np.linalg.norm(alone, axis=1))
            same = int((diff == 0).sum())
            print(f"  {p:11s} alone vs batched: max |diff| {diff.max():.2e} (median over texts {np.median(diff):.2e}), "
                  f"min cosine {cos.min():.7f}; {same} of {len(ts)} texts bit-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
