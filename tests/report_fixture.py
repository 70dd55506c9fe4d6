"""Shared by the report tests (imported, never run by ctest): evaluation
files that stress `rtr report` (many pairs with long names full of markdown
and HTML specials, costs spanning decades, intervals everywhere), a PNG
reader for screenshots, the SVG size reader, and a check that the labels
of a pairs plot sit by their own markers."""
import html
import math
import random
import re
import struct
import zlib

MODELS = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen2.5-72B|instruct", "gpt-4o-mini", "claude-3-5-sonnet*",
          "mistral_large_2", "deepseek-r1 <distill>", "gemma`2`-27b", "phi-3.5 [mini] & co"]
STRATEGIES = ["direct", "chain-of-thought", "program-of-thought", "self-consistency@8"]


def pair_names(k):
    """k distinct "model|strategy" names (a suffix beyond the 32 combinations)."""
    return [f"{MODELS[i % len(MODELS)]}|{STRATEGIES[(i // len(MODELS)) % len(STRATEGIES)]}"
            + ("" if i < 32 else f" #{i}") for i in range(k)]


def crowded_eval(k=24, with_ci=True, seed=3, cost_lo=-5.5, cost_hi=-2, unit="USD"):
    """An evaluation file as `rtr eval` writes it (docs/ROUTING.md): budgets,
    the two-pair router's shares, the default router's choice, missing
    outcomes (a pair with 3, a router with 2, one budget cell with 1), one
    router that could not be built, a budget no routing of the kNN router
    fits; with_ci adds the intervals and P(beats) of `rtr eval --bootstrap`
    (and intervals for pairs and calibration bins as docs/REPORT.md
    proposes). Pair costs log-uniform in [10^cost_lo, 10^cost_hi]."""
    rnd = random.Random(seed)
    names = pair_names(k)
    pairs = []
    for nm in names:
        cost = 10 ** rnd.uniform(cost_lo, cost_hi)
        acc = min(0.97, 0.3 + 0.5 * (math.log10(cost) - cost_lo) / (cost_hi - cost_lo) + rnd.uniform(-0.1, 0.1))
        p = {"name": nm, "acc": acc, "cost": cost}
        if with_ci:
            p["ci"] = {"acc": [acc - 0.03, acc + 0.03], "cost": [cost * 0.9, cost * 1.1]}
        pairs.append(p)
    lo, hi = 10 ** cost_lo, 10 ** cost_hi

    def curve(n, a0, a1):
        out = []
        for t in range(n):
            u = t / (n - 1)
            out.append([lo * (hi / lo) ** u, a0 + (a1 - a0) * (1 - (1 - u) ** 3)])
        return out

    ref_cost = hi / 3  # the best training pair's training mean cost: the budgets' reference
    routers = []
    for name, n, a0, a1 in [("RTR", 1500, 0.35, 0.93), ("RTR: other | checkpoint", 900, 0.33, 0.92),
                            ("Dataset prior", 40, 0.3, 0.85), ("kNN router", 300, 0.32, 0.88),
                            ("EmbedLLM-style", 120, 0.31, 0.87), ("RouteLLM-style", 200, 0.4, 0.9)]:
        pts = curve(n, a0, a1)
        op = pts[int(n * 0.6)]
        r = {"name": name, "points": pts, "aiq": 0.8, "aiq_from_zero": 0.83, "apgr": 0.6, "cpt50": 0.2, "cpt80": 0.5,
             "cost_to_match": 0.7, "oracle_gap": 0.04,
             "op": {"acc": op[1], "cost": op[0], "lambda": 0.7, "n_missing": 2 if name == "EmbedLLM-style" else 0,
                    "note": "predicted cost within the best training pair's"}}
        # The point within each budget; the kNN router has none within the
        # smallest (acc and cost null, no n_missing, a null interval).
        r["budgets"] = []
        for b, frac in enumerate((0.25, 0.5, 0.75, 1.0)):
            pt = pts[int((n - 1) * (0.3 + 0.2 * b))]
            fits = not (name == "kNN router" and b == 0)
            x = {"fraction": frac, "budget": frac * ref_cost, "acc": pt[1] if fits else None,
                 "cost": pt[0] if fits else None, "lambda": (0.5 + 0.1 * b if fits else None)}
            if name == "RouteLLM-style":
                x["lambda"] = None
            if fits:
                x["n_missing"] = 1 if (name, b) == ("Dataset prior", 2) else 0
            r["budgets"].append(x)
        if name == "RouteLLM-style":
            r["shares"] = [{"target": t, "share": t - 0.03, "acc": a0 + (a1 - a0) * t, "cost": lo + (hi - lo) * t}
                           for t in (0.2, 0.5, 0.8)]
        if with_ci:
            r["ci"] = {"acc": [op[1] - 0.02, op[1] + 0.02], "cost": [op[0] * 0.85, op[0] * 1.15], "aiq": [0.78, 0.82],
                       "aiq_from_zero": [0.81, 0.85], "cost_to_match": [0.6, None],
                       "budgets": [None if x["acc"] is None else [x["acc"] - 0.025, x["acc"] + 0.025]
                                   for x in r["budgets"]]}
            for x in r.get("shares", []):
                x["acc_ci"] = [x["acc"] - 0.04, x["acc"] + 0.04]
        routers.append(r)
    for name, acc, cost in [("Random (expectation)", 0.6, hi / 5), ("Oracle", 0.98, lo * (hi / lo) ** 0.15),
                            ("Best single: " + names[3], 0.9, hi / 2.5)]:
        r = {"name": name, "points": [[cost, acc]], "op": {"acc": acc, "cost": cost, "lambda": None, "n_missing": 0},
             "cost_to_match": None if name.startswith("Random") else 0.5}
        if with_ci:
            r["ci"] = {"acc": [acc - 0.015, min(1.0, acc + 0.015)]} if not name.startswith("Random") else \
                {"cost_to_match": [None, None]}
        routers.append(r)
    routers.append({"name": "EmbedLLM-style (no embeddings)", "unavailable": "the training split has no embeddings"})
    if with_ci:  # an RTR row's P(beats) against every other router built, as rtr eval --bootstrap writes them
        built = [x["name"] for x in routers if "unavailable" not in x]
        for r in routers[:2]:
            r["p_beats"] = {other: {"aiq": round(rnd.uniform(0, 1), 3), "aiq_from_zero": round(rnd.uniform(0, 1), 3),
                                    "acc": round(rnd.uniform(0, 1), 3), "cost_to_match": None if i == 0 else 0.25}
                            for i, other in enumerate(x for x in built if x != r["name"])}
    lam = [i / 100 for i in range(101)]
    frac = []
    for x in lam:
        w = [math.exp(-((j / max(k - 1, 1)) - x) ** 2 * 30) for j in range(k)]
        frac.append([v / sum(w) for v in w])
    cal = {"mean_pred": [0.05 + 0.1 * i for i in range(10)], "mean_true": [0.07 + 0.095 * i for i in range(10)],
           "count": [100] * 10, "ece": 0.0213}
    for i, p in enumerate(pairs):
        p["n_missing"] = 3 if i == 2 else 0
    cands = ["network (the paper's model)", "network, Platt-scaled", "network + kNN blend",
             "network + dataset-prior blend", "network + kNN + dataset-prior blend"]
    ev = {"title": "Crowded | <stress> report, *markdown* _specials_ and a title long enough to be wrapped on a "
                   "figure narrower than it",
          "corpus": "corp|us`x`", "split": "test", "train_split": "train", "n_queries": 5000, "n_train": 20000,
          "cost_unit": unit, "checkpoint_hash": "0123456789abcdef", "device": "CPU, 2 threads", "x_max": hi,
          "budget_reference": {"pair": names[5], "cost": ref_cost, "fractions": [0.25, 0.5, 0.75, 1]},
          "aiq_note": "aiq is RouterBench's: nothing counts before a router's cheapest point; aiq_from_zero extends "
                      "each hull flat down to cost 0 as well.",
          "default_router": {"chosen": cands[2], "checkpoint": "ck.safetensors", "n_val": 1800, "n_unseen": 12,
                             "cv_logloss": dict(zip(cands, (0.412, 0.405, 0.369, 0.380, 0.366))),
                             "cv_se": dict(zip(cands, (0.011, 0.010, 0.009, 0.010, 0.009))),
                             "weights": [-0.25, 0.875, 0.5, 0]},
          "pairs": pairs, "routers": routers, "mix": {"lambda": lam, "pairs": names, "fraction": frac},
          "calibration": cal}
    if with_ci:
        cal["ci"] = {"mean_true": [[m - 0.04, m + 0.04] for m in cal["mean_true"]]}
        ev["bootstrap"] = {"resamples": 1000, "seed": 7, "level": 0.95,
                           "method": "paired: the same draw of queries for every router; percentile intervals"}
    return ev


def svg_size(svg_text):
    """(width, height) of the first <svg> element."""
    m = re.search(r'<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"', svg_text)
    return int(m.group(1)), int(m.group(2))


def read_png(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit, non-interlaced
    truecolour PNG (what Chromium and rsvg-convert write)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"{path}: PNG depth {depth} colour type {colour} interlace {interlace} not read here")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def ink(rows):
    """Share of pixels that are not (near) white, and the number of distinct colours."""
    total = dark = 0
    colours = set()
    for row in rows[::2]:
        for px in row[::2]:
            total += 1
            dark += min(px) < 235
            colours.add(px)
    return dark / max(total, 1), len(colours)


def srgb_to_lab(hex_colour):
    """CIE L*a*b* (D65) of an sRGB colour "#rrggbb"."""
    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e2000(lab1, lab2):
    """CIEDE2000 colour difference (Sharma, Wu and Dalal's formulation)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    cbar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(cbar ** 7 / (cbar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = math.degrees(math.atan2(b1, a1p)) % 360, math.degrees(math.atan2(b2, a2p)) % 360
    dhp = 0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    dl, dc, dh = l2 - l1, c2p - c1p, 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dhp / 2))
    lbar, cbarp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    else:
        hbar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hbar - 30)) + 0.24 * math.cos(math.radians(2 * hbar))
         + 0.32 * math.cos(math.radians(3 * hbar + 6)) - 0.20 * math.cos(math.radians(4 * hbar - 63)))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = (-math.sin(math.radians(2 * 30 * math.exp(-((hbar - 275) / 25) ** 2)))
          * 2 * math.sqrt(cbarp ** 7 / (cbarp ** 7 + 25 ** 7)))
    return math.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dh / sh) ** 2 + rt * (dc / sc) * (dh / sh))


LABEL = re.compile(r'(?:<line x1="([-\d.]+)" y1="([-\d.]+)" x2="[-\d.]+" y2="[-\d.]+" stroke="#888" stroke-width="0.8"/>)?'
                   r'<text x="([-\d.]+)" y="([-\d.]+)" font-size="10" text-anchor="middle" fill="#222" stroke="white" '
                   r'stroke-width="3" paint-order="stroke"( font-weight="bold")?>([^<]*)</text>')


def label_problems(svg):
    """What is wrong with the labels of a pairs plot (an empty list when
    nothing is). Each name or number written in the plot belongs to its
    own marker: beside it (the label's box within a few pixels, widths estimated
    generously), or at the end of a leader line that starts at that marker;
    each number is one of the key's; each pair is labelled at most once."""
    markers = {html.unescape(t): (float(x), float(y)) for x, y, t in
               re.findall(r'<circle cx="([-\d.]+)" cy="([-\d.]+)" r="4.5" fill="[^"]+"><title>(.*?): \(', svg)}
    key = {}
    for t in re.findall(r"<text[^>]*>((?:<tspan[^>]*>[^<]*</tspan>)+)</text>", svg.split("Points numbered")[-1]):
        m = re.match(r"(\d+)  (.*)", html.unescape("".join(re.findall(r">([^<]*)</tspan>", t))))
        if m:
            key[m.group(1)] = m.group(2)
    # a long name in the key wraps over lines (tspans): compared without spaces
    norm = {re.sub(r"\s+", "", k): k for k in markers}
    key = {n: norm.get(re.sub(r"\s+", "", k), k) for n, k in key.items()}
    seen, bad = set(), []
    for lx, ly, x, y, bold, text in LABEL.findall(svg):
        text = html.unescape(text)
        name = key.get(text) if bold else text
        if name is None or name not in markers or name in seen:
            bad.append(f"{text!r}: {'no such key number' if bold else 'no marker of that name'} or labelled twice")
            continue
        seen.add(name)
        X, Y = markers[name]
        if lx:  # a leader starts at its marker
            if abs(float(lx) - X) > 0.11 or abs(float(ly) - Y) > 0.11:
                bad.append(f"{text!r}: leader from ({lx}, {ly}), its marker at ({X}, {Y})")
            continue
        cx, cy, hw = float(x), float(y) - 3.5, 3.3 * len(text) + 2
        if max(abs(cx - X) - hw, abs(cy - Y) - 6) > 8 + 4:
            bad.append(f"{text!r} at ({cx:.0f}, {cy:.0f}), its marker at ({X:.0f}, {Y:.0f}) and no leader")
    return bad if markers else ["no pair marker found"]
