"""`rtr sweep` under `mpirun -np 2` on a corpus of 7 shards: each rank reads
only its own range of rows (rtr_part_range) and the ranks' parts of the
path and their reference routers' sums are added, so the results equal one
process's: the λ of every path point exactly (the cost scale is summed shard
by shard over whole shards, so ranks reproduce it bit for bit), accuracies,
costs and metrics to 1e-9 (sums in another order). The bytes both ranks
read together stay near one process's (each read every chunk before: twice
as many). `rtr route` the same way: its cost scale, budget path and
decisions from each rank's rows, the decisions byte-identical and --json
to the last bit. A rank killed outside and inside the decisions' temporary
window. A corpus of one shard split by rows over 2 and 4 ranks (a rank with
no query; ranks with exact multiples of 1,024 breakpoints). Skipped (77)
without an MPI build or mpirun."""
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from rtrtest import (PER_RANK, RTR, check, demo_corpus, finish, require_mpi, require_numpy_h5py, require_rtr, run,
                     skip_part)

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

MPI_ENV = require_mpi()


def rchar():
    """Bytes this process and its reaped children read through read calls (/proc/self/io)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def rtr_on(ranks, *args, env=None):
    """rtr ARGS on `ranks` processes (env added to MPI_ENV): (CompletedProcess, bytes read)."""
    cmd = [RTR, *args, "--split", "", "--device", "cpu", "-q"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd
    before = rchar()
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(MPI_ENV, **(env or {})), timeout=300)
    return r, rchar() - before



def rtr_on_wrapped(ranks, wrapper, *args):
    """rtr ARGS on `ranks` ranks, each rank started through wrapper (a command list)."""
    cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", *wrapper, RTR, *args, "--split", "", "--device", "cpu", "-q"]
    return subprocess.run(cmd, capture_output=True, text=True, env=MPI_ENV, timeout=300), 0


def one_and_two(args, out1, out2, ranks=2, env=None):
    """rtr ARGS --out OUT1 on one process, then --out OUT2 on `ranks` ranks:
    (both CompletedProcess, both bytes read); the test ends if either failed."""
    what = " ".join(args[:1] + args[2:])
    r1, read1 = rtr_on(1, *args, "--out", out1, env=env)
    check(r1.returncode == 0, f"{what}: " + r1.stderr)
    r2, read2 = rtr_on(ranks, *args, "--out", out2, env=env)
    check(r2.returncode == 0, f"mpirun -np {ranks} {what}: " + r2.stderr[-600:])
    if r1.returncode or r2.returncode:
        finish()
    return r1, r2, read1, read2


def same_sweep(one, two, what, n_queries=21000):
    """Two sweep folders: λ exactly, other fields to 1e-9, summary.json to 1e-9."""
    for name, lam_cols in (("path.csv", (1, 2)), ("grid.csv", (0,))):
        a, b = rows(os.path.join(one, name)), rows(os.path.join(two, name))
        check(len(a) == len(b) and a[0] == b[0], f"{what} {name}: {len(a)} and {len(b)} rows, headers {a[0]} {b[0]}")
        lam = sum(x[c] != y[c] for x, y in zip(a[1:], b[1:]) for c in lam_cols)
        other = sum(not close(u, v) for x, y in zip(a[1:], b[1:]) for c, (u, v) in enumerate(zip(x, y))
                    if c not in lam_cols)
        check(lam == 0, f"{what} {name}: {lam} λ values differ from one process's")
        check(other == 0, f"{what} {name}: {other} fields differ from one process's beyond 1e-9")
    sa, sb = (json.load(open(os.path.join(d, "summary.json"))) for d in (one, two))
    check(sa["n_points"] > 100 and sa["n_queries"] == n_queries and same_summary(sa, sb),
          f"{what} summary.json: {sa.get('metrics')} vs {sb.get('metrics')}")


def rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def close(a, b):
    """Two CSV fields: equal, or numbers within 1e-9 relative."""
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return abs(x - y) <= 1e-9 * (1 + abs(y))


def same_summary(x, y):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same_summary(x[k], y[k]) for k in x if k not in ("device", "seconds"))
    if isinstance(x, list):
        return len(x) == len(y) and all(same_summary(u, v) for u, v in zip(x, y))
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(x - y) <= 1e-9 * (1 + abs(y))
    return x == y


def rank_pid(rank, marker):
    """The pid of the rtr process of this MPI rank whose command line holds marker, or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(cmd[0]) == b"rtr" and marker.encode() in cmd and \
                f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(pid)
    return None


def killed_route(corpus, tmp, want):
    """SIGKILL rank 1 of a 2-rank route: the job fails, nothing stands under
    the final name (or, if it finished first, the whole file), and the rerun
    gives one process's decisions with no temporary left."""
    out = os.path.join(tmp, "killed.csv")
    cmd = ["mpirun", "-np", "2", "--oversubscribe", RTR, "route", corpus, "--budget", "400", "--out", out,
           "--split", "", "--device", "cpu", "-q"]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=MPI_ENV)
    victim = None
    for _ in range(400):
        victim = rank_pid(1, out)
        if victim or job.poll() is not None:
            break
        time.sleep(0.01)
    if victim:
        time.sleep(0.3)  # into its routing
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            victim = None
    _, err = job.communicate(timeout=300)
    if job.returncode == 0:
        skip_part("killed route: the job finished before rank 1 could be killed")
        check(open(out, "rb").read() == open(want, "rb").read(), "route that finished anyway: one process's decisions")
    else:
        check(victim is not None and not os.path.exists(out),
              f"killed route: exit {job.returncode}, nothing under the final name: {os.listdir(tmp)}")
    r, _ = rtr_on(2, "route", corpus, "--budget", "400", "--out", out)
    check(r.returncode == 0 and open(out, "rb").read() == open(want, "rb").read(),
          "the rerun after a killed rank: one process's decisions: " + r.stderr[-300:])
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], f"the rerun leaves no temporary: {os.listdir(tmp)}")


def killed_in_window(corpus, tmp, want):
    """Rank 1 of 2 dies (RTR_TEST_KILL_RANK, route_corpus.c) once its rows
    are in the decisions' temporary file and before the ranks' barrier, the
    window a crash leaves the temporary in: the job fails, the temporary
    (named with rank 0's host and pid, window.csv.tmp.HOST.PID) is there and
    nothing under the final name; the rerun removes it (its writer is dead
    on this host), leaves one of another host alone (its pid means nothing
    here), and gives one process's decisions."""
    out = os.path.join(tmp, "window.csv")
    r, _ = rtr_on(2, "route", corpus, "--budget", "400", "--out", out, env={"RTR_TEST_KILL_RANK": "1"})
    left = [f for f in os.listdir(tmp) if f.startswith("window.csv.tmp.")]
    check(r.returncode != 0 and not os.path.exists(out) and len(left) == 1,
          f"rank 1 killed in the decisions' window: exit {r.returncode}, files {sorted(os.listdir(tmp))}")
    host = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:63]
    check(bool(left) and re.fullmatch(re.escape(f"window.csv.tmp.{host}.") + r"[0-9]+", left[0]) is not None,
          f"the temporary names this host ({host}) and the writer's pid: {left}")
    # a dead pid on another machine: asked here it would be removed, though
    # its writer may be alive there
    foreign = os.path.join(tmp, "window.csv.tmp.elsewhere-node." + (left[0].rsplit(".", 1)[1] if left else "1"))
    open(foreign, "w").close()
    # mpirun can return while rank 0 (the temporary's writer, its pid in the
    # name) is still being torn down; until it is gone the file is (rightly) kept
    writer = int(left[0].rsplit(".", 1)[1]) if left else None
    for _ in range(200 if writer else 0):
        try:
            os.kill(writer, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    r, _ = rtr_on(2, "route", corpus, "--budget", "400", "--out", out)
    check(r.returncode == 0 and open(out, "rb").read() == open(want, "rb").read(),
          "the rerun after a rank killed in the window: one process's decisions: " + r.stderr[-300:])
    check([f for f in os.listdir(tmp) if f.startswith("window.csv.tmp.")] == [os.path.basename(foreign)],
          f"the rerun removes the dead run's temporary, not another host's: {sorted(os.listdir(tmp))}")
    os.unlink(foreign)


def one_breakpoint_each(path):
    """A table in which query i switches once, at its own λ: pair 0 cheap
    and weak, pair 1 strong at 1,010 + i/2 tokens, every other pair
    dominated (never chosen). Each rank then has exactly as many breakpoints
    as queries."""
    with h5py.File(path, "r") as h:
        n, k = h["outcomes/correct"].shape
    p, tokens = np.zeros((n, k)), np.full((n, k), 3000.0)
    p[:, 0], tokens[:, 0] = 0.1, 10.0
    p[:, 1], tokens[:, 1] = 0.9, 1010.0 + 0.5 * np.arange(n)
    return {"p_correct": p, "tokens": tokens}


def one_shard(tmp):
    """A corpus of one shard of 40,960 rows: ranks split it by rows
    (rtr_part_range, cut where a chunk of 16,384 rows ends), where by whole
    shards rank 0 did everything and the others nothing. route's decisions
    and its --json sums equal one process's to the last bit and sweep's λ
    exactly, on 2 ranks (rows 0..16383 and 16384..40959) and on 4 (ranks 0
    to 3: 16384, 0, 16384 and 8192 rows): a rank with no query, and ranks
    with exactly 16, 24 and 8 x 1,024 breakpoints (a table with one switch
    per query), whose streams to rank 0 end with an empty message. Each of 2
    ranks reads its own rows (rank 1 read only the ids before)."""
    d = os.path.join(tmp, "one_shard")
    os.mkdir(d)
    corpus = demo_corpus(d, 40960, 6, 50000)
    check(len(rtrdata.manifest(corpus)["shards"]) == 1, "1 shard")
    rtrdata.write_table(corpus, "each", one_breakpoint_each, "e4c4")
    for ranks in (2, 4):
        one, many = os.path.join(d, f"sweep1_{ranks}"), os.path.join(d, f"sweep{ranks}")
        one_and_two(["sweep", corpus, "--grid", "64"], one, many, ranks=ranks)
        same_sweep(one, many, f"1 shard, {ranks} ranks", n_queries=40960)
        sa = json.load(open(os.path.join(one, "summary.json")))
        check(sa["n_points"] == 40961 and sa["n_switches"] == 40960,
              f"one breakpoint per query: {sa['n_points']} points, {sa['n_switches']} switches")
        a, b = os.path.join(d, f"r1_{ranks}.csv"), os.path.join(d, f"r{ranks}.csv")
        r1, r2, _, _ = one_and_two(["route", corpus, "--budget", "700", "--json"], a, b, ranks=ranks)
        check(open(a, "rb").read() == open(b, "rb").read(), f"1 shard, {ranks} ranks: decisions differ")
        s1, s2 = ({k: v for k, v in json.loads(r.stdout).items() if k not in ("seconds", "device")} for r in (r1, r2))
        check(s1 == s2, f"1 shard, route --json on {ranks} ranks: {s1} vs {s2}")
    # route --json to the last bit on a table whose estimates span 30
    # decades (the order of the double sums shows): each chunk's sums in
    # row order, whichever rank routed it
    rng = np.random.default_rng(8)

    def wide(path):
        with h5py.File(path, "r") as h:
            shape = h["outcomes/correct"].shape
        return {"p_correct": 10 ** rng.uniform(-30, 0, shape), "tokens": 10 ** rng.uniform(0, 6, shape)}
    shutil.rmtree(os.path.join(corpus, "tables", "each"))
    rtrdata.write_table(corpus, "wide", wide, "w1de")
    a, b = os.path.join(d, "w1.csv"), os.path.join(d, "w2.csv")
    r1, r2, _, _ = one_and_two(["route", corpus, "--lambda", "0.3", "--json"], a, b)
    s1, s2 = ({k: v for k, v in json.loads(r.stdout).items() if k not in ("seconds", "device")} for r in (r1, r2))
    check(s1 == s2 and open(a, "rb").read() == open(b, "rb").read(), f"1 shard, wide table, 2 ranks: {s1} vs {s2}")
    # each rank reads its own rows: rank 1 holds 24,576 of 40,960 (it read
    # only the ids, for their check, when the unit was a whole shard)
    per_rank = os.path.join(d, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK)
    r, _ = rtr_on_wrapped(2, [sys.executable, per_rank + ".py", per_rank + ".txt"], "route", corpus, "--lambda", "0.3",
                          "--out", os.path.join(d, "measured.csv"))
    got = dict(line.split() for line in open(per_rank + ".txt")) if r.returncode == 0 else {}
    rank0, rank1 = int(got.get("0", 0)), int(got.get("1", 0))
    check(r.returncode == 0 and rank1 > 0.6 * rank0 > 0, f"1 shard on 2 ranks: rank 0 read {rank0} bytes, rank 1 {rank1}")
    print(f"1 shard, route --lambda: bytes read by each of 2 ranks: {got}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_sweep_mpi_")
    corpus = demo_corpus(tmp, 21000, 5, 3000)
    check(len(rtrdata.manifest(corpus)["shards"]) == 7, "7 shards")
    rng = np.random.default_rng(3)

    rtrdata.write_table(corpus, "noisy", rtrdata.noisy_table(rng), "abc123")

    one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
    _, _, read1, read2 = one_and_two(["sweep", corpus, "--grid", "64"], one, two)
    same_sweep(one, two, "2 ranks")
    # one process reads the table and outcomes once; two ranks that each
    # read every chunk read them twice
    check(read2 < 1.4 * read1, f"two ranks read {read2} bytes together, one process {read1}")
    print(f"sweep bytes read: one process {read1}, two ranks {read2} ({read2 / read1:.2f}x)")

    # 3 ranks, every rank's switch events spilled to runs on disk every 40
    # events and the points sorted on cost the same way: each rank streams
    # its merged breakpoints to rank 0 in many messages, which rank 0 merges
    # as they arrive (rtr_path_builder_walk_ranks)
    spill = {"RTR_SWEEP_SPILL": "40"}
    one3, three = os.path.join(tmp, "one3"), os.path.join(tmp, "three")
    one_and_two(["sweep", corpus, "--grid", "64"], one3, three, ranks=3, env=spill)
    same_sweep(one3, three, "3 ranks, spilled")
    same_sweep(one, one3, "1 process, spilled")

    # route --budget: the cost scale, the budget's path and the decisions
    # from each rank's own shards (each rank read every row for the first
    # two before: 1.6x; rank 0 alone read every row to write the decisions
    # before: 0.67 of one process's bytes); each rank writes its shards'
    # rows at their place in the one file
    dec1, dec2 = os.path.join(tmp, "one.csv"), os.path.join(tmp, "two.csv")
    r1, r2, read1, read2 = one_and_two(["route", corpus, "--budget", "400"], dec1, dec2)
    check(open(dec1, "rb").read() == open(dec2, "rb").read(), "route --budget: decisions differ from one process's")
    check(r1.stdout == r2.stdout, f"route --budget summary: {r1.stdout!r} vs {r2.stdout!r}")
    check(read2 < 1.4 * read1, f"route --budget: two ranks read {read2} bytes together, one process {read1}")
    print(f"route --budget bytes read: one process {read1}, two ranks {read2} ({read2 / read1:.2f}x)")
    per_rank = os.path.join(tmp, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK)
    r, _ = rtr_on_wrapped(2, [sys.executable, per_rank + ".py", per_rank + ".txt"], "route", corpus, "--budget", "400",
                          "--out", os.path.join(tmp, "two_again.csv"))
    check(r.returncode == 0, "route --budget on 2 ranks, each measured: " + r.stderr[-400:])
    got = dict(line.split() for line in open(per_rank + ".txt")) if r.returncode == 0 else {}
    # rank 0 holds 4 shards of 7, rank 1 the other 3, and each reads every
    # id once (the check): before, rank 0 also read every row (2.5x rank 1)
    rank0, rank1 = int(got.get("0", 0)), int(got.get("1", 0))
    check(0 < rank0 < 1.6 * rank1, f"route --budget: rank 0 of 2 read {rank0} bytes, rank 1 {rank1}")
    print(f"route --budget bytes read by each of 2 ranks: {got} (one process {read1})")
    for ext, args in ((".jsonl", ["--budget", "400"]), (".csv", ["--lambda", "0.3"]), (".h5", ["--budget", "400"])):
        a, b = os.path.join(tmp, "one2" + ext), os.path.join(tmp, "two2" + ext)
        one_and_two(["route", corpus, *args], a, b)
        if ext == ".h5":  # the datasets equal (test_route_h5_mpi.py compares the files' bytes)
            with h5py.File(a, "r") as x, h5py.File(b, "r") as y:
                check(sorted(x) == sorted(y) and all((x[d][()] == y[d][()]).all() for d in x),
                      "route --budget FILE.h5 on 2 ranks: datasets differ from one process's")
        else:
            check(open(a, "rb").read() == open(b, "rb").read(), f"route {' '.join(args)} FILE{ext}: 2 ranks differ")
    # the summary's sums to the last bit: each shard's sums are added in
    # shard order whatever the ranks (a per-shard total on the ranks against
    # a row-by-row total alone differed in the last digits of --json); a table
    # whose estimates span 30 decades, so the order of the double sums shows
    # in their bits
    def wide(path):
        with h5py.File(path, "r") as h:
            shape = h["outcomes/correct"].shape
        return {"p_correct": 10 ** rng.uniform(-30, 0, shape), "tokens": 10 ** rng.uniform(0, 6, shape)}
    rtrdata.write_table(corpus, "wide", wide, "w1de")
    j1, j2 = os.path.join(tmp, "j1.csv"), os.path.join(tmp, "j2.csv")
    r1, r2, _, _ = one_and_two(["route", corpus, "--table", "wide", "--lambda", "0.3", "--json"], j1, j2)
    s1, s2 = ({k: v for k, v in json.loads(r.stdout).items() if k not in ("seconds", "device")} for r in (r1, r2))
    check(s1 == s2, f"route --json on 2 ranks: {s1} vs {s2}")
    shutil.rmtree(os.path.join(corpus, "tables", "wide"))  # the later runs pick the corpus's only table
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], f"temporaries left: {os.listdir(tmp)}")
    killed_route(corpus, tmp, dec1)
    killed_in_window(corpus, tmp, dec1)
    # a budget below the cheapest routing: rank 0 finds it on the path and
    # every rank stops with the same error (none waits for the others)
    low = os.path.join(tmp, "low.csv")
    r, _ = rtr_on(2, "route", corpus, "--budget", "0.001", "--out", low)
    check(r.returncode != 0 and "below the cheapest possible routing" in r.stderr and not os.path.exists(low),
          f"route --budget 0.001 on 2 ranks: exit {r.returncode}: {r.stderr[-400:]}")
    one_shard(tmp)
    shutil.rmtree(tmp)
    finish()


main()
