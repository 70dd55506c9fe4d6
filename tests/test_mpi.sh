#!/usr/bin/env bash
# Split runs (docs/SCALING.md) on a small demo corpus of 7 shards, against
# one process:
# - `--part I/3` of score: each part writes only its shards' table files
#   (the parts' files are disjoint and cover every shard exactly once);
#   until the last part has run the table is refused as incomplete, naming
#   the missing shards; then every file equals the one-process table.
# - `--part I/2` of encode (with all-MiniLM-L6-v2 under data/models): the
#   embeddings equal one process's.
# - under `mpirun -np 2` (an MPI build with mpirun): score's table, route's
#   decisions at a budget and sweep's path.csv/grid.csv equal one process's
#   byte for byte (summary.json's metrics to 1e-9); train, data-parallel,
#   gives one process's model (parameters within 1e-4 of each tensor's
#   largest magnitude, see below), the same epochs and the same validation
#   record, and one checkpoint, also on a corpus of one shard (split by rows); eval gives one process's evaluation file
#   (bootstrap intervals included); train refuses a query id repeated
#   across two ranks' shards, naming it and both shards; the device note
#   is printed once (rank 0); a rank that fails (NaN
#   in one of its shards' embeddings) stops both ranks with its message
#   (score and train),
#   leaves no table file under a final name, and a rerun completes; a
#   killed rank (SIGKILL mid-score) leaves no partial file under a final
#   name (before the ranks' barrier none at all; after it, the files
#   already renamed are whole) and the rerun equals one process's table.
# Without an MPI build (or mpirun) the MPI parts are reported skipped (77).
. "$(dirname "$0")/lib.sh"
python3 -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: h5py/numpy missing"; exit 77; }
export PYTHONPATH="${RTR_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests${PYTHONPATH:+:$PYTHONPATH}"
model=${RTR_MODELS_DIR:-${RTR_SOURCE_DIR:-.}/data/models}/all-MiniLM-L6-v2
cd "$work"
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

"$RTR" gen-demo --queries 480 --seed 4 demo >/dev/null 2>&1 &&
  "$RTR" ingest --catalog demo/catalog.json --out corpus --shard-size 70 demo/outcomes.jsonl >/dev/null 2>&1
check "demo corpus of 7 shards" python3 -c "import json; assert len(json.load(open('corpus/manifest.json'))['shards']) == 7"
# stand-in embeddings: a fixed random vector per word, rows L2-normalised
python3 -c "import rtrdata; rtrdata.write_bag_of_words('corpus', 'bow', 'hashbow', 16)"
"$RTR" train corpus --out ck.safetensors --hidden 16 --learn-dim 4 --epochs 3 -q >/dev/null 2>&1
check "train a checkpoint" test -f ck.safetensors
for c in one parts mpi fail kill; do cp -r corpus "$c"; done
"$RTR" score --checkpoint ck.safetensors one -q >/dev/null
check "one-process table" test -f one/tables/ck/shard-00006.h5

# Files equal as HDF5 (datasets and attributes; the bytes hold creation times).
same_table() { # corpus
  local f
  for f in one/tables/ck/shard-*.h5; do h5diff -q "$f" "$1/tables/ck/${f##*/}" >/dev/null || return 1; done
  [ "$(ls "$1"/tables/ck | wc -l)" -eq 7 ]
}

# Every table file under a final name is whole: equal to one process's.
finals_whole() { # corpus reference
  local f
  for f in "$1"/tables/ck/shard-?????.h5; do
    [ -e "$f" ] || continue
    h5diff -q "$f" "$2/tables/ck/${f##*/}" >/dev/null || return 1
  done
}

# ---- --part I/3 of score ----
: > seen.txt
for i in 0 1 2; do
  before=$(ls parts/tables/ck 2>/dev/null)
  "$RTR" score --checkpoint ck.safetensors --part "$i/3" parts > /dev/null 2> part$i.err
  rc=$?
  check "score --part $i/3 exit 0: $(cat part$i.err)" test $rc -eq 0
  comm -13 <(echo "$before" | sort) <(ls parts/tables/ck | sort) | sed "s/^/$i /" >> seen.txt
  if [ $i -lt 2 ]; then
    "$RTR" route parts --lambda 0.5 --out r.csv -q > /dev/null 2> route$i.err
    rc=$?
    check "route refuses the table after part $i: $(cat route$i.err)" \
      grep -q "incomplete.*shard-0" route$i.err
    check "... with exit 1 ($rc)" test $rc -eq 1
    check "part $i names the missing shards: $(cat part$i.err)" grep -q "still missing (shard-" part$i.err
  fi
done
check "each shard's file written by exactly one part: $(tr '\n' ' ' < seen.txt)" \
  test "$(cut -d' ' -f2 seen.txt | sort | uniq | wc -l)" -eq 7 -a "$(wc -l < seen.txt)" -eq 7
check "every part wrote some shards" test "$(cut -d' ' -f1 seen.txt | sort -u | wc -l)" -eq 3
check "the parts' table equals one process's" same_table parts

# ---- --part I/2 of encode ----
if [ -f "$model/model.safetensors" ]; then
  "$RTR" gen-demo --queries 36 --seed 9 small >/dev/null 2>&1 &&
    "$RTR" ingest --catalog small/catalog.json --out e1 --shard-size 12 small/outcomes.jsonl >/dev/null 2>&1
  cp -r e1 e2
  "$RTR" encode --model "$model" --threads 1 -q e1 >/dev/null 2>&1
  "$RTR" encode --model "$model" --threads 1 --part 1/2 e2 >/dev/null 2>e2.err
  check "encode part 1/2 names what is missing: $(cat e2.err)" grep -q "still missing" e2.err
  "$RTR" encode --model "$model" --threads 1 --part 0/2 -q e2 >/dev/null 2>&1
  sameenc=0
  for f in e1/embeddings/all-MiniLM-L6-v2/*.h5; do h5diff -q "$f" "e2/${f#e1/}" >/dev/null || sameenc=1; done
  check "encode parts equal one process's" test $sameenc -eq 0 -a "$(ls e2/embeddings/all-MiniLM-L6-v2 | wc -l)" -eq 4
else
  skip_part "encode --part: no encoder at $model (tools/fetch-encoder)"
fi

# ---- under mpirun ----
mpi=""
grep -q '^RTR_HAVE_MPI:INTERNAL=ON' "${RTR_BINARY_DIR:-.}/CMakeCache.txt" 2>/dev/null && command -v mpirun >/dev/null && mpi=yes
if [ -z "$mpi" ]; then
  skip_part "mpirun parts: rtr built without MPI (RTR_MPI) or no mpirun"
  finish
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_mpi_yield_when_idle=1 \
  OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
run2() { timeout 120 mpirun -np 2 --oversubscribe "$RTR" "$@"; }

run2 score --checkpoint ck.safetensors mpi -q > /dev/null 2> mpi.err
rc=$?
check "mpirun score exit 0: $(cat mpi.err)" test $rc -eq 0
check "mpirun score's table equals one process's" same_table mpi
"$RTR" route one --budget 500 --out one.csv -q >/dev/null && run2 route one --budget 500 --out two.csv -q >/dev/null 2>&1
check "mpirun route --budget: the same decisions" cmp -s one.csv two.csv
"$RTR" sweep one --split "" --grid 64 --out sw1 -q >/dev/null && run2 sweep one --split "" --grid 64 --out sw2 -q >/dev/null 2>&1
check "mpirun sweep: the same path.csv" cmp -s sw1/path.csv sw2/path.csv
check "mpirun sweep: the same grid.csv" cmp -s sw1/grid.csv sw2/grid.csv
check "mpirun sweep: the same summary (metrics to 1e-9)" python3 - <<'EOF'
import json, math
a, b = (json.load(open(f"{d}/summary.json")) for d in ("sw1", "sw2"))
def same(x, y, path=""):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k], k) for k in x if k not in ("device", "seconds"))
    if isinstance(x, list):
        return len(x) == len(y) and all(same(u, v, path) for u, v in zip(x, y))
    if isinstance(x, float) or isinstance(y, float):
        return (x is None and y is None) or abs(x - y) <= 1e-9 * (1 + abs(y))
    return x == y
assert a["n_points"] > 100 and same(a, b), (a.get("metrics"), b.get("metrics"))
EOF

# eval: every rank reads both splits and builds every router; the bootstrap's
# resamples are split across the ranks (resample b on rank b mod 2, drawn as
# the one-process sequence would) and summed; rank 0 writes the file.
eflags="--checkpoint ck.safetensors --bootstrap 60 --seed 7 --threads 1"
"$RTR" eval one --out ev1.json $eflags -q > /dev/null 2> ev1.err
run2 eval one --out ev2.json $eflags -q > /dev/null 2> ev2.err
rc=$?
check "mpirun eval exit 0: $(head -c 300 ev2.err)" test $rc -eq 0
check "mpirun eval: one process's evaluation, intervals included (to 1e-9)" python3 - <<'EOF'
import json
a, b = (json.load(open(f)) for f in ("ev1.json", "ev2.json"))
def same(x, y, path=""):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k], path + "/" + k) for k in x if k not in ("device", "seconds"))
    if isinstance(x, list):
        return len(x) == len(y) and all(same(u, v, path) for u, v in zip(x, y))
    if isinstance(x, float) or isinstance(y, float):
        ok = (x is None and y is None) or abs(x - y) <= 1e-9 * (1 + abs(y))
        if not ok: print(path, x, y)
        return ok
    return x == y
assert a["bootstrap"]["resamples"] == 60 and all("ci" in r for r in a["routers"] if "unavailable" not in r)
assert same(a, b)
EOF
check "... one file, no temporary left: $(ls | grep '^ev2')" test "$(ls | grep '^ev2' | tr '\n' ' ')" = "ev2.err ev2.json "
# ranks that build different routers (here: another --knn on rank 1) are
# refused, not mixed into one bootstrap
timeout 120 mpirun -np 1 "$RTR" eval one --out ev3.json $eflags --knn 5 -q : \
  -np 1 "$RTR" eval one --out ev3.json $eflags --knn 7 -q > /dev/null 2> ev3.err
rc=$?
check "eval ranks that differ: refused ($rc): $(head -c 300 ev3.err)" test $rc -ne 0 -a $rc -ne 124
check "... naming the rank" grep -q "rank 1 built other routers than rank 0" ev3.err
check "... no file: $(ls | grep '^ev3')" test ! -e ev3.json

# Two trainings' checkpoints (NAME.safetensors) and epoch logs (NAME.json)
# are one model: same epochs, early stopped, parameters within 1e-4.
same_model() { # one two
python3 - "$1" "$2" <<'EOF'
import json, struct, sys, numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    dt = {"F32": np.float32, "I32": np.int32}
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dt[v["dtype"]])
            for k, v in h.items()}, meta
one, two = sys.argv[1:3]
(a, ma), (b, mb) = load(one + ".safetensors"), load(two + ".safetensors")
ea, eb = (json.load(open(f + ".json"))["epochs"] for f in (one, two))
assert len(ea) == len(eb) < 60, (len(ea), len(eb))
assert [e["best"] for e in ea] == [e["best"] for e in eb]
for x, y in zip(ea, eb):
    for k in ("train_bce", "train_tok", "val_bce", "val_tok", "val_score"):
        assert abs(x[k] - y[k]) <= 1e-4 * (1 + abs(x[k])), (k, x, y)
assert a.keys() == b.keys()
for k in a:
    d = np.abs(a[k].astype(np.float64) - b[k]).max() / (np.abs(a[k]).max() + 1e-30)
    assert d <= 1e-4, (k, d)
# the metadata (validation record, token scale, encoder) equal; only the parameters' hash may differ
assert {k: v for k, v in ma.items() if k != "checkpoint_hash"} == {k: v for k, v in mb.items() if k != "checkpoint_hash"}
EOF
}

# Data-parallel training: the same global batches as one process, each rank
# computing the rows of a batch it holds, gradients summed before each Adam
# step. The parameters differ only by the order of float sums (a rank's
# partial sums added by the allreduce): a few ulps (~1e-7 relative) per step;
# seen 2-6e-7 of each tensor's largest magnitude after 8 epochs at --lr 0.01
# on 2, 3 and 8 ranks. The bound 1e-4 leaves room for that drift and is
# still far below what one missed or wrong step moves (lr 0.01 per Adam step
# on parameters of magnitude ~0.1-1). --patience 2 ends the run by early
# stopping, which every rank must decide alike.
tflags="--hidden 16 --learn-dim 4 --epochs 60 --patience 2 --lr 0.01 --threads 1 --json"
"$RTR" train corpus --out t1.safetensors $tflags > t1.json 2> /dev/null
run2 train corpus --out t2.safetensors $tflags > t2.json 2> train2.err
rc=$?
check "mpirun train exit 0: $(cat train2.err)" test $rc -eq 0
check "... one epoch log (rank 0's): $(grep -c '^epoch' train2.err) lines" test "$(grep -c '^epoch *1 ' train2.err)" -eq 1
check "... equals one process's model: same epochs, early stopped, parameters within 1e-4" same_model t1 t2
check "... one checkpoint, no temporary left: $(ls | grep '^t2')" test "$(ls | grep '^t2' | tr '\n' ' ')" = "t2.json t2.safetensors "

# A corpus of one shard on 2 ranks: each trains on its range of rows (by
# whole shards rank 1 held none and added zero gradients), the same model.
"$RTR" ingest --catalog demo/catalog.json --out corpus1 --shard-size 1000 demo/outcomes.jsonl >/dev/null 2>&1
python3 -c "import rtrdata; rtrdata.write_bag_of_words('corpus1', 'bow', 'hashbow', 16)"
"$RTR" train corpus1 --out u1.safetensors $tflags > u1.json 2> /dev/null
run2 train corpus1 --out u2.safetensors $tflags > u2.json 2> train_u2.err
rc=$?
check "one shard: mpirun train exit 0: $(cat train_u2.err)" test $rc -eq 0
check "... equals one process's model" same_model u1 u2

# A query id repeated across two ranks' rows (shard 0 is in rank 0's range
# of rows, shard 6 in rank 1's): each rank reads only its own rows, so the
# ranks check their ids together (rank 0 merges them: rows.c), as one
# process's reader checks every id, and all refuse naming the id and both
# shards. --split "" (every split): the CLI's check of a
# split name reads the corpus and would refuse it before the stage does.
cp -r corpus dup
qid=$(python3 - <<'EOF2'
import h5py, numpy as np, rtrdata
with h5py.File("dup/shard-00006.h5", "r") as h: qid = rtrdata.strings(h, "id")[0]
with h5py.File("dup/shard-00000.h5", "a") as h:
    ids = rtrdata.strings(h, "id"); ids[3] = qid
    data = [x.encode() for x in ids]
    for key, v in (("bytes", np.frombuffer(b"".join(data), dtype=np.uint8)),
                   ("offsets", np.cumsum([0] + [len(x) for x in data]).astype(np.int64))):
        del h["queries/id/" + key]; h["queries/id/" + key] = v
print(qid)
EOF2
)
run2 train dup --split "" --out tdup.safetensors --hidden 16 --learn-dim 4 --epochs 2 > /dev/null 2> tdup.err
rc=$?
check "train on 2 ranks refuses id $qid repeated across their shards ($rc)" test $rc -eq 1
check "... naming the id and both shards: $(head -c 400 tdup.err)" grep -q "\"$qid\" appears twice.*shard-0000[06].h5" tdup.err
check "... both shards named" python3 -c "import sys; t = open('tdup.err').read(); sys.exit(not ('shard-00000.h5' in t and 'shard-00006.h5' in t))"
check "... no checkpoint: $(ls | grep tdup)" test -z "$(ls | grep '^tdup\.safetensors')"

# The device note ("built without CUDA ...; computing on the CPU") comes from
# rank 0 alone: as many lines as one process prints.
"$RTR" route one --lambda 0.5 --out note1.csv > /dev/null 2> note1.err
run2 route one --lambda 0.5 --out note2.csv > /dev/null 2> note2.err
n1=$(grep -c "computing on the CPU" note1.err) n2=$(grep -c "computing on the CPU" note2.err)
check "the device note once under mpirun: $n2 lines, one process $n1" test "$n2" -eq "$n1"

# A rank that fails stops both: NaN in shard 5's embeddings (rank 1's: its
# shard for score, within its range of rows for train).
python3 -c "
import h5py
with h5py.File('fail/embeddings/bow/shard-00005.h5', 'r+') as f: f['embedding/query'][3, 2] = float('nan')"
run2 score --checkpoint ck.safetensors fail > /dev/null 2> fail.err
rc=$?
check "a failing rank: exit non-zero, no hang ($rc)" test $rc -ne 0 -a $rc -ne 124
check "... its message is printed: $(cat fail.err)" grep -q "shard-00005.h5.*NaN\|NaN.*shard-00005" fail.err
check "... and every rank stopped" grep -q "rank 1 of 2 failed" fail.err
check "... no table file under a final name: $(ls fail/tables/ck)" test -z "$(ls fail/tables/ck 2>/dev/null | grep -v '\.tmp\.')"
run2 train fail --out tfail.safetensors --hidden 16 --learn-dim 4 --epochs 2 > /dev/null 2> tfail.err
rc=$?
check "a failing rank in train: exit non-zero, no hang ($rc)" test $rc -ne 0 -a $rc -ne 124
check "... its message: $(cat tfail.err)" grep -q "shard-00005.h5.*NaN\|NaN.*shard-00005" tfail.err
check "... every rank stopped" grep -q "rank 1 of 2 failed" tfail.err
check "... no checkpoint: $(ls | grep tfail)" test -z "$(ls | grep '^tfail\.safetensors')"

# A killed rank: SIGKILL rank 1 while score writes (one row per chunk: slow
# enough to catch; its scores are compared with one process's at that chunk size).
cp -r corpus one1
"$RTR" score --checkpoint ck.safetensors --chunk-rows 1 one1 -q >/dev/null
mpirun -np 2 --oversubscribe "$RTR" score --checkpoint ck.safetensors --chunk-rows 1 kill -q > /dev/null 2>kill.err &
mp=$!
victim=""
for _ in $(seq 1 500); do
  ls kill/tables/ck 2>/dev/null | grep -q '\.tmp\.' && break
  sleep 0.01
done
ranks=$(ps -o pid= --ppid $mp)
for p in $ranks; do
  tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
if [ -n "$victim" ] && kill -0 "$victim" 2>/dev/null; then
  kill -9 "$victim"
  wait $mp
  rc=$?
  # mpirun can return while the other rank is still being torn down; until it
  # is gone its temporary files belong to a live process and are (rightly) kept
  for _ in $(seq 1 200); do
    alive=0
    for p in $ranks; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.05
  done
  check "killed rank: the job fails ($rc)" test $rc -ne 0
  check "... every table file under a final name is whole: $(ls kill/tables/ck)" finals_whole kill one1
  run2 score --checkpoint ck.safetensors kill -q > /dev/null 2> rerun.err
  rc=$?
  check "... the rerun completes: $(cat rerun.err)" test $rc -eq 0
  check "... equal to one process's table, no temporary left: $(ls kill/tables/ck | tr '\n' ' ')" same_table kill
else
  wait $mp
  skip_part "kill: score finished before rank 1 could be killed"
fi
finish
