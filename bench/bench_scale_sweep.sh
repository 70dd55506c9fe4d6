#!/usr/bin/env bash
# Memory of the λ path stages (docs/SCALE.md "sweep and route --budget"):
# `rtr sweep` and `rtr route --budget` of two builds on the corpora that
# bench_scale.sh left in WORK_DIR/N/v2, measured by bench_scale_measure.py
# (peak RSS, CPU and wall seconds, bytes), interleaved before, after, before,
# after at each size so both see the same load; each pair's path.csv,
# grid.csv and decisions compared byte for byte (a difference fails).
#
#   RTR_BEFORE_BIN=OLD/rtr RTR_AFTER_BIN=NEW/rtr [RTR_TABLE=NAME] [REPS=2] \
#     bench/bench_scale_sweep.sh WORK_DIR N...
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: RTR_BEFORE_BIN=... RTR_AFTER_BIN=... $0 WORK_DIR N..." >&2; exit 2; }
work=$1
shift
B=${RTR_BEFORE_BIN:?the rtr to compare against}
A=${RTR_AFTER_BIN:?the rtr measured}
here=$(cd "$(dirname "$0")" && pwd)
table=()
[ -n "${RTR_TABLE:-}" ] && table=(--table "$RTR_TABLE")
out=$work/sweep-mem
mkdir -p "$out"
measure() { nice -n 10 python3 "$here/bench_scale_measure.py" "$@" | tee -a "$work/sweep-mem.jsonl"; }
echo "# $(date -u +%FT%TZ) nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/sweep-mem.txt"
for rep in $(seq "${REPS:-2}"); do
  for n in "$@"; do
    d=$work/$n/v2
    for w in before after; do
      bin=$B
      [ $w = after ] && bin=$A
      rm -rf "$out/${n}_$w"
      measure "$n $w sweep $rep" --out "$out/${n}_$w" -- "$bin" sweep -q "$d" "${table[@]}" --out "$out/${n}_$w" \
        --device cpu --grid 1001
      measure "$n $w route-budget $rep" --out "$out/${n}_$w.csv" -- "$bin" route -q "$d" "${table[@]}" --budget 100 \
        --out "$out/${n}_$w.csv" --device cpu
    done
    for f in "${n}_before/path.csv" "${n}_before/grid.csv" "${n}_before.csv"; do
      cmp "$out/$f" "$out/${f/before/after}"
    done
    echo "# $n: path.csv, grid.csv and the budget's decisions identical" | tee -a "$work/sweep-mem.txt"
  done
done
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/sweep-mem.txt"
