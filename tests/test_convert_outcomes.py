#!/usr/bin/env python3
"""tools/convert-outcomes on small files made here: MoT result folders under
the published repository's names (*_result) with several task files and an
unusable record, the long CSV table and its errors, and RouterBench's price
fit (exact on calls priced by a known rule, training files only). With
../shared/data, the fit on the real RouterBench files too (a skipped part
without it)."""
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile

from rtrtest import SHARED_DATA, SRC, check, finish, skip_part

CONVERT = os.path.join(SRC, "tools", "convert-outcomes")


def convert(*args):
    return subprocess.run([sys.executable, CONVERT, *args], capture_output=True, text=True)


def load(out):
    with open(os.path.join(out, "catalog.json"), encoding="utf-8") as f:
        cat = json.load(f)
    with open(os.path.join(out, "outcomes.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return cat, rows


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def mot_folders(tmp):
    src = os.path.join(tmp, "mot")
    gsm = [{"question": "Q one", "answer": 18, "generated": ["a = 18", "a = 17", "a = 18"],
            "results": [18.0, 17.0, 18.0], "prediction": 18.0},
           {"question": "Q two", "answer": 3, "generated": [], "results": [], "prediction": None}]
    write_json(os.path.join(src, "GPT4_result", "gsm_cot1.json"), gsm)
    write_json(os.path.join(src, "GPT4_result", "gsm_cot1_t=0.4.json"), gsm)
    date = [{"question": "When?", "answer": "05/01/2021", "generated": ["5/1/2021"], "results": ["5/1/2021"],
             "prediction": "5/1/2021"}]
    write_json(os.path.join(src, "GPT4_result", "date_greedy_pot2.json"), date)
    write_json(os.path.join(src, "llama2_13B_result", "gsm_pot1.json"),
               [{"question": "Q one", "answer": "18", "generated": ["x", "y"], "results": ["18"],
                 "prediction": "18"}, gsm[1]])
    write_json(os.path.join(src, "GPT4_result", "notes.json"), {"ignored": True})
    out = os.path.join(tmp, "mot-out")
    r = convert("mot-json", src, "--out", out)
    check(r.returncode == 0, "mot-json on *_result folders: " + r.stderr)
    if r.returncode:
        return
    cat, rows = load(out)
    check({m["name"] for m in cat["models"]} == {"gpt-4", "llama-2-13b-chat"}, f"models {cat['models']}")
    check(sorted(r_["id"] for r_ in rows) == ["date-000", "gsm-000"], f"queries {[r_['id'] for r_ in rows]}")
    check({r_["dataset"] for r_ in rows} == {"date", "gsm"}, "datasets from the task names")
    for name in ("sc-cot-d1-t0.4", "cot-d1", "pot-greedy-d2", "sc-pot-d1"):
        check(any(s["name"] == name for s in cat["strategies"]), f"strategy {name} in the catalog")
    q = next(r_ for r_ in rows if r_["id"] == "gsm-000")
    by = {(o["model"], o["strategy"]): o for o in q["outcomes"]}
    check(abs(by[("gpt-4", "cot-d1")]["correct"] - 2 / 3) < 1e-9, "numeric answers compare as numbers (18 == 18.0)")
    check(by[("gpt-4", "sc-cot-d1")]["correct"] == 1.0, "majority vote outcome")
    check(by[("llama-2-13b-chat", "pot-d1")]["correct"] == 0.5, "one result of two samples: a failed program is wrong")
    d = next(r_ for r_ in rows if r_["id"] == "date-000")
    check(d["outcomes"][0]["correct"] == 1.0, "dates compare as numbers (5/1/2021 == 05/01/2021)")
    check("gsm_cot1.json: record 1: zero samples" in r.stderr, "the zero-sample record is named: " + r.stderr)
    check("3 unusable record(s) skipped" in r.stderr, "the skipped records are counted: " + r.stderr)
    # both spellings of one model's folder are an error, not a silent merge
    write_json(os.path.join(src, "GPT4", "gsm_cot1.json"), gsm)
    r = convert("mot-json", src, "--out", os.path.join(tmp, "mot-dup"))
    check(r.returncode != 0 and "two folders for gpt-4" in r.stderr, "GPT4 and GPT4_result together: " + r.stderr)


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def long_table(tmp):
    path = os.path.join(tmp, "long.csv")
    header = ["query", "text", "model", "strategy", "correct", "tokens", "cost", "dataset", "split"]
    write_csv(path, header, [["q1", "What is 2+2?", "m1", "cot", "1", "30", "0.001", "math", "train"],
                             ["q1", "What is 2+2?", "m2", "direct", "0", "", "NA", "math", "train"],
                             ["q2", "Line one\nline, two", "m1", "cot", "0.5", "12", "", "trivia", "test"]])
    desc = os.path.join(tmp, "desc.json")
    write_json(desc, {"m1": "Model one, small."})
    out = os.path.join(tmp, "long-out")
    r = convert("long", path, "--out", out, "--descriptions", desc)
    check(r.returncode == 0, "long CSV: " + r.stderr)
    if r.returncode == 0:
        cat, rows = load(out)
        check(cat["pairs"] == [["m1", "cot"], ["m2", "direct"]], f"pairs {cat['pairs']}")
        check(cat["models"][0]["description"] == "Model one, small." and cat["models"][1]["description"] == "m2",
              "descriptions from the file, else the name")
        q1 = rows[0]
        check(q1["split"] == "train" and q1["dataset"] == "math" and len(q1["outcomes"]) == 2, f"q1 {q1}")
        check(q1["outcomes"][1]["tokens"] is None and q1["outcomes"][1]["cost"] is None, "empty and NA are missing")
        check(rows[1]["text"] == "Line one\nline, two" and rows[1]["outcomes"][0]["correct"] == 0.5, "quoted text")
    long_parquet(tmp, out)
    # errors name the file, line and field
    cases = [
        ([["q1", "t", "m1", "cot", "yes", "", "", "", ""]], "long.csv:2: correct 'yes' is not a number"),
        ([["q1", "t", "m1", "cot", "1.5", "", "", "", ""]], "long.csv:2: correct 1.5 outside [0, 1]"),
        ([["q1", "t", "m1", "cot", "1", "", "", "", ""], ["q1", "t", "m1", "cot", "0", "", "", "", ""]],
         "long.csv:3: query q1 has a second row for m1 / cot (first on line 2)"),
        ([["q1", "t", "m1", "cot", "1", "-4", "", "", ""]], "long.csv:2: tokens -4.0 outside"),
        ([["q1", "t", "m1", "cot", "1", "", "", "", "dev"]], "long.csv:2: split 'dev'"),
    ]
    for rows_, msg in cases:
        write_csv(path, header, rows_)
        r = convert("long", path, "--out", os.path.join(tmp, "bad"))
        check(r.returncode != 0 and msg in r.stderr, f"expected '{msg}', got: {r.stderr.strip()}")
    write_csv(path, ["query", "text", "model"], [["q1", "t", "m1"]])
    r = convert("long", path, "--out", os.path.join(tmp, "bad"))
    check(r.returncode != 0 and "missing column(s) strategy, correct" in r.stderr, "missing columns: " + r.stderr)
    check(not os.path.exists(os.path.join(tmp, "bad", "outcomes.jsonl")), "nothing written on error")


def long_parquet(tmp, csv_out):
    """The long table above as Parquet, with typed columns (correct a
    boolean, tokens an integer with a null, cost a float with a null):
    converted to the same catalog and rows as the CSV; a damaged file is
    refused naming it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        print("note: pyarrow is not installed (tools/setup-deps installs it): the Parquet part is not run")
        return
    table = pa.table({
        "query": ["q1", "q1", "q2"], "text": ["What is 2+2?", "What is 2+2?", "Line one\nline, two"],
        "model": ["m1", "m2", "m1"], "strategy": ["cot", "direct", "cot"],
        "correct": pa.array([1.0, 0.0, 0.5], pa.float64()), "tokens": pa.array([30, None, 12], pa.int64()),
        "cost": pa.array([0.001, None, None], pa.float64()), "dataset": ["math", "math", "trivia"],
        "split": ["train", "train", "test"]})
    path = os.path.join(tmp, "long.parquet")
    pq.write_table(table, path)
    out = os.path.join(tmp, "long-parquet-out")
    r = convert("long", path, "--out", out, "--descriptions", os.path.join(tmp, "desc.json"))
    def same(o):  # the catalog names its source file; all else must match the CSV's conversion
        cat, rows = load(o)
        cat.pop("source")
        return cat, rows
    check(r.returncode == 0 and same(out) == same(csv_out), "Parquet converts to what the same CSV gives: " + r.stderr)
    booleans = os.path.join(tmp, "bool.parquet")
    pq.write_table(table.set_column(4, "correct", pa.array([True, False, True])), booleans)
    r = convert("long", booleans, "--out", os.path.join(tmp, "bool-out"))
    check(r.returncode == 0 and [o["correct"] for q in load(os.path.join(tmp, "bool-out"))[1] for o in q["outcomes"]]
          == [1.0, 0.0, 1.0], "a boolean correct column reads as 1/0: " + r.stderr)
    damaged = os.path.join(tmp, "damaged.parquet")
    with open(path, "rb") as f, open(damaged, "wb") as g:
        g.write(f.read()[:200])
    r = convert("long", damaged, "--out", os.path.join(tmp, "damaged-out"))
    check(r.returncode == 1 and "damaged.parquet: cannot read as Parquet" in r.stderr and "Traceback" not in r.stderr
          and not os.path.exists(os.path.join(tmp, "damaged-out", "outcomes.jsonl")), "a damaged Parquet file: " + r.stderr)


HEADER = b"query,text,model,strategy,correct\n"
# (name, table bytes, message): each must exit 1 naming the file (and line), write nothing, print no traceback
BAD_TABLES = [
    ("truncated", HEADER + b"q1,hi,m1,cot,1\nq2,hello", "truncated.csv:3: 2 cells, the header has 5"),
    ("extra-cell", HEADER + b"q1,hi,m1,cot,1,9\n", "extra-cell.csv:2: 6 cells, the header has 5"),
    ("dup-column", b"query,text,model,strategy,correct,correct\nq1,hi,m1,cot,1,0\n",
     "dup-column.csv:1: column(s) correct given twice"),
    ("bad-utf8", HEADER + b"q1,h\xffi,m1,cot,1\n", "bad-utf8.csv:2: invalid UTF-8 at byte 38"),
    ("bar-name", HEADER + b"q1,hi,m|1,cot,1\n", "bar-name.csv:2: model or strategy name 'm|1' holds '|'"),
    ("inf-tokens", b"query,text,model,strategy,correct,tokens\nq1,hi,m1,cot,1,1e400\n", "inf-tokens.csv:2: tokens inf"),
]


def long_bad_inputs(tmp):
    """Files and folders a user gets wrong: named, exit 1, no traceback, no output left."""
    d = os.path.join(tmp, "bad-inputs")
    os.makedirs(d)

    def refused(args, msg, rc=1):
        r = convert(*args)
        check(r.returncode == rc and msg in r.stderr and "Traceback" not in r.stderr,
              f"{args[:2]}: expected exit {rc} and '{msg}', got {r.returncode}: {r.stderr.strip()[-300:]}")
        left = glob.glob(os.path.join(d, "out", "*"))
        check(not left, f"{args[:2]}: output left: {left}")

    for name, data, msg in BAD_TABLES:
        with open(os.path.join(d, name + ".csv"), "wb") as f:
            f.write(data)
        refused(("long", os.path.join(d, name + ".csv"), "--out", os.path.join(d, "out")), msg)
    good = os.path.join(d, "good.csv")
    with open(good, "wb") as f:  # a BOM and CRLF line ends (Excel's CSV), a blank line, pandas' True/False
        f.write(b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") + b"q1,hi,m1,cot,True\r\n\r\nq2,ho,m1,cot,false\r\n")
    r = convert("long", good, "--out", os.path.join(d, "good-out"))
    check(r.returncode == 0, "BOM, CRLF, blank line, True/false: " + r.stderr)
    if r.returncode == 0:
        _, rows = load(os.path.join(d, "good-out"))
        check([x["outcomes"][0]["correct"] for x in rows] == [1.0, 0.0], f"True/false read as 1/0: {rows}")
    with open(os.path.join(d, "deep.json"), "w") as f:
        f.write("[" * 100000)
    os.makedirs(os.path.join(d, "mot", "GPT3_result"))
    with open(os.path.join(d, "mot", "GPT3_result", "date_cot1.json"), "w") as f:
        f.write('[{"question": \n')
    for args, msg, rc in [
        (("long", os.path.join(d, "nosuch.csv")), "nosuch.csv: No such file or directory", 1),
        (("long", d), "bad-inputs: Is a directory", 1),
        (("long", good, "--descriptions", os.path.join(d, "deep.json")), "deep.json: JSON nested too deeply", 1),
        (("long", good, "--test-fraction", "nan"), "--test-fraction nan: must be in [0, 1]", 2),
        (("mot-json", os.path.join(d, "nosuch")), "nosuch: No such file or directory", 1),
        (("mot-json", os.path.join(d, "mot")), "date_cot1.json:2: not valid JSON", 1),
    ]:
        refused((*args, "--out", os.path.join(d, "out")), msg, rc)
    # --out an existing file (here the input itself): refused, the file untouched
    before = open(good, "rb").read()
    refused(("long", good, "--out", good), "good.csv: exists and is not a folder")
    check(open(good, "rb").read() == before, "--out the input: the input untouched")


def full_disk(tmp):
    """Output on a 64 KiB tmpfs: exit 1 naming the folder, neither file left (nor a temporary)."""
    d = os.path.join(tmp, "full")
    os.makedirs(d)
    rows = [["q%d" % i, "text " * 40, "m1", "cot", "1"] for i in range(2000)]
    write_csv(os.path.join(d, "big.csv"), ["query", "text", "model", "strategy", "correct"], rows)
    disk = os.path.join(d, "disk")
    os.makedirs(disk)
    script = ('mount -t tmpfs -o size=64k tmpfs "$1" || exit 99; "$2" "$3" long "$4" --out "$1/o"; echo "rc=$?"; '
              'ls -A "$1/o"')
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script, "_", disk, sys.executable, CONVERT,
                        os.path.join(d, "big.csv")], capture_output=True, text=True)
    if "rc=" not in r.stdout:
        skip_part("cannot mount a tmpfs in a private namespace (unshare -rm): the full disk is not tried")
        return
    check("rc=1" in r.stdout and "No space left on device" in r.stderr and "Traceback" not in r.stderr,
          f"full disk: {r.stdout} {r.stderr[-300:]}")
    check(r.stdout.strip().endswith("rc=1"), "full disk: files left in the output folder: " + r.stdout)


MODELS = ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"]
PRICES = {"gpt-4-1106-preview": (10.0, 30.0), "mistralai/mistral-7b-chat": (0.2, 0.0)}


def routerbench_prices(tmp):
    sys.path.insert(0, os.path.dirname(CONVERT))
    header = ["", "sample_id", "prompt", "eval_name"]
    for m in MODELS:
        header += [m, m + "|total_cost", m + "|model_response"]
    header.append("oracle_model_to_route_to")
    responses = ["Yes.", "The answer is B because of the long reason given here", "def f(x):\n    return x + 1"]
    demos = "Example one?\nAnswer: A\n\nExample two?\nAnswer: B\n\n"  # few-shot demonstrations every prompt shares
    prompts = [demos + q for q in ("Short?", "A somewhat longer prompt with more words in it", "Write a function adding one " * 5)]

    def priced(model, prompt, response, split):
        # input tokens: UTF-8 bytes / 4; output: the converter's own count (letters, digits, symbols)
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader("convert_outcomes", CONVERT)
        spec = importlib.util.spec_from_loader("convert_outcomes", loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        p_in, p_out = PRICES[model]
        usd = (len(prompt.encode()) / 4 * p_in + mod.count_tokens(response) * p_out) / 1e6
        return usd if split == "train" else usd * 7  # test calls priced differently: must not move the fit

    files = []
    for split in ("train", "test"):
        rows = []
        for i, (pr, resp) in enumerate(zip(prompts, responses)):
            row = [str(i), f"s{i}", repr([pr]), "toy"]
            for m in MODELS:
                row += ["1.0", repr(priced(m, pr, resp, split)), resp]
            rows.append(row + [MODELS[0]])
        path = os.path.join(tmp, f"toy_{split}.csv")
        write_csv(path, header, rows)
        files.append(path)
    out = os.path.join(tmp, "rb-out")
    r = convert("routerbench-csv", *files, "--out", out)
    check(r.returncode == 0, "routerbench-csv: " + r.stderr)
    if r.returncode:
        return
    cat, rows = load(out)
    check(rows[0]["text"] == "Short?\n\n" + demos[:-2] and cat["query_first"]["shared_prefix_chars"] == {"toy": len(demos)},
          f"the query comes before the shared demonstrations: {rows[0]['text']!r}")
    check(all(len(r["text"]) == len(p) for r, p in zip(rows, prompts * 2)), "the same characters (input tokens) kept")
    r2 = convert("routerbench-csv", *files, "--out", out + "-pub", "--prompt-as-published")
    check(r2.returncode == 0 and load(out + "-pub")[1][0]["text"] == prompts[0], "--prompt-as-published keeps the order")
    for m in cat["models"]:
        p_in, p_out = PRICES[m["name"]]
        check(abs(m["price_in"] - p_in) < 1e-4 and abs(m["price_out"] - p_out) < 1e-4,
              f"{m['name']}: fitted {m.get('price_in')}/{m.get('price_out')} vs {p_in}/{p_out}")
        check(cat["price_fit"][m["name"]]["calls"] == 3, "fitted on the 3 training calls only")


def routerbench_real(tmp):
    files = sorted(glob.glob(os.path.join(SHARED_DATA, "routerbench_zs", "*.csv")))
    if not files:
        skip_part(f"{SHARED_DATA}/routerbench_zs not found: the fit on the real files is not checked")
        return
    out = os.path.join(tmp, "rb-real")
    r = convert("routerbench-csv", *files, "--out", out)
    check(r.returncode == 0, "routerbench-csv on the real files: " + r.stderr)
    if r.returncode:
        return
    cat, _ = load(out)
    check(len(cat["models"]) == 11 and all("price_in" in m and "price_out" in m for m in cat["models"]),
          "every RouterBench model gets prices")
    fits = cat["price_fit"]
    check(all(fits[m["name"]]["r2"] > 0.9 for m in cat["models"]), f"R^2 > 0.9 for every model: {fits}")
    gpt4 = next(m for m in cat["models"] if m["name"] == "gpt-4-1106-preview")
    mistral = next(m for m in cat["models"] if m["name"] == "mistralai/mistral-7b-chat")
    check(gpt4["price_out"] > 20 * mistral["price_out"], "GPT-4 output far dearer than Mistral 7B's")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        mot_folders(tmp)
        long_table(tmp)
        long_bad_inputs(tmp)
        full_disk(tmp)
        routerbench_prices(tmp)
        routerbench_real(tmp)
    finish()


if __name__ == "__main__":
    main()
