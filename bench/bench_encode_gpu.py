#!/usr/bin/env python3
"""GPU encode throughput: `rtr encode --device cuda --precision bf16` against
sentence-transformers fp16 on the same GPU, in the same run, on 100k
real-length queries, with the compute floor.

    bench/bench_encode_gpu.py [--rtr build-gpu/rtr] [--model all-MiniLM-L6-v2] [-n 100000]
                              [--device cuda] [--precision bf16] [--peak-tflops 989] [--tokens T]

The corpus is the 2,100 questions of ../shared/data/rtr_questions
($RTR_SHARED_DATA) repeated and shuffled (seeded) to n queries (71.6 MiniLM
tokens each on average), ingested with `rtr ingest` into a temporary folder;
where that file is absent (a GPU node gets no ../shared), 2,100 questions of
`rtr gen-demo` instead, as the first line says. With --tokens T every
query is exactly T tokens long instead (T - 2 whole words drawn, seeded,
from the model's vocab.txt, each one token; the count is checked with the
tokenizer): the issue's target is stated at 64. rtr's rate is its encoder time
(the JSON summary's encode_seconds: tokenizing, batching, forward passes and
copies, not loading or the HDF5 writes), best of --rounds runs, and end to
end (the whole `rtr encode` command). sentence-transformers encodes the same
texts after loading and a warm-up, best of --st-batches; it is skipped with a
message where torch or its CUDA device is missing. With --device cpu both
run on the CPU, sentence-transformers in fp32 with the same threads: the
check that this script works on a machine without a GPU.

The floor is 2 x (linear-layer parameters) x (real tokens) FLOPs at the
card's dense peak (default 989 TFLOP/s: H100 SXM bf16), the GEMM time no
implementation can beat (attention adds about 4 x layers x hidden x tokens
x mean length, a few percent at these lengths). A model folder made by
tools/random-encoder (random_weights.json in it) is named as such: its
throughput is the real model's, its embeddings mean nothing. The last line
("summary: ...") holds the figures in one line. Tokens are counted with the
Hugging Face `tokenizers` library on the model's tokenizer.json (the ids rtr
reproduces exactly, tests/test_tokenizer.c). Exit status 77 when the model
folder is absent.
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
TARGET_QPS = 50000  # the encode target on one H100


def questions(work):
    """The real questions, or where ../shared is absent (a GPU node) the demo
    corpus's generated ones; and where they came from."""
    path = os.path.join(SHARED, "rtr_questions", "all_questions_merged.csv")
    if os.path.exists(path):
        with open(path, encoding="utf-8-sig", newline="") as f:
            return [r["question"] for r in csv.DictReader(f)], "real questions of rtr_questions"
    with open(os.path.join(work, "demo", "outcomes.jsonl")) as f:
        return [json.loads(line)["text"] for line in f], f"generated questions of `rtr gen-demo` ({path} absent)"


def corpus_texts(qs, n, seed):
    """n texts (the questions repeated, shuffled) and the question index of each."""
    picks = list(range(len(qs))) * -(-n // len(qs))
    random.Random(seed).shuffle(picks)
    picks = picks[:n]
    return [qs[i] for i in picks], picks


def fixed_length_texts(model, tokens, n, seed):
    """n texts of exactly `tokens` tokens (specials included): tokens - 2 whole
    words of the model's vocabulary, one token each."""
    with open(os.path.join(model, "vocab.txt"), encoding="utf-8") as f:
        words = [w.strip() for w in f if w.strip().isascii() and w.strip().isalpha() and len(w.strip()) >= 3]
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=tokens - 2)) for _ in range(n)]


def max_seq_length(model):
    try:
        with open(os.path.join(model, "sentence_bert_config.json")) as f:
            return int(json.load(f)["max_seq_length"])
    except (OSError, KeyError, ValueError):
        return 512


def count_tokens(model, qs, picks):
    """Real tokens of the corpus (specials included, truncated as the encoder does), or None."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tok.no_padding()  # tokenizer.json may ask for padding (MiniLM's: to 128)
    tok.enable_truncation(max_length=max_seq_length(model))
    per_q = [len(e.ids) for e in tok.encode_batch(qs)]
    return sum(per_q[i] for i in picks)


def linear_params(model):
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    C, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return L * (4 * C * C + 2 * C * F)


H100 = (989.0, 3.35)  # dense bf16 TFLOP/s, HBM TB/s (datasheets)
H200 = (989.0, 4.8)


def roofline_qps(model, tokens_per_query, tflops, tbps, gelu_epilogue=False):
    """Queries/s of the bf16 encoder path at these peaks: the sum over its
    kernels of max(FLOPs / peak, bytes / bandwidth) per token, as in
    docs/CUDA.md and bench_backend (weights, read once per batch of 65k
    tokens, and the position bias are left out: under 1%)."""
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    C, F, L, T = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], tokens_per_query
    kernels = [  # (FLOPs, bytes) per token of one layer, bf16 activations (2 bytes)
        (2 * 3 * C * C, 2 * (C + 3 * C)),  # QKV GEMM
        (4 * T * C, 2 * (3 * C + C)),  # flash attention (q, k, v read once, out written once)
        (2 * C * C, 2 * 2 * C),  # out-projection GEMM
        (0, 2 * 3 * C),  # residual + LayerNorm
        (2 * C * F, 2 * (C + F)),  # feed-forward GEMM
        (2 * C * F, 2 * (F + C)),  # its projection GEMM
        (0, 2 * 3 * C),  # residual + LayerNorm
    ]
    if not gelu_epilogue:
        kernels.append((0, 2 * 2 * F))  # bias + GELU pass
    per_token = L * sum(max(fl / (tflops * 1e12), by / (tbps * 1e12)) for fl, by in kernels)
    per_token += (10 * C + 2 * C) / (tbps * 1e12)  # embedding LayerNorm (fp32 tables), pooling
    return 1.0 / (per_token * T)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r


def run_rtr(args, model, texts, work):
    with open(os.path.join(work, "queries.jsonl"), "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"q{i}", "text": t}) + "\n")
    catalog = os.path.join(work, "demo", "catalog.json")
    corpus = os.path.join(work, "corpus")
    run([args.rtr, "ingest", "--catalog", catalog, "--out", corpus, os.path.join(work, "queries.jsonl")])
    best = None
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        r = run([args.rtr, "encode", "--model", model, "--device", args.device, "--precision", args.precision,
                 "--threads", str(args.threads), "--force", "--json", corpus])
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["wall"] = time.perf_counter() - t0
        if out["queries_encoded"] != len(texts):
            sys.exit(f"rtr encode encoded {out['queries_encoded']} of {len(texts)} queries")
        best = out if best is None or out["encode_seconds"] < best["encode_seconds"] else best
    return best


ST_CHILD = r"""
import json, sys, time
try:
    import torch
    from sentence_transformers import SentenceTransformer
except Exception as e:
    print(json.dumps({"skip": f"sentence-transformers / torch not importable ({type(e).__name__}: {e})"}))
    sys.exit(0)
model, device, threads, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if device == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"skip": f"torch {torch.__version__} sees no CUDA device"}))
    sys.exit(0)
texts = json.load(sys.stdin)
if threads > 0:
    torch.set_num_threads(threads)
st = SentenceTransformer(model, device=device)
if device == "cuda":
    st = st.half()
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
runs = []
for b in map(int, batches.split(",")):
    st.encode(texts[:2 * b], batch_size=b)
    sync()
    t0 = time.perf_counter()
    st.encode(texts, batch_size=b, convert_to_numpy=True)
    sync()
    runs.append({"batch": b, "secs": time.perf_counter() - t0})
name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
print(json.dumps({"runs": runs, "device": name, "dtype": "fp16" if device == "cuda" else "fp32",
                  "versions": f"torch {torch.__version__}"}))
"""


def run_st(args, model, texts):
    r = subprocess.run([sys.executable, "-c", ST_CHILD, model, args.device, str(args.threads), args.st_batches],
                       input=json.dumps(texts), capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        return {"skip": f"sentence-transformers failed ({r.returncode}): {r.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtr", default=os.path.join(ROOT, "build-gpu", "rtr"))
    ap.add_argument("--models", default=os.environ.get("RTR_MODELS_DIR", os.path.join(ROOT, "data", "models")))
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("-n", type=int, default=100000, help="queries")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a check without a GPU")
    ap.add_argument("--precision", default=None, help="rtr's GEMM inputs (default: bf16 on cuda, fp32 on cpu)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of both (0: all)")
    ap.add_argument("--rounds", type=int, default=2, help="rtr encode runs; the best is kept")
    ap.add_argument("--st-batches", default=None, help="sentence-transformers batch sizes (default: 128,512 on "
                    "cuda, 32 on cpu)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense peak for the floor (default on cuda: 989, H100 SXM bf16)")
    ap.add_argument("--peak-tbps", type=float, default=None,
                    help="memory bandwidth for the roofline (default on cuda: 3.35, H100 SXM)")
    ap.add_argument("--tokens", type=int, default=0, help="queries of exactly this many tokens (0: real questions)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    gpu = args.device != "cpu"
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    args.st_batches = args.st_batches or ("128,512" if gpu else "32")
    peak = args.peak_tflops or (989.0 if gpu else None)
    bw = args.peak_tbps or 3.35
    model = os.path.join(args.models, args.model)
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        print(f"{model}: model folder absent, skipped (tools/fetch-encoder {args.model} {model})")
        sys.exit(77)

    with tempfile.TemporaryDirectory(prefix="rtr_bench_encode_") as work:
        # the catalog for ingest, and the questions where ../shared is absent
        run([args.rtr, "gen-demo", "--queries", "2100", os.path.join(work, "demo")])
        if args.tokens:
            if not 3 <= args.tokens <= max_seq_length(model):
                sys.exit(f"--tokens {args.tokens}: outside 3..{max_seq_length(model)}")
            qs = fixed_length_texts(model, args.tokens, args.n, args.seed)
            texts, picks, source = qs, list(range(args.n)), f"texts of exactly {args.tokens} tokens, seed {args.seed}"
        else:
            qs, source = questions(work)
            texts, picks = corpus_texts(qs, args.n, args.seed)
            source = f"{len(qs)} {source}, repeated and shuffled, seed {args.seed}"
        tokens = count_tokens(model, qs, picks)
        if args.tokens and tokens is not None and tokens != args.tokens * len(texts):
            sys.exit(f"--tokens {args.tokens}: the texts have {tokens} tokens, not {args.tokens * len(texts)}")
        random_weights = os.path.exists(os.path.join(model, "random_weights.json"))
        print(f"== encode benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.model}"
              f"{' (random weights: tools/random-encoder)' if random_weights else ''}, "
              f"{len(texts)} queries ({source}), "
              + (f"{tokens} tokens ({tokens / len(texts):.1f} per query, max {max_seq_length(model)})"
                 if tokens else "tokens not counted (no `tokenizers` module)"))
        r = run_rtr(args, model, texts, work)
    qps = len(texts) / r["encode_seconds"]
    print(f"rtr encode on {r['device']}, {r['precision']} GEMMs, batches of {r['batch_tokens']} tokens "
          f"(best of {args.rounds}): {qps:9.0f} q/s in the encoder ({r['encode_seconds']:.3f} s); "
          f"end to end {len(texts) / r['wall']:.0f} q/s ({r['wall']:.2f} s: load {r['load_seconds']:.2f} s, "
          f"HDF5 and the rest {r['wall'] - r['encode_seconds'] - r['load_seconds']:.2f} s)")
    st = run_st(args, model, texts)
    st_qps = None
    if "skip" in st:
        print(f"sentence-transformers: skipped: {st['skip']}")
    else:
        for s in st["runs"]:
            print(f"sentence-transformers {st['dtype']} on {st['device']}, batch {s['batch']:4d}: "
                  f"{len(texts) / s['secs']:9.0f} q/s ({s['secs']:.3f} s; {st['versions']})")
        best = min(st["runs"], key=lambda s: s["secs"])
        st_qps = len(texts) / best["secs"]
        print(f"ratio rtr / sentence-transformers (best batch, {best['batch']}): {qps / st_qps:.2f}x")
    if peak and tokens:
        flop = 2 * linear_params(model) * tokens
        floor = flop / (peak * 1e12)
        print(f"floor: 2 x {linear_params(model) / 1e6:.1f}M linear params x {tokens} tokens = {flop / 1e12:.3g} "
              f"TFLOP = {floor * 1e3:.3g} ms at {peak:g} TFLOP/s -> {len(texts) / floor:.0f} q/s; rtr reaches "
              f"{floor / r['encode_seconds']:.1%} of it ({flop / r['encode_seconds'] / 1e12:.3g} TFLOP/s)")
    if gpu and tokens:
        t = tokens / len(texts)
        here = roofline_qps(model, t, peak, bw)
        print(f"roofline of the bf16 path (docs/CUDA.md) at {t:.1f} tokens a query: {here:.0f} q/s at "
              f"{peak:g} TFLOP/s and {bw:g} TB/s (rtr reaches {qps / here:.0%}); datasheet H100 SXM "
              f"{roofline_qps(model, t, *H100):.0f} q/s ({roofline_qps(model, t, *H100, True):.0f} with the GELU "
              f"epilogue), H200 {roofline_qps(model, t, *H200):.0f} q/s")
    if gpu:
        print(f"target {TARGET_QPS} q/s: {'met' if qps >= TARGET_QPS else 'not met'} ({qps / TARGET_QPS:.2f}x)")
    print(f"summary: rtr {qps:.0f} q/s" + (f", sentence-transformers {st_qps:.0f} q/s ({qps / st_qps:.2f}x)"
                                          if st_qps else ", sentence-transformers skipped")
          + (f", roofline {roofline_qps(model, tokens / len(texts), peak, bw):.0f} q/s" if gpu and tokens else ""))


if __name__ == "__main__":
    main()
