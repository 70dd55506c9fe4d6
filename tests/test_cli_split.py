"""--split in route, sweep and eval follows one rule (docs/CLI.md, cli_split
in src/cli/cli.c): not given, it is `test` when the corpus has a query in
split test, else every query; `all` (or "") is every query. Checked on
three corpora made from the same demo outcomes, each with stand-in
embeddings and a routing table written here (tests/rtrdata.py):

- train + test: route, sweep and eval all take the test queries (the same
  count as `--split test`, and the same outputs), silently;
- no split given in the logs (a production corpus: ingest puts every query
  in train): route and sweep take every query (route silently, sweep with
  one note on stderr, which --quiet silences); eval evaluates every query
  with a note, its baselines fitted on train;
- only a test split: eval refuses it (no training split), listing the
  splits there are, and writes nothing;
- splits named "Test", "Train" and "train": an asked split absent in that
  case names the variants the corpus has ("the corpus has 'Test'"), and
  the default split's note too.

And --help shows the same --split line in the three commands."""
import json
import os
import re
import shutil
import tempfile
import zlib

from rtrtest import check, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

NOTE = re.compile(r"^rtr: (\w+): .*?: no query in split 'test'.*?\): (.*)$", re.M)


def corpus(tmp, demo, name, edit, seed):
    """demo's outcomes through edit(row), ingested, with stand-in embeddings and table 'stand'."""
    src = rtrdata.edited_outcomes(os.path.join(demo, "outcomes.jsonl"), os.path.join(tmp, name + ".jsonl"), edit)
    c = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", c, "--shard-size", "150", src)
    check(r.returncode == 0, "ingest: " + r.stderr)
    cat = rtrdata.manifest(c)["catalog"]
    rng = np.random.default_rng(seed)

    def unit(n):
        x = rng.standard_normal((n, 16)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    table_of = rtrdata.noisy_table(rng, 0.1, 0.8, 1.2)
    rtrdata.write_embeddings(c, "stand-in", "test-encoder", lambda p: unit(int(h5py.File(p, "r").attrs["n_queries"])),
                             (unit(len(cat["models"])), unit(len(cat["strategies"]))), encoder="test")
    rtrdata.write_table(c, "stand", table_of, "stand", "stand-in", "test-encoder")
    return c


def splits_of(c):
    out = []
    for path, _, _, _ in rtrdata.shards(c):
        with h5py.File(path, "r") as h:
            out += rtrdata.strings(h, "split")
    return out


def commands(c, tmp, tag, *extra):
    """route, sweep and eval on c with extra arguments: {command: CompletedProcess}."""
    o = lambda name: os.path.join(tmp, f"{tag}-{name}")  # noqa: E731
    return {"route": run("route", c, "--lambda", "0.6", "--out", o("d.csv"), "--device", "cpu", "--json", *extra),
            "sweep": run("sweep", c, "--out", o("sw"), "--device", "cpu", "--json", *extra),
            "eval": run("eval", c, "--out", o("e.json"), "--no-embedllm", "--bootstrap", "0", "--device", "cpu",
                        "--json", *extra)}


def counts(rs, tmp, tag):
    """The queries each command worked on: route and sweep from --json, eval from its file."""
    n = {}
    if rs["route"].returncode == 0:
        n["route"] = json.loads(rs["route"].stdout)["n_queries"]
    if rs["sweep"].returncode == 0:
        n["sweep"] = json.loads(rs["sweep"].stdout)["n_queries"]
    if rs["eval"].returncode == 0:
        n["eval"] = json.load(open(os.path.join(tmp, f"{tag}-e.json")))["n_queries"]
    return n


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_cli_split_")
    demo = os.path.join(tmp, "demo")
    r = run("gen-demo", "--queries", "600", "--seed", "5", "--test-fraction", "0.3", demo)
    check(r.returncode == 0, "gen-demo: " + r.stderr)

    # --- train + test: the three default to test, silently
    both = corpus(tmp, demo, "both", lambda row: row, 1)
    sp = splits_of(both)
    n_test, n_all = sp.count("test"), len(sp)
    check(0 < n_test < n_all and set(sp) == {"train", "test"}, f"the demo corpus has train and test: {set(sp)}")
    dflt, test = commands(both, tmp, "both"), commands(both, tmp, "both-test", "--split", "test")
    for cmd, r in dflt.items():
        check(r.returncode == 0, f"{cmd} (train + test): {r.stderr.strip()}")
        check(not NOTE.search(r.stderr), f"{cmd} takes the test split without a note: {r.stderr.strip()}")
    n = counts(dflt, tmp, "both")
    check(n == {"route": n_test, "sweep": n_test, "eval": n_test},
          f"route, sweep and eval default to the {n_test} test queries: {n}")
    check(counts(test, tmp, "both-test") == n, "the default is --split test")
    check(open(os.path.join(tmp, "both-d.csv")).read() == open(os.path.join(tmp, "both-test-d.csv")).read()
          and open(os.path.join(tmp, "both-sw", "path.csv")).read()
          == open(os.path.join(tmp, "both-test-sw", "path.csv")).read(),
          "route's decisions and sweep's path are those of --split test")
    check(json.load(open(os.path.join(tmp, "both-e.json")))["split"] == "test", "eval's file says split test")
    for spelling in ("all", ""):
        a = commands(both, tmp, "both-all", "--split", spelling)
        check(counts(a, tmp, "both-all") == {"route": n_all, "sweep": n_all, "eval": n_all}
              and not any(NOTE.search(x.stderr) for x in a.values()),
              f"--split {spelling!r}: every query ({n_all}), no note: {counts(a, tmp, 'both-all')}")

    # --- a production corpus: no split in the logs, every query in train
    prod = corpus(tmp, demo, "prod", lambda row: {k: v for k, v in row.items() if k != "split"}, 2)
    check(set(splits_of(prod)) == {"train"}, "logs without a split ingest into train")
    rs = commands(prod, tmp, "prod")
    for cmd, r in rs.items():
        check(r.returncode == 0, f"{cmd} (no test split): {r.stderr.strip()}")
    check(counts(rs, tmp, "prod") == {"route": n_all, "sweep": n_all, "eval": n_all},
          f"no test split: route, sweep and eval take every query ({n_all}): {counts(rs, tmp, 'prod')}")
    check(not NOTE.search(rs["route"].stderr), f"route routes every query without a note: {rs['route'].stderr.strip()}")
    for cmd, says in (("sweep", "every query is swept"), ("eval", "every query is evaluated")):
        notes = NOTE.findall(rs[cmd].stderr)
        check(len(notes) == 1 and notes[0][0] == cmd and notes[0][1].startswith(says),
              f"{cmd} says in one line that it takes every query: {rs[cmd].stderr.strip()}")
    check(json.load(open(os.path.join(tmp, "prod-e.json")))["split"] == "(all)", "eval's file says every query")
    q = commands(prod, tmp, "prod-q", "--quiet")
    check(all(x.returncode == 0 and x.stderr == "" for x in q.values()),
          "--quiet silences the note: " + " | ".join(x.stderr.strip() for x in q.values()))
    r = run("sweep", prod, "--split", "test", "--out", os.path.join(tmp, "none"), "--device", "cpu")
    check(r.returncode == 1 and "no query in split 'test' (splits: train)" in r.stderr
          and not os.path.exists(os.path.join(tmp, "none")), f"an explicit --split test is still checked: {r.stderr}")
    # a typed name is shown escaped, as the corpus's names are: an ESC in
    # it would otherwise act on the terminal
    r = run("sweep", prod, "--split", "te\x1b[2Jst", "--out", os.path.join(tmp, "none"), "--device", "cpu")
    check(r.returncode == 1 and "no query in split 'te\\x1b[2Jst' (splits: train)" in r.stderr
          and "\x1b" not in r.stderr, f"a typed split with an ESC is shown escaped: {r.stderr!r}")

    # --- only a test split: eval needs a training split and says so
    only = corpus(tmp, demo, "only-test", lambda row: {**row, "split": "test"}, 3)
    r = run("eval", only, "--out", os.path.join(tmp, "only.json"), "--no-embedllm", "--device", "cpu")
    check(r.returncode == 1 and "no query in split 'train' (splits: test)" in r.stderr
          and not os.path.exists(os.path.join(tmp, "only.json")),
          f"eval without a training split is refused, naming the splits: {r.returncode} {r.stderr.strip()}")

    # --- split names in another case ("Test", "Train" beside "train"): split
    # names are compared exactly, so an asked split missing in that case
    # names the variants the corpus has (was only the list of splits, or,
    # for the default test split, "every query" with no hint why)
    cased = corpus(tmp, demo, "cased", lambda row: {**row, "split": "Test" if row["split"] == "test" else
                                                    ("Train" if zlib.crc32(row["id"].encode()) % 2 else "train")}, 4)
    check(set(splits_of(cased)) == {"Test", "Train", "train"}, f"the cased corpus: {set(splits_of(cased))}")
    r = run("sweep", cased, "--out", os.path.join(tmp, "cased-sw"), "--device", "cpu")
    check(r.returncode == 0 and "no query in split 'test'; the corpus has 'Test' (names are case-sensitive; splits: "
          in r.stderr and "): every query" in r.stderr, f"sweep's note on the default split names 'Test': {r.stderr.strip()}")
    for cmd, asked, has in ((("route", cased, "--lambda", "0.5", "--out", os.path.join(tmp, "cased.csv")), "TRAIN",
                             ("'Train'", "'train'")),
                            (("eval", cased, "--out", os.path.join(tmp, "cased.json")), "test", ("'Test'",))):
        r = run(*cmd, "--split", asked, "--device", "cpu")
        check(r.returncode == 1 and f"no query in split '{asked}'; the corpus has " in r.stderr
              and all(h in r.stderr for h in has) and "(names are case-sensitive; splits: " in r.stderr
              and not os.path.exists(cmd[-1]), f"{cmd[0]} --split {asked}: names {has}: {r.stderr.strip()}")

    # --- one --split line in the three commands' --help
    lines = set()
    for cmd in ("route", "sweep", "eval"):
        h = run(cmd, "--help").stdout
        m = re.search(r"^ *--split S +(.*)$", h, re.M)
        check(m and "test when the corpus has it" in m.group(1) and "all" in m.group(1), f"{cmd} --help: {m and m.group(0)}")
        lines.add(m.group(1) if m else None)
    check(len(lines) == 1, f"route, sweep and eval describe --split alike: {lines}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
