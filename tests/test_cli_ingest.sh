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
expect_fail duplicate_id '{"id":"q1","text":"again"}' "field id" "duplicate query id" "first at duplicate_id.jsonl:1"
expect_fail nan_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":NaN}]}' "malformed JSON"
expect_fail inf_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":1e999}]}' "outcomes\[0\].tokens" "finite"
expect_fail negative_tokens '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":-5}]}' "outcomes\[0\].tokens" "outside"
expect_fail correct_range '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1.5}]}' "outcomes\[0\].correct" "outside"
expect_fail invalid_utf8 "$(printf '{"id":"q2","text":"bad \xff\xfe byte"}')" "invalid UTF-8"
expect_fail missing_text '{"id":"q2"}' "field text"
expect_fail pair_twice '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1},{"model":"small","strategy":"cot","correct":0}]}' "given twice"
# nothing on a line may be silently dropped or altered
expect_fail trailing '{"id":"q2","text":"x"} xyz' "unexpected text after the JSON object"
expect_fail second_object '{"id":"q2","text":"x"}{"id":"q3","text":"y"}' "one object per line"
expect_fail nul_escape '{"id":"q2\u0000b","text":"x"}' 'u0000'
# cJSON read a \u without 4 hex digits as NUL ("q2\uzzzzb" stored as "q2"),
# and said only "malformed JSON" of half a surrogate pair or deep nesting
expect_fail bad_u_escape '{"id":"q2\uzzzzb","text":"x"}' 'the escape at byte 9: .u is not followed by 4 hex digits'
expect_fail lone_surrogate '{"id":"q2","text":"x\ud800"}' 'malformed JSON near byte 20: lone UTF-16 surrogate .ud800'
expect_fail deep_nesting "{\"id\":\"q2\",\"text\":\"x\",\"extra\":$(printf '[%.0s' $(seq 1 1200))" 'nesting deeper than 1000'
# dataset and split names refuse control characters (C0, DEL, C1) as the
# catalog's names do; they were stored and shown raw by every table
expect_fail split_esc '{"id":"q2","text":"x","split":"te\u001b[31mst"}' 'field split: control character U+001B at byte 2'
expect_fail dataset_del '{"id":"q2","text":"x","dataset":"d\u007f"}' 'field dataset: control character U+007F at byte 1'
expect_fail split_c1 '{"id":"q2","text":"x","split":"a\u0085"}' 'field split: control character U+0085 at byte 1'
printf '%s\n' "$good" > ctl.jsonl
"$RTR" ingest --catalog cat.json --out out_ctl --default-split "$(printf 'tr\tain')" ctl.jsonl 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q 'default_split (--default-split): control character U+0009 at byte 2' err.txt && ! ls -d out_ctl* >/dev/null 2>&1 &&
  ok || bad "a control character in --default-split: $(cat err.txt)"
# ids and texts may hold them (a text's newlines)
printf '{"id":"q\\t1","text":"a\\nb\\u0085"}\n' > ctl_text.jsonl
"$RTR" ingest --catalog cat.json --out out_ctl_text ctl_text.jsonl 2> err.txt >/dev/null && ok ||
  bad "an id with a tab and a text with a newline: $(cat err.txt)"
expect_fail duplicate_key '{"id":"q2","text":"x","text":"y"}' "field text: given twice"
expect_fail duplicate_outcome_key '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1,"correct":0}]}' "outcomes\[0\].correct: given twice"
expect_fail float_overflow '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","tokens":3.5e38}]}' "outcomes\[0\].tokens" "too large"
expect_fail correct_five '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":5}]}' "outcomes\[0\].correct" "outside"
# ids are checked in bounded memory when every shard is written: a repeat
# across files and shards still names both lines (stdin as <stdin>)
printf '%s\n%s\n' "$good" "$good2" > first.jsonl
printf '{"id":"q3","text":"x"}\n\n{"id":"q2","text":"y"}\n' > second.jsonl
"$RTR" ingest --catalog cat.json --out out_across --shard-size 1 first.jsonl second.jsonl 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q 'second.jsonl:3: field id: duplicate query id "q2" (first at first.jsonl:2)' err.txt &&
  ! ls -d out_across* >/dev/null 2>&1 && ok || bad "duplicate across files: $(cat err.txt)"
cat first.jsonl second.jsonl | "$RTR" ingest --catalog cat.json --out out_stdin - 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q '<stdin>:5: field id: duplicate query id "q2" (first at <stdin>:2)' err.txt && ok ||
  bad "duplicate on stdin: $(cat err.txt)"
# an escaped backslash before u0000 is a plain string, not a NUL
printf '%s\n%s\n' "$good" '{"id":"q2","text":"C:\\u0000 is a path"}' > esc.jsonl
"$RTR" ingest --catalog cat.json --out esc esc.jsonl 2> err.txt >/dev/null && ok || bad "an escaped backslash refused: $(cat err.txt)"

# A valid corpus, then the output-exists guard.
printf '%s\n\n%s\n' "$good" "$good2" > good.jsonl
if "$RTR" ingest --catalog cat.json --out corpus good.jsonl --json > ingest.json 2> err.txt; then ok; else bad "valid ingest failed: $(cat err.txt)"; fi
python3 -c 'import json,sys; d=json.load(open("ingest.json")); assert d["n_queries"]==2 and d["n_outcomes"]==2, d' && ok || bad "ingest --json summary"
"$RTR" ingest --catalog cat.json --out corpus good.jsonl 2> err.txt
[ $? -eq 1 ] && grep -q "already holds a corpus" err.txt && ok || bad "existing corpus not refused: $(cat err.txt)"
[ -f corpus/manifest.json ] && ok || bad "existing corpus damaged"

# info on it, text and JSON.
"$RTR" info corpus > info.txt && grep -q "large|cot" info.txt && grep -q "encodings (embeddings/): none" info.txt && ok || bad "info text"
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
assert d["encodings"] == [] and d["tables"] == [], d
EOF

# A truncated shard and a manifest of another schema version.
cp -r corpus trunc && head -c 3000 corpus/shard-00000.h5 > trunc/shard-00000.h5
"$RTR" info trunc 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "trunc/shard-00000.h5" err.txt && ok || bad "truncated shard: $(cat err.txt)"
cp -r corpus v3 && sed -i 's/"version":[[:space:]]*2/"version": 3/' v3/manifest.json
"$RTR" info v3 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "version" err.txt && ok || bad "other schema version: $(cat err.txt)"
cp -r corpus v1 && sed -i 's/"version":[[:space:]]*2/"version": 1/' v1/manifest.json
"$RTR" info v1 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "rtr upgrade" err.txt && ok || bad "a version 1 corpus names the upgrade: $(cat err.txt)"
# a manifest that disagrees with its shard is refused before any row is read
cp -r corpus short && sed -i '0,/"n_queries":[[:space:]]*2/s//"n_queries": 1/' short/manifest.json &&
  sed -i '0,/"n_queries":[[:space:]]*2/s//"n_queries": 1/' short/manifest.json
"$RTR" info short 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "short/shard-00000.h5: attribute n_queries: 2, the manifest says 1" err.txt && ok ||
  bad "manifest count against the shard: $(cat err.txt)"

# a directory where a file is expected; a killed run's temporary corpus is removed, others are not
mkdir adir
"$RTR" ingest --catalog cat.json --out out_dir adir 2> err.txt >/dev/null
[ $? -eq 1 ] && grep -q "adir: is a directory" err.txt && ok || bad "directory as input: $(cat err.txt)"
mkdir -p fresh.tmp.4194399 fresh.tmp.$$ && touch fresh.tmp.4194399/shard-00000.h5
"$RTR" ingest --catalog cat.json --out fresh good.jsonl 2>/dev/null >/dev/null
[ -f fresh/manifest.json ] && [ ! -e fresh.tmp.4194399 ] && [ -d fresh.tmp.$$ ] && ok || bad "stale temporaries: $(ls -d fresh*)"

# ingest memory does not grow with shard size x pairs: a 100 x 100 catalog
# (10,000 pairs) at the default shard size once needed 12 GB up front
python3 - <<'EOF'
import json
cat = {"models": [{"name": f"m{i}"} for i in range(100)], "strategies": [{"name": f"s{j}"} for j in range(100)]}
json.dump(cat, open("wide.json", "w"))
with open("wide.jsonl", "w") as f:
    for q in range(200):
        f.write(json.dumps({"id": f"q{q}", "text": "t", "outcomes": [{"model": f"m{q % 100}", "strategy": "s1", "correct": 1}]}) + "\n")
EOF
# (an ASan build reserves terabytes of shadow address space: no limit can hold it)
if ldd "$RTR" 2>/dev/null | grep -q libasan; then
  skip_part "100 x 100 catalog under 1.5 GB of address space: rtr is built with ASan"
else
  (ulimit -v 1500000; "$RTR" ingest --catalog wide.json --out wide wide.jsonl 2> err.txt >/dev/null) && ok ||
    bad "100 x 100 catalog under 1.5 GB of address space: $(cat err.txt)"
fi

# Accepted but probably not meant: warned on stderr (also under --quiet), never silent.
# correct as JSON true/false is 1/0; a string still fails with the hint.
printf '%s\n' '{"id":"b1","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":true}]}' \
  '{"id":"b2","text":"y","outcomes":[{"model":"small","strategy":"cot","correct":false}]}' > bools.jsonl
"$RTR" ingest --catalog cat.json --out bools bools.jsonl --json > out.json 2> err.txt &&
  python3 - <<'EOF' && ok || bad "correct true/false ingested as 1/0: $(cat err.txt)"
import h5py, json
d = json.load(open("out.json"))
assert d["n_outcomes"] == 2 and d["n_without_outcomes"] == 0, d
m = json.load(open("bools/manifest.json"))
k = m["catalog"]["pairs"].index(["small", "cot"])
with h5py.File("bools/" + m["shards"][0]["file"]) as f:
    c = f["outcomes/correct"][()]
assert list(c[:, k]) == [1.0, 0.0], c[:, k]
EOF
expect_fail correct_string '{"id":"q2","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":"yes"}]}' "outcomes\[0\].correct" "true/false"
# a flat line (one outcome's fields beside id and text) would lose its outcome: refused, naming the field
expect_fail flat '{"id":"f1","text":"x","model":"small","strategy":"cot","correct":1}' "field model" '"outcomes" array'
expect_fail flat_correct '{"id":"f1","text":"x","correct":1}' "field correct" '"outcomes" array'
# ... but beside an outcomes array such fields are provenance, as any other extra key
printf '%s\n' '{"id":"p1","text":"x","tokens":12,"model":"gpt","outcomes":[{"model":"small","strategy":"cot","correct":1}]}' > prov.jsonl
"$RTR" ingest --catalog cat.json --out out_prov prov.jsonl > /dev/null 2> err.txt && [ -f out_prov/manifest.json ] && ok ||
  bad "outcome-named keys beside an outcomes array refused: $(cat err.txt)"
# a near miss of a key the object lacks would drop the value silently: refused with the key meant
expect_fail key_outcome '{"id":"f1","text":"x","outcome":[{"model":"small","strategy":"cot","correct":1}]}' \
  'field outcome: unknown; did you mean "outcomes"'
expect_fail key_corect '{"id":"f1","text":"x","outcomes":[{"model":"small","strategy":"cot","corect":1}]}' \
  'field outcomes\[0\].corect: unknown; did you mean "correct"'
# a line without outcomes (a corpus to score only): accepted, said once with file:line, counted; other keys allowed
printf '%s\n%s\n%s\n' "$good" '{"id":"f1","text":"x","source":"lab"}' '{"id":"f2","text":"y"}' > bare.jsonl
"$RTR" ingest --catalog cat.json --out bare bare.jsonl --quiet --json > out.json 2> err.txt
[ $? -eq 0 ] && grep -q "warning: bare.jsonl:2: no outcomes" err.txt && grep -q "2 of 3 queries have no outcomes" err.txt &&
  python3 -c "import json,sys; sys.exit(json.load(open('out.json'))['n_without_outcomes'] != 2)" && ok ||
  bad "lines without outcomes warned about and counted: $(cat err.txt)"
# unknown catalog keys: every one in an entry (with a did-you-mean), near misses at the top level
cat > typo.json <<'EOF'
{"models": [{"name": "small", "price_input": 0.1, "colour": "red"}], "strategies": [{"name": "cot"}],
 "pair": [["small", "cot"]], "source": "my lab's logs"}
EOF
printf '%s\n' '{"id":"t1","text":"x","outcomes":[{"model":"small","strategy":"cot","correct":1}]}' > typo.jsonl
"$RTR" ingest --catalog typo.json --out typo typo.jsonl --quiet > /dev/null 2> err.txt
[ $? -eq 0 ] && grep -q 'typo.json: models\[0\]: unknown key "price_input" ignored; did you mean "price_in"?' err.txt &&
  grep -q 'models\[0\]: unknown key "colour" ignored (an entry has' err.txt &&
  grep -q 'unknown key "pair" ignored; did you mean "pairs"?' err.txt && ! grep -q '"source"' err.txt && ok ||
  bad "unknown catalog keys warned about: $(cat err.txt)"

# CLI conventions: help, usage errors, unknown command.
"$RTR" --help > /dev/null && ok || bad "rtr --help"
"$RTR" ingest --help | grep -q -- "--catalog" && ok || bad "ingest --help"
"$RTR" ingest --out x good.jsonl 2>/dev/null; [ $? -eq 2 ] && ok || bad "missing --catalog should exit 2"
"$RTR" info --bogus corpus 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown option should exit 2"
"$RTR" frobnicate 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown command should exit 2"

# The demo generator is deterministic for a seed and ingests cleanly.
"$RTR" gen-demo --queries 500 --seed 7 d1 2>/dev/null && "$RTR" gen-demo --queries 500 --seed 7 d2 2>/dev/null \
  && cmp -s d1/outcomes.jsonl d2/outcomes.jsonl && ok || bad "gen-demo not deterministic"
# ... and never replaces a file already in its folder (a user's own catalog or log)
echo '{"mine": true}' > d2/catalog.json
"$RTR" gen-demo --queries 10 --seed 1 d2 > /dev/null 2> err.txt; rc=$?
[ $rc -eq 1 ] && grep -q "d2/catalog.json exists" err.txt && [ "$(cat d2/catalog.json)" = '{"mine": true}' ]   && cmp -s d1/outcomes.jsonl d2/outcomes.jsonl && ok || bad "gen-demo over an existing catalog: rc $rc, $(cat err.txt)"
"$RTR" ingest --catalog d1/catalog.json --out dcorp --shard-size 128 d1/outcomes.jsonl 2>/dev/null \
  && [ "$(ls dcorp/shard-*.h5 | wc -l)" -eq 4 ] && ok || bad "demo ingest with 4 shards"

finish
