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
round), or ONNX Runtime fp32's when sentence-transformers is not among the
configurations.

rtr runs as build/bench/bench_encode_cpu (C, the library's encoder on the
CPU backend), or the binary --rtr-bench names. The ONNX model is exported from the Hugging Face model by
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
        while len(tokenizer.encode(" ".join(parts)).ids) < tokens:
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

# The model's own tokenizer.json through the tokenizers library (what
# transformers' fast tokenizers run), truncating to max_len with the special
# tokens: importing transformers costs seconds in every ONNX Runtime child
# (14 s on this machine under load), which decided whether the GPU check's
# CPU section fit its window.
TOKENIZER = r"""
import os
from tokenizers import Tokenizer
def hf_tokenizer(model, max_len=None):
    t = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    t.no_padding()
    if max_len: t.enable_truncation(max_len)
    else: t.no_truncation()
    return t
"""
exec(TOKENIZER)

ORT_CHILD = TOKENIZER + r"""
import json, sys, time
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
onnx_path, model, threads, batch, max_len, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
texts = json.load(sys.stdin)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]
tok = hf_tokenizer(model, max_len)
pad_id = next((i for i in (tok.token_to_id(p) for p in ("[PAD]", "<pad>")) if i is not None), 0)
def encode(ts):
    tok.no_padding()
    lens = [len(e.ids) for e in tok.encode_batch(ts)]
    order = np.argsort(lens, kind="stable")[::-1]
    emb = np.zeros((len(ts), 0), np.float32)
    rows = [None] * len(ts)
    for s in range(0, len(ts), batch):
        idx = order[s:s + batch]
        tok.enable_padding(pad_id=pad_id)
        enc = tok.encode_batch([ts[i] for i in idx])
        feed = {"input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64)}
        h = sess.run(None, {n: feed[n] for n in names})[0]
        m = feed["attention_mask"][:, :, None].astype(np.float32)
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
import inspect, sys, numpy as np, onnxruntime as ort, torch
from transformers import AutoModel, AutoTokenizer
model, path = sys.argv[1], sys.argv[2]
# .float(): a folder with fp16 weights (the device bundle's) loads as fp16 where
# transformers' default dtype is the checkpoint's (5.x); the peer is fp32
m = AutoModel.from_pretrained(model).float().eval()
tok = AutoTokenizer.from_pretrained(model)
enc = tok(["an example text", "another one, a little longer"], padding=True, return_tensors="pt")
args = (enc["input_ids"], enc["attention_mask"])
axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "hidden": {0: "batch", 1: "seq"}}
check = tok(["a longer text than the example, so the sequence axis really moves", "short", "third"], padding=True,
            return_tensors="np")
with torch.no_grad():
    want = m(**{k: torch.from_numpy(check[k]) for k in ("input_ids", "attention_mask")}).last_hidden_state.numpy()
# The TorchScript exporter first (seconds; dynamo=False), then torch's
# dynamo exporter (the default from 2.9; minutes on a loaded 2-core machine,
# and it needs onnxscript): each graph must hold at another shape than the
# traced one, which torch 2.15's TorchScript export of a transformers 5 model
# did not (the example's padding arithmetic frozen in, off by 6).
has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
why = []
for dynamo in (False, True) if has_dynamo else (None,):
    try:
        torch.onnx.export(m, args, path, input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes=axes, opset_version=18, **({} if dynamo is None else {"dynamo": dynamo}))
        got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
            None, {k: check[k].astype(np.int64) for k in ("input_ids", "attention_mask")})[0]
        err = float(np.abs(got - want).max())
    except Exception as e:
        why.append(f"dynamo={dynamo}: {type(e).__name__}: {str(e)[:200]}")
        continue
    if err <= 1e-4:
        print(f"exported with dynamo={dynamo}: max |ONNX Runtime - torch| {err:.2e} at another shape")
        sys.exit(0)
    why.append(f"dynamo={dynamo}: ONNX Runtime differs from torch by {err:.3g} at another shape than the export's")
sys.exit(f"{path}: no usable export: " + "; ".join(why))
"""


def onnx_models(model, int8):
    """(fp32 path, int8 path or None) of the exported and, with int8,
    quantised model, each made once: built in a temporary folder (the
    exporter writes the weights beside the graph) and renamed, so an
    interrupted export leaves nothing half-made. The int8 model only when
    asked for: quantize_dynamic needs the onnx package, which an image with
    onnxruntime alone lacks."""
    name = os.path.basename(os.path.normpath(model))
    final = os.path.join(CACHE, name)
    fp32, i8 = os.path.join(final, "model.onnx"), os.path.join(final, "model.int8.onnx")
    if not os.path.exists(final):
        os.makedirs(CACHE, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=name + ".", dir=CACHE)
        subprocess.run([sys.executable, "-c", EXPORT_CHILD, model, os.path.join(tmp, "model.onnx")], check=True)
        os.replace(tmp, final)
    if int8 and not os.path.exists(i8):
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(fp32, i8 + ".tmp", weight_type=QuantType.QInt8, per_channel=True)
        os.replace(i8 + ".tmp", i8)
    return fp32, i8 if int8 else None


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
    ap.add_argument("--export-only", action="store_true", help="make the ONNX models (cached) and stop: "
                    "bench/gpu_check.sh does it while the GPU steps run")
    ap.add_argument("--rtr-bench", default=None, help="the bench_encode_cpu binary (default: BUILD/bench/"
                    "bench_encode_cpu; the device bundle's bin/ holds one)")
    ap.add_argument("--base-build", default=None, help="a second build for config rtr-fp32-base (before/after)")
    ap.add_argument("--configs", default="st,ort,ort-int8,rtr-fp32,rtr-int8",
                    help="comma-separated, of: " + ", ".join(LABEL) + " (rtr-...@N: with batch_tokens N)")
    args = ap.parse_args()
    configs = args.configs.split(",")
    names = [args.only] if args.only else ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
    if args.export_only:
        for name in names:
            print(f"{name}: ONNX model {onnx_models(os.path.join(args.models, name), 'ort-int8' in configs)[0]}")
        return
    args.rtr_bench = args.rtr_bench or os.path.join(args.build, "bench", "bench_encode_cpu")
    if not os.access(args.rtr_bench, os.X_OK):
        sys.exit(f"{args.rtr_bench}: not built (cmake --build {args.build})")
    args.base_bench = args.base_build and os.path.join(args.base_build, "bench", "bench_encode_cpu")
    if "rtr-fp32-base" in configs and not (args.base_bench and os.access(args.base_bench, os.X_OK)):
        sys.exit("rtr-fp32-base needs --base-build with bench/bench_encode_cpu built")
    qs = questions()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.threads} threads; load average "
          f"{os.getloadavg()[0]:.2f} at start")
    args.onnx = {}
    for name in names:
        model = os.path.join(args.models, name)
        if not os.path.exists(os.path.join(model, "model.safetensors")):
            print(f"{name}: model folder absent, skipped (tools/fetch-encoder {name} {model})")
            continue
        if any(c.startswith("ort") for c in configs):
            args.onnx[model] = onnx_models(model, "ort-int8" in configs)
        tok = hf_tokenizer(model)
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
            # accuracy against sentence-transformers, else ONNX Runtime fp32 (the same within 1e-6)
            ref = next((c for c in ("st", "ort") if c in embs), None)
            for c in configs:
                qps = sorted(len(texts) / x["secs"] for x in res[c])
                med[c] = float(np.median(qps))
                acc = ""
                if ref and c != ref:
                    cs = cosines(embs[c], embs[ref])
                    acc = f"; cosine to {LABEL[ref].split(' (')[0]} min {cs.min():.5f} mean {cs.mean():.6f}"
                print(f"  {label(c):38s} {med[c]:8.2f} q/s median ({qps[0]:.2f}-{qps[-1]:.2f}){acc}")
            for mine in [c for c in configs if c.startswith("rtr")]:
                for peer in [c for c in configs if not c.startswith("rtr")]:
                    print(f"  ratio {label(mine)} / {label(peer)}: {med[mine] / med[peer]:.2f}x")
            pairs = [("rtr-fp32-passive", "rtr-fp32"), ("rtr-fp32", "rtr-fp32-base"), ("rtr-bf16", "rtr-fp32"),
                     ("rtr-int8", "rtr-fp32")]
            pairs += [(c, d) for c in configs for d in configs if "@" in c and c != d and d.startswith(c.split("@")[0])
                      and configs.index(d) < configs.index(c)]
            for a, b in pairs:
                if a in med and b in med:
                    print(f"  ratio {label(a)} / {label(b)}: {med[a] / med[b]:.2f}x")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
