"""Online `rtr route --model --checkpoint` as an online router (docs/CLI.md,
"Online routing"): the checkpoint keeps its pairs' training mean tokens and
the cost scale comes from them (tokens and USD), so a query routed alone
gets the same output line, byte for byte, as inside a large input; a writer
that sends one line and waits for its answer gets it before it sends the
next or closes stdin (at --batch-size 1 and with micro-batches bounded by
--max-wait-ms); a checkpoint saved before the means were kept needs
--cost-scale to stream; a bad line fails after the lines before it were
answered. Skips (77) without the all-MiniLM-L6-v2 folder (tools/fetch-encoder)."""
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time

from rtrtest import MODELS, RTR, check, finish, require_rtr, run, skip

require_rtr()
MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
    skip("needs the all-MiniLM-L6-v2 folder (tools/fetch-encoder)")
# a loaded machine loads the encoder slowly: generous, but an answer held until EOF never comes
ANSWER_TIMEOUT = 120


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]


def set_metadata(src, dst, key, value):
    """A copy of checkpoint src with metadata key set to value (None: without
    it, as in one saved before it existed)."""
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    if value is None:
        del header["__metadata__"][key]
    else:
        header["__metadata__"][key] = value
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + body)


def online(*args):
    # one thread: a query's work is small, and idle OpenMP threads cost more than they give on a loaded machine
    return ("route", "--model", MINILM, "--device", "cpu", "--threads", "1", *args)


def read_line(proc, timeout):
    """One stdout line of proc within timeout seconds (None if none came)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else None


def paced(args, lines):
    """Send each line, wait for its answer, then the next; stdin stays open
    until every answer came. Returns the answers (None where one never came)
    and the exit status."""
    proc = subprocess.Popen([RTR, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    answers = []
    for line in lines:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        t0 = time.monotonic()
        answers.append(read_line(proc, ANSWER_TIMEOUT))
        print("answer in %.2f s with stdin open" % (time.monotonic() - t0))
        if answers[-1] is None:
            break
    proc.stdin.close()
    try:
        rc = proc.wait(timeout=ANSWER_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    return answers, rc


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_cli_route_online_")
    demo, corpus, ckpt = (os.path.join(tmp, x) for x in ("demo", "corp", "ckpt.safetensors"))
    steps = [("gen-demo", "--queries", "160", "--seed", "3", demo),
             ("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, os.path.join(demo, "outcomes.jsonl")),
             ("encode", "--model", MINILM, corpus, "--device", "cpu"),
             # no validation share: the fit rows are the whole split, so the kept means can be checked exactly
             ("train", corpus, "--out", ckpt, "--hidden", "16", "--learn-dim", "8", "--epochs", "3", "--val-frac", "0",
              "--device", "cpu")]
    for st in steps:
        r = run(*st, "--quiet")
        check(r.returncode == 0, "%s: %s" % (st[0], r.stderr))
        if r.returncode:
            return

    # the kept means: each pair's mean tokens over the training split
    catalog = json.load(open(os.path.join(demo, "catalog.json")))
    queries = [json.loads(line) for line in open(os.path.join(demo, "outcomes.jsonl"))]
    pairs = [(m["name"], s["name"]) for m in catalog["models"] for s in catalog["strategies"]]
    kept = json.loads(metadata(ckpt)["pair_mean_tokens"])
    want = []
    for pair in pairs:
        t = [o["tokens"] for q in queries if q["split"] == "train" for o in q["outcomes"]
             if (o["model"], o["strategy"]) == pair]
        want.append(sum(t) / len(t))
    check(len(kept) == len(pairs) and all(abs(a - b) <= 1e-6 * b for a, b in zip(kept, want)),
          "pair_mean_tokens are the training means: %s vs %s" % (kept[:3], want[:3]))

    # the online scale is the checkpoint's: the largest mean, in tokens and in USD (output prices: no text)
    price = {m["name"]: m["price_out"] for m in catalog["models"]}
    for cost, scale in (("tokens", max(kept)), ("usd", max(k * price[p[0]] / 1e6 for k, p in zip(kept, pairs)))):
        r = run(*online("--checkpoint", ckpt, "--lambda", "0.5", "--cost", cost), stdin="What is 2 + 2?\n")
        said = [line for line in r.stderr.splitlines() if "cost scale" in line]
        got = float(said[0].split("cost scale ")[1].split()[0]) if said else float("nan")
        check(r.returncode == 0 and abs(got - scale) <= 1e-6 * scale and "checkpoint's" in said[0],
              "--cost %s: the checkpoint's scale %.9g (%s)" % (cost, scale, r.stderr.strip()))

    # alone or among many: the same line, byte for byte
    texts = [json.dumps({"id": q["id"], "text": q["text"]}) for q in queries[:48]]
    among = {}
    for lam in ("0.5", "0.96"):
        args = online("--checkpoint", ckpt, "--lambda", lam)
        r = run(*args, stdin="\n".join(texts) + "\n")
        together = among[lam] = r.stdout.splitlines()
        check(r.returncode == 0 and len(together) == 48, "48 answers at lambda %s: %s" % (lam, r.stderr))
        chosen = set()
        for i in (0, 17, 47):
            alone = run(*args, stdin=texts[i] + "\n").stdout.splitlines()
            check(alone == together[i:i + 1], "query %d at lambda %s: alone == among 48" % (i, lam))
            chosen.add(json.loads(alone[0])["model"] if alone else None)
        print("lambda %s: chosen models %s" % (lam, sorted(map(str, chosen))))
    # micro-batches encode lines together: the same choices, predictions equal to float rounding
    r = run(*online("--checkpoint", ckpt, "--lambda", "0.5", "--batch-size", "64", "--max-wait-ms", "1000"),
            stdin="\n".join(texts) + "\n")
    batched = [json.loads(line) for line in r.stdout.splitlines()]
    single = [json.loads(line) for line in among["0.5"]]
    check(r.returncode == 0 and [b["id"] for b in batched] == [s["id"] for s in single], "--batch-size 64: every id, in order")
    same = sum((b["model"], b["strategy"]) == (s["model"], s["strategy"]) for b, s in zip(batched, single))
    dp = max(abs(x["p_correct"] - y["p_correct"]) for b, s in zip(batched, single) for x, y in zip(b["pairs"], s["pairs"]))
    check(same >= len(single) - 1 and dp < 1e-5, "--batch-size 64: %d of %d choices agree, |dp| <= %g" % (same, len(single), dp))

    # paced input: each answer before the next line, with stdin still open
    lines = ["Who wrote Hamlet?", json.dumps({"text": "Two trains leave at noon at 60 and 80 km/h.", "id": "t2"}),
             "How many coins are left?"]
    for extra in ((), ("--batch-size", "16", "--max-wait-ms", "200"), ("--batch-size", "4", "--max-wait-ms", "0")):
        answers, rc = paced(online("--checkpoint", ckpt, "--lambda", "0.7", *extra), lines)
        ok = len(answers) == 3 and all(a for a in answers)
        check(ok and rc == 0, "paced %s: an answer per line before EOF, exit %s" % (" ".join(extra) or "default", rc))
        check(ok and [json.loads(a)["id"] for a in answers] == ["1", "t2", "3"], "paced: ids in order")

    # a checkpoint saved before the means were kept: streaming needs --cost-scale
    old = os.path.join(tmp, "old.safetensors")
    set_metadata(ckpt, old, "pair_mean_tokens", None)
    r = run(*online("--checkpoint", old, "--lambda", "0.5"), stdin="What is 2 + 2?\n")
    check(r.returncode == 1 and "--cost-scale" in r.stderr and r.stdout == "", "old checkpoint: --cost-scale asked for: " + r.stderr)
    r = run(*online("--checkpoint", old, "--lambda", "0.5", "--cost-scale", "100"), stdin="What is 2 + 2?\n")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1, "old checkpoint with --cost-scale: " + r.stderr)
    r = run(*online("--checkpoint", old, "--lambda", "0.5", "--out", os.path.join(tmp, "o.csv")), stdin="What is 2 + 2?\n")
    check(r.returncode == 0 and "over the queries read" in r.stderr, "old checkpoint into a file: the batch's scale, said: " + r.stderr)

    # kept means that are not one count per pair: refused naming the field
    for bad in ("[1, 2]", json.dumps([-1.0] * len(pairs)), "not json"):
        set_metadata(ckpt, old, "pair_mean_tokens", bad)
        r = run(*online("--checkpoint", old, "--lambda", "0.5"), stdin="What is 2 + 2?\n")
        check(r.returncode == 1 and "pair_mean_tokens" in r.stderr, "pair_mean_tokens %s refused: %s" % (bad[:12], r.stderr.strip()))

    # a bad line: the lines before it answered, then exit 1 naming it
    r = run(*online("--checkpoint", ckpt, "--lambda", "0.5"), stdin='What is 2 + 2?\n{"id": 4}\nnever read\n')
    check(r.returncode == 1 and "stdin:2" in r.stderr and len(r.stdout.splitlines()) == 1,
          "bad line 2: line 1 answered, then exit 1: %s" % r.stderr.strip())
    # two objects on one line: the second was dropped silently (cJSON stops
    # after the first value); a cut object said only "needs a string text"
    for line, words in (('{"id": "a", "text": "x"}{"id": "b", "text": "y"}', "more text after the JSON object"),
                        ('{"id": "a", "text": "x"', "not valid JSON"),
                        # the column within the line, and the problem cJSON does not say
                        ('{"id": "a", "text": "x\\ud800"}', "stdin:2: not valid JSON at column 23: lone UTF-16 surrogate"),
                        ('{"id": "a", "text": "x\\uzzzz"}', "stdin:2: not valid JSON at column 23: \\u is not followed")):
        r = run(*online("--checkpoint", ckpt, "--lambda", "0.5"), stdin="What is 2 + 2?\n" + line + "\n")
        check(r.returncode == 1 and "stdin:2: " in r.stderr and words in r.stderr and len(r.stdout.splitlines()) == 1,
              "line 2 %s: refused naming the line: exit %d %s" % (line[:30], r.returncode, r.stderr.strip()))
    bad_out = os.path.join(tmp, "bad.csv")
    r = run(*online("--checkpoint", ckpt, "--lambda", "0.5", "--out", bad_out), stdin='What is 2 + 2?\n{"id": 4}\n')
    check(r.returncode == 1 and "stdin:2" in r.stderr and not os.path.exists(bad_out),
          "a bad line with --out: exit 1 and no file: %s" % r.stderr.strip())
    r = run(*online("--checkpoint", ckpt, "--lambda", "0.5", "--batch-size", "0"), stdin="x\n")
    check(r.returncode == 2, "--batch-size 0 is a usage error")
    r = run(*online("--checkpoint", ckpt, "--lambda", "0.5"), stdin="\n\n")
    check(r.returncode == 1 and "no query" in r.stderr, "only blank lines: no query to route")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
