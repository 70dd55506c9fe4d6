#!/usr/bin/env bash
# What each MPI rank of `rtr route` reads and holds (docs/SCALING.md): a
# demo corpus of QUERIES queries in SHARDS shards with the stand-in table
# `noisy` (tests/rtrdata.py), routed alone and on 2 ranks by each binary
# given (e.g. the build before a change and after), every rank started
# through a wrapper that reports the bytes it read through read calls
# (rchar of /proc/self/io, the process and its children) and its peak RSS
# (ru_maxrss); each output checked equal to the first binary's one-process
# output (HDF5: its datasets and attributes; CSV and JSON lines: byte for
# byte). One run each, in the order given; the load average is printed.
#   bench/mpi_route_io.sh QUERIES SHARDS "ROUTE OPTIONS" OUT_EXT BINARY...
#   e.g. bench/mpi_route_io.sh 400000 4 "--budget 400" h5 build-old/rtr build-dist/rtr
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=$1 shards=$2 opts=$3 ext=$4
shift 4
bins=()
for b in "$@"; do bins+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"); done
export PYTHONPATH=$root/tests OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
  OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_mpi_yield_when_idle=1
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
"${bins[0]}" gen-demo --queries "$n" --seed 2 demo >/dev/null 2>&1
"${bins[0]}" ingest --catalog demo/catalog.json --out c --shard-size $(((n + shards - 1) / shards)) demo/outcomes.jsonl \
  >/dev/null 2>&1
rm -rf demo
python3 -c "import numpy as np, rtrdata; rtrdata.write_table('c', 'noisy', rtrdata.noisy_table(np.random.default_rng(3)), 'abc123')"
cat > same.py <<'EOF'
import sys
a, b = sys.argv[1:3]
if a.endswith(".h5"):
    import h5py
    with h5py.File(a, "r") as x, h5py.File(b, "r") as y:
        ok = sorted(x) == sorted(y) and all((x[d][()] == y[d][()]).all() for d in x) and dict(x.attrs) == dict(y.attrs)
else:
    ok = open(a, "rb").read() == open(b, "rb").read()
print("equal" if ok else "DIFFERENT")
EOF
echo "route $opts --out FILE.$ext on $n queries in $shards shards; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary | ranks | rank: bytes read (MB), peak RSS (MB), wall (s) | output"
i=0
for bin in "${bins[@]}"; do
  for ranks in 1 2; do
    out=out.$i.$ranks.$ext
    rm -f m.txt
    if [ "$ranks" = 1 ]; then
      python3 "$root/bench/per_rank.py" m.txt "$bin" route c $opts --split "" --device cpu -q --out "$out" >/dev/null
    else
      mpirun -np 2 --oversubscribe python3 "$root/bench/per_rank.py" m.txt "$bin" route c $opts --split "" --device cpu -q --out "$out" \
        >/dev/null
    fi
    same=$(python3 same.py out.0.1.$ext "$out")
    per=$(sort -n m.txt | awk '{printf "%s: %.1f, %.1f, %s; ", $1, $2 / 1e6, $3 / 1e3, $4}')
    echo "$bin | $ranks | $per| $same"
  done
  i=$((i + 1))
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
