#!/usr/bin/env bash
# CLI conventions and every bad input of `rtr ingest` / `rtr info`: each must
# exit 1 with a message naming the file and line or field, and leave nothing
# under the output name. Runs under ctest with $RTR set to the binary.
. "$(dirname "$0")/lib.sh"
cd "$work"

cat > cat.json <<'EOF'
{"models": [{"name": "small", "description": "a small model", "price_in": 0.1, "price_out": 0.2},
            {"name": "large", "description": "a large model"}],
 "strategies": [{"name": "direct", "description": "answer only"}, {"name": "cot", "description": "step by step"}]}
EOF
good='{"id":"q1","text":"What is 2+2?","dataset":"toy","split":"train","outcomes":[{"model":"small","strategy":"direct","correct":1,"tokens":3,"cost":0.0001}]}'
good2='{"id":"q2","text":"Caf\u00e9 \u4e2d","outcomes":[{"model":"large","strategy":"cot","correct":0.5,"tokens":null}]}'

# expect_fail NAME LINE2 NEEDLE...: ingest [good, LINE2] must fail naming file:2 and each needle.
expect_fail() {
  local name=$1 line=$2; shift 2
  printf '%s\n%s\n' "$good" "$line" > "$name.jsonl"
  "$RTR" ingest --catalog cat.json --out "out_$name" "$name.jsonl" 2> err.txt >/dev/null
  local rc=$?
  [ $rc -eq 1 ] || { bad "$name: exit $rc, expected 1"; return; }
  grep -q "$name.jsonl:2:" err.txt || { bad "$name: message lacks file:line: $(cat err.txt)"; return; }
  for needle in "$@"; do
    grep -q -- "$needle" err.txt || { bad "$name: message lacks '$needle': $(cat err.txt)"; return; }
  done
  ls -d out_"$name"* >/dev/null 2>&1 && { bad "$name: left output behind: $(ls -d out_$name*)"; return; }
  ok
}

expect_fail malformed '{"id":"q2","text":"x",' "malformed JSON"
expect_fail unknown_model '{"id":"q2","text":"x","outcomes":[{"model":"huge","strategy":"cot","correct":1}]}' "outcomes\[0\].model" "unknown model"
expect_fail unknown_strategy '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"tot","correct":1}]}' "unknown strategy"
expect_fail duplicate_id '{"id":"q1","text":"again"}' "field id" "duplicate query id"
expect_fail nan_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":NaN}]}' "malformed JSON"
expect_fail inf_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":1e999}]}' "outcomes\[0\].tokens" "finite"
expect_fail negative_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":-5}]}' "outcomes\[0\].tokens" "outside"
expect_fail correct_range '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1.5}]}' "outcomes\[0\].correct" "outside"
expect_fail invalid_utf8 "$(printf '{"id":"q2","text":"bad \xff\xfe byte"}')" "invalid UTF-8"
expect_fail missing_text '{"id":"q2"}' "field text"
expect_fail pair_twice '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1},{"model":"small","strategy":"cot","correct":0}]}' "given twice"

# A valid corpus, then the output-exists guard.
printf '%s\n\n%s\n' "$good" "$good2" > good.jsonl
if "$RTR" ingest --catalog cat.json --out corpus good.jsonl --json > ingest.json 2> err.txt; then ok; else bad "valid ingest failed: $(cat err.txt)"; fi
python3 -c 'import json,sys; d=json.load(open("ingest.json")); assert d["n_queries"]==2 and d["n_outcomes"]==2, d' && ok || bad "ingest --json summary"
"$RTR" ingest --catalog cat.json --out corpus good.jsonl 2> err.txt
[ $? -eq 1 ] && grep -q "already holds a corpus" err.txt && ok || bad "existing corpus not refused: $(cat err.txt)"
[ -f corpus/manifest.json ] && ok || bad "existing corpus damaged"

# info on it, text and JSON.
"$RTR" info corpus > info.txt && grep -q "large|cot" info.txt && ok || bad "info text"
"$RTR" info corpus --json > info.json && python3 - <<'EOF' && ok || bad "info --json content"
import json
d = json.load(open("info.json"))
assert d["n_queries"] == 2, d
p = {(x["model"], x["strategy"]): x for x in d["pairs"]}
assert p[("small", "direct")]["accuracy"] == 1.0 and p[("small", "direct")]["missing_correct"] == 1
assert p[("large", "cot")]["accuracy"] == 0.5 and p[("large", "cot")]["missing_tokens"] == 2
assert p[("small", "cot")]["accuracy"] is None
g = {(x["dataset"], x["split"]): x["n_queries"] for x in d["groups"]}
assert g == {("toy", "train"): 1, ("default", "train"): 1}, g
EOF

# A truncated shard and a manifest of another schema version.
cp -r corpus trunc && head -c 3000 corpus/shard-00000.h5 > trunc/shard-00000.h5
"$RTR" info trunc 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "trunc/shard-00000.h5" err.txt && ok || bad "truncated shard: $(cat err.txt)"
cp -r corpus v2 && sed -i 's/"version":[[:space:]]*1/"version": 2/' v2/manifest.json
"$RTR" info v2 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "version" err.txt && ok || bad "other schema version: $(cat err.txt)"

# CLI conventions: help, usage errors, unknown command.
"$RTR" --help > /dev/null && ok || bad "rtr --help"
"$RTR" ingest --help | grep -q -- "--catalog" && ok || bad "ingest --help"
"$RTR" ingest --out x good.jsonl 2>/dev/null; [ $? -eq 2 ] && ok || bad "missing --catalog should exit 2"
"$RTR" info --bogus corpus 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown option should exit 2"
"$RTR" frobnicate 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown command should exit 2"

# The demo generator is deterministic for a seed and ingests cleanly.
"$RTR" gen-demo --queries 500 --seed 7 d1 2>/dev/null && "$RTR" gen-demo --queries 500 --seed 7 d2 2>/dev/null \
  && cmp -s d1/outcomes.jsonl d2/outcomes.jsonl && ok || bad "gen-demo not deterministic"
"$RTR" ingest --catalog d1/catalog.json --out dcorp --shard-size 128 d1/outcomes.jsonl 2>/dev/null \
  && [ "$(ls dcorp/shard-*.h5 | wc -l)" -eq 4 ] && ok || bad "demo ingest with 4 shards"

finish
