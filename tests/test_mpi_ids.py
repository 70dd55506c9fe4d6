"""The query ids' uniqueness check under `mpirun` (src/store/rows.c,
id_check_finish_ranks): each rank checks only its own range of rows' ids,
in the pass that reads them, and sends its sorted (hash, place) records to
rank 0 (rtr_dist_stream), which merges them, confirms equal hashes by the
ids themselves and sends its verdict to every rank. Before, every rank read
every id of the corpus first to check them alone.

Checked, on a corpus of 7 shards whose ids are 600 bytes long (so that the
ids are most of what a rank reads): an id of shard 6 (rank 1's rows)
repeated in shard 0 (rank 0's) is refused by route (--lambda to CSV, and
--budget to HDF5) and by sweep on 2 ranks with one process's message, which
names the id, the file and row of the repeat and the other file, and no
output is left; the same repeat inside rank 1's rows (shards 5 and 6) too;
on the valid corpus each of 2 ranks reads at most 0.75x one process's bytes
(sweep, about half: each its own rows' ids; when every rank read every
id first, each read more than one process: fails on the old code). Skipped
(77) without an MPI build or mpirun."""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import rtrdata
from rtrtest import PER_RANK, RTR, check, demo_corpus, finish, require_mpi, require_numpy_h5py, require_rtr

require_numpy_h5py()
require_rtr()

MPI_ENV = require_mpi()


def rtr_on(ranks, *args, wrapper=()):
    cmd = [*wrapper, RTR, *args, "--split", "", "--device", "cpu", "-q"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=MPI_ENV, timeout=300)


def set_ids(shard, ids):
    with h5py.File(shard, "a") as h:
        data = [x.encode() for x in ids]
        for key, v in (("bytes", np.frombuffer(b"".join(data), dtype=np.uint8)),
                       ("offsets", np.cumsum([0] + [len(x) for x in data]).astype(np.int64))):
            del h["queries/id/" + key]
            h["queries/id/" + key] = v


def shard(corpus, i):
    return os.path.join(corpus, f"shard-{i:05d}.h5")


def ids_of(corpus, i):
    with h5py.File(shard(corpus, i), "r") as h:
        return rtrdata.strings(h, "id")


def error_line(stderr):
    """The stage's error message (the first 'error:' line)."""
    return next((line for line in stderr.splitlines() if ": error: " in line), "")


def refused_alike(corpus, what, tmp):
    """route and sweep on 1 and 2 ranks: each refuses the corpus with the same message, naming what."""
    for args, out in ((["route", corpus, "--lambda", "0.3"], "r.csv"), (["route", corpus, "--budget", "400"], "r.h5"),
                      (["sweep", corpus, "--grid", "16"], "sw")):
        msgs = []
        for ranks in (1, 2):
            dest = os.path.join(tmp, f"{ranks}{out}")
            r = rtr_on(ranks, *args, "--out", dest)
            msgs.append(error_line(r.stderr))
            check(r.returncode != 0 and not os.path.exists(dest),
                  f"{what}, {args[0]} on {ranks} rank(s): exit {r.returncode}, output left: {os.path.exists(dest)}")
        check(msgs[0] != "" and msgs[0] == msgs[1] and all(w in msgs[0] for w in WANT[what]),
              f"{what}, {' '.join(args[:1] + args[2:])}: 1 and 2 ranks say {msgs}")


WANT = {}


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_mpi_ids_")
    corpus = demo_corpus(tmp, 21000, 5, 3000)
    check(len(rtrdata.manifest(corpus)["shards"]) == 7, "7 shards")
    # ids of 600 bytes: most of what a rank reads is then its ids
    for i in range(7):
        set_ids(shard(corpus, i), [x + "-" + "x" * 600 for x in ids_of(corpus, i)])
    rtrdata.write_table(corpus, "noisy", rtrdata.noisy_table(np.random.default_rng(3)), "abc123")

    # the valid corpus: sweep on 2 ranks equals one process's (the walk's
    # sums in another order: to 1e-9), and each rank reads its own rows' ids
    # only (sweep, as no rank re-reads a decisions segment of its own, which
    # route's CSV ranks do: rchar counts that too)
    per_rank = os.path.join(tmp, "per_rank")
    with open(per_rank + ".py", "w") as f:
        f.write(PER_RANK)
    outs = [os.path.join(tmp, f"sweep{n}") for n in (1, 2)]
    for ranks, out in zip((1, 2), outs):
        r = rtr_on(ranks, "sweep", corpus, "--grid", "16", "--out", out,
                   wrapper=(sys.executable, per_rank + ".py", f"{per_rank}.{ranks}"))
        check(r.returncode == 0, f"sweep on {ranks} rank(s): " + r.stderr[-400:])
    if all(os.path.exists(os.path.join(o, "path.csv")) for o in outs):
        a, b = (list(csv.reader(open(os.path.join(o, "path.csv")))) for o in outs)
        check(len(a) == len(b) and all(x[:3] == y[:3] for x, y in zip(a, b)),
              "sweep on 2 ranks: the path's points and λ are one process's")
    alone = int(open(per_rank + ".1").read().split()[1]) if os.path.exists(per_rank + ".1") else 0
    got = dict(line.split() for line in open(per_rank + ".2")) if os.path.exists(per_rank + ".2") else {}
    ranks = [int(got.get(str(i), 0)) for i in (0, 1)]
    check(alone > 0 and all(0 < x < 0.75 * alone for x in ranks),
          f"sweep: one process read {alone} bytes, 2 ranks {ranks}")
    print(f"sweep, 600-byte ids: bytes read alone {alone}, by each of 2 ranks {ranks}")

    # an id of rank 1's rows (shard 6) repeated in rank 0's (shard 0, row 3)
    qid = ids_of(corpus, 6)[0]
    first = ids_of(corpus, 0)
    ids = list(first)
    ids[3] = qid
    set_ids(shard(corpus, 0), ids)
    WANT["across ranks"] = [f'"{qid}" appears twice', "shard-00006.h5: row 0", "also in", "shard-00000.h5"]
    refused_alike(corpus, "across ranks", tmp)
    set_ids(shard(corpus, 0), first)
    # the same inside rank 1's rows: shard 5 row 10 repeats shard 6's row 0
    fifth = ids_of(corpus, 5)
    ids = list(fifth)
    ids[10] = qid
    set_ids(shard(corpus, 5), ids)
    WANT["within rank 1"] = [f'"{qid}" appears twice', "shard-00006.h5: row 0", "also in", "shard-00005.h5"]
    refused_alike(corpus, "within rank 1", tmp)
    shutil.rmtree(tmp)
    finish()


main()
