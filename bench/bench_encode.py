#!/usr/bin/env python3
"""Encoder throughput on the CPU: rtr (fp32 and int8 GEMMs) against
sentence-transformers (PyTorch) and ONNX Runtime (fp32, and its own dynamic
int8 quantisation), interleaved in one run, medians with min-max.

    bench/bench_encode.py [--build build] [--models data/models] [--threads 2]
                          [--rounds 3] [--only MODEL] [--inputs short,long] [--configs ...]

Inputs: "short" are the 2,100 real questions of ../shared/data/rtr_questions
(--short-texts of them); "long" are --long-texts texts made by joining
consecutive questions until each fills --long-len (384) tokens. All sides use
the same max length (the model's, or --long-len for long inputs), the same
thread count, batches sorted by length (sentence-transformers does this
itself; ONNX Runtime gets batches of --batch texts of similar length, padded
to the longest, as rtr does), and every side's time is the encode call
only: after loading and one warm-up batch, tokenisation and pooling
included. Each configuration runs in its own process; the order is
A B C D E, A B C D E, ... for --rounds rounds, so load changes hit all
alike. The ratios are of the medians. Accuracy in the same run: per-text
cosine of every side's embeddings against sentence-transformers' (first
round).

rtr runs as build/bench/bench_encode_cpu (C, the library's encoder on the
CPU backend). The ONNX model is exported from the Hugging Face model by
torch.onnx.export (cached in ${RTR_CACHE:-~/.cache/rtr}/onnx) and quantised
with onnxruntime.quantization.quantize_dynamic (int8 weights per channel).
Needs: pip install sentence-transformers onnxruntime onnx onnxscript.
"""
import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
CACHE = os.path.join(os.environ.get("RTR_CACHE", os.path.expanduser("~/.cache/rtr")), "onnx")


def questions():
    path = os.path.join(SHARED, "rtr_questions", "all_questions_merged.csv")
    with open(path, encoding="utf-8-sig", newline="") as f:
        # one line per text for bench_encode_cpu: inner newlines become spaces for every side
        return [" ".join(r["question"].split()) for r in csv.DictReader(f)]


def long_texts(qs, n, tokens, tokenizer):
    """n texts of consecutive questions joined until each has >= tokens tokens."""
    out, i = [], 0
    while len(out) < n:
        parts = []
        while len(tokenizer(" ".join(parts))["input_ids"]) < tokens:
            parts.append(qs[i % len(qs)])
            i += 1
        out.append(" ".join(parts))
    return out


ST_CHILD = r"""
import json, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
model, threads, batch, max_len, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
texts = json.load(sys.stdin)
torch.set_num_threads(threads)
st = SentenceTransformer(model, device="cpu")
st.max_seq_length = max_len
st.encode(texts[:batch], batch_size=batch)
t0 = time.perf_counter()
emb = st.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True)
secs = time.perf_counter() - t0
if out != "-": emb.astype(np.float32).tofile(out)
print(json.dumps({"secs": secs, "tokens": int(st.tokenize(texts)["attention_mask"].sum())}))
"""

ORT_CHILD = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
from transformers import AutoTokenizer
onnx_path, model, threads, batch, max_len, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
texts = json.load(sys.stdin)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]
tok = AutoTokenizer.from_pretrained(model)
def encode(ts):
    lens = [len(x) for x in tok(ts, truncation=True, max_length=max_len)["input_ids"]]
    order = np.argsort(lens, kind="stable")[::-1]
    emb = np.zeros((len(ts), 0), np.float32)
    rows = [None] * len(ts)
    for s in range(0, len(ts), batch):
        idx = order[s:s + batch]
        enc = tok([ts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in names}
        h = sess.run(None, feed)[0]
        m = enc["attention_mask"][:, :, None].astype(np.float32)
        pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        for j, i in enumerate(idx): rows[i] = pooled[j]
    return np.stack(rows).astype(np.float32)
encode(texts[:batch])
t0 = time.perf_counter()
emb = encode(texts)
secs = time.perf_counter() - t0
if out != "-": emb.tofile(out)
print(json.dumps({"secs": secs}))
"""

EXPORT_CHILD = r"""
import sys, torch
from transformers import AutoModel, AutoTokenizer
model, path = sys.argv[1], sys.argv[2]
m = AutoModel.from_pretrained(model).eval()
tok = AutoTokenizer.from_pretrained(model)
enc = tok(["an example text", "another one, a little longer"], padding=True, return_tensors="pt")
args = (enc["input_ids"], enc["attention_mask"])
axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "hidden": {0: "batch", 1: "seq"}}
torch.onnx.export(m, args, path, input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                  dynamic_axes=axes, opset_version=18)
"""


def onnx_models(model):
    """(fp32 path, int8 path) of the exported and quantised model, made once:
    built in a temporary folder (the exporter writes the weights beside the
    graph) and renamed, so an interrupted export leaves nothing half-made."""
    name = os.path.basename(os.path.normpath(model))
    final = os.path.join(CACHE, name)
    if not os.path.exists(final):
        os.makedirs(CACHE, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=name + ".", dir=CACHE)
        subprocess.run([sys.executable, "-c", EXPORT_CHILD, model, os.path.join(tmp, "model.onnx")], check=True)
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.int8.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, final)
    return os.path.join(final, "model.onnx"), os.path.join(final, "model.int8.onnx")


def child(cmd, stdin, env=None):
    r = subprocess.run(cmd, input=stdin.encode(), capture_output=True, env=env)
    if r.returncode:
        sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def label(cfg):
    """A configuration's name; rtr-fp32@N is rtr fp32 with batch_tokens N."""
    base, _, bt = cfg.partition("@")
    return LABEL[base] + (f", batch_tokens {bt}" if bt else "")


def run(cfg, model, texts, args, max_len, out):
    cfg, _, batch_tokens = cfg.partition("@")
    if cfg.startswith("rtr"):
        # rtr-fp32-passive: libgomp reads its waiting policy only when it loads, so it goes in the environment
        env = dict(os.environ, OMP_WAIT_POLICY="passive") if cfg.endswith("-passive") else None
        bench = args.base_bench if cfg.endswith("-base") else args.rtr_bench
        return child([bench, "--model", model, "--precision", cfg.split("-")[1], "--threads", str(args.threads),
                      "--max-len", str(max_len), "--out", out] + (["--batch-tokens", batch_tokens] if batch_tokens
                                                                   else []), "\n".join(texts) + "\n", env)
    if cfg == "st":
        return child([sys.executable, "-c", ST_CHILD, model, str(args.threads), str(args.batch), str(max_len), out],
                     json.dumps(texts))
    path = args.onnx[model][cfg == "ort-int8"]
    return child([sys.executable, "-c", ORT_CHILD, path, model, str(args.threads), str(args.batch), str(max_len),
                  out], json.dumps(texts))


def cosines(a, b):
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


LABEL = {"st": "sentence-transformers (PyTorch fp32)", "ort": "ONNX Runtime fp32", "ort-int8":
         "ONNX Runtime int8 (dynamic)", "rtr-fp32": "rtr fp32", "rtr-int8": "rtr int8 (dynamic, AVX2)",
         "rtr-bf16": "rtr bf16 (oneDNN, AVX-512 BF16 only)",
         "rtr-fp32-passive": "rtr fp32, OMP_WAIT_POLICY=passive", "rtr-fp32-base": "rtr fp32, --base-build"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default=os.environ.get("RTR_MODELS_DIR", os.path.join(ROOT, "data", "models")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="texts per batch for sentence-transformers and ORT")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=None, help="one model name (default: both)")
    ap.add_argument("--inputs", default="short,long")
    ap.add_argument("--short-texts", type=int, default=2100)
    ap.add_argument("--long-texts", type=int, default=64)
    ap.add_argument("--long-len", type=int, default=384)
    ap.add_argument("--base-build", default=None, help="a second build for config rtr-fp32-base (before/after)")
    ap.add_argument("--configs", default="st,ort,ort-int8,rtr-fp32,rtr-int8",
                    help="comma-separated, of: " + ", ".join(LABEL) + " (rtr-...@N: with batch_tokens N)")
    args = ap.parse_args()
    args.rtr_bench = os.path.join(args.build, "bench", "bench_encode_cpu")
    if not os.access(args.rtr_bench, os.X_OK):
        sys.exit(f"{args.rtr_bench}: not built (cmake --build {args.build})")
    configs = args.configs.split(",")
    args.base_bench = args.base_build and os.path.join(args.base_build, "bench", "bench_encode_cpu")
    if "rtr-fp32-base" in configs and not (args.base_bench and os.access(args.base_bench, os.X_OK)):
        sys.exit("rtr-fp32-base needs --base-build with bench/bench_encode_cpu built")
    qs = questions()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.threads} threads; load average "
          f"{os.getloadavg()[0]:.2f} at start")
    from transformers import AutoTokenizer
    args.onnx = {}
    for name in [args.only] if args.only else ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]:
        model = os.path.join(args.models, name)
        if not os.path.exists(os.path.join(model, "model.safetensors")):
            print(f"{name}: model folder absent, skipped (tools/fetch-encoder {name} {model})")
            continue
        if any(c.startswith("ort") for c in configs):
            args.onnx[model] = onnx_models(model)
        tok = AutoTokenizer.from_pretrained(model)
        for kind in args.inputs.split(","):
            if kind == "short":
                texts = qs[:args.short_texts]
                max_len = json.load(open(os.path.join(model, "sentence_bert_config.json")))["max_seq_length"]
            else:
                texts, max_len = long_texts(qs, args.long_texts, args.long_len, tok), args.long_len
            res = {c: [] for c in configs}
            embs = {}
            loads = []
            with tempfile.TemporaryDirectory() as tmp:
                for r in range(args.rounds):
                    for c in configs:
                        out = os.path.join(tmp, c + ".f32") if r == 0 else "-"
                        if c.startswith("rtr") and r:
                            out = os.path.join(tmp, "discard.f32")
                        loads.append(os.getloadavg()[0])
                        res[c].append(run(c, model, texts, args, max_len, out))
                        if r == 0:
                            embs[c] = np.fromfile(out, np.float32).reshape(len(texts), -1)
            # the sides that count real tokens: sentence-transformers and rtr
            tokens = next((res[c][0]["tokens"] for c in configs if "tokens" in res[c][0]), 0)
            print(f"\n{name}, {kind} inputs: {len(texts)} texts, max length {max_len}, {tokens} real tokens "
                  f"({tokens / len(texts):.0f} per text); {args.rounds} interleaved rounds; load average "
                  f"{min(loads):.2f}-{max(loads):.2f} during the runs")
            med = {}
            for c in configs:
                qps = sorted(len(texts) / x["secs"] for x in res[c])
                med[c] = float(np.median(qps))
                acc = ""
                if "st" in embs and c != "st":
                    cs = cosines(embs[c], embs["st"])
                    acc = f"; cosine to sentence-transformers min {cs.min():.5f} mean {cs.mean():.6f}"
                print(f"  {label(c):38s} {med[c]:8.2f} q/s median ({qps[0]:.2f}-{qps[-1]:.2f}){acc}")
            for mine in [c for c in configs if c.startswith("rtr")]:
                for peer in [c for c in configs if not c.startswith("rtr")]:
                    print(f"  ratio {label(mine)} / {label(peer)}: {med[mine] / med[peer]:.2f}x")
            pairs = [("rtr-fp32-passive", "rtr-fp32"), ("rtr-fp32", "rtr-fp32-base")]
            pairs += [(c, d) for c in configs for d in configs if "@" in c and c != d and d.startswith(c.split("@")[0])
                      and configs.index(d) < configs.index(c)]
            for a, b in pairs:
                if a in med and b in med:
                    print(f"  ratio {label(a)} / {label(b)}: {med[a] / med[b]:.2f}x")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
