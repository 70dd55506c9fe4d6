#!/usr/bin/env python3
"""The robustness inventory (docs/robustness.md): bad inputs and faults a
hostile user or a disk can produce, each run against an rtr binary and
classed by what rtr answered:

  ok       a clear error (exit 1, or 2 for usage, the message naming the
           file, line, field or value) or a correct result
  unclear  refused, but with the wrong exit status or a message that does
           not name what is wrong
  crash    killed by a signal, or a sanitizer report
  loss     exit 0 with input silently dropped
  wrong    exit 0 with a wrong or stale result stored or printed
  refused  valid input refused (e.g. memory that should not be needed)
  hang     still running at the case's time limit

    tests/robustness/inventory.py RTR [--model DIR] [--only REGEX] [--json OUT]

RTR is the rtr binary (a sanitizer build also reports memory errors the
release build survives). --model: an all-MiniLM-L6-v2 folder for the
encoder cases (default data/models/all-MiniLM-L6-v2; they are listed as
skipped without it). Needs h5py and numpy (fixtures and checks). Prints one
line per case and the counts by class; exits 1 when any case is not ok, so
it can be rerun after the owners' fixes."""
import argparse
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests"))
import rtrdata  # noqa: E402  (corpus schema 2 with h5py: strings, side files)

ENC, ENC_HASH = "inventory-encoder", "00000000000f0e0e"
CASES = []


def case(cid, group, what, test=""):
    """Register a case: cid unique, group = the issue's class, test = what guards it."""
    def wrap(fn):
        CASES.append(dict(id=cid, group=group, what=what, test=test, fn=fn))
        return fn
    return wrap


class Ctx:
    """The fixtures of one inventory run and the helpers the cases use."""

    def __init__(self, rtr, model, tmp):
        self.rtr, self.model, self.tmp = rtr, model, tmp
        self.n = 0
        self.refs = {}
        self.real = None

    def real_checkpoint(self):
        """A checkpoint trained on embeddings of the real encoder (40 demo
        queries), for the online cases; made once."""
        if not self.real:
            d = self.dir("real")
            self.run("gen-demo", "--queries", "40", "--seed", "1", os.path.join(d, "demo"))
            c, ck = os.path.join(d, "corp"), os.path.join(d, "ck.safetensors")
            for args in (("ingest", "--catalog", os.path.join(d, "demo", "catalog.json"), "--out", c,
                          os.path.join(d, "demo", "outcomes.jsonl")),
                         ("encode", "--model", self.model, "--device", "cpu", c),
                         ("train", c, "--out", ck, "--hidden", "8", "--learn-dim", "4", "--epochs", "2", "--device", "cpu")):
                r = self.run(*args, timeout=600)
                assert r.rc == 0, last(r.err)
            self.real = ck
        return self.real

    def dir(self, name="case"):
        self.n += 1
        d = os.path.join(self.tmp, f"{self.n:03d}-{name}")
        os.makedirs(d)
        return d

    def run(self, *args, stdin=None, timeout=120, cwd=None, limit_as=None, close_stdout=False, stdout_to=None,
            close_stdin=False):
        def pre():
            os.setsid()
            if close_stdout:
                os.close(1)
            if close_stdin:
                os.close(0)
            if limit_as:
                resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
        out = subprocess.DEVNULL if close_stdout else (open(stdout_to, "w") if stdout_to else subprocess.PIPE)
        try:
            p = subprocess.Popen([self.rtr, *map(str, args)], stdin=subprocess.PIPE if stdin is not None else
                                 subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, cwd=cwd, preexec_fn=pre,
                                 pass_fds=(), close_fds=True)
            so, se = p.communicate(stdin.encode() if isinstance(stdin, str) else stdin, timeout=timeout)
            return Res(p.returncode, (so or b"").decode(errors="replace"), se.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return Res(None, "", "")

    def corpus(self, name="corp", tables=True):
        """A copy of the fixture corpus (scored) or of the bare ingested one."""
        d = os.path.join(self.dir(name), "corp")
        shutil.copytree(self.scored if tables else self.bare, d)
        return d


class Res:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    @property
    def crashed(self):
        return self.rc is not None and (self.rc < 0 or self.rc >= 128 or "Sanitizer" in self.err
                                        or "runtime error:" in self.err)


def verdict(r, expect="refuse", names=(), accepted="wrong", check=None, usage=False):
    """Class of a result. expect='refuse': ok when exit 1 (2 with usage) and
    the message holds every string of names; exit 0 is `accepted` (wrong or
    loss). expect='accept': ok when exit 0 and check(r) holds (else wrong)."""
    if r.rc is None:
        return "hang", "timed out"
    if r.crashed:
        return "crash", f"exit {r.rc}: {last(r.err)}"
    if expect == "accept":
        if r.rc != 0:
            return "refused", f"exit {r.rc}: {last(r.err)}"
        bad = check(r) if check else None
        return ("wrong", bad) if bad else ("ok", "correct result")
    if r.rc == 0:
        bad = check(r) if check else None
        return accepted, bad or f"exit 0: {last(r.err) or last(r.out)}"
    want = 2 if usage else 1
    missing = [n for n in names if n.lower() not in r.err.lower()]
    if r.rc != want:
        return "unclear", f"exit {r.rc} (want {want}): {last(r.err)}"
    if missing:
        return "unclear", f"message lacks {missing}: {last(r.err)}"
    return "ok", last(r.err)


def last(s):
    lines = [x for x in s.strip().splitlines() if x.strip()]
    return lines[-1][:160] if lines else ""


def text(x):
    return x.decode() if isinstance(x, bytes) else x


# ------------------------------------------------------------------ fixtures

def build_fixtures(ctx):
    base = os.path.join(ctx.tmp, "fixture")
    os.makedirs(base)
    r = ctx.run("gen-demo", "--queries", "200", "--seed", "9", os.path.join(base, "demo"))
    assert r.rc == 0, r.err
    ctx.demo = os.path.join(base, "demo")
    ctx.bare = os.path.join(base, "bare")
    r = ctx.run("ingest", "--catalog", os.path.join(ctx.demo, "catalog.json"), "--out", ctx.bare, "--shard-size", "80",
                os.path.join(ctx.demo, "outcomes.jsonl"))
    assert r.rc == 0, r.err
    ctx.scored = os.path.join(base, "scored")
    shutil.copytree(ctx.bare, ctx.scored)
    stand_in_embeddings(ctx.scored, np.random.default_rng(3))
    ctx.ck = os.path.join(base, "ck.safetensors")
    r = ctx.run("train", ctx.scored, "--out", ctx.ck, "--hidden", "8", "--learn-dim", "4", "--epochs", "3",
                "--device", "cpu")
    assert r.rc == 0, r.err
    r = ctx.run("score", "--checkpoint", ctx.ck, "--device", "cpu", ctx.scored)
    assert r.rc == 0, r.err


def unit(rng, rows):
    e = rng.standard_normal((rows, 16)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def stand_in_embeddings(corpus, rng):
    """embeddings/inventory-encoder: a random unit vector per query and per
    model and strategy description (4 of each in the demo catalog)."""
    rtrdata.write_embeddings(corpus, ENC, ENC_HASH, lambda p: unit(rng, int(h5py.File(p, "r").attrs["n_queries"])),
                             (unit(rng, 4), unit(rng, 4)), encoder=ENC)


def side(kind, p):
    """The output file of shard p in the only folder of embeddings/ or tables/."""
    (folder,) = glob.glob(os.path.join(os.path.dirname(p), kind, "*", ""))
    return os.path.join(folder, os.path.basename(p))


def manifest(corpus):
    return json.load(open(os.path.join(corpus, "manifest.json")))


def write_manifest(corpus, m):
    with open(os.path.join(corpus, "manifest.json"), "w") as f:
        f.write(m if isinstance(m, str) else json.dumps(m))


def ingest(ctx, lines, name="ing", catalog=None, extra=(), raw=False, limit_as=None):
    d = ctx.dir(name)
    inp = os.path.join(d, "in.jsonl")
    with open(inp, "wb") as f:
        f.write(lines if raw else "".join(x + "\n" for x in lines).encode())
    cat = catalog or os.path.join(ctx.demo, "catalog.json")
    out = os.path.join(d, "out")
    return ctx.run("ingest", "--catalog", cat, "--out", out, *extra, inp, limit_as=limit_as), out


def line(qid="q1", text="what is 2+2?", **kw):
    o = {"id": qid, "text": text, "outcomes": [{"model": "demo-1b", "strategy": "cot", "correct": 1, "tokens": 10,
                                                 "cost": 0.001}]}
    o.update(kw)
    return json.dumps(o)


def corpus_ids(out):
    ids = []
    for f in sorted(glob.glob(os.path.join(out, "shard-*.h5"))):
        with h5py.File(f, "r") as h:
            ids += rtrdata.strings(h, "id")
    return ids


def outcome(out, field):
    vals = []
    for f in sorted(glob.glob(os.path.join(out, "shard-*.h5"))):
        with h5py.File(f, "r") as h:
            vals.append(h["outcomes/" + field][()])
    return np.concatenate(vals)


# ------------------------------------------------------- 1. manifest vs shards

ROUTERS = {"info": lambda c, d: ("info", c),
           "route": lambda c, d: ("route", c, "--split", "all", "--lambda", "0.5", "--out", os.path.join(d, "d.csv"), "--device", "cpu"),
           "sweep": lambda c, d: ("sweep", c, "--out", os.path.join(d, "sw"), "--device", "cpu"),
           "eval": lambda c, d: ("eval", c, "--out", os.path.join(d, "e.json"), "--no-embedllm", "--device", "cpu"),
           "train": lambda c, d: ("train", c, "--out", os.path.join(d, "t.safetensors"), "--hidden", "4",
                                  "--learn-dim", "0", "--epochs", "1", "--device", "cpu")}


def tamper_case(cid, what, edit, names, commands=("info", "route", "sweep", "eval", "train")):
    for cmd in commands:
        @case(f"{cid}-{cmd}", "1 manifest", f"{what}; rtr {cmd}", "tests/fuzz/fuzz_manifest.c")
        def _(ctx, edit=edit, cmd=cmd):
            c = ctx.corpus()
            m = manifest(c)
            m = edit(m, c)
            if m is not None:
                write_manifest(c, m)
            return verdict(ctx.run(*ROUTERS[cmd](c, os.path.dirname(c))), names=names)


def shard0(m, key, value):
    m["shards"][0][key] = value
    return m


tamper_case("man-count-small", "shard 0's n_queries in manifest.json 80 -> 10",
            lambda m, c: shard0(m, "n_queries", 10), ("n_queries",))
tamper_case("man-count-zero", "shard 0's n_queries -> 0", lambda m, c: shard0(m, "n_queries", 0), ("n_queries",),
            ("info", "route"))
tamper_case("man-count-frac", "shard 0's n_queries -> 79.5", lambda m, c: shard0(m, "n_queries", 79.5),
            ("n_queries",), ("info", "route"))
tamper_case("man-count-huge", "shard 0's n_queries -> 1e15", lambda m, c: shard0(m, "n_queries", 1e15),
            ("n_queries",), ("info", "route"))
tamper_case("man-count-neg", "shard 0's n_queries -> -5", lambda m, c: shard0(m, "n_queries", -5), ("n_queries",),
            ("info", "route"))
tamper_case("man-total", "top-level n_queries 200 -> 150", lambda m, c: {**m, "n_queries": 150}, ("n_queries",),
            ("info", "route"))
tamper_case("man-version-frac", "version 2 -> 2.5", lambda m, c: {**m, "version": 2.5}, ("version",),
            ("info", "route"))
tamper_case("man-version-3", "version 2 -> 3", lambda m, c: {**m, "version": 3}, ("version",), ("info",))
tamper_case("man-hash", "catalog_hash changed", lambda m, c: {**m, "catalog_hash": "0123456789abcdef"},
            ("catalog_hash",), ("info", "route"))
tamper_case("man-dup-shard", "shard 0 listed twice", lambda m, c: {**m, "shards": m["shards"] + m["shards"][:1]},
            ("shard-00000",), ("info", "route", "train"))
tamper_case("man-missing-shard", "a listed shard file deleted",
            lambda m, c: (os.remove(os.path.join(c, "shard-00001.h5")), m)[1], ("shard-00001",), ("info", "route"))
tamper_case("man-escape", "a shard path ../outside.h5",
            lambda m, c: (shutil.copy(os.path.join(c, "shard-00000.h5"), os.path.join(c, "..", "outside.h5")),
                          shard0(m, "file", "../outside.h5"))[1], ("shards[0].file",), ("info",))
tamper_case("man-pair-range", "catalog pair index out of range (pair names an unknown model)",
            lambda m, c: (m["catalog"]["pairs"].__setitem__(0, ["no-such-model", m["catalog"]["pairs"][0][1]]), m)[1],
            ("pairs",), ("info", "route"))
tamper_case("man-catalog-other", "manifest catalog differs from the shards' (a model renamed)",
            lambda m, c: (m["catalog"]["models"][0].__setitem__("name", "renamed"),
                          [p.__setitem__(0, "renamed") for p in m["catalog"]["pairs"] if p[0] == "demo-1b"], m)[2],
            ("catalog",), ("info", "route"))
tamper_case("man-notjson", "manifest.json is not JSON", lambda m, c: "{\"schema\": ", ("manifest.json",), ("info",))
tamper_case("man-empty", "manifest.json empty", lambda m, c: "", ("manifest.json",), ("info",))
tamper_case("man-dir", "manifest.json is a directory",
            lambda m, c: (os.remove(os.path.join(c, "manifest.json")), os.mkdir(os.path.join(c, "manifest.json")),
                          None)[2], ("manifest.json",), ("info",))


# -------------------------------------------------------------- 2. shard damage

def outputs(cmd, c, r):
    """What rtr CMD produced on corpus c, paths and times left out, to compare
    a run on a damaged corpus with one on the undamaged corpus."""
    d = os.path.dirname(c)
    if cmd == "info":
        return r.out.replace(c, "CORPUS")
    if cmd == "train":
        return re.findall(r"checkpoint ([0-9a-f]{16})", r.err)
    if cmd == "route":
        return open(os.path.join(d, "d.csv")).read()
    if cmd == "sweep":
        return open(os.path.join(d, "sw", "path.csv")).read()
    if cmd == "eval":
        e = json.load(open(os.path.join(d, "e.json")))
        for k in ("corpus", "out", "seconds", "title"):
            e.pop(k, None)
        return json.dumps(e, sort_keys=True)
    return None


def reference(ctx, cmd):
    """outputs() of CMD on the undamaged fixture (computed once)."""
    if cmd not in ctx.refs:
        c = ctx.corpus("ref")
        ctx.refs[cmd] = outputs(cmd, c, ctx.run(*ROUTERS[cmd](c, os.path.dirname(c))))
    return ctx.refs[cmd]


def damage_case(cid, what, damage, commands=("info", "route", "sweep", "eval", "train"), names=("shard-00000",),
                silent_ok=False, test="tests/fuzz/fuzz_shard.c"):
    """silent_ok: the damage may lie in data a command does not read; exit 0
    is then right when its output equals the undamaged corpus's."""
    for cmd in commands:
        @case(f"{cid}-{cmd}", "2 shard damage", f"{what}; rtr {cmd}", test)
        def _(ctx, damage=damage, cmd=cmd):
            c = ctx.corpus()
            damage(os.path.join(c, "shard-00000.h5"))
            r = ctx.run(*ROUTERS[cmd](c, os.path.dirname(c)))
            if silent_ok and r.rc == 0 and outputs(cmd, c, r) == reference(ctx, cmd):
                return "ok", "exit 0 with the undamaged corpus's result (the damage is in data it does not read)"
            return verdict(r, names=names)


def truncate(p, frac=0.5):
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(int(size * frac))


def flips(seed, count):
    def f(p):
        data = bytearray(open(p, "rb").read())
        rng = np.random.default_rng(seed)
        for _ in range(count):
            i = int(rng.integers(0, len(data)))
            data[i] ^= 1 << int(rng.integers(0, 8))
        open(p, "wb").write(bytes(data))
    return f


def h5edit(fn, kind=None):
    """fn(h) on shard p, or on its output file in embeddings/ or tables/ (kind)."""
    def f(p):
        with h5py.File(side(kind, p) if kind else p, "a") as h:
            fn(h)
    return f


def set_strings(h, col, values):
    """Rewrite string column col of a shard as bytes + offsets."""
    data = [v.encode() for v in values]
    off = np.cumsum([0] + [len(x) for x in data]).astype(np.int64)
    replace_ds(h, f"queries/{col}/bytes", np.frombuffer(b"".join(data), dtype=np.uint8))
    replace_ds(h, f"queries/{col}/offsets", off)


def replace_ds(h, name, data, attrs=None):
    old = dict(h[name].attrs) if name in h else {}
    if name in h:
        del h[name]
    h[name] = data
    for k, v in (attrs or old).items():
        h[name].attrs[k] = v


damage_case("sh-trunc", "shard truncated to half", truncate)
damage_case("sh-empty", "shard an empty file", lambda p: open(p, "w").close(), ("info", "route"))
damage_case("sh-dir", "shard a directory", lambda p: (os.remove(p), os.mkdir(p)), ("info", "route"))
damage_case("sh-text", "shard a text file", lambda p: open(p, "w").write("not hdf5\n"), ("info", "route"))
for seed in range(6):
    damage_case(f"sh-flip{seed}", f"8 random bit flips (seed {seed})", flips(seed, 8), silent_ok=True)
damage_case("sh-fifo", "shard a named pipe nobody writes to", lambda p: (os.remove(p), os.mkfifo(p)), ("info",))
damage_case("sh-loop", "shard a symbolic link to itself", lambda p: (os.remove(p), os.symlink(os.path.basename(p), p)),
            ("info",))
damage_case("sh-correct5", "outcome correct = 5 in the shard",
            h5edit(lambda h: h["outcomes/correct"].__setitem__((0, 0), 5.0)), ("info", "route", "eval", "train"),
            ("correct",))
damage_case("sh-tokens-neg", "outcome tokens = -3 in the shard",
            h5edit(lambda h: h["outcomes/tokens"].__setitem__((0, 0), -3.0)), ("info", "eval", "train"), ("tokens",))
damage_case("sh-emb-nan", "a NaN query embedding",
            h5edit(lambda h: h["embedding/query"].__setitem__((0, 0), np.nan), "embeddings"), ("train", "eval"), ("embedding",))
damage_case("sh-emb-rows", "query embeddings with fewer rows than queries",
            h5edit(lambda h: replace_ds(h, "embedding/query", h["embedding/query"][()][:-5]), "embeddings"), ("train", "eval"),
            ("embedding",))
damage_case("sh-p-range", "routing p_correct = 7 in a table",
            h5edit(lambda h: h["routing/p_correct"].__setitem__((0, 0), 7.0), "tables"), ("route", "sweep"), ("p_correct",))
damage_case("sh-table-shape", "routing table with one pair too few",
            h5edit(lambda h: replace_ds(h, "routing/tokens", h["routing/tokens"][()][:, :-1]), "tables"), ("route", "sweep"),
            ("tokens",))
damage_case("sh-ids-count", "/queries/id with one row too many",
            h5edit(lambda h: set_strings(h, "id", rtrdata.strings(h, "id") + ["extra"])),
            ("info", "route"), ("queries/id",))
damage_case("sh-dup-id", "a query id repeated in another shard",
            h5edit(lambda h: set_strings(h, "id", ["demo-0000100"] + rtrdata.strings(h, "id")[1:])),
            ("info", "route", "sweep", "eval", "train"), ("demo-0000100", "shard-00000", "shard-00001"),
            test="tests/test_guards.py")


# ----------------------------------------------------------- 3. ingest inputs

def expect_ids(want):
    def chk(out):
        got = corpus_ids(out) if os.path.isdir(out) else None
        return None if got == want else f"stored ids {got[:4] if got else got}"
    return chk


@case("ing-longline", "3 ingest", "a line too long to allocate (600 MB, under ulimit -v 512 MiB) after 2 good lines",
      "inventory")
def _(ctx):
    d = ctx.dir("long")
    inp = os.path.join(d, "in.jsonl")
    with open(inp, "w") as f:
        f.write(line("a") + "\n" + line("b") + "\n")
        f.write('{"id": "c", "text": "' + "x" * (600 << 20) + '"}\n')
        f.write(line("d") + "\n")
    out = os.path.join(d, "out")
    r = ctx.run("ingest", "--catalog", os.path.join(ctx.demo, "catalog.json"), "--out", out, inp, limit_as=512 << 20)
    os.remove(inp)
    return verdict(r, names=("in.jsonl",), accepted="loss", check=lambda _: f"stored ids {corpus_ids(out)}")


@case("ing-trailing", "3 ingest", "trailing garbage after the object on a line", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a") + " garbage", line("b")])
    return verdict(r, names=("in.jsonl:1",), accepted="loss")


@case("ing-two-objects", "3 ingest", "two JSON objects on one line", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a") + line("b"), line("c")])
    return verdict(r, names=("in.jsonl:1",), accepted="loss")


@case("ing-nul-id", "4 stored wrong", "\\u0000 inside ids: two distinct ids collide", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a\u0000x"), line("a\u0000y")])
    return verdict(r, names=("in.jsonl",), accepted="wrong", check=lambda _: f"stored ids {corpus_ids(out)}")


@case("ing-nul-text", "4 stored wrong", "\\u0000 inside a text truncates it", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a", text="before\u0000after")])
    return verdict(r, names=("in.jsonl",), accepted="wrong")


@case("ing-dup-key", "4 stored wrong", "duplicate JSON key (\"id\" twice) keeps one silently", "inventory")
def _(ctx):
    r, out = ingest(ctx, ['{"id": "a", "id": "b", "text": "t"}'])
    return verdict(r, names=("in.jsonl:1", "id"), accepted="wrong")


@case("ing-tokens-inf", "4 stored wrong", "tokens 1e39 (beyond float32) stored", "inventory")
def _(ctx):
    r, out = ingest(ctx, [json.dumps({"id": "a", "text": "t", "outcomes": [
        {"model": "demo-1b", "strategy": "cot", "correct": 1, "tokens": 1e39}]})])
    return verdict(r, names=("in.jsonl:1", "tokens"), check=lambda _: f"stored {outcome(out, 'tokens')[0][1]}")


@case("ing-cost-big", "4 stored wrong", "cost 3.5e38 (rounds to +inf in float32)", "inventory")
def _(ctx):
    r, out = ingest(ctx, [json.dumps({"id": "a", "text": "t", "outcomes": [
        {"model": "demo-1b", "strategy": "cot", "correct": 1, "cost": 3.5e38}]})])
    return verdict(r, names=("in.jsonl:1", "cost"), check=lambda _: f"stored {outcome(out, 'cost')[0][1]}")


@case("ing-correct-over", "3 ingest", "correct 1.5 refused", "tests/test_cli_ingest.sh")
def _(ctx):
    r, out = ingest(ctx, [json.dumps({"id": "a", "text": "t", "outcomes": [
        {"model": "demo-1b", "strategy": "cot", "correct": 1.5}]})])
    return verdict(r, names=("in.jsonl:1", "correct"))


@case("ing-id-frac", "3 ingest", "numeric id 1.5 refused", "inventory")
def _(ctx):
    r, out = ingest(ctx, ['{"id": 1.5, "text": "t"}'])
    return verdict(r, names=("in.jsonl:1", "id"))


@case("ing-badutf8", "3 ingest", "invalid UTF-8 in a text", "tests/test_cli_ingest.sh")
def _(ctx):
    r, out = ingest(ctx, b'{"id": "a", "text": "\xff\xfe"}\n', raw=True)
    return verdict(r, names=("in.jsonl:1", "UTF-8"))


@case("ing-crlf-bom", "3 ingest", "CRLF line ends and a UTF-8 BOM: accepted, ids intact", "inventory")
def _(ctx):
    r, out = ingest(ctx, b"\xef\xbb\xbf" + (line("a") + "\r\n" + line("b") + "\r\n").encode(), raw=True)
    return verdict(r, expect="accept", check=lambda _: expect_ids(["a", "b"])(out))


@case("ing-flat", "3 ingest", "a flat line: an outcome's fields beside id and text (the outcome was dropped)",
      "tests/test_cli_ingest.sh")
def _(ctx):
    r, out = ingest(ctx, [line("a"), '{"id": "b", "text": "t", "model": "demo-1b", "strategy": "cot", "correct": 1}'])
    return verdict(r, names=("in.jsonl:2", "model", "outcomes"), accepted="loss")


@case("ing-near-key", "3 ingest", "an outcome key misspelt (corect): the value was dropped", "tests/test_cli_ingest.sh")
def _(ctx):
    r, out = ingest(ctx, ['{"id": "a", "text": "t", "outcomes": [{"model": "demo-1b", "strategy": "cot", "corect": 1}]}'])
    return verdict(r, names=("in.jsonl:1", "corect", "correct"), accepted="loss")


@case("ing-empty", "3 ingest", "an empty log", "inventory")
def _(ctx):
    r, out = ingest(ctx, b"", raw=True)
    return verdict(r, names=("no quer",), accepted="wrong")


@case("ing-dup-id", "3 ingest", "a query id twice", "tests/test_cli_ingest.sh")
def _(ctx):
    r, out = ingest(ctx, [line("a"), line("a")])
    return verdict(r, names=("in.jsonl:2", "duplicate"))


@case("ing-input-dir", "6 messages", "an input log that is a directory", "inventory")
def _(ctx):
    d = ctx.dir("indir")
    r = ctx.run("ingest", "--catalog", os.path.join(ctx.demo, "catalog.json"), "--out", os.path.join(d, "o"), d)
    return verdict(r, names=(d, "directory"))


@case("ing-catalog-dir", "6 messages", "--catalog a directory", "inventory")
def _(ctx):
    d = ctx.dir("catdir")
    r = ctx.run("ingest", "--catalog", d, "--out", os.path.join(d, "o"), os.path.join(ctx.demo, "outcomes.jsonl"))
    return verdict(r, names=(d, "directory"))


@case("ing-shard-0", "6 messages", "--shard-size 0", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a")], extra=("--shard-size", "0"))
    return verdict(r, names=("shard-size",), usage=True)


@case("ing-shard-abc", "6 messages", "--shard-size 10abc", "inventory")
def _(ctx):
    r, out = ingest(ctx, [line("a")], extra=("--shard-size", "10abc"))
    return verdict(r, names=("shard-size", "10abc"), usage=True)


@case("ing-big-catalog", "5 bounds", "a 100 x 100 catalog, 200 queries, default shard size, ulimit -v 4 GiB",
      "inventory")
def _(ctx):
    d = ctx.dir("bigcat")
    cat = {"models": [{"name": f"m{i}"} for i in range(100)], "strategies": [{"name": f"s{i}"} for i in range(100)]}
    json.dump(cat, open(os.path.join(d, "cat.json"), "w"))
    lines = [json.dumps({"id": f"q{i}", "text": "t", "outcomes": [{"model": "m1", "strategy": "s2", "correct": 1}]})
             for i in range(200)]
    r, out = ingest(ctx, lines, catalog=os.path.join(d, "cat.json"), limit_as=4 << 30)
    return verdict(r, expect="accept", check=lambda _: expect_ids([f"q{i}" for i in range(200)])(out))


@case("ing-out-exists", "7 leftovers", "--out an existing corpus", "tests/test_cli_ingest.sh")
def _(ctx):
    c = ctx.corpus(tables=False)
    r = ctx.run("ingest", "--catalog", os.path.join(ctx.demo, "catalog.json"), "--out", c,
                os.path.join(ctx.demo, "outcomes.jsonl"))
    return verdict(r, names=("already holds a corpus",))


# ------------------------------------------------------------- catalog input

def catalog_case(cid, what, cat, names):
    @case(cid, "3 ingest", what, "tests/fuzz/fuzz_catalog.c")
    def _(ctx):
        d = ctx.dir("cat")
        p = os.path.join(d, "cat.json")
        open(p, "w").write(cat if isinstance(cat, str) else json.dumps(cat))
        r, out = ingest(ctx, [line("a")], catalog=p)
        return verdict(r, names=names)


catalog_case("cat-dup-model", "catalog: a model listed twice",
             {"models": [{"name": "a"}, {"name": "a"}], "strategies": [{"name": "s"}]}, ("cat.json", "duplicate"))
catalog_case("cat-pair-unknown", "catalog: a pair naming an unknown model",
             {"models": [{"name": "a"}], "strategies": [{"name": "s"}], "pairs": [["b", "s"]]}, ("cat.json", "pairs"))
catalog_case("cat-bar", "catalog: a name with '|'", {"models": [{"name": "a|b"}], "strategies": [{"name": "s"}]},
             ("cat.json", "|"))
catalog_case("cat-price-neg", "catalog: price_out -1", {"models": [{"name": "a", "price_out": -1}],
                                                        "strategies": [{"name": "s"}]}, ("cat.json", "price_out"))
catalog_case("cat-notjson", "catalog: not JSON", "{\"models\": [", ("cat.json",))
@case("cat-dup-key", "4 stored wrong", "catalog: \"models\" key twice (the first kept silently?)",
      "tests/fuzz/fuzz_catalog.c")
def _(ctx):
    d = ctx.dir("cat")
    p = os.path.join(d, "cat.json")
    open(p, "w").write('{"models": [{"name": "a"}], "strategies": [{"name": "s"}], "models": [{"name": "b"}]}')
    r, out = ingest(ctx, ['{"id": "q", "text": "t", "outcomes": [{"model": "a", "strategy": "s", "correct": 1}]}'],
                    catalog=p)
    return verdict(r, names=("cat.json", "models"))


# ------------------------------------------------------------- 4. model folder

def model_copy(ctx, edit_config=None, edit_weights=None, edit_text=None):
    d = ctx.dir("model")
    m = os.path.join(d, "m")
    os.makedirs(m)
    for f in os.listdir(ctx.model):
        s = os.path.join(ctx.model, f)
        if os.path.isdir(s):
            shutil.copytree(s, os.path.join(m, f))
        elif f != "model.safetensors" or edit_weights:
            shutil.copy(s, os.path.join(m, f))
        else:
            os.symlink(s, os.path.join(m, f))
    if edit_config:
        cfg = json.load(open(os.path.join(m, "config.json")))
        edit_config(cfg)
        json.dump(cfg, open(os.path.join(m, "config.json"), "w"))
    if edit_weights:
        edit_weights(os.path.join(m, "model.safetensors"))
    if edit_text:  # (file in the folder, text -> text): for what json.dump cannot write (a key twice)
        path = os.path.join(m, edit_text[0])
        with open(path) as f:
            t = edit_text[1](f.read())
        with open(path, "w") as f:
            f.write(t)
    return m


def nan_weights(p):
    data = bytearray(open(p, "rb").read())
    hlen = int.from_bytes(data[:8], "little")
    hdr = json.loads(data[8:8 + hlen])
    name = next(k for k in hdr if k.endswith("embeddings.word_embeddings.weight"))
    a, b = hdr[name]["data_offsets"]
    base = 8 + hlen + a
    data[base:b + 8 + hlen] = np.full((b - a) // 4, np.nan, dtype=np.float32).tobytes()
    open(p, "wb").write(bytes(data))


def embed_check(r):
    try:
        rows = [json.loads(x) for x in r.out.splitlines()]
    except ValueError:
        return "stdout is not JSON: " + r.out[:80]
    if not rows or not all(abs(sum(v * v for v in row) - 1) < 1e-4 for row in rows):
        return "rows not unit length"
    return None


def model_case(cid, what, names, edit_config=None, edit_weights=None, group="4 stored wrong", edit_text=None,
               test="tests/fuzz/fuzz_model_config.c"):
    @case(cid, group, what + "; rtr embed", test)
    def _(ctx):
        if not ctx.model:
            return "skip", "no model folder"
        m = model_copy(ctx, edit_config, edit_weights, edit_text)
        r = ctx.run("embed", "--model", m, "--device", "cpu", stdin="what is 2+2?\n")
        return verdict(r, names=names, check=embed_check)


model_case("mod-nan-weights", "word embeddings all NaN", ("model.safetensors",), edit_weights=nan_weights)
model_case("mod-neg-eps", "layer_norm_eps -1", ("layer_norm_eps",), lambda c: c.__setitem__("layer_norm_eps", -1.0))
model_case("mod-frac-hidden", "hidden_size 384.5", ("hidden_size",), lambda c: c.__setitem__("hidden_size", 384.5))
model_case("mod-pad-neg", "pad_token_id -7", ("pad_token_id",), lambda c: c.__setitem__("pad_token_id", -7))
model_case("mod-pad-huge", "pad_token_id 2^31 - 1", ("pad_token_id",),
           lambda c: c.__setitem__("pad_token_id", 2147483647))
model_case("mod-trunc", "model.safetensors truncated", ("model.safetensors",),
           edit_weights=lambda p: truncate(p, 0.3), group="2 shard damage")
# cJSON keeps a key's first value, transformers (Python's json) its last: other sizes or eps than theirs
model_case("mod-dup-key", "config.json with layer_norm_eps twice (0.5, then the model's)", ("config.json", "layer_norm_eps"),
           edit_text=("config.json", lambda t: t.replace("{", '{"layer_norm_eps": 0.5, ', 1)), test="inventory")
# Python takes the string "yes" as set (CLS pooling); read as unset it pooled the mean
model_case("mod-pool-flag-str", "1_Pooling/config.json pooling_mode_cls_token \"yes\"", ("pooling_mode_cls_token",),
           edit_text=("1_Pooling/config.json",
                      lambda t: re.sub(r'"pooling_mode_cls_token": *false', '"pooling_mode_cls_token": "yes"', t)),
           test="inventory")

# session 8: a max length rtr cannot honour was skipped silently (512 tokens used instead)
model_case("mod-msl-big", "sentence_bert_config.json max_seq_length 1000", ("sentence_bert_config.json", "max_seq_length"),
           edit_text=("sentence_bert_config.json", lambda t: re.sub(r'"max_seq_length": *\d+', '"max_seq_length": 1000', t)),
           test="tests/test_bad_model.py")
model_case("mod-msl-frac", "sentence_bert_config.json max_seq_length 100.5",
           ("sentence_bert_config.json", "max_seq_length"),
           edit_text=("sentence_bert_config.json", lambda t: re.sub(r'"max_seq_length": *\d+', '"max_seq_length": 100.5', t)),
           test="tests/test_bad_model.py")
model_case("mod-sbert-json", "sentence_bert_config.json not JSON", ("sentence_bert_config.json", "JSON"),
           edit_text=("sentence_bert_config.json", lambda t: t[:len(t) // 2]), test="tests/test_bad_model.py")


@case("enc-stale", "4 stored wrong", "re-encode the table's encoding with other weights; old routing table used by route",
      "inventory")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    c = ctx.corpus()
    m = model_copy(ctx, edit_weights=lambda p: flips(1, 0)(p))  # a copy: same weights, so the same hash
    # another encoder: one weight changed, so another hash
    data = bytearray(open(os.path.join(m, "model.safetensors"), "rb").read())
    data[-8:-4] = np.float32(0.5).tobytes()
    open(os.path.join(m, "model.safetensors"), "wb").write(bytes(data))
    r = ctx.run("encode", "--model", m, "--name", ENC, "--device", "cpu", c)
    if r.rc != 0:
        return "unclear", "encode failed: " + last(r.err)
    r = ctx.run(*ROUTERS["route"](c, os.path.dirname(c)))
    return verdict(r, names=("encoder",), accepted="wrong")


# ------------------------------------------------------------- checkpoints

def checkpoint_flip(ctx, tensor, byte, bit):
    """A copy of the fixture checkpoint with one bit of one tensor flipped."""
    data = bytearray(open(ctx.ck, "rb").read())
    hlen = int.from_bytes(data[:8], "little")
    a, _ = json.loads(data[8:8 + hlen])[tensor]["data_offsets"]
    data[8 + hlen + a + byte] ^= 1 << bit
    return bytes(data)


for tensor, byte, bit in (("head.correct.W_q", 5, 6), ("pair_model", 2, 0), ("head.tokens.b2", 3, 7)):
    @case(f"ck-flip-{tensor}", "4 stored wrong", f"one bit flipped in checkpoint tensor {tensor} (byte {byte}, "
          f"bit {bit}); rtr score", "tests/fuzz/fuzz_checkpoint.c")
    def _(ctx, tensor=tensor, byte=byte, bit=bit):
        c = ctx.corpus()
        ck = os.path.join(os.path.dirname(c), "ck.safetensors")
        open(ck, "wb").write(checkpoint_flip(ctx, tensor, byte, bit))
        return verdict(ctx.run("score", "--checkpoint", ck, "--device", "cpu", c), names=("ck.safetensors",))


@case("ck-trunc", "2 shard damage", "a truncated checkpoint; rtr score", "tests/fuzz/fuzz_checkpoint.c")
def _(ctx):
    c = ctx.corpus()
    ck = os.path.join(os.path.dirname(c), "ck.safetensors")
    open(ck, "wb").write(open(ctx.ck, "rb").read()[:1000])
    return verdict(ctx.run("score", "--checkpoint", ck, "--device", "cpu", c), names=("ck.safetensors",))


@case("ck-other-catalog", "6 messages", "a checkpoint of another catalog; rtr score", "inventory")
def _(ctx):
    d = ctx.dir("othercat")
    cat = json.load(open(os.path.join(ctx.demo, "catalog.json")))
    cat["models"][0]["description"] = "changed"
    json.dump(cat, open(os.path.join(d, "cat.json"), "w"))
    out = os.path.join(d, "corp")
    r = ctx.run("ingest", "--catalog", os.path.join(d, "cat.json"), "--out", out, os.path.join(ctx.demo, "outcomes.jsonl"))
    if r.rc:
        return "unclear", last(r.err)
    emb = os.path.join(ctx.scored, "embeddings", ENC)
    with h5py.File(os.path.join(emb, "descriptions.h5"), "r") as g:
        desc = (g["embedding/model_desc"][()], g["embedding/strategy_desc"][()])
    rtrdata.write_embeddings(out, ENC, ENC_HASH, lambda p: h5py.File(os.path.join(emb, os.path.basename(p)), "r")
                             ["embedding/query"][()], desc, encoder=ENC)
    r = ctx.run("score", "--checkpoint", ctx.ck, "--device", "cpu", out)
    msg = r.err
    ok_msg = re.search(r"\((\d+) pairs\).*\((\d+) pairs\)", msg)
    if r.rc == 1 and ok_msg and ok_msg.group(1) == ok_msg.group(2):
        return "unclear", "says the pair counts differ when they are equal: " + last(msg)
    return verdict(r, names=("catalog",))


@case("train-no-outcomes", "4 stored wrong", "train on a corpus with no outcomes", "inventory")
def _(ctx):
    r, out = ingest(ctx, ['{"id": "q%d", "text": "t%d"}' % (i, i) for i in range(30)])
    if r.rc:
        return verdict(r)
    stand_in_embeddings(out, np.random.default_rng(0))
    r = ctx.run("train", out, "--out", os.path.join(os.path.dirname(out), "t.safetensors"), "--hidden", "4",
                "--learn-dim", "0", "--epochs", "1", "--device", "cpu")
    return verdict(r, names=("outcome",))


# ---------------------------------------------------------- CLI option values

def cli_case(cid, what, args, names, usage=True, group="6 messages", corpus=True, timeout=60,
             test="tests/fuzz/fuzz_cli.c"):
    @case(cid, group, what, test)
    def _(ctx):
        c = ctx.corpus() if corpus else ctx.dir("cli")
        d = os.path.dirname(c)
        full = [a.replace("{c}", c).replace("{d}", d) for a in args]
        return verdict(ctx.run(*full, timeout=timeout), names=names, usage=usage)


cli_case("cli-lambda-over", "--lambda 1.0000001", ["route", "{c}", "--lambda", "1.0000001", "--out", "{d}/x.csv"],
         ("1.0000001",))
cli_case("cli-lambda-nan", "--lambda nan", ["route", "{c}", "--lambda", "nan", "--out", "{d}/x.csv"], ("nan",))
cli_case("cli-scale-nan", "--cost-scale nan", ["route", "{c}", "--lambda", "0.5", "--cost-scale", "nan", "--out",
                                               "{d}/x.csv"], ("cost-scale",))
cli_case("cli-scale-inf", "--cost-scale inf", ["sweep", "{c}", "--cost-scale", "inf", "--out", "{d}/sw"],
         ("cost-scale",))
cli_case("cli-budget-neg", "--budget -5", ["route", "{c}", "--budget", "-5", "--out", "{d}/x.csv"], ("budget",))
# session 8: libgomp SIGSEGV at 100000 threads (route, sweep, eval); an int option past INT_MAX wrapped
cli_case("cli-threads-route", "route --threads 100000", ["route", "{c}", "--lambda", "0.5", "--threads", "100000",
                                                         "--out", "{d}/x.csv"], ("threads", "1024"),
         group="5 bounds", test="tests/test_bad_inputs.py")
cli_case("cli-threads-sweep", "sweep --threads 100000", ["sweep", "{c}", "--threads", "100000", "--out", "{d}/sw"],
         ("threads", "1024"), group="5 bounds", test="tests/test_bad_inputs.py")
cli_case("cli-int-wrap", "train --hidden 2147483648 (wrapped to -1)",
         ["train", "{c}", "--hidden", "2147483648", "--out", "{d}/x.safetensors"], ("hidden", "2147483647"),
         group="5 bounds", test="tests/test_bad_inputs.py")
cli_case("cli-grid-huge", "sweep --grid 1e8 (documented limit or bounded time)",
         ["sweep", "{c}", "--grid", "100000000", "--out", "{d}/sw"], ("grid",), timeout=60, group="5 bounds",
         test="tests/test_route_cli.py")
cli_case("cli-grid-frac", "sweep --grid 2.5", ["sweep", "{c}", "--grid", "2.5", "--out", "{d}/sw"], ("grid",))
cli_case("cli-unknown", "an unknown option", ["route", "{c}", "--lamda", "0.5", "--out", "{d}/x.csv"], ("lamda",))
cli_case("cli-ext", "--out x.parquet", ["route", "{c}", "--lambda", "0.5", "--out", "{d}/x.parquet"], ("--out",))


@case("cli-out-dir", "6 messages", "--out x.csv where x.csv is a directory", "tests/test_guards.py (.h5)")
def _(ctx):
    c = ctx.corpus()
    out = os.path.join(os.path.dirname(c), "x.csv")
    os.mkdir(out)
    r = ctx.run("route", c, "--lambda", "0.5", "--out", out)
    return verdict(r, names=("x.csv",))
cli_case("cli-out-missing-dir", "--out in a folder that does not exist",
         ["route", "{c}", "--lambda", "0.5", "--out", "{d}/no/such/x.csv"], ("no/such",), usage=False)
cli_case("cli-out-shard", "route --out a shard of the corpus it reads (the rename replaced it)",
         ["route", "{c}", "--lambda", "0.5", "--out", "{c}/shard-00000.h5"], ("shard-00000.h5", "input corpus"),
         test="tests/test_cli_commands.py")
cli_case("cli-out-corpus", "sweep --out the corpus folder itself", ["sweep", "{c}", "--out", "{c}"], ("is the input",),
         test="tests/test_cli_commands.py")
cli_case("cli-corpus-file", "the corpus argument a plain file", ["info", "{c}/manifest.json"], ("manifest.json",),
         usage=False)


@case("cli-threads-huge", "5 bounds", "embed --threads 100000", "tests/fuzz/fuzz_cli.c")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    r = ctx.run("embed", "--model", ctx.model, "--device", "cpu", "--threads", "100000", stdin="what is 2+2?\n")
    return verdict(r, names=("threads", "100000"), check=embed_check, accepted="ok")


def pair_cost_case(cid, what, body, names):
    @case(cid, "6 messages", what, "tests/fuzz/fuzz_pair_cost.c")
    def _(ctx):
        c = ctx.corpus()
        p = os.path.join(os.path.dirname(c), "cost.json")
        open(p, "w").write(body if isinstance(body, str) else json.dumps(body))
        r = ctx.run("route", c, "--lambda", "0.5", "--cost", "user", "--pair-cost", p, "--out",
                    os.path.join(os.path.dirname(c), "x.csv"))
        return verdict(r, names=names)


PAIRS = [f"{m}|{s}" for m in ("demo-1b", "demo-8b", "demo-70b", "demo-400b") for s in ("direct", "cot", "pot", "sc")]
pair_cost_case("cost-neg", "user cost -1 for a pair", {**{p: 1 for p in PAIRS}, PAIRS[0]: -1}, ("cost.json", PAIRS[0]))
pair_cost_case("cost-missing", "user cost file lacking a pair", {p: 1 for p in PAIRS[1:]}, ("cost.json", PAIRS[0]))
pair_cost_case("cost-unknown", "user cost for an unknown pair", {**{p: 1 for p in PAIRS}, "x|y": 1}, ("cost.json", "x|y"))
pair_cost_case("cost-dup", "user cost file with a pair twice (different costs)",
               "{" + ", ".join(f'"{p}": 1' for p in PAIRS) + f', "{PAIRS[0]}": 5' + "}", ("cost.json", PAIRS[0]))


# --------------------------------------------------------- output and limits

@case("out-closed-stdout", "6 messages", "info --json with stdout closed", "inventory")
def _(ctx):
    c = ctx.corpus()
    r = ctx.run("info", c, "--json", close_stdout=True)
    return verdict(r, names=("stdout",))


@case("out-full-stdout", "6 messages", "info --json with stdout on /dev/full", "inventory")
def _(ctx):
    c = ctx.corpus()
    r = ctx.run("info", c, "--json", stdout_to="/dev/full")
    return verdict(r, names=("stdout",))


@case("out-full-online", "6 messages", "online route with stdout on /dev/full", "inventory")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    r = ctx.run("route", "--model", ctx.model, "--checkpoint", ctx.real_checkpoint(), "--lambda", "0.5", "--device",
                "cpu", stdin="what is 2+2?\n", stdout_to="/dev/full")
    return verdict(r, names=("stdout",), accepted="loss")


@case("out-full-embed", "6 messages", "embed with stdout on /dev/full", "inventory")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    r = ctx.run("embed", "--model", ctx.model, "--device", "cpu", stdin="what is 2+2?\n", stdout_to="/dev/full")
    return verdict(r, names=("stdout",), accepted="loss")


@case("out-long-name", "6 messages", "--out with a 5000-byte file name", "inventory")
def _(ctx):
    c = ctx.corpus()
    out = os.path.join(os.path.dirname(c), "x" * 5000 + ".csv")
    return verdict(ctx.run("route", c, "--lambda", "0.5", "--out", out), names=("xxxx",))


@case("in-closed-stdin", "6 messages", "embed with stdin closed", "inventory")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    r = ctx.run("embed", "--model", ctx.model, "--device", "cpu", close_stdin=True)
    return verdict(r, names=("stdin",), accepted="wrong")


@case("lim-embed", "5 bounds", "embed under ulimit -v 600 MiB", "tests/test_bad_limits.py")
def _(ctx):
    if not ctx.model:
        return "skip", "no model folder"
    r = ctx.run("embed", "--model", ctx.model, "--device", "cpu", stdin="what is 2+2?\n" * 50, limit_as=600 << 20,
                timeout=60)
    return verdict(r, names=("memory",), check=embed_check, accepted="ok")


@case("lim-train", "5 bounds", "train under ulimit -v 300 MiB", "tests/test_bad_limits.py")
def _(ctx):
    c = ctx.corpus()
    r = ctx.run("train", c, "--out", os.path.join(os.path.dirname(c), "t.safetensors"), "--device", "cpu",
                "--epochs", "2", limit_as=300 << 20, timeout=120)
    return verdict(r, names=("memory",), accepted="ok")


@case("lim-eval", "5 bounds", "eval under ulimit -v 300 MiB", "tests/test_bad_limits.py")
def _(ctx):
    c = ctx.corpus()
    r = ctx.run(*ROUTERS["eval"](c, os.path.dirname(c)), limit_as=300 << 20, timeout=120)
    return verdict(r, names=("memory",), accepted="ok")


# --------------------------------------------------------------- 7. leftovers

def dead_pid():
    """The PID of a process that has exited (as a killed run's is)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def killed(ctx, args, cwd, after):
    """Start rtr, SIGKILL it after `after` seconds."""
    p = subprocess.Popen([ctx.rtr, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(after)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@case("left-ingest", "7 leftovers", "killed ingest: DIR.tmp.PID removed by the next ingest", "inventory")
def _(ctx):
    d = ctx.dir("killing")
    lines = open(os.path.join(ctx.demo, "outcomes.jsonl")).read()
    open(os.path.join(d, "big.jsonl"), "w").write(lines * 1)
    big = os.path.join(d, "big.jsonl")
    # a temporary as a killed ingest leaves it (its PID no longer alive)
    os.makedirs(os.path.join(d, f"corp.tmp.{dead_pid()}"))
    r = ctx.run("ingest", "--catalog", os.path.join(ctx.demo, "catalog.json"), "--out", "corp", "--shard-size", "50",
                big, cwd=d)
    left = [x for x in os.listdir(d) if ".tmp." in x]
    if r.rc != 0:
        return verdict(r)
    return ("wrong", f"left behind: {left}") if left else ("ok", "stale temporary removed")


@case("left-score", "7 leftovers", "killed score: tables/NAME/shard-N.h5.tmp.PID removed by the next score",
      "inventory")
def _(ctx):
    c = ctx.corpus()
    t = side("tables", os.path.join(c, "shard-00000.h5"))
    shutil.copy(t, t + f".tmp.{dead_pid()}")
    r = ctx.run("score", "--checkpoint", ctx.ck, "--device", "cpu", c)
    left = [x for x in os.listdir(os.path.dirname(t)) if ".tmp." in x]
    if r.rc != 0:
        return verdict(r)
    return ("wrong", f"left behind: {left}") if left else ("ok", "stale temporary removed")


@case("left-sweep", "7 leftovers", "killed sweep: its folder never looks finished", "inventory")
def _(ctx):
    c = ctx.corpus()
    d = os.path.dirname(c)
    bad = []
    for i, after in enumerate((0.05, 0.1, 0.15, 0.2, 0.3)):
        out = os.path.join(d, f"sw{i}")
        killed(ctx, ["sweep", c, "--out", out, "--grid", "5", "--device", "cpu"], d, after)
        files = sorted(os.listdir(out)) if os.path.isdir(out) else None
        if files is not None and files != ["grid.csv", "path.csv", "plot.svg", "summary.json"] and not \
                any(".tmp" in f for f in files):
            bad.append(files)
    return ("wrong", f"partial folders under the final name: {bad}") if bad else ("ok", "whole or absent")


# ------------------------------------------------------------------- runner

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rtr")
    ap.add_argument("--model", default=os.path.join(SRC, "data", "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--only", default="")
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--markdown", help="write the results as a markdown table here (docs/robustness.md)")
    args = ap.parse_args()
    rtr = os.path.abspath(args.rtr)
    model = args.model if os.path.exists(os.path.join(args.model, "model.safetensors")) else None
    tmp = tempfile.mkdtemp(prefix="rtr_inventory_")
    ctx = Ctx(rtr, model, tmp)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    build_fixtures(ctx)
    counts, results = {}, []
    for c in CASES:
        if args.only and not re.search(args.only, c["id"] + " " + c["what"]):
            continue
        try:
            cls, detail = c["fn"](ctx)
        except Exception as e:  # a case that cannot be set up is reported, not hidden
            cls, detail = "error", f"{type(e).__name__}: {e}"
        counts[cls] = counts.get(cls, 0) + 1
        results.append(dict(id=c["id"], group=c["group"], what=c["what"], test=c["test"], outcome=cls, detail=detail))
        print(f"{cls:8} {c['id']:28} {c['what']} -- {detail}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print("\n" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + f" (of {len(results)})")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("| class | case | outcome | what rtr answered | guarded by |\n|---|---|---|---|---|\n")
            for r in results:
                said = re.sub(r"/tmp/rtr_inventory_[^/ ]*/", "", r["detail"]).replace("|", "\\|")
                what = r["what"].replace("|", "\\|")
                f.write(f"| {r['group']} | {what} | **{r['outcome']}** | {said} | {r['test']} |\n")
    return 0 if all(r["outcome"] in ("ok", "skip") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
