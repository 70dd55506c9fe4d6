#!/usr/bin/env bash
# The data path at scale (issue 10; figures in docs/SCALE.md): a demo corpus
# of N queries x 16 pairs through ingest -> embed -> train -> score -> route
# -> sweep -> eval, before (schema version 1: rtr built from the commit
# before ab40659) and after (schema version 2: this tree), each stage
# measured by bench_scale_measure.py (wall and CPU seconds, peak RSS, bytes
# read and written, size of what it wrote), before then after, stage by
# stage, so both see the same machine load.
#
#   [RTR_BEFORE=OLD_SRC [RTR_BEFORE_BUILD=OLD_SRC/build]] [RTR_AFTER_BUILD=build] \
#     bench/bench_scale.sh WORK_DIR N...
#   bench/bench_scale_report.py WORK_DIR/results.jsonl
#
# OLD_SRC is a worktree of the old commit (git worktree add /tmp/rtr-before
# ab40659~1) built as usual; both builds need librtr.so. "embed" stands for
# `rtr encode` without an encoder: bench_scale_embed.c writes seeded
# 384-d unit vectors through each build's store (old: every shard read and
# rewritten with the embeddings added; new: the texts read by the row
# reader, one embeddings file per shard written beside it), the same vector
# for the same row in both. 99% of the queries are the test split and 1% the
# training split: eval's kNN baseline costs test x train x D, and the
# checkpoints (one per build, same data and seed) train on the 1%. eval runs
# without the EmbedLLM-style baseline, with the paper's model only and no
# bootstrap, in both builds, so both do the same work. Build both without
# CUDA (-DRTR_CUDA=OFF): loading the CUDA libraries alone costs about 210 MB
# of resident memory. Without RTR_BEFORE only this tree's stages run (how
# each grows with N, at sizes where a second build would not fit the time).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: [RTR_BEFORE=OLD_SRC] $0 WORK_DIR N..." >&2; exit 2; }
work=$1
shift
old_src=${RTR_BEFORE:-} # the source tree of the old format (git worktree of ab40659~1); empty: this tree only
old_build=${RTR_BEFORE_BUILD:-$old_src/build}
here=$(cd "$(dirname "$0")" && pwd)
new_build=${RTR_AFTER_BUILD:-$here/../build}
B=$old_build/rtr
A=$new_build/rtr
mkdir -p "$work/bin"
[ -z "$old_src" ] ||
  cc -O2 -std=c11 -DRTR_SCALE_SCHEMA1 -I"$old_src/include" "$here/bench_scale_embed.c" -o "$work/bin/embed_before" \
    -L"$old_build" -Wl,-rpath,"$(cd "$old_build" && pwd)" -lrtr -lm
cc -O2 -std=c11 -I"$here/../include" "$here/bench_scale_embed.c" -o "$work/bin/embed_after" \
  -L"$new_build" -Wl,-rpath,"$(cd "$new_build" && pwd)" -lrtr -lm
{ echo "# $(date -u +%FT%TZ) nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "# before ${old_src:+$(git -C "$old_src" log -1 --format='%h %s' | cut -c1-60)}, after $A (tree $(git -C "$here" log -1 --format=%h))"; } \
  | tee -a "$work/results.txt"
measure() {
  case $1 in *" before "*) [ -n "$old_src" ] || return 0 ;; esac # "N before STAGE": only with RTR_BEFORE
  nice python3 "$here/bench_scale_measure.py" "$@" | tee -a "$work/results.jsonl"
}
load() { echo "{\"label\": \"$1 load\", \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" | tee -a "$work/results.jsonl"; }
train=(--hidden 128 --learn-dim 32 --epochs 3 --patience 3 --seed 1 --device cpu -q)
for n in "$@"; do
  d=$work/$n
  mkdir -p "$d"
  [ -f "$d/demo/outcomes.jsonl" ] || nice "$A" gen-demo -q --queries "$n" --seed 1 --test-fraction 0.99 "$d/demo"
  rm -rf "$d/v1" "$d/v2" "$d"/route_* "$d"/sweep_* "$d"/eval_* "$d"/*.safetensors
  load "$n start"
  measure "$n before ingest" --out "$d/v1" -- "$B" ingest -q --catalog "$d/demo/catalog.json" --out "$d/v1" \
    --shard-size 100000 "$d/demo/outcomes.jsonl"
  measure "$n after ingest" --out "$d/v2" -- "$A" ingest -q --catalog "$d/demo/catalog.json" --out "$d/v2" \
    --shard-size 100000 "$d/demo/outcomes.jsonl"
  measure "$n before embed" --out "$d/v1" -- "$work/bin/embed_before" "$d/v1" 384
  measure "$n after embed" --out "$d/v2/embeddings" -- "$work/bin/embed_after" "$d/v2" 384
  measure "$n before train" --out "$d/before.safetensors" -- "$B" train "$d/v1" --out "$d/before.safetensors" "${train[@]}"
  measure "$n after train" --out "$d/after.safetensors" -- "$A" train "$d/v2" --out "$d/after.safetensors" "${train[@]}"
  measure "$n before score" --out "$d/v1" -- "$B" score -q --checkpoint "$d/before.safetensors" "$d/v1" --device cpu
  measure "$n after score" --out "$d/v2/tables" -- "$A" score -q --checkpoint "$d/after.safetensors" "$d/v2" --device cpu
  measure "$n before route" --out "$d/route_before.csv" -- "$B" route -q "$d/v1" --lambda 0.5 --out "$d/route_before.csv" --device cpu
  measure "$n after route" --out "$d/route_after.csv" -- "$A" route -q "$d/v2" --lambda 0.5 --out "$d/route_after.csv" --device cpu
  measure "$n before sweep" --out "$d/sweep_before" -- "$B" sweep -q "$d/v1" --out "$d/sweep_before" --device cpu
  measure "$n after sweep" --out "$d/sweep_after" -- "$A" sweep -q "$d/v2" --out "$d/sweep_after" --device cpu
  ev=(--no-embedllm --arch paper --bootstrap 0 --device cpu -q)
  measure "$n before eval" --out "$d/eval_before.json" -- "$B" eval "$d/v1" --out "$d/eval_before.json" "${ev[@]}"
  measure "$n after eval" --out "$d/eval_after.json" -- "$A" eval "$d/v2" --out "$d/eval_after.json" "${ev[@]}"
  load "$n end"
  [ -z "$old_src" ] || python3 - "$d" <<'PY' | tee -a "$work/results.jsonl"
import json, sys
d = sys.argv[1]
a, b = (json.load(open(f"{d}/sweep_{w}/summary.json")) for w in ("before", "after"))
print(json.dumps({"label": d.rstrip("/").split("/")[-1] + " paths", "before_points": a["n_points"],
                  "after_points": b["n_points"]}))
PY
done
