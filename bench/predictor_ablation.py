#!/usr/bin/env python3
"""The default predictor's ablation (docs/PREDICTOR.md, "Ablation"), every
figure computed by the `rtr` binary; this script only relabels splits,
runs rtr and prints its JSON as tables.

    bench/predictor_ablation.py RTR RESULTS_DIR OUT_DIR [--sets mot,routerbench]
                                [--seeds 5] [--bootstrap 1000] [--held-out winogrande,mbpp,arc-challenge]

RESULTS_DIR is what tools/run-results writes (RESULTS_DIR/<set>/corpus,
encoded). For each set a copy of its corpus goes to OUT_DIR/<set>/corpus
with a seeded share of the `train` queries relabelled `trval`
(bench/predictor_validation.py's carve: MoT 25%, RouterBench 10%, seed 7).
Every network trains on the rest of `train` (`rtr train`, which carves its
own early-stopping rows from it); every choice below is made on `trval`
(or, for the default router's blend, on the checkpoint's own validation
rows, by rtr's rule), and the test split is only reported:

  token target   --token-target raw|log, with and without --no-token-scale
                 (seed 42). Kept: the lowest validation token MAE (`rtr
                 eval-predictor --split trval`); routing sums predicted
                 tokens, so the mean error is the quantity that matters.
  default router the candidates of rtr_stack_table on the kept network,
                 each forced with `rtr eval --stack NAME`: validation is
                 rtr's own cross-validated log-loss on the checkpoint's
                 validation rows (the one-standard-error rule chooses) and
                 AIQ on trval; test with the paired intervals and
                 P(candidate beats the network) of the same `rtr eval`.
  shift guard    RouterBench only (MoT has one dataset): per held-out
                 dataset D a network trained without D; `rtr eval
                 --test-dataset D --skip-dataset D --stack network` with and
                 without --no-guard, on trval's D queries and on test's.
  seed ensembles the mean of the estimates of the first K of --seeds
                 networks (seeds 42, 1, 2, ...): rtr has no ensemble, so
                 the mean table is written beside rtr's tables here and
                 routed by `rtr eval --table`; adopted only if its
                 validation AIQ beats the single network's on both sets.

Resumable: a checkpoint already in OUT_DIR is kept (delete OUT_DIR to
retrain). Prints markdown tables on stdout, timings on stderr."""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predictor_validation import carve, read_all, write_table  # noqa: E402

STACK = [("network", "network (the paper's model)"), ("platt", "network, Platt-scaled"),
         ("knn", "network + kNN blend"), ("prior", "network + dataset-prior blend"),
         ("knn+prior", "network + kNN + dataset-prior blend")]
TOKEN = [("raw", ["--token-target", "raw"], "raw / RMS (default)"),
         ("rawu", ["--token-target", "raw", "--no-token-scale"], "raw, unscaled (the paper)"),
         ("log", ["--token-target", "log"], "log1p / RMS"),
         ("logu", ["--token-target", "log", "--no-token-scale"], "log1p, unscaled")]
SETS = {"mot": dict(share=0.25, costs=["tokens"], title="MoT DATE"),
        "routerbench": dict(share=0.1, costs=["tokens", "usd"], title="RouterBench zero-shot")}


def rtr(a, *args):
    t0 = time.monotonic()
    r = subprocess.run([a.rtr, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"predictor_ablation: rtr {' '.join(args)} failed:\n{r.stderr}")
    print(f"  rtr {args[0]} ({time.monotonic() - t0:.0f} s): {' '.join(args[1:])}", file=sys.stderr, flush=True)
    return r


def network(a, d, c, name, seed, opts):
    """Train (unless its checkpoint exists) and score one network; its checkpoint path."""
    ck = os.path.join(d, name + ".safetensors")
    if not os.path.exists(ck):
        rtr(a, "train", c, "--out", ck, "--seed", str(seed), "--device", "cpu", "-q", *opts)
    rtr(a, "score", "--checkpoint", ck, "--name", name, "--device", "cpu", "-q", c)
    return ck


def evaluate(a, d, c, tag, *args, boot=None):
    out = os.path.join(d, tag + ".json")
    rtr(a, "eval", c, "--out", out, "--device", "cpu", "-q", "--bootstrap", str(a.bootstrap if boot is None else boot),
        *args)
    return json.load(open(out))


def row(ev, name):
    return next(x for x in ev["routers"] if x["name"] == name)


def fmt(v, f=".4f"):
    return "never" if v is None else format(v, f)


def ci(r, key, f=".3f", scale=1):
    lo, hi = (None if x is None else scale * x for x in r.get("ci", {}).get(key, [None, None]))
    return f"[{fmt(lo, f)}, {fmt(hi, f)}]"


def cells(r):
    """AIQ, cost to match and accuracy at the operating point, with their intervals."""
    return (f"{r['aiq']:.4f} {ci(r, 'aiq')} | {fmt(r.get('cost_to_match'), '.3f')} {ci(r, 'cost_to_match', '.2f')} | "
            f"{100 * r['op']['acc']:.2f}% {ci(r, 'acc', '.1f', 100)}")


def p_beats(r, other):
    p = r.get("p_beats", {}).get(other)
    return "—" if not p else f"{p['aiq']:.2f} / {p['cost_to_match']:.2f}"


def token_target(a, s, d, c):
    print(f"\n**Token target** (networks on the carved training rows, seed 42; validation = trval; "
          f"test AIQ and to match in the first cost unit, `--arch paper`)\n")
    val = {n: json.loads(rtr(a, "eval-predictor", "--checkpoint", os.path.join(d, n + ".safetensors"), "--split",
                             "trval", "--json", "--device", "cpu", "-q", c).stdout)["overall"]["predictor"]
           for n, _, _ in TOKEN}
    tst = {n: json.loads(rtr(a, "eval-predictor", "--checkpoint", os.path.join(d, n + ".safetensors"), "--json",
                             "--device", "cpu", "-q", c).stdout)["overall"]["predictor"] for n, _, _ in TOKEN}
    names = ",".join(n for n, _, _ in TOKEN)
    ev = {cost: (evaluate(a, d, c, f"tok-trval-{cost}", "--split", "trval", "--arch", "paper", "--table", names,
                          "--cost", cost, "--no-embedllm"),
                 evaluate(a, d, c, f"tok-test-{cost}", "--arch", "paper", "--table", names, "--cost", cost,
                          "--no-embedllm")) for cost in s["costs"]}
    kept = min(TOKEN, key=lambda t: val[t[0]]["token_mae"])[0]
    head = " | ".join(f"val AIQ ({c_}) | test AIQ ({c_}) [95%] | test to match ({c_}) [95%]" for c_ in s["costs"])
    print(f"| setting | val log-loss | val token MAE | test log-loss | test token MAE | {head} | P(beats raw / RMS), test |")
    print("|---" * (6 + 3 * len(s["costs"])) + "|")
    for n, _, label in TOKEN:
        parts = []
        for cost in s["costs"]:
            v, t = (row(e, "RTR: " + n) for e in ev[cost])
            parts.append(f"{v['aiq']:.4f} | {t['aiq']:.4f} {ci(t, 'aiq')} | {fmt(t.get('cost_to_match'), '.3f')} "
                         f"{ci(t, 'cost_to_match', '.2f')}")
        pb = "—" if n == "raw" else p_beats(row(ev[s["costs"][-1]][1], "RTR: " + n), "RTR: raw")
        mark = " **kept**" if n == kept else ""
        print(f"| {label}{mark} | {val[n]['log_loss']:.4f} | {val[n]['token_mae']:.1f} | {tst[n]['log_loss']:.4f} | "
              f"{tst[n]['token_mae']:.1f} | {' | '.join(parts)} | {pb} |")
    print(f"\n(P: share of the paired test resamples in which the setting beats raw / RMS on AIQ / cost to match, "
          f"in {s['costs'][-1]}.) Kept on validation token MAE: {kept}.")
    return kept


def stack(a, s, d, c, kept):
    ck = os.path.join(d, kept + ".safetensors")
    for cost in s["costs"]:
        auto = evaluate(a, d, c, f"stack-auto-{cost}", "--checkpoint", ck, "--table", kept, "--cost", cost)
        dr = auto["default_router"]
        print(f"\n**Default router's candidates, {cost}** (network {kept}; its {dr['n_val']} validation rows; "
              f"{auto['n_queries']} test queries; rtr's rule kept: {dr['chosen']})\n")
        print("| candidate | val CV log-loss ± SE | val AIQ (trval) | test AIQ [95%] | test to match [95%] | "
              "test accuracy at op [95%] | P(beats network), test AIQ / to match |")
        print("|---|---|---|---|---|---|---|")
        for short, long in STACK:
            v = evaluate(a, d, c, f"stack-{short}-trval-{cost}", "--checkpoint", ck, "--table", kept, "--cost", cost,
                         "--split", "trval", "--stack", short, "--no-embedllm", boot=0)
            t = evaluate(a, d, c, f"stack-{short}-test-{cost}", "--checkpoint", ck, "--table", kept, "--cost", cost,
                         "--stack", short, "--no-embedllm")
            rt = row(t, "RTR")
            mark = " **kept**" if long == dr["chosen"] else ""
            pb = "—" if short == "network" else p_beats(rt, "RTR (paper)")
            print(f"| {long}{mark} | {dr['cv_logloss'][long]:.4f} ± {dr['cv_se'][long]:.4f} | "
                  f"{row(v, 'RTR')['aiq']:.4f} | {cells(rt)} | {pb} |")
        for b in ("Dataset prior", "kNN router", "EmbedLLM-style"):
            print(f"| ({b}) | | | {cells(row(auto, b))} | |")


def guard(a, s, d, c):
    print("\n**Unseen-dataset guard** (per held-out dataset D: a network trained without D; `rtr eval --test-dataset "
          "D --skip-dataset D --stack network`, guarded against `--no-guard`; validation = trval's D queries)\n")
    print("| held out | cost | val AIQ guard / none | val accuracy at op guard / none | test AIQ guard [95%] | "
          "test AIQ none [95%] | test accuracy at op guard / none | P(guard beats none), test AIQ / to match |")
    print("|---|---|---|---|---|---|---|---|")
    for ds in a.held_out.split(","):
        name = "ood-" + ds
        ck = network(a, d, c, name, 42, ["--skip-dataset", ds])
        for cost in s["costs"]:
            opt = ["--checkpoint", ck, "--table", name, "--cost", cost, "--test-dataset", ds, "--skip-dataset", ds,
                   "--stack", "network", "--no-embedllm"]
            v = evaluate(a, d, c, f"{name}-trval-{cost}", *opt, "--split", "trval", boot=0)
            t = evaluate(a, d, c, f"{name}-test-{cost}", *opt)
            vg, vn, tg, tn = row(v, "RTR"), row(v, "RTR (paper)"), row(t, "RTR"), row(t, "RTR (paper)")
            print(f"| {ds} | {cost} | {vg['aiq']:.4f} / {vn['aiq']:.4f} | {100 * vg['op']['acc']:.2f}% / "
                  f"{100 * vn['op']['acc']:.2f}% | {tg['aiq']:.4f} {ci(tg, 'aiq')} | {tn['aiq']:.4f} {ci(tn, 'aiq')} | "
                  f"{100 * tg['op']['acc']:.2f}% / {100 * tn['op']['acc']:.2f}% | {p_beats(tg, 'RTR (paper)')} |")


def ensembles(a, s, d, c):
    members = ["raw"] + [f"raw-s{i}" for i in range(1, a.seeds)]
    tab = {m: read_all(c, os.path.join("tables", m), ["routing/p_correct", "routing/tokens"]) for m in members}
    ens = []
    for k in range(2, a.seeds + 1):  # the mean of the first K networks' estimates, as an ensemble would route
        write_table(c, "raw", f"ens{k}", *(np.mean([tab[m][f"routing/{x}"] for m in members[:k]], 0)
                                           for x in ("p_correct", "tokens")))
        ens.append(f"ens{k}")
    names = members + ens
    print(f"\n**Seed ensembles** (raw / RMS, seeds 42, 1 .. {a.seeds - 1}; ensK = mean of the first K networks' "
          "estimates; `--arch paper`)\n")
    print("| table | cost | val AIQ | val to match | test AIQ [95%] | test to match [95%] | test accuracy at op [95%] | "
          "P(beats seed 42), test AIQ / to match |")
    print("|---|---|---|---|---|---|---|---|")
    for cost in s["costs"]:
        v = evaluate(a, d, c, f"ens-trval-{cost}", "--split", "trval", "--arch", "paper", "--table", ",".join(names),
                     "--cost", cost, "--no-embedllm")
        t = evaluate(a, d, c, f"ens-test-{cost}", "--arch", "paper", "--table", ",".join(names), "--cost", cost,
                     "--no-embedllm")
        for n in names:
            vr, tr = row(v, "RTR: " + n), row(t, "RTR: " + n)
            print(f"| {n} | {cost} | {vr['aiq']:.4f} | {fmt(vr.get('cost_to_match'), '.3f')} | {cells(tr)} | "
                  f"{'—' if n == 'raw' else p_beats(tr, 'RTR: raw')} |")
        single = np.mean([row(v, "RTR: " + m)["aiq"] for m in members])
        print(f"| (mean of the {len(members)} single networks) | {cost} | {single:.4f} | | | | | |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rtr")
    ap.add_argument("results", help="tools/run-results' output directory (its <set>/corpus, encoded)")
    ap.add_argument("out")
    ap.add_argument("--sets", default="mot,routerbench")
    ap.add_argument("--seeds", type=int, default=5, help="networks of the seed ensembles (seeds 42, 1, 2, ...)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--carve-seed", type=int, default=7)
    ap.add_argument("--held-out", default="winogrande,mbpp,arc-challenge", help="RouterBench datasets for the guard")
    a = ap.parse_args()
    a.rtr = os.path.abspath(a.rtr)
    for name in a.sets.split(","):
        s = SETS[name]
        d = os.path.join(a.out, name)
        c = os.path.join(d, "corpus")
        os.makedirs(d, exist_ok=True)
        n_val, n_train = carve(os.path.join(a.results, name, "corpus"), c, s["share"], a.carve_seed)
        print(f"\n### {s['title']}: {n_val} of {n_train} training queries -> trval (carve seed {a.carve_seed})")
        for n, opts, _ in TOKEN:
            network(a, d, c, n, 42, opts)
        kept = token_target(a, s, d, c)
        stack(a, s, d, c, kept)
        if name == "routerbench" and a.held_out:
            guard(a, s, d, c)
        for i in range(1, a.seeds):
            network(a, d, c, f"raw-s{i}", i, [])
        if a.seeds > 1:
            ensembles(a, s, d, c)


if __name__ == "__main__":
    main()
