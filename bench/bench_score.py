#!/usr/bin/env python3
"""Predictor benchmark: rtr against a straightforward implementation of the
RTR paper's concatenation MLP, measured in the same run on the same machine.

  scoring   `rtr score` over Q queries x 24 pairs (default 100,000), end to end
            (HDF5 read, scoring, table write), against NumPy evaluating
            relu([e_q; d_m; d_s; u_m; u_s]·W1ᵀ + b1)·w2 + b2 for both heads on
            a subset of queries with the same checkpoint (its predictions are
            checked against rtr's tables). Reported in (query, pair)
            predictions per second and as a ratio.
  training  seconds per epoch of `rtr train` against a PyTorch loop written
            like the paper (concatenated inputs, two nn.Sequential heads,
            Adam, the same batches of 32 queries with all their pairs), on
            N_TRAIN queries, paper sizes (D = U = H = 768). Skipped without torch.

    bench/bench_score.py --rtr build/rtr [--queries 100000] [--numpy-queries 2000]
                         [--train-queries 2000] [--epochs 2] [--threads 2]

Embeddings are random unit vectors: speed does not depend on their content.
"""
import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import rtrdata  # noqa: E402  (the corpus format written with h5py, docs/FORMAT.md)

D = 768
MODELS, STRATEGIES = 4, 6  # 24 pairs


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def make_corpus(rtr, work, name, n, seed):
    """An ingested corpus of n queries x 24 pairs with random embeddings."""
    rng = np.random.default_rng(seed)
    cat = {"models": [{"name": f"m{i}", "description": f"model {i}"} for i in range(MODELS)],
           "strategies": [{"name": f"s{j}", "description": f"strategy {j}"} for j in range(STRATEGIES)]}
    src = os.path.join(work, name + "_src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "catalog.json"), "w") as f:
        json.dump(cat, f)
    with open(os.path.join(src, "outcomes.jsonl"), "w") as f:
        for q in range(n):
            outs = [{"model": f"m{i}", "strategy": f"s{j}", "correct": float(rng.random() < 0.6),
                     "tokens": float(rng.integers(20, 2000)), "cost": None}
                    for i in range(MODELS) for j in range(STRATEGIES)]
            f.write(json.dumps({"id": f"q{q}", "text": f"query {q}", "dataset": "bench",
                                "split": "train", "outcomes": outs}) + "\n")
    corpus = os.path.join(work, name)
    subprocess.run([rtr, "ingest", "--catalog", os.path.join(src, "catalog.json"), "--out", corpus,
                    os.path.join(src, "outcomes.jsonl")], check=True, stderr=subprocess.DEVNULL)
    unit = lambda r: (lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))(
        rng.standard_normal((r, D)))
    rtrdata.write_embeddings(corpus, "bench-random", "bench", lambda path: unit(h5py.File(path, "r").attrs["n_queries"]),
                             (unit(MODELS), unit(STRATEGIES)), encoder="bench-random")
    return corpus


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {k: np.frombuffer(buf[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
               for k, v in header.items()}
    return tensors, meta


def numpy_concat_mlp(t, meta, emb):
    """The paper's model as written: one concatenated input row per (query, pair)."""
    pm, ps = t["pair_model"].astype(int), t["pair_strategy"].astype(int)
    K, n = len(pm), len(emb)
    x = np.concatenate([np.repeat(emb, K, axis=0),
                        np.tile(t["d_model"][pm], (n, 1)), np.tile(t["d_strategy"][ps], (n, 1)),
                        np.tile(t["u_model"][pm], (n, 1)), np.tile(t["u_strategy"][ps], (n, 1))], axis=1)
    out = []
    for h in ("correct", "tokens"):
        Wm, Ws = t[f"head.{h}.W_m"], t[f"head.{h}.W_s"]
        W1 = np.concatenate([t[f"head.{h}.W_q"], Wm[:, :D], Ws[:, :D], Wm[:, D:], Ws[:, D:]], axis=1)
        z = np.maximum(x @ W1.T + t[f"head.{h}.b1"], 0) @ t[f"head.{h}.w2"] + t[f"head.{h}.b2"][0]
        out.append(z.reshape(n, K))
    p = 1 / (1 + np.exp(-out[0]))
    target = np.logaddexp(0, out[1]) * float(meta["token_scale"])
    tokens = np.expm1(target) if meta["token_target"] == "log" else target
    return p, tokens


def bench_scoring(args, work, rtr):
    corpus = make_corpus(rtr, work, "score", args.queries, 1)
    small = make_corpus(rtr, work, "fit", 256, 2)  # same catalog: its checkpoint fits the big corpus
    ckpt = os.path.join(work, "ck.safetensors")
    subprocess.run([rtr, "train", small, "--out", ckpt, "--epochs", "1"], check=True, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    subprocess.run([rtr, "score", "--checkpoint", ckpt, corpus], check=True, stdout=subprocess.DEVNULL)
    t_rtr = time.perf_counter() - t0
    preds = args.queries * MODELS * STRATEGIES
    rate_rtr = preds / t_rtr

    t, meta = read_safetensors(ckpt)
    first = rtrdata.shards(corpus)[0][1]
    with h5py.File(os.path.join(corpus, "embeddings/bench-random", first)) as f, \
            h5py.File(os.path.join(corpus, "tables/ck", first)) as g:
        nq = min(args.numpy_queries, f["embedding/query"].shape[0])
        emb = f["embedding/query"][:nq]
        ref_p, ref_t = g["routing/p_correct"][:nq], g["routing/tokens"][:nq]
    t0 = time.perf_counter()
    p, tok = numpy_concat_mlp(t, meta, emb)
    t_np = time.perf_counter() - t0
    rate_np = nq * MODELS * STRATEGIES / t_np
    err_p = float(np.max(np.abs(p - ref_p)))
    err_t = float(np.max(np.abs(tok - ref_t) / np.maximum(1, np.abs(ref_t))))
    print(f"scoring: {args.queries} queries x {MODELS * STRATEGIES} pairs, D=H=U={D}")
    print(f"  rtr score (end to end, HDF5 in and out): {t_rtr:8.2f} s  {rate_rtr:14,.0f} predictions/s")
    print(f"  NumPy concat MLP ({nq} queries, compute only): {t_np:8.2f} s  {rate_np:14,.0f} predictions/s")
    print(f"  ratio rtr / NumPy: {rate_rtr / rate_np:.1f}x   (max |dp| {err_p:.2e}, max rel dtokens {err_t:.2e})")
    return err_p < 1e-4 and err_t < 1e-3


def torch_epoch_seconds(args, emb, yc, yt, epochs):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    n, K = yc.shape
    pm = torch.arange(K) // STRATEGIES
    ps = torch.arange(K) % STRATEGIES
    d_m, d_s = torch.randn(MODELS, D), torch.randn(STRATEGIES, D)
    u_m = torch.nn.Parameter(torch.randn(MODELS, D) / D ** 0.5)
    u_s = torch.nn.Parameter(torch.randn(STRATEGIES, D) / D ** 0.5)
    heads = [torch.nn.Sequential(torch.nn.Linear(5 * D, D), torch.nn.ReLU(), torch.nn.Linear(D, 1)) for _ in range(2)]
    opt = torch.optim.Adam([u_m, u_s] + [p for h in heads for p in h.parameters()], lr=1e-3)
    E, Yc, Yt = torch.from_numpy(emb), torch.from_numpy(yc), torch.from_numpy(np.log1p(yt) / 6)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        for b in range(0, n, 32):
            q = order[b:b + 32]
            B = len(q)
            x = torch.cat([E[q].repeat_interleave(K, 0), d_m[pm].repeat(B, 1), d_s[ps].repeat(B, 1),
                           u_m[pm].repeat(B, 1), u_s[ps].repeat(B, 1)], dim=1)
            zc = heads[0](x).squeeze(1)
            zt = torch.nn.functional.softplus(heads[1](x).squeeze(1))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(zc, Yc[q].reshape(-1)) + \
                torch.nn.functional.mse_loss(zt, Yt[q].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_training(args, work, rtr):
    try:
        import torch  # noqa: F401
    except ImportError:
        print("training: skipped (PyTorch is not installed)")
        return True
    corpus = make_corpus(rtr, work, "train", args.train_queries, 3)
    ckpt = os.path.join(work, "train.safetensors")
    out = subprocess.run([rtr, "train", corpus, "--out", ckpt, "--epochs", str(args.epochs), "--val-frac", "0",
                          "--json"], check=True, capture_output=True, text=True)
    rtr_epoch = min(e["seconds"] for e in json.loads(out.stdout)["epochs"])
    path, first, _, _ = rtrdata.shards(corpus)[0]
    with h5py.File(path) as f, h5py.File(os.path.join(corpus, "embeddings/bench-random", first)) as e:
        emb, yc, yt = e["embedding/query"][()], f["outcomes/correct"][()], f["outcomes/tokens"][()]
    t_torch = torch_epoch_seconds(args, emb, yc, yt, args.epochs)
    print(f"training: {args.train_queries} queries x {MODELS * STRATEGIES} pairs, batch 32 queries, D=H=U={D}")
    print(f"  rtr train:          {rtr_epoch:8.2f} s/epoch")
    print(f"  PyTorch concat MLP: {t_torch:8.2f} s/epoch (torch {torch.__version__}, {args.threads} threads)")
    print(f"  ratio PyTorch / rtr: {t_torch / rtr_epoch:.1f}x")
    return True


def main():
    ap = argparse.ArgumentParser(description="rtr predictor benchmark (see the module docstring)")
    ap.add_argument("--rtr", required=True)
    ap.add_argument("--queries", type=int, default=100000)
    ap.add_argument("--numpy-queries", type=int, default=2000)
    ap.add_argument("--train-queries", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    rtr = os.path.abspath(args.rtr)
    print(f"machine: {machine()}; NumPy {np.__version__}")
    with tempfile.TemporaryDirectory() as work:
        ok = bench_scoring(args, work, rtr)
        if not args.skip_training:
            ok &= bench_training(args, work, rtr)
    if not ok:
        print("error: NumPy and rtr predictions disagree", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
