#!/usr/bin/env bash
# Memory of the λ path stages and ingest (docs/SCALE.md "sweep and route
# --budget", "sweep and ingest bounded"): `rtr sweep`, `rtr route --budget`
# and `rtr ingest` of two builds on the corpora (and the demo outcomes)
# that bench_scale.sh left in WORK_DIR/N, measured by
# bench_scale_measure.py (peak RSS, CPU and wall seconds, bytes),
# interleaved before, after, before, after at each size so both see the
# same load; each pair's path.csv, grid.csv, summary.json (but its seconds)
# and decisions compared byte for byte (a difference fails).
#
#   RTR_BEFORE_BIN=OLD/rtr RTR_AFTER_BIN=NEW/rtr [RTR_TABLE=NAME] [REPS=2] \
#     [STAGES="sweep route-budget ingest"] bench/bench_scale_sweep.sh WORK_DIR N...
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
      for st in ${STAGES:-sweep route-budget}; do
        case $st in
        sweep)
          rm -rf "$out/${n}_$w"
          measure "$n $w sweep $rep" --out "$out/${n}_$w" -- "$bin" sweep -q "$d" "${table[@]}" --out "$out/${n}_$w" \
            --device cpu --grid 1001 ;;
        route-budget)
          measure "$n $w route-budget $rep" --out "$out/${n}_$w.csv" -- "$bin" route -q "$d" "${table[@]}" --budget 100 \
            --out "$out/${n}_$w.csv" --device cpu ;;
        ingest)
          rm -rf "$out/${n}_${w}_ingest"
          measure "$n $w ingest $rep" --out "$out/${n}_${w}_ingest" -- "$bin" ingest -q --catalog "$work/$n/demo/catalog.json" \
            --out "$out/${n}_${w}_ingest" --shard-size 100000 "$work/$n/demo/outcomes.jsonl" ;;
        esac
      done
    done
    same() { [ -e "$out/$1" ] || return 0; cmp "$out/$1" "$out/${1/before/after}"; }
    for st in ${STAGES:-sweep route-budget}; do
      case $st in
      sweep)
        same "${n}_before/path.csv" && same "${n}_before/grid.csv"
        cmp <(sed 's/"seconds":[^,}]*//' "$out/${n}_before/summary.json") \
          <(sed 's/"seconds":[^,}]*//' "$out/${n}_after/summary.json") ;;
      route-budget) same "${n}_before.csv" ;;
      ingest) same "${n}_before_ingest/manifest.json" ;; # it lists each shard's content hash
      esac
    done
    echo "# $n: ${STAGES:-sweep route-budget}: outputs identical" | tee -a "$work/sweep-mem.txt"
  done
done
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/sweep-mem.txt"
