#!/usr/bin/env python3
"""Choices of the predictor made on validation carved from the training split
only (docs/results.md, "Ablation: chosen on validation"): the token target,
seed ensembles and an EmbedLLM-style blend, each scored by `rtr eval` on
the validation queries, never on the test split.

    bench/predictor_validation.py RTR CORPUS OUT_DIR [--share 0.1] [--carve-seed 7]
                                  [--seeds 5] [--cost tokens,usd] [--bootstrap 500]
                                  [--train-options '...']

CORPUS is an encoded corpus (schema 2; tools/run-results makes them). OUT_DIR
gets a copy of it in which a seeded share of the `train` queries is
relabelled `trval` (validation: no network, baseline or blend fits on it;
the shard's content hash is recomputed with the store's rule, so rtr reads
the copy as its own corpus), the checkpoints, their routing tables and the
evaluations. Networks (default options, seed 42 unless said):
  raw, rawu, log, logu   --token-target raw|log, with and without --no-token-scale
  raw-sN                 raw with --seed N (N = 1 .. seeds-1)
Tables built from them (mean of estimates, as a seed ensemble would route):
  ensK                   mean of the first K raw networks' p_correct and tokens
  raw-embllm             logistic blend of raw's logit with an EmbedLLM-style
                         logit (the port of src/eval/embedllm.c below, fitted
                         on `train`); validation rows get 5-fold out-of-fold
                         weights, the others weights fitted on every validation row
Prints per table: validation log-loss and token MAE, then `rtr eval
--split trval --arch paper` AIQ and cost to match per cost unit.

With --spread N the script asks one question only: does averaging seeds make
the operating point stable? It trains raw networks with seeds 42, 1 .. N-1
(a checkpoint already in OUT_DIR under its name is kept, so a run can be
resumed or given networks trained before on the same carve), then, for K in
--ensemble-sizes, evaluates the mean of the estimates of K seeds for every
K-subset of them (at most --subsets, seeded draw) with `rtr eval --split
trval --arch paper --bootstrap 0`, and prints per K and cost unit the
distribution over seed draws of the cost to match the best single pair
(share never reached, quartiles, range), of AIQ and of the accuracy at the
operating point. `--share 0 --eval-split test` asks the same of the test
split (networks on the whole training split), for the record only.
"""
import argparse
import glob
import itertools
import json
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np


def strings(f, name):
    b = f[f"queries/{name}/bytes"][:].tobytes()
    o = f[f"queries/{name}/offsets"][:]
    return [b[o[i]:o[i + 1]] for i in range(len(o) - 1)]


def fnv(h, data):
    """rtr_hash64 (src/common/util.c): FNV-1a, 64 bits."""
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def carve(src, dst, share, seed):
    """Copy src without its tables, `share` of every shard's train rows -> trval."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tables"))
    m = json.load(open(os.path.join(dst, "manifest.json")))
    rng = np.random.default_rng(seed)
    n_val = n_train = 0
    for sh in m["shards"]:
        path = os.path.join(dst, sh["file"])
        with h5py.File(path, "r+") as f:
            cols = {k: strings(f, k) for k in ("id", "text", "dataset", "split")}
            train = [i for i, s in enumerate(cols["split"]) if s == b"train"]
            pick = rng.choice(train, size=int(round(share * len(train))), replace=False) if train else []
            raw = bytearray(f["queries/split/bytes"][:].tobytes())
            offs = f["queries/split/offsets"][:]
            for i in pick:  # 'trval' has the length of 'train': the offsets stay
                raw[offs[i]:offs[i + 1]] = b"trval"
                cols["split"][i] = b"trval"
            f["queries/split/bytes"][:] = np.frombuffer(bytes(raw), np.uint8)
            mats = [f[f"outcomes/{k}"][:].astype(np.float32) for k in ("correct", "tokens", "cost")]
            h = 0xCBF29CE484222325  # the shard writer's content hash (src/store/store.c)
            for i in range(len(cols["split"])):
                for k in ("id", "text", "dataset", "split"):
                    h = fnv(h, cols[k][i] + b"\0")
                for x in mats:
                    h = fnv(h, x[i].tobytes())
            sh["hash"] = f"{h:016x}"
            f.attrs["shard_hash"] = np.bytes_(sh["hash"].encode())
        for e in glob.glob(os.path.join(dst, "embeddings", "*", sh["file"])):
            with h5py.File(e, "r+") as f:
                f.attrs["shard_hash"] = np.bytes_(sh["hash"].encode())
        n_val += len(pick)
        n_train += len(train)
    with open(os.path.join(dst, "manifest.json"), "w") as f:
        json.dump(m, f, indent="\t")
    return n_val, n_train


def read_all(corpus, group, keys):
    """Concatenate datasets over the shards (the corpus's, or a table's/embeddings' files)."""
    m = json.load(open(os.path.join(corpus, "manifest.json")))
    out = {k: [] for k in keys}
    for sh in m["shards"]:
        with h5py.File(os.path.join(corpus, group, sh["file"]) if group else os.path.join(corpus, sh["file"]), "r") as f:
            for k in keys:
                out[k].append(f[k][:] if not k.startswith("queries/") else
                              np.array([s.decode() for s in strings(f, k.split("/")[1])]))
    return {k: np.concatenate(v) for k, v in out.items()}


def write_table(corpus, base, name, p, t):
    """tables/name: base's files (its attributes) with p_correct and tokens replaced."""
    dst = os.path.join(corpus, "tables", name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(corpus, "tables", base), dst)
    m = json.load(open(os.path.join(corpus, "manifest.json")))
    at = 0
    for sh in m["shards"]:
        with h5py.File(os.path.join(dst, sh["file"]), "r+") as f:
            n = f["routing/p_correct"].shape[0]
            f["routing/p_correct"][:] = p[at:at + n].astype(np.float32)
            f["routing/tokens"][:] = t[at:at + n].astype(np.float32)
            f.attrs["table"] = np.bytes_(name.encode())
            at += n


def sig(z):
    return 1 / (1 + np.exp(-z))


def logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def embedllm(x, y, emb, dim=32, epochs=300, lr=1e-2, wd=1e-4):
    """P(correct) = σ(v_j·(W·e) + b_j), full-batch Adam (src/eval/embedllm.c's defaults)."""
    mask = ~np.isnan(y)
    y0 = np.where(mask, y, 0)
    n, d = x.shape
    k = y.shape[1]
    rng = np.random.default_rng(1)
    mean = (y0.sum(0) + 0.5) / (mask.sum(0) + 1)
    par = [rng.uniform(-1 / np.sqrt(d), 1 / np.sqrt(d), (dim, d)), rng.uniform(-0.1, 0.1, (k, dim)),
           np.log(mean / (1 - mean))]
    m1 = [np.zeros_like(a) for a in par]
    m2 = [np.zeros_like(a) for a in par]
    for ep in range(epochs):
        w, v, b = par
        z = x @ w.T
        g = np.where(mask, sig(z @ v.T + b) - y0, 0) / mask.sum()
        grads = ((g @ v).T @ x + wd * w, g.T @ z + wd * v, g.sum(0))
        for i, gr in enumerate(grads):
            m1[i] = 0.9 * m1[i] + 0.1 * gr
            m2[i] = 0.999 * m2[i] + 0.001 * gr * gr
            par[i] = par[i] - lr * (m1[i] / (1 - 0.9 ** (ep + 1))) / (np.sqrt(m2[i] / (1 - 0.999 ** (ep + 1))) + 1e-8)
    w, v, b = par
    return sig((emb @ w.T) @ v.T + b)


def fit_blend(feats, y):
    """Logistic regression (Newton, ridge 1e-3) of fractional labels on [1, features]."""
    x = np.stack([np.ones(y.size)] + [f.ravel() for f in feats], 1)
    yy = y.ravel()
    ok = ~np.isnan(yy)
    x, yy = x[ok], yy[ok]
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = sig(x @ w)
        g = x.T @ (p - yy) / len(yy) + 1e-3 * w
        h = (x * (p * (1 - p))[:, None]).T @ x / len(yy) + 1e-3 * np.eye(len(w))
        w -= np.linalg.solve(h, g)
    return w


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"predictor_validation: {' '.join(cmd)} failed:\n{r.stderr}")
    return r


def train_score(a, c, name, seed, opt):
    """One network on the carved corpus and its routing table (an existing checkpoint is kept)."""
    ck = os.path.join(a.out, name + ".safetensors")
    if not os.path.exists(ck):
        t0 = time.monotonic()
        run([a.rtr, "train", c, "--out", ck, "--seed", str(seed), "--device", "cpu", "-q", *opt, *a.train_options.split()])
        print(f"trained {name}: {time.monotonic() - t0:.1f} s", flush=True)
    run([a.rtr, "score", "--checkpoint", ck, "--name", name, "--device", "cpu", "-q", c])


def quartiles(v):
    """Quartiles of cost-to-match values where None (never reached) ranks above every number."""
    s = sorted(v, key=lambda x: (x is None, x or 0))
    q = lambda f: s[min(len(s) - 1, int(round(f * (len(s) - 1))))]
    f = lambda x: "never" if x is None else f"{x:.3f}"
    return f"{f(q(0.25))} / {f(q(0.5))} / {f(q(0.75))}", f"{f(s[0])} to {f(s[-1])}"


def spread(a, c):
    """Seed-draw distribution of the validation operating point, single networks against seed ensembles."""
    members = ["raw"] + [f"raw-s{s}" for s in range(1, a.spread)]
    for name, seed in zip(members, [42] + list(range(1, a.spread))):
        train_score(a, c, name, seed, [])
    tab = {m: read_all(c, os.path.join("tables", m), ["routing/p_correct", "routing/tokens"]) for m in members}
    rng = np.random.default_rng(a.carve_seed)
    draws = {}
    for k in [int(x) for x in a.ensemble_sizes.split(",")]:
        subs = list(itertools.combinations(range(len(members)), k))
        if len(subs) > a.subsets:
            subs = [subs[i] for i in sorted(rng.choice(len(subs), a.subsets, replace=False))]
        draws[k] = []
        for sub in subs:
            name = members[sub[0]] if k == 1 else "ens-" + "-".join(str(i) for i in sub)
            if k > 1:
                write_table(c, "raw", name, np.mean([tab[members[i]]["routing/p_correct"] for i in sub], 0),
                            np.mean([tab[members[i]]["routing/tokens"] for i in sub], 0))
            draws[k].append(name)
    for cost in a.cost.split(","):
        print(f"\nrtr eval --split {a.eval_split} --arch paper --bootstrap 0 --cost {cost}: over seed draws, "
              "cost to match (quartiles; range; share never), AIQ (mean, SD), accuracy at the operating point (mean, SD)")
        for k, names in draws.items():
            res = {}
            for i in range(0, len(names), 8):  # eval takes at most 8 tables at once
                group = names[i:i + 8]
                out = os.path.join(a.out, f"spread-{cost}-{k}-{i}.json")
                run([a.rtr, "eval", c, "--out", out, "--split", a.eval_split, "--arch", "paper", "--table", ",".join(group),
                     "--cost", cost, "--bootstrap", "0", "--no-embedllm", "--device", "cpu", "-q"])
                for r in json.load(open(out))["routers"]:
                    if r["name"] == "RTR" and len(group) == 1:
                        res[group[0]] = r
                    elif r["name"].startswith("RTR: "):
                        res[r["name"][5:]] = r
            ctm = [res[n].get("cost_to_match") for n in names]
            aiq = np.array([res[n]["aiq"] for n in names])
            acc = np.array([res[n]["op"]["acc"] for n in names])
            qs, rg = quartiles(ctm)
            never = sum(x is None for x in ctm)
            print(f"  K = {k} ({len(names)} draws): to match {qs}; {rg}; never {never} of {len(names)}; "
                  f"AIQ {aiq.mean():.4f} ({aiq.std():.4f}); accuracy {100 * acc.mean():.2f}% ({100 * acc.std():.2f})")
            print("    " + ", ".join(f"{n}: {'never' if res[n].get('cost_to_match') is None else format(res[n]['cost_to_match'], '.3f')}"
                                    for n in names))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rtr")
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--share", type=float, default=0.1, help="share of the train queries relabelled trval")
    ap.add_argument("--carve-seed", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=5, help="raw networks for the ensembles (seeds 42, 1, 2, ...)")
    ap.add_argument("--cost", default="tokens,usd")
    ap.add_argument("--bootstrap", default="500")
    ap.add_argument("--train-options", default="", help="more `rtr train` options for every network (a smoke run: '--epochs 2')")
    ap.add_argument("--spread", type=int, default=0, help="only the seed-spread study, over N raw networks")
    ap.add_argument("--ensemble-sizes", default="1,3,5", help="with --spread: the K of the seed means")
    ap.add_argument("--subsets", type=int, default=40, help="with --spread: most K-subsets evaluated per K")
    ap.add_argument("--eval-split", default="trval", help="with --spread: the split evaluated (test: for the record)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    c = os.path.join(a.out, "corpus")
    n_val, n_train = carve(a.corpus, c, a.share, a.carve_seed)
    print(f"{a.corpus}: {n_val} of {n_train} train queries -> trval (carve seed {a.carve_seed}; shard hashes "
          f"{', '.join(sh['hash'] for sh in json.load(open(os.path.join(c, 'manifest.json')))['shards'])})", flush=True)
    if a.spread:
        return spread(a, c)
    nets = [("raw", 42, []), ("rawu", 42, ["--no-token-scale"]), ("log", 42, ["--token-target", "log"]),
            ("logu", 42, ["--token-target", "log", "--no-token-scale"])]
    nets += [(f"raw-s{s}", s, []) for s in range(1, a.seeds)]
    for name, seed, opt in nets:
        train_score(a, c, name, seed, opt)
    q = read_all(c, "", ["queries/split", "outcomes/correct", "outcomes/tokens"])
    split, yc, yt = q["queries/split"], q["outcomes/correct"].astype(np.float64), q["outcomes/tokens"].astype(np.float64)
    enc = sorted(os.listdir(os.path.join(c, "embeddings")))[0]
    emb = read_all(c, os.path.join("embeddings", enc), ["embedding/query"])["embedding/query"].astype(np.float64)
    tab = {}
    for name, _, _ in nets:
        t = read_all(c, os.path.join("tables", name), ["routing/p_correct", "routing/tokens"])
        tab[name] = (t["routing/p_correct"].astype(np.float64), t["routing/tokens"].astype(np.float64))
    members = ["raw"] + [f"raw-s{s}" for s in range(1, a.seeds)]
    for k in sorted({2, 3, a.seeds} & set(range(2, a.seeds + 1))):
        p = np.mean([tab[m][0] for m in members[:k]], 0)
        t = np.mean([tab[m][1] for m in members[:k]], 0)
        write_table(c, "raw", f"ens{k}", p, t)
        tab[f"ens{k}"] = (p, t)
    tr, va = split == "train", split == "trval"
    e = embedllm(emb[tr], yc[tr], emb)
    p_raw = tab["raw"][0]
    blend = sig(np.stack([np.ones_like(p_raw), logit(p_raw), logit(e)], -1) @ fit_blend([logit(p_raw[va]), logit(e[va])], yc[va]))
    vi = np.where(va)[0]
    for f in range(5):  # out-of-fold weights on the validation rows themselves
        held = vi[f::5]
        fit = np.setdiff1d(vi, held)
        w = fit_blend([logit(p_raw[fit]), logit(e[fit])], yc[fit])
        blend[held] = sig(w[0] + w[1] * logit(p_raw[held]) + w[2] * logit(e[held]))
    write_table(c, "raw", "raw-embllm", blend, tab["raw"][1])
    tab["raw-embllm"] = (blend, tab["raw"][1])

    print(f"\nvalidation ({va.sum()} trval queries): log-loss, token MAE (mean absolute error, tokens)")
    for name, (p, t) in tab.items():
        y, pp = yc[va], np.clip(p[va], 1e-7, 1 - 1e-7)
        ok = ~np.isnan(y)
        ll = -(y[ok] * np.log(pp[ok]) + (1 - y[ok]) * np.log(1 - pp[ok])).mean()
        okt = ~np.isnan(yt[va])
        print(f"  {name:11s} {ll:.4f} {np.abs(t[va][okt] - yt[va][okt]).mean():7.2f}")
    names = list(tab)
    for cost in a.cost.split(","):
        print(f"\nrtr eval --split trval --arch paper --cost {cost}: AIQ [95%], cost to match [95%]")
        for i in range(0, len(names), 7):  # eval takes at most 8 tables at once
            group = names[i:i + 7] + (["raw"] if len(names[i:i + 7]) == 1 else [])
            out = os.path.join(a.out, f"eval-{cost}-{i}.json")
            run([a.rtr, "eval", c, "--out", out, "--split", "trval", "--arch", "paper", "--table", ",".join(group),
                 "--cost", cost, "--bootstrap", a.bootstrap, "--device", "cpu", "-q"])
            for r in json.load(open(out))["routers"]:
                if r["name"].startswith("RTR: ") and r["name"][5:] not in names[i:i + 7]:
                    continue
                if r["name"].startswith(("Random", "Oracle", "RouteLLM")) or (i and not r["name"].startswith("RTR")):
                    continue
                ci = r.get("ci", {})
                iv = lambda k: "[" + ", ".join("never" if x is None else f"{x:.3f}" for x in ci.get(k, [])) + "]"
                ctm = r.get("cost_to_match")
                print(f"  {r['name']:44s} {r['aiq']:.4f} {iv('aiq'):16s} "
                      f"{'never' if ctm is None else format(ctm, '.3f'):6s} {iv('cost_to_match')}")


if __name__ == "__main__":
    main()
