"""`rtr eval` under `mpirun`, split by queries (docs/SCALING.md, "Evaluation
across ranks"): each rank reads only its own range of the evaluated split's
rows, the sums are added over the ranks, every λ router's path and
RouteLLM-style's thresholds are merged and walked on rank 0, and the
bootstrap's sample is merged across the ranks. The evaluation file of 2 and
3 ranks equals one process's, every number within 1e-9 relative (λ, the
cost scale and every count exactly), with two tables, with the whole split
resampled and with a sample smaller than the split (--bootstrap-queries);
a rank with no rows (2 shards on 3 ranks) changes nothing; each rank reads
well under one process's bytes (every rank read the whole evaluated split
before); a rank whose rows hold a bad value stops every rank with its
message and leaves no file. Every rank runs with --threads 1: the
EmbedLLM-style fit depends on the thread count, and ranks whose fits differ
are refused. Skipped (77) without an MPI build or mpirun."""
import json
import os
import subprocess
import sys
import tempfile

from rtrtest import PER_RANK, RTR, check, finish, require_mpi, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

MPI_ENV = require_mpi()
N_QUERIES, N_TRAIN = 3000, 500
FLAGS = ["--table", "t,u", "--bootstrap", "40", "--seed", "7", "--threads", "1", "--device", "cpu", "-q"]


def corpus_of(tmp, name, outcomes, shard_size):
    """The outcomes ingested in shards of shard_size; 24-d unit embeddings
    and two stand-in tables (t, u) of one encoder."""
    corpus = os.path.join(tmp, name)
    r = run("ingest", "--catalog", os.path.join(tmp, "demo", "catalog.json"), "--out", corpus,
            "--shard-size", str(shard_size), outcomes)
    check(r.returncode == 0, "ingest: " + r.stderr)
    rng = np.random.default_rng(11)

    def unit_rows(path):
        emb = rng.standard_normal((h5py.File(path, "r").attrs["n_queries"], 24))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rtrdata.write_embeddings(corpus, "e", "test-encoder", unit_rows, (np.ones((4, 24)), np.ones((4, 24))))
    rtrdata.write_table(corpus, "t", rtrdata.noisy_table(np.random.default_rng(1)), "h", "e", "test-encoder")
    rtrdata.write_table(corpus, "u", rtrdata.noisy_table(np.random.default_rng(2), noise=0.3), "h", "e",
                        "test-encoder")
    return corpus


def evaluate(ranks, corpus, out, *extra, measure=None):
    """rtr eval on `ranks` processes (1: no mpirun), each through the
    per-rank byte counter when measure names its file; the CompletedProcess."""
    cmd = [RTR, "eval", corpus, "--out", out, *FLAGS, *extra]
    if measure:
        cmd = [sys.executable, measure + ".py", measure + ".txt"] + cmd
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=MPI_ENV, timeout=600)


def differences(x, y, path=""):
    """Where two evaluation files differ: numbers beyond 1e-9 relative,
    anything else at all (the time taken and the device left out)."""
    if isinstance(x, dict):
        if x.keys() != y.keys():
            return [f"{path}: keys {sorted(x)} vs {sorted(y)}"]
        return [d for k in x if k not in ("seconds", "device") for d in differences(x[k], y[k], path + "/" + k)]
    if isinstance(x, list):
        if len(x) != len(y):
            return [f"{path}: {len(x)} vs {len(y)} items"]
        return [d for u, v in zip(x, y) for d in differences(u, v, path)]
    if isinstance(x, float) or isinstance(y, float):
        if x is None or y is None or abs(x - y) > 1e-9 * max(abs(x), abs(y), 1e-300):
            return [f"{path}: {x} vs {y}"]
        return []
    return [] if x == y else [f"{path}: {x} vs {y}"]


def same_as_one(one, other, what):
    a, b = (json.load(open(f)) for f in (one, other))
    d = differences(a, b)
    check(not d, f"{what}: {len(d)} differences from one process's file: {d[:5]}")
    # exactly, not just to 1e-9: what no sum over the ranks touches
    exact = [(r["name"], r.get("op", {}).get("lambda"), r.get("op", {}).get("n_missing")) for r in a["routers"]]
    check(exact == [(r["name"], r.get("op", {}).get("lambda"), r.get("op", {}).get("n_missing"))
                    for r in b["routers"]] and a["cost_scale"] == b["cost_scale"] and a["n_queries"] == b["n_queries"],
          f"{what}: λ of the operating points, the cost scale and the counts exactly")
    return a


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_eval_mpi_")
    r = run("gen-demo", "--queries", str(N_QUERIES), "--seed", "5", os.path.join(tmp, "demo"))
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    # the first N_TRAIN queries the training split (shard 0), the rest the
    # evaluated one: the evaluated split is what the ranks divide
    n = [0]

    def resplit(row):
        row["split"] = "train" if n[0] < N_TRAIN else "test"
        n[0] += 1
        return row
    outcomes = rtrdata.edited_outcomes(os.path.join(tmp, "demo", "outcomes.jsonl"), os.path.join(tmp, "o.jsonl"),
                                       resplit)
    corpus = corpus_of(tmp, "corp", outcomes, 500)
    check(len(rtrdata.manifest(corpus)["shards"]) == 6, "6 shards")
    per_rank = os.path.join(tmp, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK)

    def one(name, *extra, measure=None):
        out = os.path.join(tmp, name + ".json")
        r = evaluate(1, corpus, out, *extra, measure=measure)
        check(r.returncode == 0, f"eval {' '.join(extra)}: " + r.stderr[-600:])
        if r.returncode:
            finish()
        return out

    # the whole split resampled, then a sample of 300 of its 2,500 queries
    for tag, extra in (("whole", ()), ("sample", ("--bootstrap-queries", "300"))):
        ref = one("one_" + tag, *extra, measure=per_rank if tag == "whole" else None)
        a = json.load(open(ref))
        check(a["n_queries"] == N_QUERIES - N_TRAIN and a["n_train"] == N_TRAIN, f"{tag}: split sizes {a['n_queries']}")
        check(len([x for x in a["routers"] if x["name"].startswith("RTR")]) == 3
              and all("ci" in x for x in a["routers"] if "unavailable" not in x)
              and not any("unavailable" in x for x in a["routers"]),
              f"{tag}: every router built, intervals included: {[x['name'] for x in a['routers']]}")
        check((a["bootstrap"].get("queries") == 300) == (tag == "sample"), f"{tag}: the bootstrap's queries")
        for ranks in (2, 3):
            out = os.path.join(tmp, f"r{ranks}_{tag}.json")
            measure = per_rank if tag == "whole" and ranks == 2 else None
            if measure:
                os.replace(per_rank + ".txt", per_rank + ".one.txt")
            r = evaluate(ranks, corpus, out, *extra, measure=measure)
            check(r.returncode == 0, f"{ranks} ranks, {tag}: " + r.stderr[-600:])
            if r.returncode == 0:
                same_as_one(ref, out, f"{ranks} ranks, {tag}")
            check(sorted(f for f in os.listdir(tmp) if f.startswith(f"r{ranks}_{tag}")) == [f"r{ranks}_{tag}.json"],
                  f"{ranks} ranks, {tag}: one file, no temporary")

    # bytes: one process reads the whole evaluated split; each of 2 ranks
    # its own range of it (1,500 stored rows each) and its own shards'
    # predicted costs (the cost scale), and, like one process, the whole
    # training split: the row reader reads every chunk of every shard and
    # then keeps the split's rows, so the training split's columns cost a
    # pass over the corpus on every rank (about 0.7 of one process's bytes
    # here). Before, every rank read everything one process reads (1.02x).
    one_read = int(open(per_rank + ".one.txt").read().split()[1])
    got = dict(line.split() for line in open(per_rank + ".txt"))
    reads = [int(got.get(str(r), 0)) for r in range(2)]
    print(f"bytes read: one process {one_read}, each of 2 ranks {reads}")
    check(0 < min(reads) and max(reads) < 0.9 * one_read,
          f"each rank reads well under one process's bytes: {reads} against {one_read}")

    # 2 shards on 3 ranks: rows are cut at shard starts (and 16,384-row
    # chunks), so one rank has no row of the split at all
    two = corpus_of(tmp, "two", outcomes, 1500)
    check(len(rtrdata.manifest(two)["shards"]) == 2, "2 shards")
    for tag, extra in (("whole", ()), ("sample", ("--bootstrap-queries", "300"))):
        ref, out = os.path.join(tmp, f"two1_{tag}.json"), os.path.join(tmp, f"two3_{tag}.json")
        r1 = evaluate(1, two, ref, *extra)
        r3 = evaluate(3, two, out, *extra)
        check(r1.returncode == 0 and r3.returncode == 0, f"2 shards, {tag}: {r1.stderr[-300:]} {r3.stderr[-300:]}")
        if r1.returncode == 0 and r3.returncode == 0:
            same_as_one(ref, out, f"2 shards on 3 ranks (one with no row), {tag}")

    # a bad value among rank 1's rows: rank 1 fails, every rank stops with its message, no file
    bad = os.path.join(tmp, "corp")
    last = rtrdata.shards(bad)[-1][1]

    def bad_table(path):
        t = rtrdata.noisy_table(np.random.default_rng(1))(path)
        if os.path.basename(path) == last:
            t["p_correct"][3, 0] = 7.0
        return t
    rtrdata.write_table(bad, "bad", bad_table, "h", "e", "test-encoder")
    out = os.path.join(tmp, "bad.json")
    cmd = ["mpirun", "-np", "2", "--oversubscribe", RTR, "eval", bad, "--out", out, "--table", "bad", "--threads", "1",
           "--bootstrap", "10", "--device", "cpu", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=MPI_ENV, timeout=300)
    check(r.returncode not in (0, 124) and last in r.stderr and "rank 1 of 2 failed" in r.stderr,
          f"a bad value in rank 1's rows stops both ranks with its message ({r.returncode}): {r.stderr[-600:]}")
    check(not [f for f in os.listdir(tmp) if f.startswith("bad.json")], "... and leaves no file")
    finish()


main()
