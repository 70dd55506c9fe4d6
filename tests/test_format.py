#!/usr/bin/env python3
"""The corpus format of docs/FORMAT.md from the outside: its h5py snippet run
on a demo corpus with embeddings and two routing tables (what it prints
checked against rtr's own numbers), and `rtr upgrade` of a corpus of schema
version 1 written here with h5py in the old layout (strings as
variable-length HDF5 strings, embeddings and one table inside the shards):
the upgraded corpus holds the same rows, embeddings and table."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from rtrtest import SRC, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def snippet():
    doc = open(os.path.join(SRC, "docs", "FORMAT.md"), encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", doc, re.S)[0]


def write_v1(v2, v1, emb, table):
    """The rows of corpus v2 as a schema version 1 corpus v1, with the
    embeddings emb [N x D] and the table {"p_correct", "tokens"} inside its
    shards, as rtr wrote them before version 2."""
    os.makedirs(v1)
    m = rtrdata.manifest(v2)
    vlen = h5py.string_dtype("utf-8")
    row = 0
    for path, file, _, n in rtrdata.shards(v2):
        with h5py.File(path, "r") as f, h5py.File(os.path.join(v1, file), "w") as g:
            g.attrs["rtr_schema"] = "rtr-shard"
            g.attrs["rtr_schema_version"] = np.int64(1)
            g.attrs["n_queries"] = np.int64(n)
            g.attrs["n_pairs"] = np.int64(len(m["catalog"]["pairs"]))
            g.attrs["catalog_json"] = json.dumps(m["catalog"])
            for col in ("id", "text", "dataset", "split"):
                g.create_dataset("queries/" + col, data=np.array(rtrdata.strings(f, col), dtype=object), dtype=vlen)
            for col in ("correct", "tokens", "cost"):
                g["outcomes/" + col] = f["outcomes/" + col][()]
            g["embedding/query"] = emb[row:row + n]
            g["embedding/model_desc"] = np.ones((len(m["catalog"]["models"]), emb.shape[1]), np.float32)
            g["embedding/strategy_desc"] = np.zeros((len(m["catalog"]["strategies"]), emb.shape[1]), np.float32)
            for d in ("query", "model_desc", "strategy_desc"):
                g["embedding/" + d].attrs["encoder"] = "old-encoder"
                g["embedding/" + d].attrs["encoder_hash"] = "0ld"
            for k in ("p_correct", "tokens"):
                g["routing/" + k] = table[k][row:row + n]
            g["routing/p_correct"].attrs["checkpoint_hash"] = "0ldck"
        row += n
    v1m = dict(m, version=1, shards=[{"file": s["file"], "n_queries": s["n_queries"]} for s in m["shards"]])
    json.dump(v1m, open(os.path.join(v1, "manifest.json"), "w"))


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_format_")
    corpus = demo_corpus(tmp, 300, 13, 120)
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((300, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rows = iter(np.split(emb, np.cumsum([n for *_, n in rtrdata.shards(corpus)])[:-1]))
    rtrdata.write_embeddings(corpus, "bow", "hash-b", lambda path: next(rows), (np.ones((4, 8)), np.ones((4, 8))))
    for name, seed in (("ck", "1"), ("other", "2")):
        ck = os.path.join(tmp, name + ".safetensors")
        r = run("train", corpus, "--out", ck, "--hidden", "8", "--learn-dim", "4", "--epochs", "2", "--seed", seed,
                "--device", "cpu")
        check(r.returncode == 0, "train: " + r.stderr)
        r = run("score", "--checkpoint", ck, corpus, "--device", "cpu", "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["table"] == name, "score: " + r.stderr)

    # every file rtr wrote is in the HDF5 1.10 format, whose metadata carries
    # checksums (superblock version 3; the earliest format's is 0), and a
    # damaged object header is refused by its checksum, not decoded
    # (shards and tables; the embeddings here were written by h5py)
    written = [p for p, *_ in rtrdata.shards(corpus)]
    for root, _, files in os.walk(os.path.join(corpus, "tables")):
        written += [os.path.join(root, f) for f in files if f.endswith(".h5")]
    versions = {open(p, "rb").read(9)[8] for p in written}
    check(len(written) >= 9 and versions == {3}, f"superblock versions of {len(written)} files: {versions}")
    damaged = os.path.join(tmp, "damaged")
    shutil.copytree(corpus, damaged)
    shard0 = rtrdata.shards(damaged)[0][0]
    data = bytearray(open(shard0, "rb").read())
    headers = [m.start() for m in re.finditer(b"OHDR", data)]
    at = headers[len(headers) // 2] + 12  # inside an object header, past its signature and flags
    data[at] ^= 0x10
    open(shard0, "wb").write(data)
    r = run("info", damaged)
    check(r.returncode == 1 and os.path.basename(shard0) in r.stderr and "checksum" in r.stderr,
          f"a damaged object header (byte {at} of {len(headers)} headers' middle one): rc {r.returncode}: {r.stderr}")

    # the snippet of docs/FORMAT.md: every shard, both tables, the embeddings
    out = subprocess.run([sys.executable, "-c", snippet()], env={**os.environ, "CORPUS": corpus},
                         capture_output=True, text=True)
    check(out.returncode == 0, "FORMAT.md snippet: " + out.stderr)
    lines = out.stdout.splitlines()
    check(lines and lines[0].startswith("300 queries x 16 pairs"), "snippet: %s" % lines[:1])
    info = json.loads(run("info", corpus, "--json").stdout)
    for p in info["pairs"]:
        name = p["model"] + "|" + p["strategy"]
        got = next((l for l in lines if l.startswith(name + " ")), "")
        check(f"accuracy {p['accuracy']:.4f}" in got, f"{name}: snippet '{got}' vs rtr info {p['accuracy']}")
    check(f"embeddings/bow: embedding/query 300 x 8, mean {emb.mean():.4f}" in out.stdout, "snippet embeddings: " + out.stdout)
    for name in ("ck", "other"):
        mean = rtrdata.read_table(corpus, name, "p_correct").mean()
        check(f"tables/{name}: routing/p_correct 300 x 16, mean {mean:.4f}" in out.stdout, f"snippet table {name}")

    # schema version 1 -> 2
    table = {k: rtrdata.read_table(corpus, "ck", k) for k in ("p_correct", "tokens")}
    v1, up = os.path.join(tmp, "v1"), os.path.join(tmp, "up")
    write_v1(corpus, v1, emb, table)
    r = run("info", v1)
    check(r.returncode == 1 and "rtr upgrade" in r.stderr, "a version 1 corpus is refused, naming upgrade: " + r.stderr)
    before = sorted(os.listdir(v1))
    r = run("upgrade", v1, "--out", up)
    check(r.returncode == 0, "upgrade: " + r.stderr)
    check(sorted(os.listdir(v1)) == before, "the old corpus is left as it was")
    new = json.loads(run("info", up, "--json").stdout)
    check(new["pairs"] == info["pairs"] and new["groups"] == info["groups"], "the same rows")
    check([(e["name"], e["encoder_hash"], e["complete"]) for e in new["encodings"]] == [("old-encoder", "0ld", True)],
          "the embeddings: %s" % new["encodings"])
    check([(t["name"], t["checkpoint_hash"], t["complete"]) for t in new["tables"]] == [("v1", "0ldck", True)],
          "the table: %s" % new["tables"])
    for k in ("p_correct", "tokens"):
        check(np.array_equal(rtrdata.read_table(up, "v1", k), table[k]), "table " + k)
    got = np.concatenate([h5py.File(os.path.join(up, "embeddings/old-encoder", f))["embedding/query"][()]
                          for _, f, _, _ in rtrdata.shards(up)])
    check(np.array_equal(got, emb), "embeddings")
    check([s["hash"] for s in rtrdata.manifest(up)["shards"]] == [s["hash"] for s in rtrdata.manifest(corpus)["shards"]],
          "the same content hashes as ingest gave the same rows")
    r = run("upgrade", v1, "--out", up)
    check(r.returncode == 1 and "exists" in r.stderr, "upgrade refuses an existing output")
    r = run("upgrade", corpus, "--out", os.path.join(tmp, "again"))
    check(r.returncode == 1 and "version 1" in r.stderr, "upgrade of a version 2 corpus: " + r.stderr)
    r = run("route", up, "--lambda", "0.5", "--out", os.path.join(tmp, "d.csv"))
    check(r.returncode == 0, "route on the upgraded corpus: " + r.stderr)
    # counts that are not whole numbers (1e300 once reached a cast to an
    # integer, undefined behaviour) are refused, naming the field
    m1 = json.load(open(os.path.join(v1, "manifest.json")))
    for field, edit in (("shard_size", lambda m: m.update(shard_size=1e300)),
                        ("n_queries", lambda m: m["shards"][0].update(n_queries=2.5))):
        bad = os.path.join(tmp, "v1-" + field)
        shutil.copytree(v1, bad)
        m = json.loads(json.dumps(m1))
        edit(m)
        json.dump(m, open(os.path.join(bad, "manifest.json"), "w"))
        r = run("upgrade", bad, "--out", bad + "-up")
        check(r.returncode == 1 and field in r.stderr and "manifest.json" in r.stderr and not os.path.exists(bad + "-up"),
              f"upgrade with a bad {field}: rc {r.returncode}: {r.stderr}")
    # a \u without 4 hex digits: cJSON read it as NUL, cutting the
    # description, and the upgrade went through
    bad = os.path.join(tmp, "v1-escape")
    shutil.copytree(v1, bad)
    m = json.loads(json.dumps(m1))
    m["catalog"]["models"][0]["description"] = "CUT"
    open(os.path.join(bad, "manifest.json"), "w").write(json.dumps(m).replace('"CUT"', '"x\\uzzzzy"'))
    r = run("upgrade", bad, "--out", bad + "-up")
    check(r.returncode == 1 and "manifest.json" in r.stderr and "not followed by 4 hex digits" in r.stderr
          and not os.path.exists(bad + "-up"), f"upgrade of a manifest with a bad \\u escape: rc {r.returncode}: {r.stderr}")
    # damaged text columns of a version 1 shard: each is refused naming the
    # shard and the dataset, before HDF5 reads from it
    for case in ("int-text", "short-text", "storage"):
        bad = os.path.join(tmp, "v1-" + case)
        shutil.copytree(v1, bad)
        shard = os.path.join(bad, m1["shards"][0]["file"])
        with h5py.File(shard, "r+") as g:
            n = g["queries/text"].shape[0]
            if case != "storage":
                del g["queries/text"]
                g["queries/text"] = np.arange(n) if case == "int-text" else np.array(["x"] * (n - 1), dtype=object)
            offset, size = g["queries/text"].id.get_offset(), g["queries/text"].id.get_storage_size()
        if case == "storage":
            # the contiguous layout message holds the data's address and size:
            # say it stores one element less than its rows need
            raw = open(shard, "rb").read()
            at = raw.find(struct.pack("<QQ", offset, size))
            check(at > 0 and size == 16 * n, f"the layout message of queries/text ({size} bytes at {offset})")
            raw = raw[:at + 8] + struct.pack("<Q", size - 16) + raw[at + 16:]
            open(shard, "wb").write(raw)
        r = run("upgrade", bad, "--out", bad + "-up")
        want = {"int-text": "not a string dataset", "short-text": f"{n - 1} rows; expected {n}",
                "storage": f"stores {size - 16} bytes where its elements need {size}"}[case]
        check(r.returncode == 1 and "/queries/text" in r.stderr and want in r.stderr and shard in r.stderr
              and not os.path.exists(bad + "-up"), f"upgrade of a shard with a damaged text column ({case}): "
              f"rc {r.returncode}: {r.stderr}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
