#!/usr/bin/env bash
# Conventions every command shares through src/cli/args.c and the progress
# lines of src/common/util.c, checked on the rtr binary: every command takes
# --quiet and lists it in an aligned --help; an unknown option names the
# closest known one; a number that does not parse, nan and inf are usage
# errors quoting the value; long work writes periodic progress lines into a
# log file (count, rate) and nothing with --quiet; rtr --help is aligned and
# lists --version; an unknown command names the closest one; every command
# that computes takes --threads; summaries go to stdout. The parser's
# details: test_cli_args.c; the progress line's: test_progress.c; the
# commands on a corpus (stdout, nan, splits and datasets named):
# test_cli_commands.py.
. "$(dirname "$0")/lib.sh"
cd "$work"

commands=$("$RTR" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}')
[ "$(echo "$commands" | wc -w)" -ge 10 ] && ok || bad "commands listed by rtr --help: $commands"
for c in $commands; do
  "$RTR" "$c" --quiet < /dev/null > out.txt 2> err.txt
  rc=$?
  { [ $rc -eq 0 ] || [ $rc -eq 2 ] || [ $rc -eq 1 ]; } && ! grep -q "unknown option" err.txt && ok \
    || bad "rtr $c --quiet: exit $rc: $(cat err.txt)"
  "$RTR" "$c" --help > help.txt 2>&1 || bad "rtr $c --help failed"
  grep -q -- "--quiet, -q" help.txt && ok || bad "rtr $c --help lists no --quiet"
  # Every option line's description starts in the same column.
  cols=$(awk '/^  --/ { line = substr($0, 3); n = split(line, w, "  +"); if (n > 1) print index($0, w[2]) }' help.txt | sort -u | wc -l)
  [ "$cols" -eq 1 ] && ok || bad "rtr $c --help: descriptions in $cols columns: $(cat help.txt)"
  grep -qi "default: nan" help.txt && bad "rtr $c --help prints a nan default" || ok
done

"$RTR" route --lamda 0.5 x > out.txt 2> err.txt
[ $? -eq 2 ] && grep -q "did you mean --lambda?" err.txt && ok || bad "--lamda: $(cat err.txt)"
"$RTR" ingest --catalg c.json --out o x.jsonl > out.txt 2> err.txt
[ $? -eq 2 ] && grep -q "did you mean --catalog?" err.txt && ok || bad "--catalg: $(cat err.txt)"
for v in nan inf -inf 1e999 0.5x; do
  "$RTR" gen-demo --test-fraction "$v" demo > out.txt 2> err.txt
  [ $? -eq 2 ] && grep -qF -- "--test-fraction '$v'" err.txt && ok || bad "--test-fraction $v: $(cat err.txt)"
done
"$RTR" gen-demo --queries 10abc demo > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--queries '10abc'" err.txt && ok || bad "--queries 10abc: $(cat err.txt)"
[ -e demo ] && bad "a usage error wrote output" || ok
"$RTR" --version | grep -Eq '^rtr [0-9]+\.[0-9]+' && ok || bad "rtr --version"

# rtr --help: commands and its own options in one aligned column, --version listed.
"$RTR" --help > help.txt
grep -Eq '^  --version +print' help.txt && ok || bad "rtr --help lists no --version: $(cat help.txt)"
cols=$(awk '/^  [a-z-]/ { n = split(substr($0, 3), w, "  +"); if (n > 1) print index($0, w[2]) }' help.txt | sort -u | wc -l)
[ "$cols" -eq 1 ] && ok || bad "rtr --help: descriptions in $cols columns: $(cat help.txt)"
"$RTR" tarin x > out.txt 2> err.txt
[ $? -eq 2 ] && grep -q "unknown command 'tarin'; did you mean train?" err.txt && ok || bad "rtr tarin: $(cat err.txt)"
"$RTR" --verison > out.txt 2> err.txt
[ $? -eq 2 ] && grep -q "did you mean --version?" err.txt && ok || bad "rtr --verison: $(cat err.txt)"
"$RTR" xyzzy > out.txt 2> err.txt
[ $? -eq 2 ] && ! grep -q "did you mean" err.txt && ok || bad "rtr xyzzy suggests something: $(cat err.txt)"

# Every command that computes on the CPU takes --threads.
for c in encode embed train score eval eval-predictor route sweep; do
  "$RTR" "$c" --help | grep -q -- "--threads N" && ok || bad "rtr $c --help lists no --threads"
done
# Values quoted as given; output extensions checked before any work.
"$RTR" route x --lambda 1.0000001 --out d.csv > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--lambda '1.0000001': expected a number in [0, 1]" err.txt && ok || bad "--lambda 1.0000001: $(cat err.txt)"
"$RTR" route x --lambda 0.5 --out d.parquet > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--out 'd.parquet': unsupported extension '.parquet'; use .csv, .jsonl or .h5" err.txt \
  && ok || bad "route --out d.parquet: $(cat err.txt)"
"$RTR" eval x --out e.parquet > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--out 'e.parquet': unsupported extension '.parquet'; use .json" err.txt && [ ! -e e.parquet ] \
  && ok || bad "eval --out e.parquet: $(cat err.txt)"
"$RTR" train x --out c.pt > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--out 'c.pt': unsupported extension '.pt'; use .safetensors" err.txt && [ ! -e c.pt ] \
  && ok || bad "train --out c.pt: $(cat err.txt)"
"$RTR" train x --out c.st --memory-budget -1 > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--memory-budget '-1': expected a number >= 0" err.txt && ok || bad "--memory-budget -1: $(cat err.txt)"
"$RTR" eval x --out e.json --knn 0 > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--knn '0': expected an integer >= 1" err.txt && ok || bad "--knn 0: $(cat err.txt)"
for v in "score x --checkpoint c --chunk-rows 16777217" "train x --out c.safetensors --token-target sqrt" "eval x --out e.json --arch big"; do
  # shellcheck disable=SC2086
  "$RTR" $v > out.txt 2> err.txt
  [ $? -eq 2 ] && grep -qF -- "'${v##* }': expected" err.txt && ok || bad "rtr $v: $(cat err.txt)"
done
"$RTR" eval x --out e.json --bootstrap 100001 > out.txt 2> err.txt
[ $? -eq 2 ] && grep -qF -- "--bootstrap '100001'" err.txt && ok || bad "--bootstrap 100001: $(cat err.txt)"

# Progress into a log file: periodic lines with count and rate, none when
# quiet; the summary on stdout.
"$RTR" gen-demo --queries 6000 --seed 3 demo > out.txt 2> err.txt || bad "gen-demo"
grep -q '^wrote 6000 queries -> demo/catalog.json, demo/outcomes.jsonl' out.txt && [ ! -s err.txt ] && ok \
  || bad "gen-demo's summary not on stdout: $(cat out.txt) / $(cat err.txt)"
RTR_PROGRESS_SECONDS=0 "$RTR" ingest --catalog demo/catalog.json --out corpus --shard-size 1000 \
  demo/outcomes.jsonl > out.txt 2> err.txt || bad "ingest: $(cat err.txt)"
grep -q '^ingested 6000 queries, 96000 outcomes, 6 shard(s) -> corpus' out.txt && ! grep -q '^ingested' err.txt && ok \
  || bad "ingest's summary not on stdout: $(cat out.txt)"
grep -Eq '^ingest: [0-9,]+, [0-9,]+/s$' err.txt && ok || bad "no periodic progress line in the log: $(cat err.txt)"
grep -q $'\r' err.txt && bad "carriage returns in a log file" || ok
RTR_PROGRESS_SECONDS=0 "$RTR" ingest --quiet --catalog demo/catalog.json --out corpus2 --shard-size 1000 \
  demo/outcomes.jsonl > out.txt 2> err.txt || bad "ingest --quiet: $(cat err.txt)"
grep -q '^ingest: [0-9]' err.txt && bad "progress printed with --quiet: $(cat err.txt)" || ok

finish
