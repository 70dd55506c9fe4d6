"""Shared helpers of the Python tests (imported, never run by ctest): where
the rtr binary, the sources, the shared data and the encoder folders are;
skips (exit status 77, ctest's SKIP, also when only a part skipped); checks
counted into the closing "N passed, N failed" line."""
import os
import subprocess
import sys

RTR = os.environ.get("RTR")
SRC = os.environ.get("RTR_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED_DATA = os.environ.get("RTR_SHARED_DATA", os.path.join(SRC, "..", "shared", "data"))
MODELS = os.environ.get("RTR_MODELS_DIR", os.path.join(SRC, "data", "models"))

_counts = {"passed": 0, "failed": 0, "skipped": 0}


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def require_rtr():
    if not RTR or not os.path.exists(RTR):
        skip("$RTR (the rtr binary) is not set")


def require_numpy_h5py():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        skip("h5py and numpy are needed")


def check(cond, what):
    _counts["passed" if cond else "failed"] += 1
    if not cond:
        print("FAIL:", what)


def skip_part(why):
    """A part of a test that cannot run here: said, and counted as skipped."""
    print("skip:", why, file=sys.stderr)
    _counts["skipped"] += 1


def run(*args, stdin=None):
    """Run rtr with these arguments; the CompletedProcess (text mode)."""
    return subprocess.run([RTR, *args], input=stdin, capture_output=True, text=True)


def demo_corpus(tmp, queries, seed, shard_size):
    """`rtr gen-demo` then `rtr ingest` under tmp; the corpus folder (checked)."""
    demo, corpus = os.path.join(tmp, "demo"), os.path.join(tmp, "corp")
    r = run("gen-demo", "--queries", str(queries), "--seed", str(seed), demo)
    check(r.returncode == 0, "gen-demo: " + r.stderr)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus,
            "--shard-size", str(shard_size), os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0, "ingest: " + r.stderr)
    return corpus


def finish():
    """Print the closing line; exit 1 when any check failed, else 77 (ctest's
    SKIP) when a part was skipped, so a skipped part never reports as a pass;
    a test that ran no check at all fails (it proved nothing)."""
    skipped = f", {_counts['skipped']} skipped" if _counts["skipped"] else ""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed{skipped}")
    if _counts["failed"]:
        sys.exit(1)
    if _counts["skipped"]:
        sys.exit(77)
    if not _counts["passed"]:
        print("FAIL: no check ran")
        sys.exit(1)
    sys.exit(0)


def md_cells(line, unescape=False):
    """Cells of a GFM table row, split on pipes not escaped by a backslash
    (unescape: backslashes removed from the cells)."""
    cells, cur, esc = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not esc:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
        esc = ch == "\\" and not esc
    cells.append(cur.strip())
    return [c.replace("\\", "") for c in cells] if unescape else cells


def require_mpi():
    """Skip (77) unless rtr was built with MPI (RTR_MPI) and mpirun is on the
    PATH; the environment for mpirun on this one machine (as root where CI
    runs so, loopback and shared memory only, oversubscribed, unbound)."""
    import shutil
    cache = os.path.join(os.environ.get("RTR_BINARY_DIR", "."), "CMakeCache.txt")
    if not (os.path.exists(cache) and "RTR_HAVE_MPI:INTERNAL=ON" in open(cache).read() and shutil.which("mpirun")):
        skip("rtr built without MPI (RTR_MPI) or no mpirun")
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,vader",
                OMPI_MCA_mpi_yield_when_idle="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_hwloc_base_binding_policy="none")


# A wrapper each rank runs its command through (python3 - FILE CMD...): it
# appends "RANK BYTES_READ" (the command's rchar from /proc) to FILE.
PER_RANK = """import os, subprocess, sys
def rchar():
    return next(int(x.split()[1]) for x in open("/proc/self/io") if x.startswith("rchar:"))
before = rchar()
rc = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "a") as f:
    f.write(f"{os.environ.get('OMPI_COMM_WORLD_RANK', '0')} {rchar() - before}\\n")
sys.exit(rc)
"""
