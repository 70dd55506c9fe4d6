"""`rtr eval` under `mpirun`, split by queries (docs/SCALING.md, "Evaluation
across ranks"): each rank reads only its own range of the evaluated split's
rows, the sums are added over the ranks, every λ router's path and
RouteLLM-style's thresholds are merged and walked on rank 0, and the
bootstrap's sample is merged across the ranks. The evaluation file of 2 and
3 ranks equals one process's bit for bit, with two tables, with the whole
split resampled and with a sample smaller than the split
(--bootstrap-queries). Equal bit for bit here because every sum the ranks
add in another order is exact on these tables (floats summed in doubles,
counts as whole numbers); in general the figures agree up to the order of
the additions. Ranks with no rows: 2 shards on 3 ranks (rank 0 empty), and
one shard of 40,960 rows on 4 ranks, cut inside the shard at 16,384 and
32,768 (rank 1, between two ranks with rows, empty; ranks 2 and 3 start
their rows off the split's 16,384-row blocks). Each rank reads well under
one process's bytes (every rank read the whole evaluated split before) and
holds no more than one process plus Open MPI's buffers; a rank whose rows
hold a bad value stops every rank with its message and leaves no file.
Every rank runs with --threads 1 (the EmbedLLM-style fit depended on the
thread count before b9e25b8; ranks whose fits differ are refused).
Skipped (77) without an MPI build or mpirun."""
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
# PER_RANK (bytes read) with each rank's peak RSS as a third field
PER_RANK_RSS = PER_RANK.replace("import os,", "import os, resource,").replace(
    "{rchar() - before}", "{rchar() - before} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
assert PER_RANK_RSS.count("ru_maxrss") == 1


def train_first(src, dst):
    """The outcomes of src with the first N_TRAIN queries the training split
    and the rest the evaluated one, written to dst."""
    n = [0]

    def resplit(row):
        row["split"] = "train" if n[0] < N_TRAIN else "test"
        n[0] += 1
        return row
    return rtrdata.edited_outcomes(src, dst, resplit)


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
    return mpi_run(cmd)


def mpi_run(cmd, timeout=600):
    """The CompletedProcess of cmd; a run past timeout (a hang) as exit 124."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=MPI_ENV, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", f"timed out after {timeout} s")


def measured(path):
    """{rank: (bytes read, peak RSS in KB)} from PER_RANK_RSS's file."""
    return {int(r): (int(b), int(m)) for r, b, m in (line.split() for line in open(path))}


def differences(x, y, path=""):
    """Where two evaluation files differ, every number and string exactly
    (the time taken and the device left out)."""
    if isinstance(x, dict):
        if x.keys() != y.keys():
            return [f"{path}: keys {sorted(x)} vs {sorted(y)}"]
        return [d for k in x if k not in ("seconds", "device") for d in differences(x[k], y[k], path + "/" + k)]
    if isinstance(x, list):
        if len(x) != len(y):
            return [f"{path}: {len(x)} vs {len(y)} items"]
        return [d for u, v in zip(x, y) for d in differences(u, v, path)]
    return [] if x == y and type(x) is type(y) else [f"{path}: {x!r} vs {y!r}"]


def same_as_one(one, other, what):
    a, b = (json.load(open(f)) for f in (one, other))
    d = differences(a, b)
    check(not d, f"{what}: {len(d)} differences from one process's file: {d[:5]}")
    return a


def one_shard(tmp, per_rank):
    """One shard of 40,960 rows (the first 500 the training split) on 4
    ranks: cut at 16,384 and 32,768 rows (rank 1 gets none: 20,480 is
    nearest to 16,384 too), so ranks 2 and 3 start at rows 15,884 and
    32,268 of the evaluated split, inside one process's blocks; with a
    sample of 2,000. Rank 1, with no evaluated row, reads only the
    training split (every chunk of the shard, then its rows)."""
    src = os.path.join(tmp, "big")
    r = run("gen-demo", "--queries", "40960", "--seed", "9", src)
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    outcomes = train_first(os.path.join(src, "outcomes.jsonl"), os.path.join(tmp, "big.jsonl"))
    corpus = corpus_of(tmp, "one", outcomes, 40960)
    check(len(rtrdata.manifest(corpus)["shards"]) == 1, "1 shard")
    ref, out = os.path.join(tmp, "big1.json"), os.path.join(tmp, "big4.json")
    r1 = evaluate(1, corpus, ref, "--bootstrap-queries", "2000")
    if os.path.exists(per_rank + ".txt"):
        os.unlink(per_rank + ".txt")
    r4 = evaluate(4, corpus, out, "--bootstrap-queries", "2000", measure=per_rank)
    check(r1.returncode == 0 and r4.returncode == 0, f"1 shard on 4 ranks: {r1.stderr[-300:]} {r4.stderr[-300:]}")
    if r1.returncode or r4.returncode:
        return
    a = same_as_one(ref, out, "1 shard of 40,960 rows on 4 ranks (rank 1 with no row), a sample of 2,000")
    check(a["n_queries"] == 40960 - N_TRAIN and a["bootstrap"].get("queries") == 2000, "... its sizes")
    got = measured(per_rank + ".txt")
    reads = [got.get(r, (0, 0))[0] for r in range(4)]
    print(f"1 shard on 4 ranks: bytes read by each rank {reads}")
    check(0 < reads[1] < 0.8 * min(reads[0], reads[2], reads[3]),
          f"... rank 1 reads no evaluated row (only the training split's chunks): {reads}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_eval_mpi_")
    r = run("gen-demo", "--queries", str(N_QUERIES), "--seed", "5", os.path.join(tmp, "demo"))
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    # the first N_TRAIN queries the training split (shard 0), the rest the
    # evaluated one: the evaluated split is what the ranks divide
    outcomes = train_first(os.path.join(tmp, "demo", "outcomes.jsonl"), os.path.join(tmp, "o.jsonl"))
    corpus = corpus_of(tmp, "corp", outcomes, 500)
    check(len(rtrdata.manifest(corpus)["shards"]) == 6, "6 shards")
    per_rank = os.path.join(tmp, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK_RSS)

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
    one_read, one_rss = measured(per_rank + ".one.txt")[0]
    got = measured(per_rank + ".txt")
    reads, rss = [got.get(r, (0, 0))[0] for r in range(2)], [got.get(r, (0, 0))[1] for r in range(2)]
    print(f"bytes read: one process {one_read}, each of 2 ranks {reads}; peak RSS (KB) {one_rss} and {rss}")
    check(0 < min(reads) and max(reads) < 0.9 * one_read,
          f"each rank reads well under one process's bytes: {reads} against {one_read}")
    # a rank holds a block of its rows, its paths' events and the sample (M),
    # as one process does, plus Open MPI's buffers (~10 MB)
    check(0 < max(rss) < one_rss + 20000, f"each rank's peak RSS within one process's + 20 MB: {rss} against {one_rss}")

    # 2 shards on 3 ranks: rows are cut at shard starts and multiples of
    # 16,384 rows into a shard, the nearest to 1,000 and 2,000 rows being
    # 0 and 1,500: rank 0 has no row at all (rtr_part_rows)
    two = corpus_of(tmp, "two", outcomes, 1500)
    check(len(rtrdata.manifest(two)["shards"]) == 2, "2 shards")
    for tag, extra in (("whole", ()), ("sample", ("--bootstrap-queries", "300"))):
        ref, out = os.path.join(tmp, f"two1_{tag}.json"), os.path.join(tmp, f"two3_{tag}.json")
        r1 = evaluate(1, two, ref, *extra)
        r3 = evaluate(3, two, out, *extra)
        check(r1.returncode == 0 and r3.returncode == 0, f"2 shards, {tag}: {r1.stderr[-300:]} {r3.stderr[-300:]}")
        if r1.returncode == 0 and r3.returncode == 0:
            same_as_one(ref, out, f"2 shards on 3 ranks (one with no row), {tag}")

    one_shard(tmp, per_rank)

    # ranks given other options are refused before they read anything, on
    # every rank, naming the rank: an exclusion (missed by the first check,
    # which compared fitted models only: the file was written) and another
    # sample size (which set the sizes of a collective: MPI_ERR_TRUNCATE)
    for extra in (["--exclude", "demo-400b"], ["--bootstrap-queries", "300"]):
        out = os.path.join(tmp, "differ.json")
        base = [RTR, "eval", corpus, "--out", out, *FLAGS]
        r = mpi_run(["mpirun", "-np", "1", *base, ":", "-np", "1", *base, *extra], timeout=300)
        check(r.returncode not in (0, 124) and "rank 1 built other routers than rank 0 (it was given other options)"
              in r.stderr and not os.path.exists(out),
              f"rank 1 given {' '.join(extra)}: refused ({r.returncode}): {r.stderr[-400:]}")

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
    r = mpi_run(cmd, timeout=300)
    check(r.returncode not in (0, 124) and last in r.stderr and "rank 1 of 2 failed" in r.stderr,
          f"a bad value in rank 1's rows stops both ranks with its message ({r.returncode}): {r.stderr[-600:]}")
    check(not [f for f in os.listdir(tmp) if f.startswith("bad.json")], "... and leaves no file")
    finish()


main()
