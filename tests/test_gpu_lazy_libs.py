#!/usr/bin/env python3
"""A CUDA build of rtr computing on the CPU under a small address-space limit
(`ulimit -v 600000`, as batch systems set it). cuBLASLt maps ~540 MB: linked,
the loader mapped it at every start and refused ("failed to map segment")
before rtr ran, so a CUDA build's CPU commands failed where a CPU build's
ran. It is now loaded (dlopen) only when a CUDA backend opens
(kernels/backend_cuda.cu): the binary must not need it, and `rtr info` and
`rtr route --device cpu` must succeed under the limit. Skipped for a build
without CUDA (nothing to defer). A build with NCCL (MPI + CUDA, src/dist)
links libnccl too (~218 MB), which leaves `rtr route` less than one CPU
thread needs under 600000 KiB (rtr's own check refuses): there route runs
under 600000 KiB plus libnccl's size, and the exact limit is a skipped part."""
import os
import resource
import subprocess
import tempfile

from rtrtest import RTR, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run, skip, skip_part

require_numpy_h5py()
require_rtr()
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

LIMIT_KIB = 600000


def limited(args, kib=LIMIT_KIB):
    """rtr args under RLIMIT_AS = kib KiB."""
    def pre():
        resource.setrlimit(resource.RLIMIT_AS, (kib << 10, kib << 10))
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([RTR, *args], capture_output=True, text=True, timeout=120, preexec_fn=pre, env=env)


def main():
    needed = subprocess.run(["ldd", RTR], capture_output=True, text=True).stdout
    if "libcudart" not in needed:
        skip("rtr is built without CUDA: no CUDA library to defer")
    if "libasan" in needed:
        skip("rtr is built with ASan (its shadow memory needs terabytes of address space)")
    check("libcublasLt" not in needed, "rtr does not link cuBLASLt (loaded when a CUDA backend opens): "
          + " ".join(line.split()[0] for line in needed.splitlines() if "cublas" in line))
    tmp = tempfile.mkdtemp(prefix="rtr_lazy_")
    corpus = demo_corpus(tmp, 200, 3, 100)
    rtrdata.write_table(corpus, "stand", rtrdata.noisy_table(np.random.default_rng(3)), "stand")
    r = limited(["info", corpus])
    check(r.returncode == 0 and "stand" in r.stdout,
          f"rtr info under ulimit -v {LIMIT_KIB}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    out, free = os.path.join(tmp, "limited.csv"), os.path.join(tmp, "unlimited.csv")
    nccl = [line.split()[2] for line in needed.splitlines() if "libnccl" in line and "=>" in line]
    kib = LIMIT_KIB + (os.path.getsize(nccl[0]) >> 10 if nccl and os.path.exists(nccl[0]) else 0)
    if kib != LIMIT_KIB:
        skip_part(f"rtr route under ulimit -v {LIMIT_KIB}: this build links {nccl[0]} (MPI + CUDA + NCCL), "
                  f"which leaves less than a CPU thread needs; run under {kib} KiB (the limit plus its size)")
    r = limited(["route", corpus, "--lambda", "0.5", "--device", "cpu", "--out", out], kib)
    check(r.returncode == 0 and os.path.exists(out) and os.path.getsize(out) > 0,
          f"rtr route --device cpu under ulimit -v {kib}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    r = run("route", corpus, "--lambda", "0.5", "--device", "cpu", "--out", free)
    check(r.returncode == 0, "rtr route without a limit: " + r.stderr)
    if os.path.exists(out) and os.path.exists(free):
        with open(out) as a, open(free) as b:
            check(a.read() == b.read(), "the limited run's decisions are the unlimited run's")

if __name__ == "__main__":
    main()
    finish()
