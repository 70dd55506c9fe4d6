#!/usr/bin/env python3
"""rtr under an address-space limit (`ulimit -v`, as batch systems set it):
embed, train and eval hung forever under one (OpenBLAS retries a work
buffer it cannot map, src/common/limits.h). Each runs here under limits
from 256 MiB to 2.5 GiB (and 4 GiB) with 4 OpenMP threads asked for, and must end within
a minute every time: exit 0, or exit 1 naming the memory shortage (rtr's
own check names `ulimit -v`), or the loader's own refusal when the limit is
below what the shared libraries map (a CUDA build's are large), or OpenBLAS's
constructor's when its threads no longer fit beside them (it raises SIGINT
before main: a CUDA build with NCCL at 256 MiB). rtr's own
check must answer at least once, and the largest limit must succeed."""
import os
import resource
import subprocess
import tempfile

from rtrtest import MODELS, RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run, skip_part

require_numpy_h5py()
require_rtr()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

# Finer near the bottom, where the libraries start but little is left:
# OpenBLAS's own worker, started before main, can then be stuck for good
# retrying its work buffer, and exit() joined it (a CUDA build at 300 MiB
# failed train with its message, then hung; src/common/limits.h rtr_exit).
LIMITS_MIB = [256, 288, 320, 352, 384, 448] + list(range(512, 2561, 256)) + [4096]


def limited(args, mib, stdin=None):
    """rtr args under RLIMIT_AS = mib MiB; None when still running after 60 s."""
    def pre():
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))
    env = dict(os.environ, OMP_NUM_THREADS="4")
    try:
        return subprocess.run([RTR, *args], input=stdin, capture_output=True, text=True, timeout=60, preexec_fn=pre,
                              env=env)
    except subprocess.TimeoutExpired:
        return None


def sweep_limits(name, args, stdin=None):
    own = False
    for mib in LIMITS_MIB:
        r = limited(args, mib, stdin)
        if r is None:
            check(False, f"{name} under ulimit -v {mib} MiB: still running after 60 s (a hang)")
            return
        err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        if (r.returncode == 127 and "error while loading shared libraries" in r.stderr) or \
                (r.returncode < 0 and "blas_thread_init" in r.stderr):
            continue  # below what the libraries need: the loader, or OpenBLAS's constructor, refuses before rtr runs
        own |= r.returncode == 1 and "ulimit -v" in r.stderr
        check(r.returncode == 0 or (r.returncode == 1 and "memory" in r.stderr),
              f"{name} under ulimit -v {mib} MiB: exit 0, or 1 naming memory (exit {r.returncode}: {err})")
        if mib == LIMITS_MIB[-1]:
            check(r.returncode == 0, f"{name} under ulimit -v {mib} MiB succeeds: {err}")
    check(own, f"{name}: rtr's own address-space check answered under one of the limits")


def main():
    if "libasan" in subprocess.run(["ldd", RTR], capture_output=True, text=True).stdout:
        skip_part("address-space limits: rtr is built with ASan (its shadow memory needs terabytes of address space)")
        return
    tmp = tempfile.mkdtemp(prefix="rtr_limits_")
    corpus = demo_corpus(tmp, 200, 9, 80)
    rng = np.random.default_rng(3)

    def unit(n):
        e = rng.standard_normal((n, 16)).astype(np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)
    rtrdata.write_embeddings(corpus, "stand-in", "00000000000f0e0e",
                             lambda p: unit(int(h5py.File(p, "r").attrs["n_queries"])), (unit(4), unit(4)))
    ck = os.path.join(tmp, "ck.safetensors")
    r = run("train", corpus, "--out", ck, "--hidden", "8", "--learn-dim", "4", "--epochs", "2", "--device", "cpu")
    check(r.returncode == 0, "train: " + r.stderr)
    r = run("score", "--checkpoint", ck, "--device", "cpu", corpus)
    check(r.returncode == 0, "score: " + r.stderr)

    sweep_limits("train", ["train", corpus, "--out", os.path.join(tmp, "t.safetensors"), "--device", "cpu",
                           "--epochs", "2"])
    sweep_limits("eval", ["eval", corpus, "--out", os.path.join(tmp, "e.json"), "--no-embedllm", "--device", "cpu"])
    model = os.path.join(MODELS, "all-MiniLM-L6-v2")
    if os.path.exists(os.path.join(model, "model.safetensors")):
        sweep_limits("embed", ["embed", "--model", model, "--device", "cpu", "--threads", "4"], stdin="what is 2+2?\n" * 50)
    else:
        skip_part(f"embed under limits: no model folder {model}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
    finish()
