#!/usr/bin/env python3
"""NCCL loaded at run time in a CUDA + MPI build (src/dist/dist.c): libnccl
is ~218 MB of address space, and linked, the loader mapped it at every start,
so `rtr route --device cpu` of such a build failed under `ulimit -v 600000`
(tests/test_gpu_lazy_libs.py runs that limit). Now neither rtr nor librtr.so
needs it (readelf: no NEEDED entry), rtr_dist_nccl_load finds the library
the build found, and one that is missing gives an error naming what was
tried, RTR_ERR_UNSUPPORTED, instead of a failed start. Skipped (77) for a
build without NCCL (RTR_HAVE_NCCL off: no CUDA, no MPI or no NCCL)."""
import os
import subprocess
import sys

from rtrtest import RTR, check, finish, require_rtr, skip

require_rtr()
build = os.environ.get("RTR_BINARY_DIR", os.path.dirname(RTR))
cache = os.path.join(build, "CMakeCache.txt")
if not (os.path.exists(cache) and "RTR_HAVE_NCCL:INTERNAL=ON" in open(cache).read()):
    skip("rtr built without NCCL (needs RTR_CUDA, RTR_MPI and NCCL)")

LIB = os.path.join(build, "librtr.so")


def needed(path):
    """The NEEDED entries of an ELF file (none, and a failed check, when it cannot be read)."""
    r = subprocess.run(["readelf", "-d", path], capture_output=True, text=True)
    check(r.returncode == 0, f"readelf -d {path}: {r.stderr.strip()}")
    out = r.stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def load_in_child(env_value):
    """rtr_dist_nccl_load() in a fresh process (it loads once per process),
    RTR_NCCL_LIBRARY set to env_value unless None: (its status's name, rtr_last_error())."""
    env = dict(os.environ)
    env.pop("RTR_NCCL_LIBRARY", None)
    if env_value is not None:
        env["RTR_NCCL_LIBRARY"] = env_value
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "l.rtr_last_error.restype = l.rtr_status_name.restype = ctypes.c_char_p; "
            "s = l.rtr_dist_nccl_load(); print(l.rtr_status_name(s).decode()); print(l.rtr_last_error().decode())")
    r = subprocess.run([sys.executable, "-c", code, LIB], capture_output=True, text=True, env=env, timeout=60)
    check(r.returncode == 0, "loading librtr.so with ctypes: " + r.stderr[-400:])
    lines = r.stdout.split("\n", 1)
    return lines[0].strip(), lines[1].strip() if len(lines) > 1 else ""


def main():
    for path in (RTR, LIB) if os.path.exists(LIB) else (RTR,):  # a static-only build has no librtr.so
        libs = needed(path)
        check(not any("nccl" in x for x in libs), f"{os.path.basename(path)} does not need libnccl: {libs}")
    if not os.path.exists(LIB):
        finish()
    st, err = load_in_child(None)
    check(st == "ok", f"rtr_dist_nccl_load finds the NCCL the build found: status {st}: {err}")
    missing = "/nonexistent/libnccl.so.2"
    st, err = load_in_child(missing)
    check(st == "unsupported" and "NCCL" in err and missing in err,
          f"a missing NCCL is RTR_ERR_UNSUPPORTED naming the file tried: status {st}: {err!r}")
    not_nccl = next(x for x in needed(LIB) if "cjson" in x)  # a library that loads but is not NCCL
    st, err = load_in_child(not_nccl)
    check(st == "unsupported" and "ncclGetUniqueId" in err,
          f"a library without NCCL's functions is refused naming one: status {st}: {err!r}")
    r = subprocess.run([RTR, "--version"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "rtr --version: " + r.stderr)


if __name__ == "__main__":
    main()
    finish()
