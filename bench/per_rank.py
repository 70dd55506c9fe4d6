"""Run a command and append one line to a file: the MPI rank, the bytes it
read (rchar), its peak RSS in KiB and its wall seconds. The benches' per-rank
measure (bench/mpi_scaling.sh, bench/mpi_route_io.sh):
    python3 bench/per_rank.py OUT command...   (under mpirun, one per rank)"""
import os
import resource
import subprocess
import sys
import time


def rchar():
    return next(int(x.split()[1]) for x in open("/proc/self/io") if x.startswith("rchar:"))


before, t0 = rchar(), time.time()
rc = subprocess.run(sys.argv[2:]).returncode
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "a") as f:
    f.write(f"{os.environ.get('OMPI_COMM_WORLD_RANK', '0')} {rchar() - before} {rss} {time.time() - t0:.1f}\n")
sys.exit(rc)
