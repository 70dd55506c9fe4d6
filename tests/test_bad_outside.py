#!/usr/bin/env python3
"""Outcome logs and catalogs as other tools write them (docs/robustness.md,
session 9), each answered with what is wrong and exit 1 where rtr once said
something that did not help:

- a log or catalog given gzip-, zstd-, bzip2- or xz-compressed, zipped, as
  UTF-16 or as Parquet: said so, with the command that fixes it (was
  "invalid UTF-8 at byte 1", "malformed JSON", "not valid JSON");
- NaN, Infinity and -Infinity (Python's json.dumps writes them): said so,
  with null as the fix (was "malformed JSON near byte N");
- a pretty-printed object (one object over several lines): said so (was
  "malformed JSON near byte 2");
- lines ended by CR alone: said so (was "unexpected text after the JSON
  object");
- a catalog, pair-cost file or manifest holding a second JSON value after
  the first: refused naming the line (the rest was dropped silently); an
  empty catalog says it is empty;
- tools/convert-outcomes: a gzip'd CSV said so (was "invalid UTF-8"), and a
  query whose rows disagree on its dataset or split is refused naming both
  lines (the first row's was kept silently).

The logs that held up already (CRLF and a BOM, duplicate ids, a pair twice,
costs as strings, negative or huge tokens) are tried too, so a change that
breaks them shows here."""
import bz2
import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from rtrtest import SRC, check, finish, require_rtr, run

require_rtr()
CONVERT = os.path.join(SRC, "tools", "convert-outcomes")


def ingest(tmp, name, data, catalog=None):
    """rtr ingest of the bytes data (as NAME.jsonl) with the demo catalog or
    the given catalog bytes; the CompletedProcess."""
    log = os.path.join(tmp, name + ".jsonl")
    with open(log, "wb") as f:
        f.write(data)
    cat = os.path.join(tmp, "demo", "catalog.json")
    if catalog is not None:
        cat = os.path.join(tmp, name + ".catalog.json")
        with open(cat, "wb") as f:
            f.write(catalog)
    out = os.path.join(tmp, "out-" + name)
    shutil.rmtree(out, ignore_errors=True)
    return run("ingest", "--catalog", cat, "--out", out, log), log, cat


def refused(r, path, words, what):
    check(r.returncode == 1 and path in r.stderr and all(w in r.stderr for w in words),
          f"{what}: exit {r.returncode}, naming {path} and {words}: {r.stderr.strip()[-300:]}")


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_outside_")
    r = run("gen-demo", "--queries", "20", "--seed", "1", os.path.join(tmp, "demo"))
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    text = open(os.path.join(tmp, "demo", "outcomes.jsonl"), "rb").read()
    catalog = open(os.path.join(tmp, "demo", "catalog.json"), "rb").read()
    lines = text.decode().splitlines()

    # compressed, archived or re-encoded logs and catalogs
    zipped = os.path.join(tmp, "z.zip")
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("outcomes.jsonl", text)
    packed = {"gzip": (gzip.compress, "gunzip"), "bzip2": (bz2.compress, "bunzip2"),
              "xz": (lzma.compress, "unxz"), "zip": (lambda _: open(zipped, "rb").read(), "unzip"),
              "utf16": (lambda b: b.decode().encode("utf-16"), "iconv")}
    for kind, (pack, fix) in packed.items():
        r, log, _ = ingest(tmp, kind, pack(text))
        refused(r, log, (fix, "not JSON lines"), f"a {kind} log")
        r, _, cat = ingest(tmp, kind + "-cat", text, pack(catalog))
        refused(r, cat, (fix, "not a JSON catalog"), f"a {kind} catalog")

    # NaN and Infinity as Python's json.dumps writes them
    row = json.loads(lines[0])
    for bad in ("NaN", "Infinity", "-Infinity"):
        row["outcomes"][0]["tokens"] = float(bad.replace("Infinity", "inf"))
        r, log, _ = ingest(tmp, "nan" + bad, (json.dumps(row) + "\n").encode())
        refused(r, log + ":1", ("NaN and Infinity are not JSON", "null"), f"tokens {bad}")
    cat = json.loads(catalog)
    cat["models"][0]["price_out"] = float("nan")
    r, _, path = ingest(tmp, "nan-cat", text, json.dumps(cat, indent=1).encode())
    refused(r, path, ("NaN and Infinity are not JSON",), "a catalog price NaN")

    # one object over several lines; lines ended by CR alone
    r, log, _ = ingest(tmp, "pretty", (json.dumps(json.loads(lines[0]), indent=2) + "\n").encode())
    refused(r, log + ":1", ("pretty-printed",), "a pretty-printed object")
    r, log, _ = ingest(tmp, "cr", ("\r".join(lines) + "\r").encode())
    refused(r, log + ":1", ("CR alone",), "CR line ends")

    # a JSON file holding a second value after the first (appended to, or
    # one object a line): cJSON stopped after the first, so the rest was
    # dropped silently; an empty catalog was "the text ends before the JSON
    # value closes (pretty-printed ...?)"
    r, _, path = ingest(tmp, "cat-twice", text, catalog + b"\n" + catalog)
    refused(r, path, ("more text after the JSON value, at line",), "a catalog given twice in one file")
    r, _, path = ingest(tmp, "cat-empty", text, b"\n")
    refused(r, path, ("the file is empty",), "an empty catalog")
    r, _, _ = ingest(tmp, "ok", text)
    corpus = os.path.join(tmp, "out-ok")
    check(r.returncode == 0, f"ingest: {r.stderr.strip()[-300:]}")
    pairs = ["|".join(p) for p in json.load(open(os.path.join(corpus, "manifest.json")))["catalog"]["pairs"]]
    cost = os.path.join(tmp, "cost.json")
    open(cost, "w").write(json.dumps({p: 1 for p in pairs}) + '\n{"' + pairs[0] + '": 5}\n')
    r = run("route", corpus, "--lambda", "0.5", "--cost", "user", "--pair-cost", cost, "--out", os.path.join(tmp, "c.csv"))
    refused(r, cost, ("more text after the JSON value",), "a pair-cost file with a second object")
    manifest = os.path.join(corpus, "manifest.json")
    open(manifest, "a").write("\n{}\n")
    r = run("info", corpus)
    refused(r, manifest, ("more text after the JSON value",), "a manifest with an object appended")

    # held up already: still so
    r, _, _ = ingest(tmp, "crlf-bom", ("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    check(r.returncode == 0, f"CRLF and a BOM ingest: {r.stderr.strip()[-300:]}")
    row = json.loads(lines[0])
    row["outcomes"][0]["cost"] = "0.01"
    r, log, _ = ingest(tmp, "cost-str", (json.dumps(row) + "\n").encode())
    refused(r, log + ":1", ("outcomes[0].cost",), "a cost as a string")
    r, log, _ = ingest(tmp, "dup-line", (lines[0] + "\n" + lines[0] + "\n").encode())
    refused(r, log + ":2", ("duplicate query id",), "a query twice")
    row = json.loads(lines[0])
    row["outcomes"].append(dict(row["outcomes"][0]))
    r, log, _ = ingest(tmp, "dup-pair", (json.dumps(row) + "\n").encode())
    refused(r, log + ":1", ("given twice",), "a (query, pair) outcome twice")
    for tokens in (-3, 1e39):
        row = json.loads(lines[0])
        row["outcomes"][0]["tokens"] = tokens
        r, log, _ = ingest(tmp, f"tok{tokens}", (json.dumps(row) + "\n").encode())
        refused(r, log + ":1", ("outcomes[0].tokens",), f"tokens {tokens}")
    cat = json.loads(catalog)
    cat["pairs"] = [[m["name"], s["name"]] for m in cat["models"] for s in cat["strategies"]]
    cat["pairs"].append(cat["pairs"][0])
    r, _, path = ingest(tmp, "pair-twice", text, json.dumps(cat).encode())
    refused(r, path, ("duplicate pair",), "a catalog naming a pair twice")

    # tools/convert-outcomes
    def convert(name, csv_bytes):
        src = os.path.join(tmp, name)
        with open(src, "wb") as f:
            f.write(csv_bytes)
        out = os.path.join(tmp, "conv-" + name)
        return subprocess.run([sys.executable, CONVERT, "long", src, "--out", out], capture_output=True,
                              text=True), src, out

    head = "query,text,model,strategy,correct,dataset,split\n"
    good = head + "q1,one,m1,s1,1,d1,train\nq1,one,m2,s1,0,d1,train\nq2,two,m1,s1,1,d2,test\n"
    r, src, out = convert("good.csv", good.encode())
    check(r.returncode == 0 and os.path.exists(os.path.join(out, "outcomes.jsonl")), f"a long CSV: {r.stderr}")
    r, src, out = convert("gz.csv", gzip.compress(good.encode()))
    check(r.returncode == 1 and src in r.stderr and "gunzip" in r.stderr and "Traceback" not in r.stderr
          and not os.path.exists(out), f"convert-outcomes, a gzip'd CSV: exit {r.returncode}: {r.stderr.strip()}")
    for what, rows in (("dataset", "q1,one,m1,s1,1,d1,train\nq1,one,m2,s1,0,d9,train\n"),
                       ("split", "q1,one,m1,s1,1,d1,train\nq1,one,m2,s1,0,d1,test\n")):
        r, src, out = convert(what + ".csv", (head + rows).encode())
        check(r.returncode == 1 and f"{src}:3: query q1: {what}" in r.stderr and "line 2" in r.stderr
              and not os.path.exists(out), f"convert-outcomes, a query's rows of two {what}s: exit {r.returncode}: "
              f"{r.stderr.strip()}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
