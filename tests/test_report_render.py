"""`rtr report` on crowded evaluation files (24 and 30 pairs whose names hold
markdown and HTML specials, USD costs over three decades, intervals): the
markdown tables parse back cell for cell with a GFM parser; the cost axis is
logarithmic when costs span more than a decade (and as asked with
--cost-axis); operating points are ringed; RTR's long curve has hover
titles; error bars appear exactly where the file has intervals; the pair-mix
chart gives every pair its own fill and the palette's colours are at least
16 CIEDE2000 apart; each figure's CSV holds what it draws; every link of the
page resolves; PNG and PDF come through rsvg-convert when it is installed,
and without it the page says so and links SVG and CSV only. Screenshots and
label overlap: tests/test_report_chromium.py."""
import csv
import html as htmlmod
import json
import os
import re
import shutil
import sys
import tempfile
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtrtest import check, finish, md_cells, require_rtr, run, skip_part  # noqa: E402
import report_fixture as fx  # noqa: E402

require_rtr()
tmp = tempfile.mkdtemp()


def render(name, ev, *args, env=None):
    path = os.path.join(tmp, name + ".json")
    json.dump(ev, open(path, "w"))
    if env is None:
        r = run("report", path, *args)
    else:
        import subprocess
        r = subprocess.run([os.environ["RTR"], "report", path, *args], capture_output=True, text=True, env=env)
    return r, os.path.join(tmp, name)


def svgs_of(page):
    return re.findall(r"<svg.*?</svg>", page, re.S)


def labels_own_markers(svg, what):
    bad = fx.label_problems(svg)
    check(not bad, f"{what}: every label beside its own marker or led to it: {bad[:3]}")


# ---- the crowded file with intervals -------------------------------------
ev = fx.crowded_eval(24)
r, stem = render("crowded", ev)
check(r.returncode == 0, "report crowded: " + r.stderr)
page = open(stem + ".html").read()
md = open(stem + ".md").read()
svgs = svgs_of(page)
check(len(svgs) == 4, f"4 plots, got {len(svgs)}")
for s in svgs:
    try:
        xml.dom.minidom.parseString(s)
        check(True, "")
    except Exception as e:  # noqa: BLE001
        check(False, f"SVG not well-formed XML: {e}")
check(not re.search(r">[^<]*\b(nan|inf)\b", page, re.I), "no nan or inf printed in the page")
check(not re.search(r"\b(nan|inf)\b", md, re.I), "no nan or inf printed in the summary")

# Markdown: a strict split on unescaped pipes, then a GFM parser.
tables, cur = [], []
for line in md.splitlines():
    if line.startswith("|"):
        cur.append(line)
    elif cur:
        tables.append(cur)
        cur = []
if cur:
    tables.append(cur)
check(len(tables) == 6, f"six markdown tables (routers, budgets, shares, two P(beats), pairs), got {len(tables)}")
for t in tables:
    widths = {len(md_cells(line)) for line in t}
    check(widths == {len(md_cells(t[0]))}, f"every row has the header's {len(md_cells(t[0]))} cells: {widths}")
    check(len({len(line) for line in t}) == 1, "the summary's columns are padded to one width: " + repr(t[:2]))
try:
    from markdown_it import MarkdownIt
except ImportError:
    MarkdownIt = None
    skip_part("markdown-it-py is not installed (pip install markdown-it-py): GFM parse of the summary")
if MarkdownIt:
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    rows, row, in_table, heading = [], None, 0, None
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h1":
            heading = "".join(c.content for c in tokens[i + 1].children)
        if tok.type == "table_open":
            in_table += 1
            rows.append([])
        if tok.type == "tr_open":
            row = []
        if tok.type == "inline" and row is not None and in_table:
            row.append("".join(c.content for c in tok.children if c.type in ("text", "code_inline")))
        if tok.type == "tr_close":
            rows[-1].append(row)
            row = None
    check(heading == ev["title"], f"the title round-trips: {heading!r}")
    check(len(rows) == 6, f"GFM parser finds 6 tables, got {len(rows)}")
    if len(rows) == 6:
        routers_t, budgets_t, shares_t, beats_t, beats2_t, pairs_t = rows
        expect = [x["name"] + (f" (not built: {x['unavailable']})" if "unavailable" in x else "") for x in ev["routers"]]
        check([x[0] for x in routers_t[1:]] == expect,
              "router names read back from the GFM table: " + repr([x[0] for x in routers_t[1:]][:3]))
        check([x[0] for x in pairs_t[1:]] == [p["name"] for p in ev["pairs"]],
              "pair names read back from the GFM table: " + repr([x[0] for x in pairs_t[1:]][:3]))
        check(all(len(x) == len(routers_t[0]) == 11 for x in routers_t), "routers table: 11 columns in every row")
        check(routers_t[0][4] == "AIQ from 0" and routers_t[-1][0].startswith("EmbedLLM-style (no embeddings) (not built: "),
              "AIQ from 0 shown when the file has it; a router not built listed with its reason")
        rtr_row = routers_t[1]
        op = ev["routers"][0]["op"]
        m = re.fullmatch(r"([\d.]+)% \[([\d.]+), ([\d.]+)\]", rtr_row[1])
        check(m and abs(float(m.group(1)) - 100 * op["acc"]) < 0.006
              and abs(float(m.group(2)) - 100 * ev["routers"][0]["ci"]["acc"][0]) < 0.006,
              f"RTR accuracy with its interval: {rtr_row[1]}")
        check(rtr_row[8] == "0.700 [0.600, never]", f"cost to match never reached in some resamples: {rtr_row[8]}")
        random_row = routers_t[7]
        check(random_row[8] == "never" and random_row[3] == "—",
              f"Random never matches the best pair (never); a missing AIQ is —: {random_row[8]}, {random_row[3]}")
        check(routers_t[0][10] == "missing" and [x[10] for x in routers_t[1:]] ==
              ["0", "0", "0", "0", "2", "0", "0", "0", "0", "—"], "missing outcomes per router: " +
              repr([x[10] for x in routers_t[1:]]))
        check(pairs_t[0][3] == "missing" and pairs_t[3][3] == "3" and pairs_t[1][3] == "0",
              "missing outcomes per pair: " + repr(pairs_t[:4]))
        # Budgets: a column per fraction (with the budget), a row per router
        # that has budgets; accuracy, interval, realised cost and lambda.
        ref = ev["budget_reference"]
        check(budgets_t[0][1:] == [f"{100 * f:g}% ({f * ref['cost']:.6g})" for f in ref["fractions"]],
              "budget columns: the fraction and the budget: " + repr(budgets_t[0]))
        check([x[0] for x in budgets_t[1:]] == [x["name"] for x in ev["routers"][:6]], "a budgets row per curve router")
        b = ev["routers"][0]["budgets"][1]
        c = ev["routers"][0]["ci"]["budgets"][1]
        check(budgets_t[1][2] == f"{100 * b['acc']:.2f}% [{100 * c[0]:.2f}, {100 * c[1]:.2f}], cost {b['cost']:.6g}, "
                                 f"λ {b['lambda']:.4g}", "RTR at 50%: " + budgets_t[1][2])
        check(budgets_t[4][1] == "—", "no routing fits the kNN router's smallest budget: — and nothing else: "
              + budgets_t[4][1])
        check(budgets_t[3][3].endswith(", 1 missing"), "a budget cell counts its missing outcomes: " + budgets_t[3][3])
        check("λ" not in budgets_t[6][1] and budgets_t[6][1].count("cost") == 1,
              "the two-pair router's budgets have no λ: " + budgets_t[6][1])
        sh = ev["routers"][5]["shares"][0]
        check(shares_t[0][1] == "≤ 20% to strong" and shares_t[1][0] == "RouteLLM-style" and len(shares_t) == 2
              and shares_t[1][1] == f"{100 * sh['acc']:.2f}% [{100 * sh['acc_ci'][0]:.2f}, {100 * sh['acc_ci'][1]:.2f}]"
                                    f", cost {sh['cost']:.6g}, share {100 * sh['share']:.1f}%",
              "shares to the strong pair, for the two-pair router only: " + repr(shares_t))
        for t, r in ((beats_t, ev["routers"][0]), (beats2_t, ev["routers"][1])):
            want = [[x] + ["—" if v[k] is None else f"{v[k]:.3f}" for k in ("aiq", "aiq_from_zero", "acc",
                                                                             "cost_to_match")]
                    for x, v in r["p_beats"].items()]
            check(t[1:] == want and t[0][1:] == ["AIQ", "AIQ from 0", "accuracy", "cost to match"],
                  f"P({r['name']} beats X) for every X: " + repr(t[1:3]))
    check("Brackets: 95% intervals from 1000 bootstrap resamples (seed 7; paired" in md,
          "the intervals' origin, with the seed, under the table")

# The sentences: what the budgets are fractions of, what the default router
# kept and why, the AIQ note, missing outcomes; on the page and in the summary.
ref = ev["budget_reference"]
pair_md = ref["pair"].replace("|", "\\|").replace("<", "\\<").replace(">", "\\>")
for where, text, pair in (("summary", md, pair_md), ("page", htmlmod.unescape(re.sub(r"<[^>]+>", "", page)), ref["pair"])):
    check(f"Budgets are fractions of the best training pair's mean cost on the training split: {pair}, "
          f"{ref['cost']:.6g} USD." in text, f"{where}: what the budgets are fractions of")
    check("The default router kept the network + kNN blend: cross-validated log-loss 0.369 ± 0.009 over 1800 "
          "validation rows, within one standard error of the lowest (the network + kNN + dataset-prior blend: "
          "0.366 ± 0.009), and simpler." in text, f"{where}: what the default router kept and why")
    check("Kept blend: p = σ(−0.25 + 0.875·logit(network) + 0.5·logit(kNN))." in text, f"{where}: the kept blend")
    check("12 evaluated queries come from datasets training lacks" in text, f"{where}: the unseen-dataset guard")
    check("network (the paper's model) 0.412 ± 0.011; network, Platt-scaled 0.405 ± 0.010;" in text,
          f"{where}: every candidate's log-loss")
    check("RTR is rtr's default router." in text, f"{where}: which row is the default router")
    check(ev["aiq_note"] in text.replace("\\_", "_"), f"{where}: the AIQ note under the table")
    check("missing: the evaluated queries whose chosen pair has no logged outcome" in text, f"{where}: missing defined")
    check("0123456789abcdef" in text and "computed on CPU, 2 threads" in text and "train split (20000 queries)" in text,
          f"{where}: the checkpoint, the device and the training split")
check('<td>EmbedLLM-style (no embeddings) <span class="note">(not built: the training split has no embeddings)</span>'
      in page, "the page lists a router not built with its reason")

# Axes, operating points, hover titles, error bars.
curves, pairs_svg, mix, cal = svgs
check("log scale" in curves and "log scale" in pairs_svg, "costs over 3.5 decades: log cost axes")
check(curves.count("operating point") >= 6 + 1, "six curves ringed at their operating point (and a legend entry)")
check(len(re.findall(r"<title>RTR: \(", curves)) >= 100, "hover titles along RTR's 1,500-point curve")
check(len(re.findall(r'<g stroke="[^"]+" stroke-width="1.3">', pairs_svg)) == 2 * 24, "an x and a y bar per pair")
labels_own_markers(pairs_svg, "crowded pairs plot")
check(len(re.findall(r'<g stroke="[^"]+" stroke-width="1.3">', cal)) == 10, "a bar per calibration bin")
check(len(re.findall(r'<g stroke="[^"]+" stroke-width="1.3">', curves)) == 2 * 6 + 2, "bars at 6 operating points, Oracle, best single")
fills = re.findall(r'<path fill="([^"]+)" fill-opacity', mix)
check(len(fills) == 24 and len(set(fills)) == 24, f"24 pairs, 24 distinct fills in the mix chart: {len(set(fills))}")

# CSVs hold what is drawn.
fig = stem + "_figures"
rows = list(csv.reader(open(os.path.join(fig, "pairs.csv"))))
check([x[0] for x in rows[1:]] == [p["name"] for p in ev["pairs"]], "pairs.csv: every pair, names intact")
check(abs(float(rows[1][1]) - ev["pairs"][0]["cost"]) <= 1e-9 * ev["pairs"][0]["cost"]
      and abs(float(rows[1][5]) - ev["pairs"][0]["ci"]["acc"][0]) < 1e-9, "pairs.csv: cost and interval of the first pair")
rows = list(csv.reader(open(os.path.join(fig, "accuracy_cost.csv"))))
check(not [x for x in rows if x[0].startswith("EmbedLLM-style (no")], "accuracy_cost.csv: nothing for an unavailable router")
for rt in ev["routers"][:-1]:
    mine = [x for x in rows[1:] if x[0] == rt["name"]]
    check(len([x for x in mine if x[1] == "path"]) == len(rt["points"]) and
          len([x for x in mine if x[1] == "operating point"]) == 1, f"accuracy_cost.csv: {rt['name']}'s points and op")
rows = list(csv.reader(open(os.path.join(fig, "mix.csv"))))
check(rows[0] == ["lambda"] + ev["mix"]["pairs"] and len(rows) == 102, "mix.csv: a column per pair, a row per lambda")
check(abs(sum(float(v) for v in rows[50][1:]) - 1) < 1e-6, "mix.csv: shares sum to 1")
rows = list(csv.reader(open(os.path.join(fig, "calibration.csv"))))
check(len(rows) == 11 and rows[0][:3] == ["bin", "mean_predicted", "observed"], "calibration.csv: 10 bins")

# Every link of the page resolves: anchors to ids, files beside the page.
ids = set(re.findall(r'\sid="([^"]+)"', page))
for href in re.findall(r'href="([^"]+)"', page):
    href = htmlmod.unescape(href)
    if href.startswith("#"):
        check(href[1:] in ids, f"anchor {href} exists")
    else:
        check("://" not in href and os.path.exists(os.path.join(tmp, href)), f"link {href} resolves beside the page")
check('href="#def-aiq"' in page and 'id="def-aiq"' in page, "table headers link their definitions")

# PNG and PDF through rsvg-convert, or said to be missing.
no_rsvg = dict(os.environ, PATH="/nonexistent")
r2, stem2 = render("plain", fx.crowded_eval(16, with_ci=False), env=no_rsvg)
check(r2.returncode == 0 and "rsvg-convert" in r2.stderr, "without rsvg-convert: success and a note: " + r2.stderr)
fig2 = stem2 + "_figures"
check(sorted(os.listdir(fig2)) == sorted(f"{n}.{e}" for n in ("accuracy_cost", "pairs", "mix", "calibration")
                                         for e in ("svg", "csv")), "without rsvg-convert: SVG and CSV only")
page2 = open(stem2 + ".html").read()
check(".png" not in page2 and "pairs.csv" in page2, "the page links only the figures that exist")
check(len(re.findall(r'<g stroke="[^"]+" stroke-width="1.3">', page2)) == 0, "no intervals in the file: no error bars")
if shutil.which("rsvg-convert"):
    for name in ("accuracy_cost", "pairs", "mix", "calibration"):
        w, h = fx.svg_size(open(os.path.join(fig, name + ".svg")).read())
        pw, ph, _ = fx.read_png(os.path.join(fig, name + ".png"))
        check((pw, ph) == (2 * w, 2 * h), f"{name}.png at twice the SVG's {w}x{h}: {pw}x{ph}")
        check(open(os.path.join(fig, name + ".pdf"), "rb").read(5) == b"%PDF-", f"{name}.pdf is a PDF")
    check(all(f"crowded_figures/{n}.png" in page for n in ("accuracy_cost", "pairs", "mix", "calibration")),
          "the page links the PNGs")
else:
    skip_part("rsvg-convert is not installed (apt-get install librsvg2-bin): PNG and PDF export")

# Axis choice: asked for, and automatic both ways.
r3, stem3 = render("linear", ev, "--cost-axis", "linear", "--no-figures")
curves3 = svgs_of(open(stem3 + ".html").read())[0]
check(r3.returncode == 0 and "log scale" not in curves3, "--cost-axis linear draws a linear axis")
check(not os.path.exists(stem3 + "_figures"), "--no-figures writes no figures")
narrow = fx.crowded_eval(8, with_ci=False, cost_lo=2.0, cost_hi=2.9, unit="output tokens")
r4, stem4 = render("narrow", narrow, "--no-figures")
check(r4.returncode == 0 and "log scale" not in open(stem4 + ".html").read(), "costs within a decade: linear axis")
labels_own_markers(svgs_of(open(stem4 + ".html").read())[1], "narrow pairs plot")
# a number that finds no place beside its crowded marker stays in the key, and
# the next label is still the next pair's name (it was drawn as that number)
r4b, stem4b = render("narrow16", fx.crowded_eval(16, with_ci=True, seed=7, cost_lo=2.0, cost_hi=2.9,
                                                 unit="output tokens"), "--no-figures")
check(r4b.returncode == 0, "report narrow16: " + r4b.stderr)
labels_own_markers(svgs_of(open(stem4b + ".html").read())[1], "narrow pairs plot with intervals")
r5 = run("report", os.path.join(tmp, "narrow.json"), "--cost-axis", "sideways")
check(r5.returncode == 2 and "auto, linear or log" in r5.stderr, "an unknown --cost-axis is a usage error")

# Beyond the palette: 30 pairs, 30 different fills (hatched repeats); the
# palette itself: every two colours at least 16 CIEDE2000 apart.
r6, stem6 = render("thirty", fx.crowded_eval(30, with_ci=False), "--no-figures")
mix6 = svgs_of(open(stem6 + ".html").read())[2]
labels_own_markers(svgs_of(open(stem6 + ".html").read())[1], "30 pairs plot")
fills = re.findall(r'<path fill="([^"]+)" fill-opacity', mix6)
check(r6.returncode == 0 and len(set(fills)) == 30, f"30 pairs, 30 distinct fills: {len(set(fills))}")
check(all(re.search(r'<pattern id="%s"' % re.escape(f[5:-1]), mix6) for f in fills if f.startswith("url(")),
      "every hatched fill has its pattern")
palette = [f for f in fills if f.startswith("#")]
worst = min(fx.delta_e2000(fx.srgb_to_lab(a), fx.srgb_to_lab(b)) for i, a in enumerate(palette) for b in palette[i + 1:])
check(len(palette) == 28 and worst >= 16, f"28 palette colours, closest pair {worst:.1f} CIEDE2000 apart")

# --json names what was written; a figures folder that cannot be made fails
# the run and leaves no page.
r7 = run("report", os.path.join(tmp, "narrow.json"), "--json", "--out", os.path.join(tmp, "j.html"))
try:
    j = json.loads(r7.stdout)
    check(j["html"].endswith("j.html") and j["figures"].endswith("j_figures") and "csv" in j["figure_formats"],
          "--json: page, summary and figures")
except (ValueError, KeyError) as e:
    check(False, f"--json output: {e}: {r7.stdout}")
open(os.path.join(tmp, "blocker"), "w").close()
r8 = run("report", os.path.join(tmp, "narrow.json"), "--out", os.path.join(tmp, "b.html"), "--figures",
         os.path.join(tmp, "blocker", "figs"))
check(r8.returncode == 1 and "blocker" in r8.stderr and not os.path.exists(os.path.join(tmp, "b.html")),
      "figures folder impossible: exit 1, no page: " + r8.stderr)

# A sparse file (every number that can be null is, fields left out):
# "—" where a value is missing, and no "nan" or "inf" in any file written
# (docs/REPORT.md; issue 13 item 6).
sparse = {"title": "sparse", "routers": [
    {"name": "RTR", "points": [[1, 0.5], [2, None], [3, 0.7]], "aiq": None, "cost_to_match": None,
     "op": {"acc": None, "cost": None, "lambda": None, "n_missing": None},
     "budgets": [{"fraction": 0.25, "budget": None, "acc": None, "cost": None, "lambda": None},
                 {"fraction": None, "budget": 2, "acc": 0.6, "cost": None, "lambda": None, "n_missing": None}],
     "ci": {"acc": [None, None], "cost_to_match": [None, 2.5], "budgets": [None, [None, None]]},
     "p_beats": {"Oracle": {"aiq": None, "aiq_from_zero": None, "acc": None, "cost_to_match": None}}},
    {"name": "RouteLLM-style", "points": [[1, 0.4], [3, 0.8]], "cost_to_match": None,
     "shares": [{"target": None, "share": None, "acc": 0.5, "cost": None, "acc_ci": [None, 0.6]}]},
    {"name": "Oracle", "points": [[1, 1.0]], "op": {"acc": 1.0, "cost": 1}}],
    "pairs": [{"name": "a|b", "acc": None, "cost": None, "n_missing": None}, {"name": "c|d", "acc": 0.5, "cost": 1}],
    "x_max": None, "budget_reference": {"pair": "c|d", "cost": None},
    "bootstrap": {"resamples": None, "seed": None, "level": None},
    "default_router": {"chosen": "network (the paper's model)", "n_val": None, "n_unseen": None,
                       "cv_logloss": {"network (the paper's model)": None}, "cv_se": {}, "weights": [None, 1, 0, 0]},
    "mix": {"lambda": [0, 1], "pairs": ["a|b", "c|d"], "fraction": [[None, 1], [0.5, None]]},
    "calibration": {"mean_pred": [0.1, None], "mean_true": [None, 0.5], "count": [None, 3], "ece": None}}
r9, stem9 = render("sparse", sparse)
check(r9.returncode == 0, "sparse file renders: " + r9.stderr)
written = [stem9 + ".html", stem9 + ".md"] + [os.path.join(stem9 + "_figures", f) for f in
                                               sorted(os.listdir(stem9 + "_figures")) if f.endswith((".svg", ".csv"))]
for f in written:
    found = re.findall(r"\b(?:nan|inf|infinity)\b", open(f).read(), re.I)
    check(not found, f"{os.path.basename(f)}: no nan or inf written: {found[:3]}")
md9 = open(stem9 + ".md").read()
check("— queries" in md9 and "x_max = —" in md9, "a missing query count and x_max print as —")
check("| RTR            |        — |" in md9.replace("  ", " ") or re.search(r"\| RTR +\| +— \|", md9),
      "a missing accuracy prints as —")
html9 = open(stem9 + ".html").read()
check("Calibration of the correctness head<" in html9 and "ECE" not in html9,
      "no ECE in the calibration title when the file has none")
routers9 = md9.split("## Routers\n\n")[1].split("\n\n")[0].splitlines()[2:]
check([md_cells(x)[7] for x in routers9] == ["never [never, 2.500]", "never", "—"],
      "cost to match: null is never, left out is —: " + repr(routers9))

shutil.rmtree(tmp)
finish()
