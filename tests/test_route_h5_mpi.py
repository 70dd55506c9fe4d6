"""`rtr route --out FILE.h5` under `mpirun`: every rank routes only its own
range of rows (rtr_part_range) and streams its decisions to rank 0, which
appends them in rank order (row order) to the file under its temporary name
and renames it when complete (route_corpus.c, decisions_gather_h5). Before,
rank 0 routed every row for an HDF5 file.

Checked: the file of 2 and 3 ranks on a corpus of 7 shards is one process's
byte for byte (h5.c turns off HDF5's object modification times, which made
two one-process runs a second apart differ);
each of 2 ranks reads about half the rows (rank 0 read them all before: the
check fails on the old code); a corpus of one shard of 20,000 rows on 4
ranks, where ranks 0 and 2 get no rows (cuts at 16,384-row chunks); and rank
1 killed before it sends its decisions (RTR_TEST_KILL_RANK): the job fails
with nothing under the final name, and the rerun completes the file and
leaves no temporary. Skipped (77) without an MPI build or mpirun."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from rtrtest import PER_RANK, RTR, check, demo_corpus, finish, require_mpi, require_numpy_h5py, require_rtr

require_numpy_h5py()
require_rtr()
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

MPI_ENV = require_mpi()


def route(ranks, corpus, out, *extra, env=None, wrapper=()):
    """rtr route CORPUS --budget 400 --out OUT on `ranks` processes: (CompletedProcess, start time, end time)."""
    cmd = [*wrapper, RTR, "route", corpus, "--budget", "400", "--out", out, "--split", "", "--device", "cpu", "-q",
           *extra]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(MPI_ENV, **(env or {})), timeout=300)
    return r, t0, time.time()


def same_file(one, many, what):
    """one and many: (path, t0, t1) of two runs (the second a second or more
    after the first); equal byte for byte."""
    a, b = open(one[0], "rb").read(), open(many[0], "rb").read()
    check(a == b, f"{what}: the file differs from one process's ({len(a)} and {len(b)} bytes)")


def gone(pid):
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_route_h5_mpi_")
    os.mkdir(os.path.join(tmp, "seven"))
    seven = demo_corpus(os.path.join(tmp, "seven"), 21000, 5, 3000)
    check(len(rtrdata.manifest(seven)["shards"]) == 7, "7 shards")
    rtrdata.write_table(seven, "noisy", rtrdata.noisy_table(np.random.default_rng(3)), "abc123")
    one = os.path.join(tmp, "one.h5")
    r, *one_times = route(1, seven, one)
    time.sleep(1.1)  # the runs below in another second: a modification time would differ
    check(r.returncode == 0, "route alone: " + r.stderr)
    for ranks in (2, 3):
        out = os.path.join(tmp, f"ranks{ranks}.h5")
        r, u0, u1 = route(ranks, seven, out)
        check(r.returncode == 0, f"route on {ranks} ranks: " + r.stderr[-600:])
        if r.returncode == 0:
            same_file((one, *one_times), (out, u0, u1), f"7 shards, {ranks} ranks")

    # each rank reads its own rows: rank 0 holds 4 shards of 7 (and reads
    # every id once, the check); when rank 0 routed every row it read 2.5x
    # rank 1's bytes
    per_rank = os.path.join(tmp, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK)
    r, _, _ = route(2, seven, os.path.join(tmp, "measured.h5"), wrapper=(sys.executable, per_rank + ".py",
                                                                         per_rank + ".txt"))
    got = dict(line.split() for line in open(per_rank + ".txt")) if r.returncode == 0 else {}
    rank0, rank1 = int(got.get("0", 0)), int(got.get("1", 0))
    check(r.returncode == 0 and 0 < rank0 < 1.6 * rank1, f"FILE.h5 on 2 ranks: rank 0 read {rank0} bytes, rank 1 {rank1}")
    print(f"route --budget FILE.h5, bytes read by each of 2 ranks: {got}")

    # one shard of 20,000 rows on 4 ranks: cut at 16,384-row chunks, ranks 0
    # and 2 have no rows (rank 0 writes the file all the same), 1 and 3 the rest
    os.mkdir(os.path.join(tmp, "single"))
    single = demo_corpus(os.path.join(tmp, "single"), 20000, 6, 50000)
    check(len(rtrdata.manifest(single)["shards"]) == 1, "1 shard")
    rtrdata.write_table(single, "noisy", rtrdata.noisy_table(np.random.default_rng(4)), "abc124")
    a, b = os.path.join(tmp, "single1.h5"), os.path.join(tmp, "single4.h5")
    ra, t0, t1 = route(1, single, a)
    rb, u0, u1 = route(4, single, b)
    check(ra.returncode == 0 and rb.returncode == 0, "one shard, 1 and 4 ranks: " + ra.stderr + rb.stderr[-600:])
    if ra.returncode == 0 and rb.returncode == 0:
        same_file((a, t0, t1), (b, u0, u1), "1 shard, 4 ranks (two with no rows)")

    # rank 1 dies once its rows are routed, before it sends them: the job
    # fails, nothing stands under the final name; the rerun completes it
    killed = os.path.join(tmp, "killed.h5")
    r, _, _ = route(2, seven, killed, env={"RTR_TEST_KILL_RANK": "1"})
    left = [f for f in os.listdir(tmp) if f.startswith("killed.h5.tmp.")]
    check(r.returncode != 0 and not os.path.exists(killed),
          f"rank 1 killed: exit {r.returncode}, files {sorted(os.listdir(tmp))}")
    for f in left:  # rank 0 may still be going when mpirun returns: its temporary is kept until it is gone
        gone(int(f.rsplit(".", 1)[1]))
    r, u0, u1 = route(2, seven, killed)
    check(r.returncode == 0, "the rerun after a killed rank: " + r.stderr[-400:])
    if r.returncode == 0:
        same_file((one, *one_times), (killed, u0, u1), "the rerun")
    check(not [f for f in os.listdir(tmp) if ".tmp." in f], f"temporaries left: {sorted(os.listdir(tmp))}")
    shutil.rmtree(tmp)
    finish()


main()
