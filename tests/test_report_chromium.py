"""The report's plots as a browser draws them (headless Chromium): in the
page of every fixture (a toy file, 24 and 30 pairs with long names, a
narrow token-cost file) no two text boxes of a plot overlap and none is cut
at the plot's edge (getBoundingClientRect of every <text>, measured in the
page by a script added to a copy of it: the report itself has none); each
figure file, screenshot in a page that stacks the four, is drawn and not
blank (ink and colours in its region); no table is wider than the page's
column; each pair's label sits by its own marker. RTR_KEEP_SCREENSHOTS=DIR
keeps the screenshots, and one of each whole page, to look at;
RTR_REPORT_EVAL=FILE adds an evaluation file of one's own (data/demo/eval.json
after tools/demo) to the fixtures. Skips (77) when
no Chromium is installed (Debian: apt-get install chromium)."""
import html as htmlmod
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtrtest import check, finish, require_rtr, run, skip  # noqa: E402
import report_fixture as fx  # noqa: E402

require_rtr()
browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome-headless-shell")
                if shutil.which(b)), None)
if not browser:
    skip("no Chromium on PATH (apt-get install chromium): plots not checked in a browser")
tmp = tempfile.mkdtemp()
keep = os.environ.get("RTR_KEEP_SCREENSHOTS")

# Measures every <text> of every <svg> and writes the findings into the DOM.
PROBE = """<script>
(function () {
  var out = [], svgs = document.querySelectorAll("svg");
  for (var s = 0; s < svgs.length; s++) {
    var sr = svgs[s].getBoundingClientRect(), texts = svgs[s].querySelectorAll("text"), boxes = [];
    for (var i = 0; i < texts.length; i++) {
      var r = texts[i].getBoundingClientRect();
      if (r.width > 0 && r.height > 0)
        boxes.push({t: texts[i].textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
    }
    var overlaps = [], outside = [];
    for (var i = 0; i < boxes.length; i++) {
      var a = boxes[i];
      if (a.x0 < sr.left - 0.5 || a.y0 < sr.top - 0.5 || a.x1 > sr.right + 0.5 || a.y1 > sr.bottom + 0.5)
        outside.push(a.t);
      for (var j = i + 1; j < boxes.length; j++) {
        var b = boxes[j], w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
        if (w > 0.5 && h > 0.5) overlaps.push([a.t, b.t]);
      }
    }
    out.push({texts: boxes.length, overlaps: overlaps, outside: outside, width: sr.width, height: sr.height});
  }
  // Tables wider than the page's column (the body) would run off a printed page.
  var body = document.body.getBoundingClientRect(), cs = getComputedStyle(document.body), wide = [];
  var right = body.right - parseFloat(cs.paddingRight), tables = document.querySelectorAll("table");
  for (var t = 0; t < tables.length; t++) {
    var tr = tables[t].getBoundingClientRect();
    if (tr.right > right + 0.5) wide.push({table: t, right: tr.right, column: right, first: tables[t].rows[0].textContent});
  }
  var pre = document.createElement("pre");
  pre.id = "rtr-probe";
  pre.textContent = JSON.stringify({plots: out, tables: tables.length, wide: wide});
  document.body.appendChild(pre);
})();
</script>"""


def chromium(*args):
    profile = tempfile.mkdtemp(dir=tmp)
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--user-data-dir=" + profile, *args], capture_output=True, text=True, timeout=120)


fixtures = {  # name: (evaluation file, options of rtr report)
    "toy": ({"title": "toy <report>", "corpus": "toy", "split": "test", "n_queries": 3, "cost_unit": "tokens",
             "x_max": 300, "pairs": [{"name": "small|direct", "acc": 0.5, "cost": 10},
                                     {"name": "large|cot", "acc": 0.9, "cost": 300}],
             "routers": [{"name": "RTR", "points": [[10, 0.5], [100, 0.8], [300, 0.9]],
                          "op": {"acc": 0.8, "cost": 100, "note": "budget 300"}},
                         {"name": "Random", "points": [[155, 0.7]], "op": {"acc": 0.7, "cost": 155}}],
             "mix": {"lambda": [0, 0.5, 1], "pairs": ["small|direct", "large|cot"],
                     "fraction": [[1, 0], [0.4, 0.6], [0, 1]]},
             "calibration": {"mean_pred": [0.1, 0.5, 0.9], "mean_true": [0.15, 0.45, 0.92], "count": [1, 1, 1],
                             "ece": 0.04}}, ()),
    "crowded24": (fx.crowded_eval(24), ()),
    "crowded30": (fx.crowded_eval(30, with_ci=False, seed=5), ()),
    "linear": (fx.crowded_eval(24, with_ci=True, seed=11), ("--cost-axis", "linear")),
    "narrow": (fx.crowded_eval(16, with_ci=True, seed=7, cost_lo=2.0, cost_hi=2.9, unit="output tokens"), ()),
}
given = os.environ.get("RTR_REPORT_EVAL")  # an evaluation file of one's own (the demo's), checked the same way
if given:
    fixtures["given"] = (json.load(open(given)), ())
for name, (ev, opts) in fixtures.items():
    src = os.path.join(tmp, name + ".json")
    json.dump(ev, open(src, "w"))
    r = run("report", src, *opts)
    check(r.returncode == 0, f"{name}: report: {r.stderr}")
    if r.returncode:
        continue
    page = open(os.path.join(tmp, name + ".html")).read()
    probe = os.path.join(tmp, name + "_probe.html")
    open(probe, "w").write(page.replace("</body>", PROBE + "</body>"))
    d = chromium("--window-size=1100,900", "--dump-dom", "file://" + probe)
    m = re.search(r'<pre id="rtr-probe">(.*?)</pre>', d.stdout, re.S)
    check(m is not None, f"{name}: Chromium ran the probe: {d.stderr[-300:]}")
    if not m:
        continue
    probed = json.loads(htmlmod.unescape(m.group(1)))
    plots = probed["plots"]
    check(len(plots) == 4, f"{name}: 4 plots in the page, Chromium saw {len(plots)}")
    check(probed["tables"] >= 2 and not probed["wide"], f"{name}: {probed['tables']} tables, none wider than the "
          f"page's column: {probed['wide'][:2]}")
    for i, p in enumerate(plots):
        check(p["texts"] >= 8 and p["width"] > 300 and p["height"] > 200, f"{name} plot {i}: rendered: {p}")
        check(not p["overlaps"], f"{name} plot {i}: overlapping text: {p['overlaps'][:4]}")
        check(not p["outside"], f"{name} plot {i}: text cut at the edge: {p['outside'][:4]}")
    # One screenshot per fixture: the four figure files stacked in a page.
    figs = os.path.join(tmp, name + "_figures")
    bad = fx.label_problems(open(os.path.join(figs, "pairs.svg")).read())
    check(not bad, f"{name}: every pair label by its own marker: {bad[:3]}")
    sizes = [(fig, *fx.svg_size(open(os.path.join(figs, fig + ".svg")).read()))
             for fig in ("accuracy_cost", "pairs", "mix", "calibration")]
    width, height = max(w for _, w, _ in sizes), sum(h for _, _, h in sizes)
    stack = os.path.join(figs, "stack.html")
    open(stack, "w").write("<!DOCTYPE html><html><body style='margin:0;background:white'>" + "".join(
        f"<img src='{fig}.svg' width='{w}' height='{h}' style='display:block'>" for fig, w, h in sizes) + "</body></html>")
    shot = os.path.join(tmp, f"{name}.png")
    chromium(f"--window-size={width},{height}", "--screenshot=" + shot, "file://" + stack)
    if not os.path.exists(shot):
        check(False, f"{name}: no screenshot")
        continue
    sw, sh, rows = fx.read_png(shot)
    check((sw, sh) == (width, height), f"{name}: screenshot {sw}x{sh}, figures {width}x{height}")
    top = 0
    for fig, w, h in sizes:
        share, colours = fx.ink([row[:w] for row in rows[top:top + h]])
        top += h
        check(0.02 < share < 0.9 and colours >= 8, f"{name} {fig}: not blank ({share:.1%} ink, {colours} colours)")
        if fig == "mix" and name.startswith("crowded"):
            check(colours >= 24, f"{name} mix: at least 24 colours on screen ({colours})")
    if keep:  # and the whole page, to look at the tables and sentences too
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, keep)
        chromium("--window-size=1100,6000", "--screenshot=" + os.path.join(keep, f"{name}_page.png"),
                 "file://" + os.path.join(tmp, name + ".html"))

shutil.rmtree(tmp)
finish()
