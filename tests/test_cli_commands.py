"""Every command on one small corpus, as docs/CLI.md says they behave: the
summary on stdout (stderr empty under --quiet, stdout the same with and
without it; one JSON object under --json, train's with its total seconds),
no "nan" printed anywhere ("—" or "never" instead), info's pair
table aligned, train's epoch lines on stderr, --threads taking effect, and
a split or dataset no query has refused before any work, naming the ones
that exist; eval's --skip-dataset is train's name for what its older
--train-skip-dataset does; an --out that is an input (or already exists
inside the corpus) refused before it is replaced; sweep and eval write
progress lines into a log file, none under --quiet. Stand-in embeddings (tests/rtrdata.py) keep it
fast."""
import json
import os
import re
import shutil
import tempfile

from rtrtest import check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def quiet_ok(what, r):
    """Exit 0, the summary on stdout, nothing on stderr, no nan anywhere."""
    check(r.returncode == 0, f"{what}: exit {r.returncode}: {r.stderr.strip()}")
    check(r.stdout.strip() != "", f"{what}: the summary is on stdout")
    check(r.stderr == "", f"{what}: nothing on stderr under --quiet: {r.stderr.strip()[:300]}")
    check(not re.search(r"\bnan\b|\binf\b", r.stdout, re.I), f"{what}: no nan/inf printed: {r.stdout[:500]}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_cli_commands_")
    corpus = demo_corpus(tmp, 600, 4, 200)
    info = json.loads(run("info", corpus, "--json").stdout)
    datasets = sorted({g["dataset"] for g in info["groups"]})
    splits = sorted({g["split"] for g in info["groups"]})
    check(len(datasets) >= 2 and splits == ["test", "train"], f"the demo's datasets and splits: {datasets} {splits}")
    rng = np.random.default_rng(2)

    def emb_of(path):
        with h5py.File(path, "r") as h:
            n = len(rtrdata.strings(h, "id"))
        v = rng.standard_normal((n, 16))
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    rtrdata.write_embeddings(corpus, "stand-in", "stand-in-hash", emb_of,
                             (rng.standard_normal((4, 16)), rng.standard_normal((4, 16))))
    ck = os.path.join(tmp, "ck.safetensors")
    train = ("train", corpus, "--out", ck, "--hidden", "16", "--learn-dim", "4", "--epochs", "3", "--device", "cpu")

    # train: epoch lines are its progress (stderr, none under --quiet); the summary is on stdout
    r = run(*train)
    check(r.returncode == 0 and re.search(r"^epoch +1 ", r.stderr, re.M), f"train logs epochs on stderr: {r.stderr}")
    check(r.stdout.startswith("wrote " + ck), f"train's summary on stdout: {r.stdout!r}")
    quiet_ok("train --quiet", run(*train, "--quiet"))
    r = run(*train, "--json", "--quiet")
    check(r.returncode == 0 and json.loads(r.stdout)["checkpoint"] == ck, f"train --json: {r.stdout[:200]}")
    if r.returncode == 0:  # the whole run's seconds beside each epoch's
        j = json.loads(r.stdout)
        epochs = sum(e["seconds"] for e in j["epochs"])
        check(isinstance(j.get("seconds"), (int, float)) and j["seconds"] >= epochs > 0,
              f"train --json: seconds {j.get('seconds')} covers its epochs' {epochs}")
    quiet_ok("score", run("score", "--checkpoint", ck, corpus, "--device", "cpu", "--quiet"))

    # the other commands: stdout only, no nan; --quiet changes stderr alone, so
    # eval still prints its table under -q (docs/CLI.md: stdout is unchanged)
    out = lambda name: os.path.join(tmp, name)  # noqa: E731
    for args in (("route", corpus, "--lambda", "0.5", "--out", out("d.csv")),
                 ("sweep", corpus, "--out", out("sw")),
                 ("eval", corpus, "--out", out("e.json"), "--no-embedllm", "--bootstrap", "20"),
                 ("eval-predictor", "--checkpoint", ck, corpus),
                 ("report", out("e.json")),
                 ("info", corpus)):
        args += ("--device", "cpu") if args[0] not in ("report", "info") else ()
        loud, quiet = run(*args), run(*args, "-q")
        quiet_ok(args[0], quiet)
        check(loud.returncode == 0 and loud.stdout == quiet.stdout,
              f"{args[0]}: the same stdout with and without -q: {loud.stdout[:300]!r} vs {quiet.stdout[:300]!r}")
        if args[0] == "eval":
            check(re.search(r"^router +accuracy", quiet.stdout, re.M), f"eval -q prints its table: {quiet.stdout[:300]!r}")

    # progress of long work in a log file (stderr not a terminal): periodic lines with count and rate
    # (every RTR_PROGRESS_SECONDS; 0 here, so every update), none under --quiet; train's are its epoch lines
    os.environ["RTR_PROGRESS_SECONDS"] = "0"
    for args, line in ((("sweep", corpus, "--out", out("swp"), "--device", "cpu"), r"^sweep: [0-9,]+, [0-9,]+/s$"),
                       (("eval", corpus, "--out", out("ep.json"), "--no-embedllm", "--bootstrap", "20", "--device", "cpu"),
                        r"^eval: bootstrap: [0-9]+/20 \([0-9.]+%\), [0-9,]+/s, ETA")):
        loud, quiet = run(*args), run(*args, "--quiet")
        check(loud.returncode == 0 and re.search(line, loud.stderr, re.M), f"{args[0]}: progress lines in a log: "
              f"{loud.stderr[:300]}")
        check(quiet.returncode == 0 and not re.search(line, quiet.stderr, re.M), f"{args[0]} --quiet: no progress")
    del os.environ["RTR_PROGRESS_SECONDS"]

    # info's pair table: one column per field, however long the names
    text = run("info", corpus).stdout
    table = text[text.index("pair (model|strategy)"):].split("\n\n")[0].splitlines()
    check(len(table) == 17 and len({len(x) for x in table}) == 1, "info's pair table aligned: " + repr(table[:3]))

    # --threads takes effect: the CPU backend says how many it runs
    r = run("sweep", corpus, "--out", out("sw1"), "--device", "cpu", "--threads", "1", "--json", "--quiet")
    check(r.returncode == 0 and json.loads(r.stdout).get("device", "").startswith("CPU, 1 threads"),
          f"sweep --threads 1 runs on one thread: {r.stdout[:300]} {r.stderr}")

    # a split or dataset no query has: exit 1 before any work, naming those that exist
    for args in (("route", corpus, "--lambda", "0.5", "--out", out("x.csv")),
                 ("sweep", corpus, "--out", out("x")),
                 ("eval", corpus, "--out", out("x.json")),
                 ("train", corpus, "--out", out("x.safetensors")),
                 ("eval-predictor", "--checkpoint", ck, corpus)):
        r = run(*args, "--split", "tset", "--device", "cpu")
        m = re.search(r"no query in split 'tset' \(splits: ([^)]*)\)", r.stderr)
        check(r.returncode == 1 and m and sorted(m.group(1).split(", ")) == splits
              and (args[0] == "eval-predictor" or not os.path.exists(args[-1])),
              f"{args[0]} --split tset: {r.stderr.strip()}")
    r = run("train", corpus, "--out", out("x.safetensors"), "--skip-dataset", "nosuch", "--device", "cpu")
    check(r.returncode == 1 and "no query in dataset 'nosuch'" in r.stderr
          and all(d in r.stderr for d in datasets) and not os.path.exists(out("x.safetensors")),
          f"train --skip-dataset nosuch names the datasets: {r.stderr.strip()}")
    r = run("eval", corpus, "--out", out("x.json"), "--train-split", "trian", "--device", "cpu")
    check(r.returncode == 1 and "no query in split 'trian'" in r.stderr, f"eval --train-split trian: {r.stderr}")

    # one name for leaving a dataset out of training: --skip-dataset in train and eval
    d = datasets[0]
    r = run("train", corpus, "--out", out("skip.safetensors"), "--skip-dataset", d, "--epochs", "2", "--device", "cpu",
            "--quiet")
    check(r.returncode == 0, f"train --skip-dataset {d}: {r.stderr}")
    for flag, name in (("--skip-dataset", "s1.json"), ("--train-skip-dataset", "s2.json")):
        r = run("eval", corpus, "--out", out(name), flag, d, "--no-embedllm", "--device", "cpu", "--quiet")
        check(r.returncode == 0 and json.load(open(out(name))).get("train_skip_dataset") == d,
              f"eval {flag} {d}: {r.stderr}")

    # an output (--out, --markdown, --figures) that is an input, or a file the input corpus owns
    # (manifest, shard, embeddings/, tables/), would be replaced by the output's rename: refused
    # (exit 2) naming both, the input untouched
    shard = os.path.join(corpus, info_shard(corpus))
    os.symlink(out("e.json"), out("e-link.html"))
    for args, culprit in ((("route", corpus, "--lambda", "0.5", "--out", shard), "is a file of the input corpus"),
                          (("sweep", corpus, "--out", corpus), "is the input"),
                          (("eval", corpus, "--out", os.path.join(corpus, "manifest.json")), "is a file of the input corpus"),
                          (("report", out("e.json"), "--out", out("e.json")), "is the input"),
                          (("report", out("e.json"), "--out", out("e-link.html")), "is the input"),
                          (("report", out("e.json"), "--markdown", out("e.json")), "is the input")):
        target = args[-1]
        before = open(os.path.realpath(target), "rb").read() if os.path.isfile(target) else None
        r = run(*args)
        check(r.returncode == 2 and culprit in r.stderr and target in r.stderr,
              f"{args[0]} {args[-2]} {target}: exit {r.returncode}: {r.stderr.strip()}")
        check(before is None or open(os.path.realpath(target), "rb").read() == before, f"{target} untouched")
    r = run("route", corpus, "--lambda", "0.5", "--out", out("d.csv"), "--device", "cpu", "--quiet")
    check(r.returncode == 0, "an existing --out outside the inputs is replaced as before: " + r.stderr)
    # reruns that replace their own earlier output are not clashes: a checkpoint kept in the corpus
    # folder, an output named like a table, a cost unit or a title (names, not paths), report's
    # figures folder beside its page
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        os.mkdir("tokens")
        for i in range(2):
            for args in (("train", corpus, "--out", os.path.join(corpus, "mine.safetensors"), "--epochs", "1"),
                         ("eval", corpus, "--out", os.path.join("tokens", "e.json"), "--cost", "tokens", "--no-embedllm",
                          "--title", "tokens"),
                         ("report", out("e.json"), "--out", os.path.join("site", "index.html"), "--figures", "site")):
                if args[0] == "report":
                    os.makedirs("site", exist_ok=True)
                r = run(*args, "--device", "cpu", "--quiet") if args[0] != "report" else run(*args, "--quiet")
                check(r.returncode == 0, f"run {i + 1} of {' '.join(args[:1] + args[2:4])}: {r.stderr.strip()[-300:]}")
    finally:
        os.chdir(cwd)
    shutil.rmtree(tmp)


def info_shard(corpus):
    with open(os.path.join(corpus, "manifest.json")) as f:
        return json.load(f)["shards"][0]["file"]


main()
finish()
