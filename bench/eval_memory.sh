#!/usr/bin/env bash
# Peak RSS of `rtr eval` against the number of evaluated queries, two
# binaries interleaved on the same corpora (docs/SCALE.md's eval row).
#
#   bench/eval_memory.sh prep WORK RTR EMBED N...       build the corpora
#   bench/eval_memory.sh eval WORK RTR_A RTR_B N...     measure A then B
#
# prep: as bench/bench_scale.sh builds its corpora (rtr gen-demo, 99% test
# split unless TEST_FRACTION=F says otherwise, shards of 100,000 rows, 384-d synthetic embeddings written by
# EMBED, a compiled bench/bench_scale_embed.c, a small network trained and
# scored). eval: each binary's `rtr eval` with bench_scale.sh's options
# (paper arch, no EmbedLLM, no bootstrap; BOOTSTRAP=R in the environment:
# R resamples; EVAL_OPTS="..." adds options to both) through bench_scale_measure.py,
# one JSON line each in WORK/results.jsonl, then whether the two
# evaluation files are identical apart from their "seconds".
set -euo pipefail
mode=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
if [ "$mode" = prep ]; then
  rtr=$3 embed=$4
  shift 4
  for n in "$@"; do
    d=$work/$n
    mkdir -p "$d"
    [ -f "$d/demo/outcomes.jsonl" ] || nice "$rtr" gen-demo -q --queries "$n" --seed 1 --test-fraction "${TEST_FRACTION:-0.99}" "$d/demo"
    [ -f "$d/c/manifest.json" ] || nice "$rtr" ingest -q --catalog "$d/demo/catalog.json" --out "$d/c" \
      --shard-size 100000 "$d/demo/outcomes.jsonl"
    [ -d "$d/c/embeddings" ] || nice "$embed" "$d/c" 384
    [ -f "$d/ck.safetensors" ] || nice "$rtr" train "$d/c" --out "$d/ck.safetensors" --hidden 128 --learn-dim 32 \
      --epochs 3 --patience 3 --seed 1 --device cpu -q
    [ -d "$d/c/tables" ] || nice "$rtr" score -q --checkpoint "$d/ck.safetensors" "$d/c" --device cpu
  done
  exit 0
fi
a=$3 b=$4
shift 4
ev=(--no-embedllm --arch paper --bootstrap "${BOOTSTRAP:-0}" --device cpu -q ${EVAL_OPTS:-})
for n in "$@"; do
  d=$work/$n
  echo "{\"label\": \"$n load\", \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" | tee -a "$work/results.jsonl"
  for w in A B; do
    exe=$a; [ $w = A ] || exe=$b
    nice python3 "$here/bench_scale_measure.py" "$n eval $w" --out "$d/eval_$w.json" -- \
      "$exe" eval "$d/c" --out "$d/eval_$w.json" "${ev[@]}" | tee -a "$work/results.jsonl"
  done
  python3 - "$d" <<'PY' | tee -a "$work/results.jsonl"
import json, sys
d = sys.argv[1]
a, b = (json.load(open(f"{d}/eval_{w}.json")) for w in "AB")
for x in (a, b):
    x.pop("seconds", None)
print(json.dumps({"label": d.rstrip("/").split("/")[-1] + " identical", "identical": a == b}))
PY
done
