# Shared by the fault tests (sourced, never run by ctest): the writing
# stages of the pipeline, a reference run of all of them uninterrupted (60
# demo queries in 3 shards, all-MiniLM-L6-v2, a small predictor) keeping the
# state before and after each stage in ref-before-STAGE / ref-after-STAGE,
# and the check that a stage's outputs under their final names are absent,
# as before the stage or as the reference made them (never partial). Skips
# the test (77) without the model folder (tools/fetch-encoder) or h5dump.
. "$(dirname "$0")/lib.sh"
model=${RTR_MODELS_DIR:-${RTR_SOURCE_DIR:-.}/data/models}/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || { echo "SKIP: $model absent"; exit 77; }
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) absent"; exit 77; }
RTR=$(cd "$(dirname "$RTR")" && pwd)/$(basename "$RTR")
export OMP_NUM_THREADS=2
cd "$work"
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# ---- the stages: name, command (run in the stage's folder), its outputs
stage_cmd() {
  case $1 in
    ingest) echo "ingest --catalog demo/catalog.json --out corp --shard-size 20 demo/outcomes.jsonl" ;;
    encode) echo "encode --model $model --device cpu corp" ;;
    train) echo "train corp --out ck.safetensors --hidden 16 --learn-dim 8 --epochs 30 --patience 30 --device cpu" ;;
    score) echo "score --checkpoint ck.safetensors --device cpu corp" ;;
    route-csv) echo "route corp --lambda 0.5 --out d.csv --device cpu" ;;
    route-h5) echo "route corp --budget 20000 --out d.h5 --device cpu" ;;
    sweep) echo "sweep corp --out sw --grid 5 --device cpu" ;;
    eval) echo "eval corp --out e.json --device cpu" ;;
    report) echo "report e.json" ;;
  esac
}
stage_outputs() {
  case $1 in
    ingest|encode|score) echo "corp/manifest.json $(cd ref-after-ingest && ls corp/shard-*.h5)" ;;
    train) echo ck.safetensors ;;
    route-csv) echo d.csv ;;
    route-h5) echo d.h5 ;;
    sweep) echo "sw/path.csv sw/grid.csv sw/summary.json sw/plot.svg" ;;
    eval) echo e.json ;;
    report) echo "e.html e.md" ;;
  esac
}
stages="ingest encode train score route-csv route-h5 sweep eval report"

# A file's content in a comparable form: HDF5 through h5dump (object times
# and layout aside), evaluation and summary JSON without the run time, else
# the bytes. "absent" when there is no such file.
canon() {
  if [ ! -e "$1" ]; then echo absent
  elif [ -d "$1" ]; then echo "directory"
  else case $1 in
    *.h5) h5dump "$1" 2>&1 | sed 1d ;;
    *.json) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("seconds",None); print(json.dumps(d,sort_keys=True))' "$1" 2>&1 ;;
    *) cat "$1" ;;
  esac | md5sum | cut -d' ' -f1; fi
}

# Run a stage in folder $1 (stdout and stderr to $1/log); its exit status.
run_stage() { (cd "$1" && $RTR $(stage_cmd "$2") > log 2>&1); }

# ---- the reference, uninterrupted
mkdir ref && (cd ref && "$RTR" gen-demo --queries 60 --seed 5 demo > /dev/null 2>&1)
check "gen-demo" test -f ref/demo/outcomes.jsonl
declare -A secs
prev=ref
for s in $stages; do
  cp -a ref "ref-before-$s"
  t0=$(date +%s.%N)
  run_stage ref "$s"; rc=$?
  secs[$s]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  check "reference $s exit 0: $(tail -3 ref/log)" test $rc -eq 0
  cp -a ref "ref-after-$s"
done
[ "$failed" -eq 0 ] || finish

# The outputs of stage $2 in folder $1 are each absent, as before the stage,
# or as the reference made them; $3 says what happened (for the message).
# With $4 = final, each must be as the reference made it.
check_outputs() {
  local dir=$1 s=$2 what=$3 final=${4:-} f got before after
  for f in $(stage_outputs "$s"); do
    got=$(canon "$dir/$f") before=$(canon "ref-before-$s/$f") after=$(canon "ref-after-$s/$f")
    if [ -n "$final" ]; then
      check "$s, $what: $f is the uninterrupted run's" test "$got" = "$after"
    else
      check "$s, $what: $f is partial or stale" eval '[ "$got" = absent ] || [ "$got" = "$before" ] || [ "$got" = "$after" ]'
    fi
  done
}

