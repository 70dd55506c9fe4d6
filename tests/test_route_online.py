"""The whole pipeline on a small demo corpus (gen-demo, ingest, encode with
all-MiniLM-L6-v2, train, score), then `rtr route --model --checkpoint` on
stdin: its decisions and predictions must equal those `rtr route` takes from
the scored corpus for the same queries at the same λ and cost scale, and a
checkpoint hash or encoder that does not match must be refused. Skips (77)
without the encoder folder ($RTR_MODELS_DIR or data/models, see
tools/fetch-encoder)."""
import json
import os
import shutil
import tempfile

from rtrtest import MODELS, check, finish, require_rtr, run, skip

require_rtr()
MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
    skip("needs the all-MiniLM-L6-v2 folder (tools/fetch-encoder)")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_route_online_")
    demo, corpus, ckpt = (os.path.join(tmp, x) for x in ("demo", "corp", "ckpt.safetensors"))
    steps = [("gen-demo", "--queries", "240", "--seed", "11", demo),
             ("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, os.path.join(demo, "outcomes.jsonl")),
             ("encode", "--model", MINILM, corpus),
             ("train", corpus, "--out", ckpt, "--hidden", "32", "--learn-dim", "16", "--epochs", "5"),
             ("score", "--checkpoint", ckpt, corpus, "--json")]
    for st in steps:
        r = run(*st)
        check(r.returncode == 0, "%s: %s" % (st[0], r.stderr))
        if r.returncode:
            return 1
    chash = json.loads(r.stdout)["checkpoint_hash"]

    queries = [json.loads(line) for line in open(os.path.join(demo, "outcomes.jsonl"))]
    test = [q for q in queries if q.get("split") == "test"]
    stdin = "".join(json.dumps({"id": q["id"], "text": q["text"]}) + "\n" for q in test)

    # the corpus route over the test split fixes the scale; online uses the same
    dec = os.path.join(tmp, "dec.jsonl")
    r = run("route", corpus, "--split", "test", "--lambda", "0.6", "--out", dec, "--json")
    check(r.returncode == 0, "corpus route: " + r.stderr)
    scale = json.loads(r.stdout)["cost_scale"]
    corpus_dec = {d["id"]: d for d in map(json.loads, open(dec))}
    r = run("route", "--model", MINILM, "--checkpoint", ckpt, "--lambda", "0.6", "--cost-scale", repr(scale),
            "--checkpoint-hash", chash, stdin=stdin)
    check(r.returncode == 0, "online route: " + r.stderr)
    online = [json.loads(line) for line in r.stdout.splitlines()]
    check(len(online) == len(test), "one line per query (%d vs %d)" % (len(online), len(test)))
    same = 0
    for o in online:
        c = corpus_dec[o["id"]]
        chosen = next(p for p in o["pairs"] if p["model"] == o["model"] and p["strategy"] == o["strategy"])
        same += (o["model"], o["strategy"]) == (c["model"], c["strategy"])
        check(abs(chosen["p_correct"] - c["p_correct"]) < 1e-4, "p_correct of %s" % o["id"])
        check(len(o["pairs"]) == 16, "every pair's predictions")
    # the same embeddings give the same choice; allow a near-tie or two from float reordering
    check(same >= len(online) - 2, "online and corpus decisions agree on %d of %d" % (same, len(online)))
    print("online vs corpus decisions: %d of %d agree" % (same, len(online)))

    r = run("route", "--model", MINILM, "--checkpoint", ckpt, "--lambda", "0.6", "--checkpoint-hash", "0000", stdin=stdin)
    check(r.returncode == 1 and "checkpoint-hash" in r.stderr, "wrong checkpoint hash refused: " + r.stderr)
    r = run("route", "--model", MINILM, "--checkpoint", ckpt, "--lambda", "0.6", stdin="")
    check(r.returncode == 1 and "no query" in r.stderr, "empty stdin refused: " + r.stderr)
    r = run("route", "--model", MINILM, "--lambda", "0.6", stdin="x\n")
    check(r.returncode == 2, "--model without --checkpoint is a usage error")
    r = run("route", "--model", MINILM, "--checkpoint", ckpt, "--budget", "1e9", "--out", os.path.join(tmp, "o.csv"),
            stdin="How many apples are left?\n{\"text\": \"Two trains leave at noon.\", \"id\": 7}\n")
    check(r.returncode == 0 and open(os.path.join(tmp, "o.csv")).read().count("\n") == 3, "online --budget to CSV: " + r.stderr)

    shutil.rmtree(tmp)

if __name__ == "__main__":
    main()
    finish()
