"""`rtr info`'s mean cost per pair: the outcomes' logged USD when they have
it; when they log tokens but no cost, the catalog's prices applied as
`--cost usd` prices a call (input tokens = query bytes / 4), marked as
priced (`*` and a note in the table, "mean_cost_from": "prices" in JSON)
and checked against the same sum computed here; a model without prices
gets no mean cost ("—", null), never nan. Control characters in corpus
strings (dataset and split names from the logs, attributes and folder
names of tables and encodings) are shown escaped in the text output (they
were printed raw: an ESC sequence recoloured the terminal, a newline broke
the table); --json keeps them as they are."""
import json
import os
import shutil
import tempfile

from rtrtest import check, finish, require_rtr, run, skip_part

require_rtr()


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_cli_info_")
    demo = os.path.join(tmp, "demo")
    r = run("gen-demo", "--queries", "120", "--seed", "5", demo)
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    catalog = json.load(open(os.path.join(demo, "catalog.json")))
    queries = [json.loads(line) for line in open(os.path.join(demo, "outcomes.jsonl"))]
    for q in queries:
        for o in q["outcomes"]:
            o.pop("cost", None)
    # one model has no prices: its pairs can have no mean cost
    unpriced = catalog["models"][0]
    unpriced.pop("price_in", None)
    unpriced.pop("price_out", None)
    cat_path, log_path = os.path.join(tmp, "catalog.json"), os.path.join(tmp, "nocost.jsonl")
    json.dump(catalog, open(cat_path, "w"))
    with open(log_path, "w") as f:
        f.writelines(json.dumps(q) + "\n" for q in queries)
    corpus = os.path.join(tmp, "corp")
    r = run("ingest", "--catalog", cat_path, "--out", corpus, log_path, "--quiet")
    check(r.returncode == 0, "ingest without costs: " + r.stderr)

    prices = {m["name"]: (m.get("price_in"), m.get("price_out")) for m in catalog["models"]}
    r = run("info", corpus, "--json")
    check(r.returncode == 0, "info --json: " + r.stderr)
    pairs = json.loads(r.stdout)["pairs"]
    n_priced = 0
    for p in pairs:
        pin, pout = prices[p["model"]]
        if pin is None:
            check(p["mean_cost"] is None and "mean_cost_from" not in p, "no prices, no mean cost: %s" % p)
            continue
        usd = [(len(q["text"].encode()) / 4 * pin + o["tokens"] * pout) / 1e6
               for q in queries for o in q["outcomes"]
               if (o["model"], o["strategy"]) == (p["model"], p["strategy"]) and o.get("tokens") is not None]
        want = sum(usd) / len(usd)
        ok = p["mean_cost_from"] == "prices" and abs(p["mean_cost"] - want) <= 1e-6 * want
        check(ok, "%s|%s priced: %s vs %.9g" % (p["model"], p["strategy"], p["mean_cost"], want))
        n_priced += ok
    check(n_priced == 12, "12 pairs priced from the catalog (%d)" % n_priced)

    text = run("info", corpus).stdout
    check("nan" not in text and "* priced from the catalog" in text, "the table marks priced means: " + text[-600:])
    rows = [line for line in text.splitlines() if line.startswith(unpriced["name"] + "|")]
    check(len(rows) == 4 and all(line.split()[3] == "—" for line in rows), "unpriced pairs show —: %s" % rows[:1])
    table = text[text.index("pair (model|strategy)"):].split("\n* ")[0].splitlines()
    check(len(table) == 17 and len({len(x) for x in table}) == 1, "the priced table stays aligned: %r" % table[:3])

    # logged costs win, and say so
    plain = os.path.join(tmp, "plain")
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", plain,
            os.path.join(demo, "outcomes.jsonl"), "--quiet")
    check(r.returncode == 0, "ingest with costs: " + r.stderr)
    pairs = json.loads(run("info", plain, "--json").stdout)["pairs"]
    check(all(p["mean_cost_from"] == "outcomes" for p in pairs), "logged costs are the outcomes' own")
    check("priced from the catalog" not in run("info", plain).stdout, "no priced note when costs are logged")
    check_control_characters(tmp, demo)
    shutil.rmtree(tmp)


def check_control_characters(tmp, demo):
    try:
        import h5py
        import numpy as np
        import rtrdata
    except ImportError:
        skip_part("control characters: h5py and numpy are needed")
        return
    rows = [json.loads(line) for line in open(os.path.join(demo, "outcomes.jsonl"))][:20]
    # ingest refuses control characters in names; another tool's corpus may
    # hold them: names of the same byte length, patched in the shards after
    names = {"dE[31mred": "d\x1b[31mred", "trNain": "tr\nain", "teCCst": "te\u0085st"}
    log, corpus = os.path.join(tmp, "ctl.jsonl"), os.path.join(tmp, "ctl")
    for real in (True, False):
        for i, q in enumerate(rows):
            q["dataset"], q["split"] = [names[n] if real and n in names else n for n in
                                        (("dE[31mred", "trNain") if i % 2 else ("plain", "teCCst"))]
        with open(log, "w") as f:
            f.writelines(json.dumps(q) + "\n" for q in rows)
        r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus, log, "--quiet")
        check(r.returncode == (1 if real else 0) and ("control character" in r.stderr) == real,
              f"ingest with{'' if real else 'out'} control characters in names: " + r.stderr)
    for path, _, _, _ in rtrdata.shards(corpus):
        with h5py.File(path, "r+") as g:
            for col in ("dataset", "split"):
                data = g[f"queries/{col}/bytes"][:].tobytes()
                for k, v in names.items():
                    data = data.replace(k.encode(), v.encode())
                g[f"queries/{col}/bytes"][:] = np.frombuffer(data, dtype=np.uint8)
    k = len(rtrdata.manifest(corpus)["catalog"]["pairs"])
    rtrdata.write_table(corpus, "t", lambda p: {"p_correct": np.full((20, k), 0.5), "tokens": np.full((20, k), 9.0)},
                        "h\rx", encoder="enc\x7f", encoder_hash="e\th", checkpoint="ck\x07")
    # folders whose names the readers ignore are listed, not dropped unseen
    # (a hidden one aside); one not UTF-8 is shown with U+FFFD
    for name in (b"tables/b\x1bd", b"tables/two words", b"embeddings/x\xff", b"tables/.cache"):
        os.makedirs(os.path.join(corpus.encode(), name))
    r = run("info", corpus)
    for shown in ("tables/b\\x1bd: not a valid table name", "tables/two words: not a valid table name",
                  "embeddings/x\ufffd: not a valid embeddings name"):
        check(shown in r.stdout, f"info lists {shown}: {r.stdout[-900:]}")
    check(".cache" not in r.stdout, "a hidden folder stays hidden")
    r = run("info", corpus, "--json")
    got = json.loads(r.stdout) if r.returncode == 0 else {}
    check([(t["name"], t["usable"]) for t in got.get("tables", [])] == [("b\x1bd", False), ("t", True),
                                                                       ("two words", False)],
          f"info --json lists the ignored tables: {r.stdout[-600:]} {r.stderr}")
    r = run("info", corpus)
    bad = sorted({hex(ord(c)) for c in r.stdout if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f})
    check(r.returncode == 0 and not bad, f"info prints no control character: {bad} {r.stderr.strip()}")
    for shown in ("d\\x1b[31mred", "tr\\nain", "te\\u0085st", "h\\rx", "ck\\x07", "enc\\x7f", "e\\th"):
        check(shown in r.stdout, f"info shows {shown}: {r.stdout[-700:]}")
    groups = r.stdout[r.stdout.index("dataset"):r.stdout.index("pair (model")].strip().splitlines()
    check(len(groups) == 3 and len({len(x) for x in groups}) == 1, f"the dataset table stays aligned: {groups}")
    got = json.loads(run("info", corpus, "--json").stdout)
    check({g["split"] for g in got["groups"]} == {"tr\nain", "te\u0085st"} and got["tables"][1]["checkpoint"] == "ck\x07",
          "info --json keeps the strings as they are")


if __name__ == "__main__":
    main()
    finish()
