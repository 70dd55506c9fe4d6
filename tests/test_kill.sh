#!/usr/bin/env bash
# SIGKILL on every writing stage: ingest, encode, train, score, route --out
# (CSV and HDF5), sweep, eval, report (the full disk is test_full_disk.sh).
#
# A reference pipeline runs uninterrupted first (60 demo queries in 3 shards,
# all-MiniLM-L6-v2, a small predictor), keeping the state before and after
# each stage. Then, for each stage:
# - SIGKILL at seeded random moments (RTR_KILL_SEED, default 15; RTR_KILL_RUNS
#   kills per stage, default 3; RTR_KILL_STAGES a subset of the stages, to
#   look at one): afterwards every output under its final name
#   is absent, or whole as it was before the stage, or whole as the reference
#   made it (never partial), and a rerun exits 0 with results identical to the
#   uninterrupted run.
# Without the model folder (tools/fetch-encoder) the whole test skips.
. "$(dirname "$0")/faults.sh"
RANDOM=${RTR_KILL_SEED:-15}
runs=${RTR_KILL_RUNS:-3}
kill_stages=${RTR_KILL_STAGES:-$stages} # a subset, to look at one stage

# ---- SIGKILL at random moments, then rerun
for s in $kill_stages; do
  for i in $(seq "$runs"); do
    w=kill-$s-$i
    cp -a "ref-before-$s" "$w"
    delay=$(awk -v t="${secs[$s]}" -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.3f", t * 1.2 * r / 1000 }')
    (cd "$w" && exec $RTR $(stage_cmd "$s") > log 2>&1) &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    check_outputs "$w" "$s" "killed after ${delay}s"
    # rerun; ingest refuses a finished corpus (exit 1, the corpus whole)
    run_stage "$w" "$s"; rc=$?
    if [ "$s" = ingest ] && [ $rc -eq 1 ] && grep -q "already holds a corpus" "$w/log"; then rc=0; fi
    check "$s, rerun after a kill at ${delay}s exits 0: $(tail -2 "$w/log")" test $rc -eq 0
    check_outputs "$w" "$s" "rerun after a kill at ${delay}s" final
    rm -rf "$w"
  done
done

finish
