#!/usr/bin/env bash
# `rtr report` renders an evaluation file into HTML with four inline SVG plots,
# a markdown table and a figures folder, shows every router and pair, writes
# no NaN, escapes names (HTML entities; a backslash before a markdown pipe),
# prints what it wrote on stdout, and rejects a file that is not an
# evaluation file leaving nothing behind. Crowded files, figures, axes and
# intervals: test_report_render.py; in a browser: test_report_chromium.py.
. "$(dirname "$0")/lib.sh"
cd "$work"

cat > eval.json <<'EOF'
{"title": "toy <report>", "corpus": "toy", "split": "test", "n_queries": 3, "cost_unit": "tokens", "x_max": 300,
 "pairs": [{"name": "small|direct", "acc": 0.5, "cost": 10}, {"name": "large|cot", "acc": 0.9, "cost": 300}],
 "routers": [
   {"name": "RTR", "points": [[10, 0.5], [100, 0.8], [300, 0.9]], "aiq": 0.81, "apgr": 0.7, "cpt50": 0.2, "cpt80": 0.5,
    "cost_to_match": 0.9, "oracle_gap": 0.05, "op": {"acc": 0.8, "cost": 100, "note": "budget 300"}},
   {"name": "Random", "points": [[155, 0.7]], "aiq": null, "op": {"acc": 0.7, "cost": 155}},
   {"name": "Oracle", "points": [[40, 1.0]], "op": {"acc": 1.0, "cost": 40}}],
 "mix": {"lambda": [0, 0.5, 1], "pairs": ["small|direct", "large|cot"], "fraction": [[1, 0], [0.4, 0.6], [0, 1]]},
 "calibration": {"mean_pred": [0.1, 0.5, 0.9], "mean_true": [0.15, 0.45, 0.92], "count": [1, 1, 1], "ece": 0.04}}
EOF
if "$RTR" report eval.json > out.txt 2> err.txt; then ok; else bad "report failed: $(cat err.txt)"; fi
[ -f eval.html ] && [ -f eval.md ] && [ -f eval_figures/pairs.svg ] && [ -f eval_figures/pairs.csv ] && ok || bad "default output names"
grep -q 'eval.html' out.txt && grep -q 'eval_figures' out.txt && ok || bad "summary on stdout: $(cat out.txt)"
[ "$(grep -o '<svg' eval.html | wc -l)" -eq 4 ] && ok || bad "expected 4 SVG plots, got $(grep -o '<svg' eval.html | wc -l)"
grep -q 'toy &lt;report&gt;' eval.html && ok || bad "title not escaped"
for name in RTR Random Oracle 'small|direct' 'large|cot'; do
  grep -qF "$name" eval.html && grep -qF "${name//|/\\|}" eval.md && ok || bad "$name missing"
done
grep -qi 'nan' eval.html && bad "NaN written into the page" || ok
# The summary pads its columns (names left, numbers right): read the row with
# runs of spaces squeezed (a no-break space joins 5.00 and pt), and check
# every line of the table has one length.
row=$(grep '^| RTR ' eval.md | tr -s ' ')
[ "$row" = "| RTR | 80.00% | 100 | 0.8100 | 0.700 | 0.200 | 0.500 | 0.900 | 5.00 pt |" ] && ok || bad "markdown row: $row"
python3 -c 'import sys; t = [l for l in open("eval.md", encoding="utf-8").read().split("\n\n") if l.startswith("| router ")][0]
sys.exit(len({len(l) for l in t.splitlines()}) != 1)' && ok || bad "routers table not padded to one width: $(sed -n '/^| router /,/^$/p' eval.md)"
grep -q 'Baselines fitted' eval.md && bad "a provenance sentence of blanks for a file that has none" || ok
python3 -c "import xml.dom.minidom,re,sys; [xml.dom.minidom.parseString(s) for s in re.findall(r'<svg.*?</svg>', open('eval.html').read(), re.S)]" \
  && ok || bad "SVG is not well-formed XML"

# A damaged or hand-edited evaluation file: each fault refused (exit 1) naming the file and the field's
# path, nothing written; before, each was drawn or printed as if true (a string as "—", an accuracy of 7)
python3 - <<'PY'
import json
e = json.load(open("eval.json"))
def bad(name, edit=None, raw=None):
    x = json.loads(json.dumps(e))
    if edit:
        edit(x)
    open(name + ".json", "wb").write(raw if raw is not None else json.dumps(x).encode())
bad("bad-aiq-string", lambda x: x["routers"][0].__setitem__("aiq", "NaN"))
bad("bad-acc-range", lambda x: x["routers"][0]["points"].__setitem__(0, [10, 7]))
bad("bad-cost-neg", lambda x: x["pairs"][0].__setitem__("cost", -5))
bad("bad-n-queries", lambda x: x.__setitem__("n_queries", -3))
bad("bad-mix-shape", lambda x: x["mix"]["fraction"].__setitem__(1, [0.5]))
bad("bad-cal-count", lambda x: x["calibration"]["count"].__setitem__(0, -1))
bad("bad-dup-key", raw=json.dumps(e).replace("{", '{"title": "first", ', 1).encode())
bad("bad-utf8", raw=json.dumps(e).replace("toy", "t\udcffoy", 1).encode("utf-8", "surrogateescape"))
bad("bad-inf", raw=json.dumps(e).replace('"n_queries": 3', '"n_queries": 1e999', 1).encode())
bad("bad-budget-acc", lambda x: x["routers"][0].__setitem__("budgets", [{"fraction": 0.5, "acc": 7, "cost": 3}]))
bad("bad-budget-miss", lambda x: x["routers"][0].__setitem__("budgets", [{"fraction": 0.5, "n_missing": -5}]))
bad("bad-op-miss", lambda x: x["routers"][0]["op"].__setitem__("n_missing", 2.5))
bad("bad-ci-order", lambda x: x["routers"][0].__setitem__("ci", {"aiq": [0.9, 0.1]}))
bad("bad-ci-budget", lambda x: x["routers"][0].__setitem__("ci", {"budgets": [None, ["lo", 1]]}))
PY
for f in "bad-aiq-string routers[0].aiq" "bad-acc-range routers[0].points[0]" "bad-cost-neg pairs[0].cost" \
         "bad-n-queries n_queries" "bad-mix-shape mix.fraction[1]" "bad-cal-count calibration.count[0]" \
         "bad-dup-key title: given twice" "bad-utf8 invalid UTF-8" "bad-inf n_queries: not a finite" \
         "bad-budget-acc routers[0].budgets[0].acc" "bad-budget-miss routers[0].budgets[0].n_missing" \
         "bad-op-miss routers[0].op.n_missing: must be a whole number" "bad-ci-order routers[0].ci.aiq: its low end" \
         "bad-ci-budget routers[0].ci.budgets[1]"; do
  name=${f%% *} want=${f#* }
  "$RTR" report "$name.json" > /dev/null 2> err.txt
  rc=$?
  [ $rc -eq 1 ] && grep -qF "$name.json: " err.txt && grep -qF "$want" err.txt && ! ls "$name".html "$name".md "$name"_figures 2>/dev/null &&
    ok || bad "$name: exit $rc, expected 1 naming '$want', nothing written: $(cat err.txt)"
done

echo '{"hello": 1}' > notes.json
"$RTR" report notes.json 2> err.txt; [ $? -eq 1 ] && grep -q "notes.json" err.txt && ok || bad "non-eval file accepted"
[ -f notes.html ] || [ -f notes.md ] || [ -e notes_figures ] && bad "partial output left" || ok

finish
