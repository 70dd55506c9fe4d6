#!/usr/bin/env python3
"""Bad inputs the robustness inventory (tests/robustness/inventory.py,
docs/robustness.md) found answered wrongly, each kept answered rightly here:

- output lost on a full (/dev/full) or closed stdout is exit 1 naming
  stdout, for any command (`info --json` was exit 0);
- a user cost file giving one pair twice (different costs) is refused
  naming the pair (the last one won silently);
- a shard that is a named pipe is refused as not a regular file (info
  blocked forever in the open);
- a directory given as a file (--catalog DIR) says it is a directory; a
  shard the user may not read, and a gen-demo folder it may not create,
  say permission denied (were "truncated or corrupt", "no such file");
- an embeddings/ or tables/ folder, or one table's folder, that cannot be
  read (permissions; a file where the folder should be) names the folder
  and the system's reason, exit 1 (read as "no embeddings: run rtr encode"
  or "incomplete, 0 of 3 shards: run rtr score"), and `--table NAME` where
  tables/NAME is a file says it is not a folder; `info` lists such a file,
  or a symbolic link to nowhere, as a table that is not usable, saying why
  (was "routing tables: none"), and a link to nowhere for tables/ itself is
  exit 1 naming its target;
- --threads past 1024 (route, sweep, eval: libgomp SIGSEGV) and sizes past
  INT_MAX (train --hidden: wrapped to -1) are usage errors naming the bound;
  score --chunk-rows, eval --knn, --bootstrap, --bootstrap-queries (at
  least 50) and sweep --grid are bounded by their option kinds, with one
  message, and --help says so;
- a catalog name holding \\u0000 is refused naming file and line (it was
  read up to the NUL);
- a catalog price of 1e308 is refused naming it, and USD costs past
  float's range name the pair (route ran with an infinite cost scale);
- eval on the training split (--split train) is refused unless the
  evaluated dataset is held out of the fit (it ran, exit 0);
- a stale temporary of a killed run (OUT.tmp.PID, PID dead) is removed by
  the next run writing OUT (ingest, gen-demo, train checked); one of a live
  PID is left alone."""
import json
import os
import shutil
import subprocess
import tempfile

from rtrtest import RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run, skip_part

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def with_table(corpus):
    rng = np.random.default_rng(5)
    cat = rtrdata.manifest(corpus)["catalog"]

    def unit(n):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def table(path):
        n = int(h5py.File(path, "r").attrs["n_queries"])
        k = len(cat["pairs"])
        return {"p_correct": rng.uniform(0, 1, (n, k)), "tokens": rng.uniform(10, 500, (n, k))}

    rtrdata.write_embeddings(corpus, "e", "hash-e", lambda p: unit(int(h5py.File(p, "r").attrs["n_queries"])),
                             (unit(len(cat["models"])), unit(len(cat["strategies"]))))
    rtrdata.write_table(corpus, "t", table, "ck", "e", "hash-e")


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def check_permissions(tmp, corpus):
    """A shard the user may not read was called "not a readable HDF5 file
    (truncated or corrupt)", and gen-demo into a folder it may not create
    named the catalog's temporary ("No such file or directory"): each now
    says permission denied, naming the file or folder. Run as nobody when
    root (whom permissions do not stop)."""
    user = None
    if os.geteuid() == 0:
        def user():
            os.setgid(65534)
            os.setuid(65534)
    perm = os.path.join(tmp, "perm")
    shutil.copytree(corpus, perm)
    ro = os.path.join(perm, "ro")
    os.makedirs(ro)
    for d in (tmp, perm):
        os.chmod(d, 0o755)
    if user:
        for root, dirs, files in os.walk(perm):
            for n in dirs + files:
                os.chown(os.path.join(root, n), 65534, 65534)
        os.chown(perm, 65534, 65534)
    os.chmod(ro, 0o555)
    shard = os.path.join(perm, "shard-00000.h5")
    os.chmod(shard, 0)

    # nobody cannot write the sanitizer logs of a root run (.ci/run's log_path):
    # its reports go to stderr instead, where a check sees them
    env = dict(os.environ)
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in env:
            env[k] = ":".join(o for o in env[k].split(":") if not o.startswith("log_path="))

    def as_user(*args):
        return subprocess.run([RTR, *args], capture_output=True, text=True, preexec_fn=user, env=env)

    if as_user("--version").returncode != 0:
        skip_part("permissions: rtr cannot run as nobody here (build folder not readable by it)")
        return
    r = as_user("info", perm)
    check(r.returncode == 1 and f"{shard}: cannot open: Permission denied" in r.stderr,
          f"an unreadable shard: said so: exit {r.returncode} {r.stderr.strip()}")
    r = as_user("gen-demo", "--queries", "3", os.path.join(ro, "d"))
    check(r.returncode == 1 and f"{ro}/d: cannot create: Permission denied" in r.stderr,
          f"gen-demo into a read-only folder: said so: exit {r.returncode} {r.stderr.strip()}")
    os.chmod(shard, 0o644)
    # folders of stage outputs the user may not read
    out = os.path.join(perm, "out")
    os.makedirs(out)
    os.chown(out, 65534, 65534)
    for folder, cmds in (("embeddings", (("info",), ("eval", "--bootstrap", "0", "--out", out + "/e.json"),
                                         ("train", "--epochs", "1", "--out", out + "/k.safetensors"))),
                         ("tables", (("info",), ("route", "--lambda", "0.5", "--out", out + "/d.csv"))),
                         ("tables/t", (("route", "--lambda", "0.5", "--out", out + "/d.csv"),
                                       ("eval", "--bootstrap", "0", "--out", out + "/e.json")))):
        path = os.path.join(perm, folder)
        os.chmod(path, 0)
        for cmd in cmds:
            r = as_user(cmd[0], perm, *cmd[1:])
            check(r.returncode == 1 and f"{path}: cannot read the folder" in r.stderr and "Permission denied" in r.stderr,
                  f"an unreadable {folder}/: rtr {cmd[0]} says so: exit {r.returncode} {r.stderr.strip()[-300:]}")
        os.chmod(path, 0o755)
    r = as_user("info", perm)
    check(r.returncode == 0, f"readable again: info: {r.stderr.strip()[-300:]}")
    os.chmod(ro, 0o755)


def check_not_folders(tmp, corpus):
    """A file where embeddings/ or a table's folder should be (no permission
    needed, so this runs as root too)."""
    odd = os.path.join(tmp, "odd")
    shutil.copytree(corpus, odd)
    shutil.rmtree(os.path.join(odd, "embeddings"))
    open(os.path.join(odd, "embeddings"), "w").write("x")
    open(os.path.join(odd, "tables", "x"), "w").write("x")
    for cmd in (("info", odd), ("train", odd, "--epochs", "1", "--out", os.path.join(tmp, "odd.safetensors")),
                ("eval", odd, "--bootstrap", "0", "--out", os.path.join(tmp, "odd.json"))):
        r = run(*cmd)
        check(r.returncode == 1 and f"{odd}/embeddings: cannot read the folder: Not a directory" in r.stderr,
              f"embeddings/ a file: rtr {cmd[0]} says so: exit {r.returncode} {r.stderr.strip()[-300:]}")
    r = run("route", odd, "--table", "x", "--lambda", "0.5", "--out", os.path.join(tmp, "odd.csv"))
    check(r.returncode == 1 and f"{odd}/tables/x: not a folder" in r.stderr,
          f"--table x, tables/x a file: says so: exit {r.returncode} {r.stderr.strip()[-300:]}")
    r = run("route", odd, "--lambda", "0.5", "--out", os.path.join(tmp, "odd.csv"))
    check(r.returncode == 0, f"route with the one table t, a stray file tables/x beside it: {r.stderr.strip()[-300:]}")

    # info listed "routing tables: none" when the only entry of tables/ was a
    # file, and said nothing of a link to nowhere (tables/NAME or tables/)
    only = os.path.join(tmp, "only-odd")
    shutil.copytree(corpus, only)
    shutil.rmtree(os.path.join(only, "tables"))
    os.mkdir(os.path.join(only, "tables"))
    open(os.path.join(only, "tables", "x"), "w").write("x")
    os.symlink(os.path.join(tmp, "nowhere"), os.path.join(only, "tables", "y"))
    # a link that leads round a loop read "a symbolic link to 'z', which Too
    # many levels of symbolic links"
    os.symlink("z", os.path.join(only, "tables", "z"))
    r = run("info", only, "--json")
    got = {t["name"]: t for t in json.loads(r.stdout)["tables"]} if r.returncode == 0 else {}
    want = {"x": f"{only}/tables/x: not a folder (a file)",
            "y": f"{only}/tables/y: a symbolic link to '{tmp}/nowhere', which does not exist",
            "z": f"{only}/tables/z: a symbolic link to 'z' that leads round a loop of links"}
    for name, words in want.items():
        t = got.get(name, {})
        check(not t.get("usable", True) and words in t.get("problem", ""),
              f"info --json lists tables/{name} as not usable, saying why: {r.returncode} {t or r.stderr[-300:]}")
    r = run("info", only)
    check(r.returncode == 0 and "routing tables (tables/): none" not in r.stdout and all(w in r.stdout for w in want.values()),
          f"info lists the odd tables/ entries: {r.stdout[-400:]}")
    r = run("route", only, "--lambda", "0.5", "--out", os.path.join(tmp, "odd.csv"))
    check(r.returncode == 1 and "no routing tables" in r.stderr and want["x"] in r.stderr,
          f"route, tables/ holding only a file: names it: {r.stderr.strip()[-300:]}")
    r = run("route", only, "--table", "y", "--lambda", "0.5", "--out", os.path.join(tmp, "odd.csv"))
    check(r.returncode == 1 and want["y"] in r.stderr, f"route --table y, a link to nowhere: {r.stderr.strip()[-300:]}")
    shutil.rmtree(os.path.join(only, "tables"))
    os.symlink(os.path.join(tmp, "nowhere"), os.path.join(only, "tables"))
    for cmd in (("info", only), ("route", only, "--lambda", "0.5", "--out", os.path.join(tmp, "odd.csv"))):
        r = run(*cmd)
        check(r.returncode == 1 and f"{only}/tables: cannot read the folder: a symbolic link to '{tmp}/nowhere', "
              "which does not exist" in r.stderr, f"tables/ a link to nowhere: rtr {cmd[0]}: exit {r.returncode} "
              f"{r.stderr.strip()[-300:]}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_badin_")
    corpus = demo_corpus(tmp, 60, 2, 25)
    with_table(corpus)

    # stdout full or closed
    with open("/dev/full", "w") as full:
        r = subprocess.run([RTR, "info", corpus, "--json"], stdout=full, stderr=subprocess.PIPE, text=True)
    check(r.returncode == 1 and "stdout" in r.stderr, f"info --json > /dev/full: exit {r.returncode}: {r.stderr}")
    r = subprocess.run([RTR, "info", corpus, "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       preexec_fn=lambda: os.close(1))
    check(r.returncode == 1 and "stdout" in r.stderr, f"info --json, stdout closed: exit {r.returncode}: {r.stderr}")
    r = run("info", corpus, "--json")
    check(r.returncode == 0 and json.loads(r.stdout), "info --json to a pipe still works")

    # a pair's user cost given twice
    pairs = ["|".join(p) for p in rtrdata.manifest(corpus)["catalog"]["pairs"]]
    cost = os.path.join(tmp, "cost.json")
    body = ", ".join(f'"{p}": 1' for p in pairs)
    # a pair name holding \u0000: cJSON ends it there ("de\u0000mo|x" read as "de")
    open(cost, "w").write("{" + body.replace(f'"{pairs[0]}"', '"' + pairs[0][:2] + "\\u0000" + pairs[0][2:] + '"', 1) + "}")
    r = run("route", corpus, "--lambda", "0.5", "--cost", "user", "--pair-cost", cost, "--out", os.path.join(tmp, "nul.csv"))
    check(r.returncode == 1 and "cost.json:1: a string holds \\u0000 (NUL)" in r.stderr,
          f"a pair name with \\u0000 named as such (was 'not a pair' of its first bytes): {r.stderr}")
    for name, text, ok in (("once", "{" + body + "}", True), ("twice", "{" + body + f', "{pairs[0]}": 5' + "}", False)):
        open(cost, "w").write(text)
        out = os.path.join(tmp, name + ".csv")
        r = run("route", corpus, "--lambda", "0.5", "--cost", "user", "--pair-cost", cost, "--out", out)
        if ok:
            check(r.returncode == 0 and os.path.exists(out), f"user costs, each pair once: {r.stderr}")
        else:
            check(r.returncode == 1 and pairs[0] in r.stderr and "twice" in r.stderr and not os.path.exists(out),
                  f"user cost of {pairs[0]} given twice: exit {r.returncode}: {r.stderr}")

    # a shard that is a named pipe nobody writes to (info blocked forever)
    fifo = os.path.join(tmp, "fifo")
    shutil.copytree(corpus, fifo)
    os.remove(os.path.join(fifo, "shard-00001.h5"))
    os.mkfifo(os.path.join(fifo, "shard-00001.h5"))
    try:
        r = subprocess.run([RTR, "info", fifo], capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and "shard-00001.h5" in r.stderr and "regular file" in r.stderr,
              f"a shard that is a named pipe: exit {r.returncode}: {r.stderr}")
    except subprocess.TimeoutExpired:
        check(False, "a shard that is a named pipe: rtr info still blocked after 60 s")

    # --catalog a directory: said so (was "read error")
    r = run("ingest", "--catalog", tmp, "--out", os.path.join(tmp, "o"), os.path.join(tmp, "demo", "outcomes.jsonl"))
    check(r.returncode == 1 and "directory" in r.stderr.lower(), f"--catalog a directory: {r.returncode} {r.stderr}")

    # huge numbers in integer flags: --threads 100000 killed route, sweep and
    # eval (libgomp SIGSEGV) and score ran; a size past INT_MAX wrapped (train
    # --hidden 2147483648 was refused as "hidden -1"); a usage error now,
    # naming the flag and its bound. A seed may still be any size.
    cmds = {"route": ("route", corpus, "--lambda", "0.5", "--out", os.path.join(tmp, "r.csv")),
            "sweep": ("sweep", corpus, "--out", os.path.join(tmp, "sw")),
            "eval": ("eval", corpus, "--bootstrap", "0", "--out", os.path.join(tmp, "ev.json")),
            "train": ("train", corpus, "--epochs", "1", "--out", os.path.join(tmp, "ck2.safetensors"))}
    for name, args in cmds.items():
        r = run(*args, "--threads", "100000")
        check(r.returncode == 2 and "--threads '100000'" in r.stderr and "at most 1024" in r.stderr,
              f"{name} --threads 100000: exit 2 naming the bound: exit {r.returncode} {r.stderr.strip()}")
    r = run(*cmds["sweep"], "--threads", "1024")
    check(r.returncode == 0, f"sweep --threads 1024 (the bound) runs: {r.stderr.strip()}")
    for flag in ("hidden", "learn-dim", "batch", "epochs", "patience"):
        r = run(*cmds["train"], f"--{flag}", "2147483648")
        check(r.returncode == 2 and f"--{flag} '2147483648'" in r.stderr and "at most 2147483647" in r.stderr,
              f"train --{flag} 2147483648: exit 2 naming the bound: exit {r.returncode} {r.stderr.strip()}")
    # score's --chunk-rows is bounded by its option kind (RTR_OPT_ROWS), not by
    # hand after parsing: the same message as every bounded integer, and
    # --help says the bound (it did not)
    r = run("score", corpus, "--checkpoint", os.path.join(tmp, "none.safetensors"), "--chunk-rows", "16777217")
    check(r.returncode == 2 and "--chunk-rows '16777217': expected an integer >= 1, at most 16777216" in r.stderr,
          f"score --chunk-rows 16777217: exit 2 naming the bound: exit {r.returncode} {r.stderr.strip()}")
    r = run("score", "--help")
    check(r.returncode == 0 and any("--chunk-rows" in x and "at most 16777216]" in x for x in r.stdout.splitlines()),
          f"score --help says --chunk-rows' bound: {r.stdout}")
    # eval's --knn and --bootstrap and sweep's --grid were bounded by hand
    # after parsing, each with its own words ("expected an integer in 1 ..
    # 100000", "must be in 0 .. 10000000") and none said in --help; now
    # option kinds (src/cli/args.h). eval --bootstrap-queries 1 ran a
    # degenerate m-out-of-n bootstrap (37% of resamples empty, intervals
    # printed "[100.0, —]"); below 50 it is refused.
    ev = ("eval", corpus, "--out", os.path.join(tmp, "e.json"))
    bounded = ((ev, "knn", "100001", "an integer >= 1, at most 100000"),
               (ev, "knn", "0", "an integer >= 1, at most 100000"),
               (ev, "bootstrap", "100001", "an integer >= 0, at most 100000"),
               (ev, "bootstrap-queries", "1", "an integer >= 50"),
               (ev, "bootstrap-queries", "49", "an integer >= 50"),
               (("sweep", corpus, "--out", os.path.join(tmp, "sw-grid")), "grid", "10000001",
                "an integer >= 0, at most 10000000"))
    for cmd, flag, value, words in bounded:
        r = run(*cmd, f"--{flag}", value)
        check(r.returncode == 2 and f"--{flag} '{value}': expected {words}" in r.stderr
              and not os.path.exists(cmd[-1]), f"{cmd[0]} --{flag} {value}: exit 2 naming the range: "
              f"exit {r.returncode} {r.stderr.strip()[-300:]}")
        r = run(cmd[0], "--help")
        check(r.returncode == 0 and any(x.lstrip().startswith(f"--{flag} ") and x.endswith(f"[{words}]")
                                        for x in r.stdout.splitlines()), f"{cmd[0]} --help says --{flag}'s range")
    r = run(*ev, "--bootstrap-queries", "50", "--bootstrap", "0")
    check(r.returncode == 0, f"eval --bootstrap-queries 50 accepted: {r.stderr.strip()[-300:]}")
    # a table named twice made two routers of one name in eval.json
    twice = os.path.join(tmp, "twice.json")
    r = run("eval", corpus, "--table", "x,y,x", "--bootstrap", "0", "--out", twice)
    check(r.returncode == 1 and "--table 'x,y,x' names table 'x' twice" in r.stderr and not os.path.exists(twice),
          f"eval --table x,y,x refused: exit {r.returncode} {r.stderr.strip()[-300:]}")
    # evaluating on the training split judged the baselines on the queries
    # they were fitted on (exit 0, not a word); refused unless the evaluated
    # dataset is held out of the fit or --train-split names it on purpose (a
    # hindsight bound, as tools/run-results draws one)
    same = os.path.join(tmp, "same.json")
    r = run("eval", corpus, "--split", "train", "--bootstrap", "0", "--out", same)
    check(r.returncode == 1 and "evaluated split 'train' (--split) is the split the baselines are fitted on"
          in r.stderr and "--train-split train" in r.stderr and not os.path.exists(same),
          f"eval --split train: refused: exit {r.returncode} {r.stderr.strip()[-300:]}")
    for split in ("train", "test"):
        r = run("eval", corpus, "--split", split, "--train-split", split, "--bootstrap", "0", "--out", same)
        check(r.returncode == 0 and json.load(open(same))["train_split"] == split,
              f"eval --split {split} --train-split {split} (on purpose) runs: {r.stderr[-300:]}")
        os.remove(same)
    r = run("eval", corpus, "--split", "train", "--test-dataset", "shopping", "--skip-dataset", "shopping",
            "--bootstrap", "0", "--out", same)
    check(r.returncode == 0 and os.path.exists(same), f"eval --split train of a held-out dataset runs: {r.stderr[-300:]}")
    # a tiny number (strtod's ERANGE on underflow) is in range: --lambda
    # 1e-320 was refused as "expected a number in [0, 1]"
    r = run("route", corpus, "--lambda", "1e-320", "--out", os.path.join(tmp, "r.csv"))
    check(r.returncode == 0, f"route --lambda 1e-320 accepted: {r.stderr.strip()}")
    # but a cost scale so small that costs divided by it overflow float is
    # refused: every cost +inf, λ routed by accuracy alone with exit 0
    for cmd in (("route", corpus, "--lambda", "0.5", "--out", os.path.join(tmp, "r.csv")),
                ("sweep", corpus, "--out", os.path.join(tmp, "sw-scale")),
                ("eval", corpus, "--bootstrap", "0", "--out", os.path.join(tmp, "ev-scale.json"))):
        for scale in ("1e-308", "1e-40"):
            r = run(*cmd, "--cost-scale", scale)
            check(r.returncode == 1 and "past float's range" in r.stderr and f"cost scale {scale}" in r.stderr,
                  f"{cmd[0]} --cost-scale {scale}: refused naming the scale: exit {r.returncode} {r.stderr.strip()}")
    r = run(*cmds["route"], "--cost-scale", "1e-20")
    check(r.returncode == 0, f"route --cost-scale 1e-20 (costs still finite) runs: {r.stderr.strip()}")
    r = run("gen-demo", "--queries", "3", "--seed", "9223372036854775807", os.path.join(tmp, "seed"))
    check(r.returncode == 0, f"gen-demo --seed 2^63-1 accepted: {r.stderr.strip()}")

    # a catalog price of 1e308 (USD per million tokens) was accepted, every
    # predicted USD cost was infinite and route ran with an infinite cost
    # scale (λ traded nothing), exit 0; now refused naming the price, and a
    # cost that overflows float all the same (price 1e20 and 1e30 predicted
    # tokens) is refused naming the pair
    demo = os.path.join(tmp, "demo")
    cat = json.load(open(os.path.join(demo, "catalog.json")))
    cat["models"][0]["price_out"] = 1e308
    open(os.path.join(tmp, "cat-huge.json"), "w").write(json.dumps(cat))
    r = run("ingest", "--catalog", os.path.join(tmp, "cat-huge.json"), "--out", os.path.join(tmp, "huge"),
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 1 and "models[0].price_out: 1e+308 is implausibly large" in r.stderr,
          f"catalog price 1e308: refused naming it: exit {r.returncode} {r.stderr.strip()[-300:]}")
    # a model name holding \u0000 was read up to it ("a\u0000b" as "a"), so
    # two names could become one, exit 0; now refused naming file and line
    nul = json.load(open(os.path.join(demo, "catalog.json")))  # its prices: only the name is wrong
    nul["models"][0]["name"] += "\u0000x"
    open(os.path.join(tmp, "cat-nul.json"), "w").write(json.dumps(nul, indent=1))
    r = run("ingest", "--catalog", os.path.join(tmp, "cat-nul.json"), "--out", os.path.join(tmp, "nul"),
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 1 and "cat-nul.json:4: a string holds \\u0000 (NUL)" in r.stderr
          and not os.path.exists(os.path.join(tmp, "nul")), f"catalog name with \\u0000: {r.returncode} {r.stderr.strip()[-300:]}")
    cat["models"][0]["price_out"] = 1e20
    open(os.path.join(tmp, "cat-big.json"), "w").write(json.dumps(cat))
    big = os.path.join(tmp, "big")
    r = run("ingest", "--catalog", os.path.join(tmp, "cat-big.json"), "--out", big, os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0, f"catalog price 1e20 ingests: {r.stderr.strip()[-300:]}")
    k = len(cat["models"]) * len(cat["strategies"])
    rtrdata.write_table(big, "t", lambda p: {"p_correct": np.full((int(h5py.File(p, "r").attrs["n_queries"]), k), 0.5),
                                             "tokens": np.full((int(h5py.File(p, "r").attrs["n_queries"]), k), 1e30)},
                        "ck")
    r = run("route", big, "--lambda", "0.5", "--cost", "usd", "--out", os.path.join(tmp, "big.csv"))
    check(r.returncode == 1 and "has an infinite cost" in r.stderr and not os.path.exists(os.path.join(tmp, "big.csv")),
          f"USD costs past float's range: refused naming the pair: exit {r.returncode} {r.stderr.strip()[-300:]}")

    check_permissions(tmp, corpus)
    check_not_folders(tmp, corpus)

    # stale ingest temporaries: a dead PID's removed, a live PID's kept
    demo = os.path.join(tmp, "demo")
    stale, live = os.path.join(tmp, f"new.tmp.{dead_pid()}"), os.path.join(tmp, f"new.tmp.{os.getpid()}")
    os.makedirs(stale)
    os.makedirs(live)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", os.path.join(tmp, "new"),
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0 and not os.path.exists(stale) and os.path.isdir(live),
          f"ingest removes its dead temporary, keeps a live one: {r.stderr}")
    # the same for every output: gen-demo's outcomes (a stopped one left 2 GB
    # behind) and catalog, train's checkpoint
    gen, ck = os.path.join(tmp, "gen"), os.path.join(tmp, "ck.safetensors")
    os.makedirs(gen)
    dead = dead_pid()
    stale = [os.path.join(gen, f"outcomes.jsonl.tmp.{dead}"), os.path.join(gen, f"catalog.json.tmp.{dead}"),
             f"{ck}.tmp.{dead}"]
    live = [os.path.join(gen, f"outcomes.jsonl.tmp.{os.getpid()}"), f"{ck}.tmp.{os.getpid()}"]
    for p in stale + live:
        open(p, "w").write("partial")
    r = run("gen-demo", "--queries", "5", gen)
    r2 = run("train", corpus, "--epochs", "1", "--out", ck)
    check(r.returncode == 0 and r2.returncode == 0 and not any(map(os.path.exists, stale))
          and all(map(os.path.exists, live)),
          f"gen-demo and train remove their outputs' dead temporaries, keep live ones: {r.stderr} {r2.stderr}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
