#!/usr/bin/env python3
"""Encoder throughput: rtr against sentence-transformers (PyTorch, CPU) on the
2,100 real questions of ../shared/data/rtr_questions, measured in the same run,
same thread count, same max length (the model's), both models.

    bench/bench_encode.py [--rtr build/rtr] [--models data/models] [--threads 2]

rtr is run as `rtr embed` (load + encode + JSON output); its encode time is
that run minus a run on empty input (load only), twice: with the environment
as given (this site sets OPENBLAS_CORETYPE=Haswell: AVX2 kernels) and with
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in that command alone (OpenBLAS
picks its kernel; the name is printed). sentence-transformers (MKL, not
affected by those variables) encodes the same texts after loading and one
warm-up batch, for each batch size tried. Runs are interleaved over --rounds
rounds and the best of each configuration is reported, since the machine is
shared and its load varies. Peak RSS of each side is its own process's. The GEMM
rate counts 2 x (linear-layer parameters) FLOPs per real token and is
compared with the machine's FP32 peak (cores x clock x FLOP/cycle: 64 with
AVX-512 (two 16-wide FMA pipes, e.g. Zen 5), else 32; --flop-per-cycle
overrides) and with a large numpy float32 matmul measured here.
"""
import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def questions():
    path = os.path.join(SHARED, "rtr_questions", "all_questions_merged.csv")
    with open(path, encoding="utf-8-sig", newline="") as f:
        # one line per text for `rtr embed`: inner newlines become spaces on both sides
        return [" ".join(r["question"].splitlines()) for r in csv.DictReader(f)]


def blas_env(autodetect):
    env = dict(os.environ)
    if autodetect:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def blas_kernel(autodetect):
    code = "import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_corename.restype = ctypes.c_char_p; " \
           "print(l.openblas_get_corename().decode())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=blas_env(autodetect))
    return r.stdout.decode().strip() or "?"


def run_rtr(rtr, model, threads, text, autodetect):
    """(seconds, peak RSS MiB) of `rtr embed` on text."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", rtr, "embed", "--model", model, "--threads", str(threads)],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=blas_env(autodetect))
    _, err = p.communicate(text.encode())
    secs = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"rtr embed failed: {err.decode()}")
    return secs, int(err.decode().strip().splitlines()[-1]) / 1024


ST_CHILD = r"""
import json, resource, sys, time
import torch
from sentence_transformers import SentenceTransformer
model, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
texts = json.load(sys.stdin)
torch.set_num_threads(threads)
st = SentenceTransformer(model, device="cpu")
st.encode(texts[:batch], batch_size=batch)
t0 = time.perf_counter()
emb = st.encode(texts, batch_size=batch, convert_to_numpy=True)
secs = time.perf_counter() - t0
ids = st.tokenize(texts)["attention_mask"].sum().item()
print(json.dumps({"secs": secs, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tokens": ids, "max_len": st.max_seq_length}))
"""


def run_st(model, threads, batch, texts):
    out = subprocess.run([sys.executable, "-c", ST_CHILD, model, str(threads), str(batch)],
                         input=json.dumps(texts).encode(), capture_output=True, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def linear_params(model):
    cfg = json.load(open(os.path.join(model, "config.json")))
    C, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return L * (4 * C * C + 2 * C * F)


def numpy_sgemm_gflops(threads):
    code = ("import numpy as np, time\n"
            "a=np.random.rand(2048,2048).astype('f4'); b=np.random.rand(2048,2048).astype('f4'); a@b\n"
            "t=time.perf_counter(); [a@b for _ in range(5)]; print(5*2*2048**3/(time.perf_counter()-t)/1e9)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=env).stdout)


def avx512():
    with open("/proc/cpuinfo") as f:
        return " avx512f" in f.read()


def cpu_mhz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1])
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtr", default=os.path.join(ROOT, "build", "rtr"))
    ap.add_argument("--models", default=os.environ.get("RTR_MODELS_DIR", os.path.join(ROOT, "data", "models")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="16,32,64", help="sentence-transformers batch sizes to try")
    ap.add_argument("--only", default=None, help="one model name (default: both)")
    ap.add_argument("--flop-per-cycle", type=int, default=None, help="FP32 FLOP/cycle/core for the peak")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is kept")
    args = ap.parse_args()
    texts = questions()
    joined = "\n".join(texts) + "\n"
    fpc = args.flop_per_cycle or (64 if avx512() else 32)
    peak = os.cpu_count() * cpu_mhz() * 1e6 * fpc / 1e9
    blas = numpy_sgemm_gflops(args.threads)
    kernels = {False: blas_kernel(False), True: blas_kernel(True)}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs at {cpu_mhz():.0f} MHz; "
          f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"FP32 peak {peak:.0f} GFLOP/s ({fpc} FLOP/cycle/core); numpy 2048^3 sgemm {blas:.0f} GFLOP/s; "
          f"{len(texts)} questions, {args.threads} threads")
    for name in [args.only] if args.only else ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]:
        model = os.path.join(args.models, name)
        if not os.path.exists(os.path.join(model, "model.safetensors")):
            print(f"{name}: model folder absent, skipped (tools/fetch-encoder {name} {model})")
            continue
        st, rtr = {}, {}
        for _ in range(args.rounds):
            for b in map(int, args.batches.split(",")):
                r = dict(run_st(model, args.threads, b, texts), batch=b)
                st[b] = min(st.get(b, r), r, key=lambda x: x["secs"])
            for auto in (False, True):
                load, _ = run_rtr(args.rtr, model, args.threads, "", auto)
                total, rss = run_rtr(args.rtr, model, args.threads, joined, auto)
                r = {"secs": total - load, "total": total, "load": load, "rss": rss}
                rtr[auto] = min(rtr.get(auto, r), r, key=lambda x: x["secs"])
        best = min(st.values(), key=lambda r: r["secs"])
        qps_st = len(texts) / best["secs"]
        gflop = 2 * linear_params(model) * best["tokens"] / 1e9
        print(f"{name} (max_len {best['max_len']}, {best['tokens']} tokens, best of {args.rounds} rounds):")
        for r in st.values():
            print(f"  sentence-transformers batch {r['batch']:3d}: {len(texts) / r['secs']:7.1f} q/s")
        print(f"  sentence-transformers best: {qps_st:7.1f} q/s, peak RSS {best['rss']:.0f} MiB, "
              f"GEMMs {gflop / best['secs']:.0f} GFLOP/s ({gflop / best['secs'] / peak:.0%} of peak)")
        for auto, r in rtr.items():
            label = f"rtr embed, OpenBLAS {kernels[auto]}"
            qps = len(texts) / r["secs"]
            print(f"  {label:30s} {qps:7.1f} q/s, peak RSS {r['rss']:.0f} MiB, "
                  f"GEMMs {gflop / r['secs']:.0f} GFLOP/s ({gflop / r['secs'] / peak:.0%} of peak); "
                  f"load {r['load']:.2f}s, end to end {len(texts) / r['total']:.1f} q/s; "
                  f"ratio rtr / sentence-transformers: {qps / qps_st:.2f}x")


if __name__ == "__main__":
    main()
