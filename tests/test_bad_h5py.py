#!/usr/bin/env python3
"""Corpora annotated or rewritten with h5py (docs/robustness.md, session 9).

rtr writes fixed-length scalar string attributes. A corpus whose shards,
embeddings and routing table had every string attribute rewritten as a
1-element array (h5py's `attrs.create(k, [numpy.bytes_(v)])`) or
space-padded (as Fortran and MATLAB write) must give `rtr info`, `rtr
route` and `rtr eval` the same answers as the original (both were refused
or misread). A variable-length string (h5py's default for a str) is
refused naming the file, the attribute and the fix: HDF5 1.10 reads it from
the global heap, and loops forever on a damaged heap (the shard fuzzer hung
there). A genuinely wrong type (an integer catalog_hash, a 2-element
string array) is refused naming the file and the attribute.

Embeddings and the table are written with tests/rtrdata.py (no encoder or
training needed)."""
import glob
import json
import os
import shutil
import subprocess
import tempfile

import rtrtest
from rtrtest import check, demo_corpus, finish, require_numpy_h5py, require_rtr, run

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402


def unit(rng, n):
    x = rng.standard_normal((n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def h5_files(corpus):
    return sorted(glob.glob(os.path.join(corpus, "**", "*.h5"), recursive=True))


def string_attrs(h):
    return [k for k, v in h.attrs.items() if isinstance(v, (bytes, np.bytes_, str))]


def rewrite(corpus, how):
    """Every string attribute of every HDF5 file of corpus rewritten by how."""
    n = 0
    for path in h5_files(corpus):
        with h5py.File(path, "r+") as h:
            for k in string_attrs(h):
                v = h.attrs[k]
                v = v.decode() if isinstance(v, (bytes, np.bytes_)) else v
                del h.attrs[k]
                how(h, k, v)
                n += 1
    return n


def vlen_utf8(h, k, v):
    h.attrs[k] = v  # h5py's default for a str


def fixed_1elem(h, k, v):
    h.attrs.create(k, [np.bytes_(v)])


def space_padded(h, k, v):
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(len(v) + 7)
    tid.set_strpad(h5py.h5t.STR_SPACEPAD)
    h.attrs.create(k, np.bytes_(v + " " * 7), dtype=h5py.Datatype(tid))


def answers(tmp, corpus, tag):
    """What info, route and eval say of corpus (their JSON and outputs)."""
    out = {}
    r = run("info", corpus, "--json")
    check(r.returncode == 0, f"{tag}: rtr info: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    out["info"] = json.loads(r.stdout) if r.returncode == 0 else None
    dec = os.path.join(tmp, tag + "-dec.jsonl")
    r = run("route", corpus, "--lambda", "0.6", "--split", "all", "--out", dec)
    check(r.returncode == 0, f"{tag}: rtr route: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    out["route"] = open(dec).read() if r.returncode == 0 else None
    ev = os.path.join(tmp, tag + "-eval.json")
    r = run("eval", corpus, "--out", ev, "--bootstrap", "0", "--threads", "1")
    check(r.returncode == 0, f"{tag}: rtr eval: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    out["eval"] = json.load(open(ev)) if r.returncode == 0 else None
    return out


def without_paths(x, corpus):
    """x with the corpus folder's name taken out (the copies sit elsewhere)
    and the time a command took (eval's "seconds") left out."""
    x = json.loads(json.dumps(x).replace(corpus, "CORPUS"))
    if isinstance(x, dict):
        x.pop("seconds", None)
    return x


def first_difference(a, b, where=""):
    """The path of the first value where a and b differ (None: equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k), b.get(k), f"{where}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{where}: {str(a)[:80]} against {str(b)[:80]}"


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_h5py_")
    corpus = demo_corpus(tmp, 300, 3, 120)
    cat = rtrdata.manifest(corpus)["catalog"]
    rng = np.random.default_rng(5)
    desc = (unit(rng, len(cat["models"])), unit(rng, len(cat["strategies"])))

    def emb_of(path):
        with h5py.File(path, "r") as h:
            return unit(rng, int(h.attrs["n_queries"]))

    rtrdata.write_embeddings(corpus, "stand-in", "test-encoder", emb_of, desc, encoder="test")
    rtrdata.write_table(corpus, "h5py", rtrdata.noisy_table(rng, 0.1, 0.8, 1.2), "h5py", "stand-in", "test-encoder")
    want = answers(tmp, corpus, "original")

    for name, how in (("fixed-1elem", fixed_1elem), ("space-padded", space_padded)):
        copy = os.path.join(tmp, name)
        shutil.copytree(corpus, copy)
        n = rewrite(copy, how)
        check(n >= 5 * len(h5_files(copy)) // 2, f"{name}: {n} string attributes rewritten")
        with h5py.File(h5_files(copy)[0], "r") as h:
            t = h5py.h5a.open(h.id, b"rtr_schema").get_type()
            vl = t.is_variable_str()
            check(not vl, f"{name}: written as fixed-length strings")
        got = answers(tmp, copy, name)
        for k in ("info", "route", "eval"):
            diff = got[k] is None or first_difference(without_paths(got[k], copy), without_paths(want[k], corpus))
            check(not diff, f"{name}: rtr {k} answers as on the original: {diff}")

    # variable-length strings: refused naming the file, the attribute and the fix
    copy = os.path.join(tmp, "vlen")
    shutil.copytree(corpus, copy)
    rewrite(copy, vlen_utf8)
    shard = os.path.join(copy, "shard-00000.h5")
    for cmd in (("info", copy), ("route", copy, "--lambda", "0.5", "--out", os.path.join(tmp, "vlen.csv"))):
        r = run(*cmd)
        check(r.returncode == 1 and f"{shard}: attribute" in r.stderr and "variable-length string" in r.stderr
              and "numpy.bytes_" in r.stderr, f"vlen attributes: rtr {cmd[0]} exit {r.returncode}: {r.stderr.strip()[-300:]}")

    # genuinely wrong types: refused, naming the file and the attribute
    bad = [("catalog_hash", lambda h: h.attrs.__setitem__("catalog_hash", np.int64(7)), "not a string"),
           ("catalog_hash", lambda h: h.attrs.__setitem__("catalog_hash", ["a", "b"]), "not a single value"),
           ("rtr_schema", lambda h: h.attrs.create("rtr_schema", [], dtype=h5py.string_dtype()), "not a single value")]
    for i, (key, edit, words) in enumerate(bad):
        copy = os.path.join(tmp, f"bad{i}")
        shutil.copytree(corpus, copy)
        shard = os.path.join(copy, "shard-00001.h5")
        with h5py.File(shard, "r+") as h:
            del h.attrs[key]
            edit(h)
        for cmd in (("info", copy), ("route", copy, "--lambda", "0.5", "--out", os.path.join(tmp, f"bad{i}.csv"))):
            r = run(*cmd)
            check(r.returncode == 1 and shard in r.stderr and key in r.stderr and words in r.stderr,
                  f"bad {key} ({words}): rtr {cmd[0]} exit {r.returncode}: {r.stderr.strip()[-300:]}")

    latin1_attrs(tmp, corpus)
    nul_inside(tmp, corpus)
    shutil.rmtree(tmp)


def latin1_attrs(tmp, corpus):
    """Bytes of another encoding in a string attribute (a C or MATLAB writer's
    Latin-1) passed into `info`, eval.json and route's files, which then did
    not parse as UTF-8: refused naming the file and the attribute. A
    checkpoint whose file name is Latin-1 is scored with the name made valid
    (U+FFFD for the byte), so rtr never writes what it refuses."""
    cases = (("tables", "tables", "h5py", "checkpoint", ".csv", ("route", "--table", "h5py", "--lambda", "0.5")),
             ("embeddings", "encodings", "stand-in", "encoder", ".json", ("eval", "--bootstrap", "0", "--threads", "1")))
    for kind, listed, name, key, ext, cmd in cases:
        copy = os.path.join(tmp, f"latin1-{key}")
        shutil.copytree(corpus, copy)
        files = sorted(glob.glob(os.path.join(copy, kind, name, "shard-*.h5")))
        for path in files:  # every shard alike, so the shards still agree
            with h5py.File(path, "r+") as h:
                del h.attrs[key]
                h.attrs[key] = np.bytes_(b"caf\xe9")
        r = subprocess.run([rtrtest.RTR, "info", copy, "--json"], capture_output=True)
        ok = r.returncode == 0
        try:
            sets = json.loads(r.stdout.decode("utf-8"))[listed]
            got = [x for x in sets if x["name"] == name][0]
        except (UnicodeDecodeError, ValueError, IndexError, KeyError) as e:
            ok, got = False, str(e)
        check(ok and not got["usable"] and f"{files[0]}: attribute {key} is not valid UTF-8" in got.get("problem", ""),
              f"latin-1 {key}: info --json valid UTF-8 and the set not usable, naming file and attribute: {got}")
        out = os.path.join(tmp, f"latin1-{key}{ext}")
        r = run(cmd[0], copy, *cmd[1:], "--out", out)
        check(r.returncode == 1 and f"attribute {key} is not valid UTF-8" in r.stderr and not os.path.exists(out),
              f"latin-1 {key}: rtr {cmd[0]} exit {r.returncode}: {r.stderr.strip()[-300:]}")

    ck = os.path.join(tmp, "ck\udce9.safetensors")  # the byte 0xe9 in the file name
    for cmd in (("train", corpus, "--out", ck, "--hidden", "8", "--epochs", "1", "--threads", "1"),
                ("score", corpus, "--checkpoint", ck, "--name", "latin1", "--threads", "1")):
        r = subprocess.run([rtrtest.RTR, *cmd], capture_output=True)  # bytes: the name is not UTF-8
        check(r.returncode == 0, f"{cmd[0]} with a Latin-1 checkpoint name: {r.stderr.strip()[-300:]}")
    r = subprocess.run([rtrtest.RTR, "info", corpus, "--json"], capture_output=True)
    try:
        t = [x for x in json.loads(r.stdout.decode("utf-8"))["tables"] if x["name"] == "latin1"][0]
    except (UnicodeDecodeError, ValueError, IndexError) as e:
        t = {"error": str(e)}
    check(t.get("checkpoint") == "ck\ufffd.safetensors" and t.get("usable"),
          f"a Latin-1 checkpoint name is stored as valid UTF-8 and the table usable: {t}")


def nul_inside(tmp, corpus):
    """A fixed-length string attribute with a NUL and then more text: read
    as a C string, "h\\0xyz" was "h", so --checkpoint-hash h matched a table
    whose hash is something else. Refused naming the file, the attribute and
    the byte."""
    copy = os.path.join(tmp, "nul-inside")
    shutil.copytree(corpus, copy)
    files = sorted(glob.glob(os.path.join(copy, "tables", "h5py", "shard-*.h5")))
    for path in files:
        with h5py.File(path, "r+") as h:
            del h.attrs["checkpoint_hash"]
            h.attrs["checkpoint_hash"] = np.bytes_(b"h\x00\xff\xfeanything")
    out = os.path.join(tmp, "nul.csv")
    r = run("route", copy, "--table", "h5py", "--lambda", "0.5", "--checkpoint-hash", "h", "--out", out)
    check(r.returncode == 1 and "attribute checkpoint_hash has a NUL at byte 1" in r.stderr and files[0] in r.stderr
          and not os.path.exists(out), f"NUL inside checkpoint_hash: rtr route exit {r.returncode}: {r.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()
    finish()
