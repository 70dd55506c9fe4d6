#!/usr/bin/env python3
"""Work per shard that grew with the number of shards (docs/robustness.md,
session 9), counted in system calls so that no timing is involved:

- every output a stage writes went through rtr_remove_stale_tmp, which read
  the output's whole folder: `rtr score` read tables/NAME once per shard
  (O(shards^2) directory entries at thousands of shards); a folder is now
  read once per process, and again only for an output asked about twice;
- `rtr score` opens a row reader per shard, and each one resolved the
  encoding by opening every shard's embeddings file: O(shards^2) HDF5
  opens; a complete encoding's scan is now kept in the corpus handle while
  its folder is unchanged.

Counted with strace (skipped where it is missing or cannot trace): score on
a corpus of 60 one-query shards must read its table folder fewer than 10
times (one read was 2 getdents64 calls per shard: 120 or more) and make
at most 6 openat calls of embeddings files per shard (4 here; over 120 per
shard before)."""
import os
import shutil
import subprocess
import tempfile

from rtrtest import RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run, skip

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

SHARDS = 60


def main():
    strace = shutil.which("strace")
    if not strace:
        skip("strace is not installed")
    tmp = tempfile.mkdtemp(prefix="rtr_scale_")
    # LeakSanitizer cannot run under ptrace (it stops with a fatal error): in
    # the sanitizer build the traced runs keep ASan and leave out leak checks
    env = dict(os.environ, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":"))
    probe = subprocess.run([strace, "-f", "-o", os.devnull, RTR, "--version"], capture_output=True, text=True, env=env)
    if probe.returncode != 0:
        shutil.rmtree(tmp)
        skip(f"strace cannot trace here: {probe.stderr.strip()[-200:]}")
    corpus = demo_corpus(tmp, SHARDS, 5, 1)
    cat = rtrdata.manifest(corpus)["catalog"]
    rng = np.random.default_rng(3)

    def unit(n):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    rtrdata.write_embeddings(corpus, "e", "hash-e", lambda p: unit(int(h5py.File(p, "r").attrs["n_queries"])),
                             (unit(len(cat["models"])), unit(len(cat["strategies"]))))
    ck = os.path.join(tmp, "ck.safetensors")
    r = run("train", corpus, "--out", ck, "--epochs", "1", "--hidden", "4", "--learn-dim", "0", "--device", "cpu")
    check(r.returncode == 0, f"train: {r.stderr.strip()[-300:]}")
    trace = os.path.join(tmp, "trace")
    r = subprocess.run([strace, "-f", "-qq", "-y", "-e", "trace=getdents64,openat", "-o", trace, RTR, "score",
                        "--checkpoint", ck, corpus, "--name", "t", "--device", "cpu", "-q"],
                       capture_output=True, text=True, env=env)
    check(r.returncode == 0 and len(os.listdir(os.path.join(corpus, "tables", "t"))) == SHARDS,
          f"score under strace: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    calls = open(trace).read().splitlines()
    # strace -y prints each descriptor's path: getdents64(3</.../tables/t>, ...)
    table_dir = os.path.realpath(os.path.join(corpus, "tables", "t"))
    reads = sum(1 for x in calls if "getdents64(" in x and f"<{table_dir}>" in x)
    emb_opens = sum(1 for x in calls if "openat(" in x and "/embeddings/e/shard-" in x)
    check(0 < reads < 10, f"score read tables/t {reads} times (getdents64) for {SHARDS} shards: once per process")
    # an HDF5 open is two openat calls (rtr's permission check, HDF5's); each
    # file is opened by the scan and by the reader: 4 a shard, 240 here
    check(SHARDS <= emb_opens <= 6 * SHARDS,
          f"score opened embeddings files {emb_opens} times for {SHARDS} shards (a few times each, not once per shard)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
