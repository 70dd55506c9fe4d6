#!/usr/bin/env python3
"""What `rtr eval` says beyond its table (issue: eval says what it did), on a
demo corpus with stand-in embeddings and noisy tables written here with
h5py (no encoder weights, no training): the default router beside the
paper's model; seeded paired-bootstrap intervals and "beats" probabilities;
accuracy at budgets; missing outcomes counted per router; a router that
cannot be built shown with its reason; dataset options naming a dataset the
corpus lacks refused with the list of those it has; a corpus without token
counts under --cost tokens told so; the unseen-dataset guard; a checkpoint
of other tables refused."""
import glob
import json
import os
import shutil
import tempfile

from rtrtest import check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402


def shards(corpus):
    return sorted(glob.glob(os.path.join(corpus, "shard-*.h5")))


def fill(corpus, seed=11, edit=None):
    """Stand-in embeddings (a random unit vector per query) and tables: the
    true outcome blurred with noise, so routers differ and curves have many
    points. edit(h5) may change the outcomes first."""
    rng = np.random.default_rng(seed)
    for f in shards(corpus):
        with h5py.File(f, "a") as h:
            if edit:
                edit(h)
            n = h.attrs["n_queries"]
            correct, tokens = h["outcomes/correct"][()], h["outcomes/tokens"][()]
            emb = rng.standard_normal((n, 16)).astype(np.float32)
            for name in ("embedding", "routing"):
                if name in h:
                    del h[name]
            h["embedding/query"] = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            h["embedding/query"].attrs["encoder_hash"] = "test-encoder"
            p = np.clip(np.nan_to_num(correct, nan=0.5) * 0.6 + 0.2 + 0.3 * rng.standard_normal(correct.shape), 0.01, 0.99)
            h["routing/p_correct"] = p.astype(np.float32)
            h["routing/tokens"] = np.nan_to_num(tokens, nan=100.0).astype(np.float32) * rng.uniform(0.7, 1.3, tokens.shape).astype(np.float32)
            h["routing/p_correct"].attrs["checkpoint_hash"] = "noisy"


def evaluate(corpus, out, *extra):
    r = run("eval", corpus, "--out", out, "--no-embedllm", *extra)
    ev = json.load(open(out)) if r.returncode == 0 and os.path.exists(out) else None
    return r, ev


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_evalq_")
    base = demo_corpus(tmp, 600, 5, 250)
    corpus = os.path.join(tmp, "c1")
    shutil.copytree(base, corpus)
    fill(corpus)
    out = os.path.join(tmp, "eval.json")

    # --- rows, intervals, beats, budgets
    r, ev = evaluate(corpus, out, "--bootstrap", "300", "--seed", "7")
    check(r.returncode == 0, "eval: " + r.stderr)
    if ev is None:
        finish()
    by = {x["name"]: x for x in ev["routers"]}
    check("RTR" in by and "RTR (paper)" in by, f"default and paper rows: {list(by)}")
    check(ev["default_router"]["chosen"].startswith("network") and ev["default_router"]["n_val"] == 0,
          "without --checkpoint the default router keeps the network: " + json.dumps(ev.get("default_router")))
    check(ev["bootstrap"]["resamples"] == 300 and ev["bootstrap"]["seed"] == 7, "bootstrap recorded")
    for x in ev["routers"]:
        if x.get("unavailable"):
            continue
        ci = x["ci"]
        check(ci["acc"][0] <= x["op"]["acc"] <= ci["acc"][1], f"{x['name']}: accuracy inside its interval")
        check(ci["aiq"][0] <= x["aiq"] <= ci["aiq"][1], f"{x['name']}: AIQ inside its interval")
        if not x["name"].startswith(("Random", "Oracle")):  # an expectation; the Oracle may be right on every query
            check(ci["acc"][1] - ci["acc"][0] > 0.005, f"{x['name']}: a real interval")
        check(x["aiq_from_zero"] >= x["aiq"] - 1e-12, f"{x['name']}: AIQ from zero counts more area")
    rtr = by["RTR (paper)"]
    check(set(rtr["p_beats"]) >= {"Dataset prior", "kNN router", "Oracle"}, "beats probabilities per router")
    check(all(0 <= v["aiq"] <= 1 for v in rtr["p_beats"].values()), "probabilities in [0, 1]")
    check(rtr["p_beats"]["Oracle"]["aiq_from_zero"] < 0.05, "no router beats the Oracle on AIQ from zero")
    check([b["fraction"] for b in rtr["budgets"]] == [0.25, 0.5, 0.75, 1.0], "four budgets")
    check(rtr["budgets"][3]["acc"] == rtr["op"]["acc"], "the 100% budget is the operating point")
    accs = [b["acc"] for b in rtr["budgets"] if b["acc"] is not None]
    check(all(b["cost"] is None or b["budget"] is not None for b in rtr["budgets"]), "budget values present")
    check(len(accs) >= 2, "at least two budgets reachable")
    rl = next(x for x in ev["routers"] if x["name"].startswith("RouteLLM"))
    check([s["target"] for s in rl["shares"]] == [0.2, 0.5, 0.8] and all(s["share"] <= s["target"] for s in rl["shares"]),
          "share-to-strong points at or below their targets")
    check("aiq_note" in ev and "from zero" in ev["aiq_note"].lower() or "aiq_from_zero" in ev["aiq_note"], "AIQ explained")
    check("[95% intervals" in r.stdout and "missing" in r.stdout, "the text table has intervals and missing counts")

    # seeded: the same seed gives the same intervals, another seed others
    r2, ev2 = evaluate(corpus, os.path.join(tmp, "e2.json"), "--bootstrap", "300", "--seed", "7")
    r3, ev3 = evaluate(corpus, os.path.join(tmp, "e3.json"), "--bootstrap", "300", "--seed", "8")
    if ev2 and ev3:
        check([x.get("ci") for x in ev2["routers"]] == [x.get("ci") for x in ev["routers"]], "same seed, same intervals")
        check([x.get("ci") for x in ev3["routers"]] != [x.get("ci") for x in ev["routers"]], "another seed, other intervals")
    r4, ev4 = evaluate(corpus, os.path.join(tmp, "e4.json"), "--bootstrap", "0", "--arch", "paper")
    if ev4:
        names = [x["name"] for x in ev4["routers"]]
        check("RTR" in names and "RTR (paper)" not in names and "default_router" not in ev4, "--arch paper: one RTR row")
        check("bootstrap" not in ev4 and "ci" not in ev4["routers"][0], "--bootstrap 0: no intervals")
        check(ev4["routers"][0]["op"] == by["RTR (paper)"]["op"], "--arch paper's RTR is the paper row")

    # --- dataset options naming a dataset the corpus lacks
    for flag in ("--test-dataset", "--train-skip-dataset"):
        bad = os.path.join(tmp, "bad.json")
        r, _ = evaluate(corpus, bad, flag, "shoping")
        check(r.returncode == 1 and "'shoping' is not a dataset of the corpus (it has: shopping, train-ride)" in r.stderr,
              f"{flag} typo: {r.stderr.strip()}")
        check(not os.path.exists(bad), f"{flag} typo: no file")

    # --- the unseen-dataset guard: held out of training, the default router uses the training means
    r, ev = evaluate(corpus, out, "--test-dataset", "shopping", "--train-skip-dataset", "shopping", "--bootstrap", "50")
    check(r.returncode == 0 and ev["default_router"]["n_unseen"] == ev["n_queries"] > 0, "guarded: " + r.stderr)
    if ev:
        d = {x["name"]: x for x in ev["routers"]}
        check(d["RTR"]["op"]["acc"] == d["Dataset prior"]["op"]["acc"],
              "guarded queries route as the prior's overall fallback does")

    # --- missing outcomes are counted per router
    def drop(h):
        c = h["outcomes/correct"][()]
        split = [s.decode() if isinstance(s, bytes) else s for s in h["queries/split"][()]]
        rows = [i for i, s in enumerate(split) if s == "test"][:7]
        c[rows, :] = np.nan
        h["outcomes/correct"][...] = c
    miss = os.path.join(tmp, "c2")
    shutil.copytree(base, miss)
    fill(miss, edit=drop)
    r, ev = evaluate(miss, out, "--bootstrap", "20")
    check(r.returncode == 0, "eval with missing outcomes: " + r.stderr)
    if ev:
        best = next(x for x in ev["routers"] if x["name"].startswith("Best single"))
        check(best["op"]["n_missing"] >= 7 * 2, f"missing outcomes counted: {best['op']}")
        check(all("n_missing" in x["op"] for x in ev["routers"] if not x.get("unavailable")), "every router says")

    # --- a router that cannot be built is shown with its reason
    def best_is_cheapest(h):
        c, t = h["outcomes/correct"][()], h["outcomes/tokens"][()]
        c[:, 0] = 1.0
        t[:, 0] = 1.0
        h["outcomes/correct"][...] = c
        h["outcomes/tokens"][...] = t
    cheap = os.path.join(tmp, "c3")
    shutil.copytree(base, cheap)
    fill(cheap, edit=best_is_cheapest)
    r, ev = evaluate(cheap, out, "--bootstrap", "20")
    check(r.returncode == 0, "eval, best = cheapest: " + r.stderr)
    if ev:
        rl = next((x for x in ev["routers"] if x["name"].startswith("RouteLLM")), None)
        check(rl is not None and "also the cheapest" in rl.get("unavailable", ""), f"RouteLLM-style shown: {rl}")
        check("not built: the best training pair" in r.stdout, "and in the text table")

    # --- no token counts under --cost tokens
    def no_tokens(h):
        t = h["outcomes/tokens"][()]
        t[:] = np.nan
        h["outcomes/tokens"][...] = t
    notok = os.path.join(tmp, "c4")
    shutil.copytree(base, notok)
    fill(notok, edit=no_tokens)
    r, _ = evaluate(notok, out + ".x")
    check(r.returncode == 1 and "has correctness outcomes but no token counts" in r.stderr, "no tokens: " + r.stderr)

    # --- with the checkpoint that scored the tables, the default router chooses on its validation rows;
    # the same checkpoint against other tables is refused
    def descriptions(h):
        cat = json.loads(h.attrs["catalog_json"])
        rng = np.random.default_rng(3)
        for name, items in (("model_desc", cat["models"]), ("strategy_desc", cat["strategies"])):
            x = rng.standard_normal((len(items), 16)).astype(np.float32)
            if "embedding/" + name in h:
                del h["embedding/" + name]
            h["embedding/" + name] = x / np.linalg.norm(x, axis=1, keepdims=True)
            h["embedding/" + name].attrs["encoder_hash"] = "test-encoder"
    trained = os.path.join(tmp, "c5")
    shutil.copytree(corpus, trained)
    for f in shards(trained):
        with h5py.File(f, "a") as h:
            descriptions(h)
            h["embedding/query"].attrs["encoder"] = "test"
    ck = os.path.join(tmp, "ck.safetensors")
    r = run("train", trained, "--out", ck, "--hidden", "16", "--learn-dim", "4", "--epochs", "4", "--val-frac", "0.2")
    check(r.returncode == 0, "train: " + r.stderr)
    r = run("score", "--checkpoint", ck, trained)
    check(r.returncode == 0, "score: " + r.stderr)
    r, ev = evaluate(trained, out, "--checkpoint", ck, "--bootstrap", "20")
    check(r.returncode == 0, "eval --checkpoint: " + r.stderr)
    if ev:
        dr = ev["default_router"]
        check(dr["n_val"] > 50 and dr["cv_logloss"]["network (the paper's model)"] is not None,
              f"validation rows found and candidates scored: {dr}")
    r, _ = evaluate(corpus, out + ".z", "--checkpoint", ck)
    check(r.returncode == 1 and "scored by checkpoint noisy" in r.stderr, "other tables refused: " + r.stderr)
    fake = os.path.join(tmp, "fake.safetensors")
    with open(fake, "wb") as f:
        f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    r, _ = evaluate(corpus, out + ".y", "--checkpoint", fake)
    check(r.returncode == 1 and fake in r.stderr, "an unreadable checkpoint is an error naming it: " + r.stderr)
    shutil.rmtree(tmp)
    finish()


if __name__ == "__main__":
    main()
