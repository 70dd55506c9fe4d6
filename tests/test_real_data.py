#!/usr/bin/env python3
"""Real outcome sets end to end: convert (tools/convert-outcomes), ingest,
`rtr info --json`, and the h5py snippet of docs/FORMAT.md run on a real corpus.

Needs ../shared/data (RTR_SHARED_DATA); exits 77 (skipped) without it. The
h5py read-back is skipped, and said so, when h5py is not installed."""
import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

from rtrtest import SHARED_DATA as DATA, SRC, check, finish, skip, skip_part

RTR = os.environ.get("RTR", "rtr")


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def build_corpus(tmp, kind, sources, name):
    conv = os.path.join(tmp, name + "-canon")
    run(sys.executable, os.path.join(SRC, "tools", "convert-outcomes"), kind, *sources, "--out", conv)
    corpus = os.path.join(tmp, name)
    run(RTR, "ingest", "--catalog", os.path.join(conv, "catalog.json"), "--out", corpus,
        os.path.join(conv, "outcomes.jsonl"))
    return corpus, json.loads(run(RTR, "info", corpus, "--json"))


def routerbench(tmp):
    files = sorted(glob.glob(os.path.join(DATA, "routerbench_zs", "*.csv")))
    corpus, info = build_corpus(tmp, "routerbench-csv", files, "routerbench")
    check(info["n_queries"] == 3178, f"routerbench queries {info['n_queries']} != 3178")
    check(len(info["pairs"]) == 11, "routerbench pairs != 11")
    # Accuracy and USD cost of each model straight from the source CSVs.
    csv.field_size_limit(1 << 30)
    sums = {}
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                for p in info["pairs"]:
                    m = p["model"]
                    s = sums.setdefault(m, [0.0, 0, 0.0, 0])
                    if rec[m].strip() != "":
                        s[0] += float(rec[m]); s[1] += 1
                    if rec[m + "|total_cost"].strip() != "":
                        s[2] += float(rec[m + "|total_cost"]); s[3] += 1
    for p in info["pairs"]:
        acc, n, cost, nc = sums[p["model"]]
        check(abs(p["accuracy"] - acc / n) < 1e-6, f"{p['model']}: accuracy {p['accuracy']} vs CSV {acc / n}")
        check(p["n_correct"] == n and p["missing_correct"] == 3178 - n, f"{p['model']}: missing count")
        check(abs(p["mean_cost"] - cost / nc) <= 1e-6 * max(1.0, cost / nc), f"{p['model']}: mean cost")
        check(p["mean_tokens"] > 0, f"{p['model']}: tokens counted")
    groups = {(g["dataset"], g["split"]): g["n_queries"] for g in info["groups"]}
    check(groups.get(("arc-challenge", "train")) == 1039 and groups.get(("mbpp", "test")) == 128, f"groups {groups}")
    return corpus


def mot(tmp):
    corpus, info = build_corpus(tmp, "mot-json", [os.path.join(DATA, "mot_date")], "mot")
    check(info["n_queries"] == 369, f"mot queries {info['n_queries']}")
    # 3 models x {cot, pot} x 2 demo sets x {one sample, self-consistency} + GPT-4 greedy x 4
    check(len(info["pairs"]) == 3 * 2 * 2 * 2 + 4, f"mot pairs {len(info['pairs'])}")
    check(all(p["missing_correct"] == 0 and p["missing_tokens"] == 0 for p in info["pairs"]), "mot: every pair complete")
    # GPT-4's greedy chain-of-thought accuracy straight from its file.
    with open(os.path.join(DATA, "mot_date", "GPT4", "date_greedy_cot1.json"), encoding="utf-8") as f:
        recs = json.load(f)
    norm = lambda s: tuple(int(x) for x in s.split("/")) if re.fullmatch(r"\d+/\d+/\d+", s.strip()) else s.strip()
    direct = sum(norm(r["results"][0]) == norm(r["answer"]) for r in recs) / len(recs)
    p = next(p for p in info["pairs"] if p["model"] == "gpt-4" and p["strategy"] == "cot-greedy-d1")
    check(abs(p["accuracy"] - direct) < 1e-6, f"gpt-4 greedy cot accuracy {p['accuracy']} vs {direct}")
    splits = {g["split"]: g["n_queries"] for g in info["groups"]}
    check(abs(splits.get("test", 0) / 369 - 0.3) < 0.08, f"mot split {splits}")


def h5py_snippet(corpus):
    """Run the Python code block of docs/FORMAT.md, as a user would, on a real corpus."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        skip_part("h5py not installed, FORMAT.md snippet not run")
        return
    doc = open(os.path.join(SRC, "docs", "FORMAT.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    check(len(blocks) >= 1, "docs/FORMAT.md has a python block")
    out = subprocess.run([sys.executable, "-c", blocks[0]], env={**os.environ, "CORPUS": corpus},
                         capture_output=True, text=True)
    check(out.returncode == 0, f"FORMAT.md snippet failed: {out.stderr}")
    check("3178 queries" in out.stdout and "gpt-4-1106-preview|zero-shot" in out.stdout, f"snippet output: {out.stdout[:300]}")


def main():
    if not os.path.isdir(os.path.join(DATA, "routerbench_zs")):
        skip(f"{DATA} not found (the real routing sets live in ../shared/data)")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = routerbench(tmp)
        mot(tmp)
        h5py_snippet(corpus)
    finish()


if __name__ == "__main__":
    main()
