#!/usr/bin/env bash
# Scaling of score, sweep, route, encode, train and eval from 1 to 2 MPI ranks on
# this machine (docs/SCALING.md): the demo corpus with stand-in embeddings
# (score, sweep, train, eval) and a small one encoded with all-MiniLM-L6-v2
# (encode), each command run alone and under `mpirun -np 2` in interleaved
# rounds (1 2 1 2 ...); prints the median wall time of each, the speedup and
# the efficiency (speedup / 2), with the machine's load. Every 2-rank output
# of score, sweep, route and eval is checked equal to the 1-rank one first
# (eval's numbers to 1e-9 relative: its sums are added over the ranks;
# tests/test_mpi.sh does it fully, and checks train's model). encode,
# train and eval run one thread per rank, so 2 ranks use twice the cores.
# eval's ranks each run through a wrapper that reports the bytes it read
# (rchar of /proc/self/io) and its peak RSS (ru_maxrss): their medians per
# rank are printed after the times.
#   bench/mpi_scaling.sh [BUILD_DIR] [QUERIES] [ROUNDS] [STAGES]
#   (default build-mpi 20000 3 "score sweep route encode train eval"; route:
#   --budget 100 to a CSV file, table ref)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rtr=$root/${1:-build-mpi}/rtr
n=${2:-20000}
rounds=${3:-3}
stages=" ${4:-score sweep route encode train eval} "
model=$root/data/models/all-MiniLM-L6-v2
export PYTHONPATH=$root/tests OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
  OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_hwloc_base_binding_policy=none
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
"$rtr" gen-demo --queries "$n" --seed 2 demo >/dev/null 2>&1
"$rtr" ingest --catalog demo/catalog.json --out c --shard-size $((n / 8)) demo/outcomes.jsonl >/dev/null 2>&1
python3 -c "import rtrdata; rtrdata.write_bag_of_words('c', 'bow', 'hashbow', 64)"
"$rtr" train c --out ck.safetensors --hidden 64 --learn-dim 16 --epochs 2 -q >/dev/null
"$rtr" score --checkpoint ck.safetensors --name ref c -q >/dev/null
have_model=0
if [ -f "$model/model.safetensors" ]; then
  have_model=1
  "$rtr" gen-demo --queries 160 --seed 3 small >/dev/null 2>&1
  "$rtr" ingest --catalog small/catalog.json --out e --shard-size 40 small/outcomes.jsonl >/dev/null 2>&1
fi

# time_of NAME RANKS command...: seconds appended to NAME.RANKS (eval: each
# rank through bench/per_rank.py, its bytes read and peak RSS appended to eval.io.RANKS)
time_of() {
  local name=$1 ranks=$2 t0 t1 run=("$rtr")
  shift 2
  [ "$name" = eval ] && run=(python3 "$root/bench/per_rank.py" "eval.io.$ranks" "$rtr")
  t0=$(date +%s.%N)
  if [ "$ranks" = 1 ]; then "${run[@]}" "$@" -q >/dev/null; else mpirun -np 2 --oversubscribe "${run[@]}" "$@" -q >/dev/null; fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc >> "$name.$ranks"
}
for r in $(seq 1 "$rounds"); do
  for ranks in 1 2; do
    [[ $stages == *" score "* ]] && time_of score $ranks score --checkpoint ck.safetensors --name s$ranks c
    [[ $stages == *" sweep "* ]] && time_of sweep $ranks sweep c --table ref --split "" --out sw$ranks
    [[ $stages == *" route "* ]] && time_of route $ranks route c --table ref --split "" --budget 100 --out rt$ranks.csv
    if [[ $stages == *" encode "* ]] && [ $have_model = 1 ] && [ "$r" -le 2 ]; then
      time_of encode $ranks encode --model "$model" --force --threads 1 e
    fi
    # 5 epochs of a 256-unit predictor: 2 ranks each compute half of every batch
    [[ $stages == *" train "* ]] && time_of train $ranks train c --out t$ranks.safetensors --hidden 256 --learn-dim 64 \
      --epochs 5 --patience 5 --threads 1
    # 1000 bootstrap resamples (2 ranks: 500 each); each rank reads its own
    # evaluated rows and the whole training split
    [[ $stages == *" eval "* ]] && time_of eval $ranks eval c --table ref --checkpoint ck.safetensors --no-embedllm \
      --bootstrap 1000 --threads 1 --out ev$ranks.json
  done
done
for f in c/tables/s1/*.h5; do
  [[ $stages == *" score "* ]] || break
  for d in /routing/p_correct /routing/tokens; do # the tables' names differ, their values must not
    h5diff -q "$f" "c/tables/s2/${f##*/}" $d $d >/dev/null || { echo "score: ranks differ: $f $d"; exit 1; }
  done
done
[[ $stages != *" sweep "* ]] || cmp -s sw1/path.csv sw2/path.csv || { echo "sweep: ranks differ"; exit 1; }
[[ $stages != *" route "* ]] || cmp -s rt1.csv rt2.csv || { echo "route: ranks differ"; exit 1; }
[[ $stages != *" eval "* ]] || python3 -c "
import json, sys
a, b = (json.load(open(f)) for f in ('ev1.json', 'ev2.json'))
def same(x, y):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x if k not in ('seconds', 'device'))
    if isinstance(x, list):
        return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-300)
    return x == y
sys.exit(not same(a, b))" || { echo "eval: ranks differ"; exit 1; }

median() { sort -g "$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $n queries in 8 shards (encode: 160 in 4)"
range() { sort -g "$1" | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.3f-%.3f", a, b}'; }
printf "%-8s %10s %10s %8s %10s  %s\n" stage "1 rank s" "2 ranks s" speedup efficiency "min-max (1 rank; 2 ranks)"
for s in score sweep route encode train eval; do
  [ -f "$s.1" ] || continue
  a=$(median "$s.1") b=$(median "$s.2")
  printf "%-8s %10.3f %10.3f %8.2f %10.2f  %s; %s\n" "$s" "$a" "$b" "$(echo "$a / $b" | bc -l)" \
    "$(echo "$a / $b / 2" | bc -l)" "$(range "$s.1")" "$(range "$s.2")"
done
for ranks in 1 2; do
  [ -f "eval.io.$ranks" ] || break
  for r in $(seq 0 $((ranks - 1))); do
    awk -v r="$r" '$1 == r {print $2}' "eval.io.$ranks" > b.txt
    awk -v r="$r" '$1 == r {print $3}' "eval.io.$ranks" > m.txt
    printf "eval, %s rank(s): rank %s read %.1f MB, peak RSS %.1f MB (medians)\n" "$ranks" "$r" \
      "$(echo "$(median b.txt) / 1000000" | bc -l)" "$(echo "$(median m.txt) / 1000" | bc -l)"
  done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
