#!/usr/bin/env bash
# tests/fuzz/remake-shard-seeds.sh — remake the shard harness's seeds in
# tests/fuzz/corpus/shard/ from rtr's own writer (run when the shard format
# changes): shard-00000.h5 and shard-00002.h5 of the corpus fuzz_common.h
# builds, and shard-00000-vlen.h5, the same shard with its string attributes
# rewritten variable-length as h5py writes a str (in the 1.10 file format rtr
# writes, so its metadata keeps its checksums).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
RTR_FUZZ_SEED_OUT=$tmp RTR_FUZZ_KEEP=0 RTR_FUZZ_BUILD=${RTR_FUZZ_BUILD:-$root/build-fuzz} "$root/tools/run-fuzz" 1 shard
seeds=$root/tests/fuzz/corpus/shard
cp "$tmp/shard-00000.h5" "$tmp/shard-00002.h5" "$seeds/"
cp "$tmp/shard-00000.h5" "$seeds/shard-00000-vlen.h5"
python3 - "$seeds/shard-00000-vlen.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+", libver=("v110", "v110")) as h:
    for k in list(h.attrs):
        v = h.attrs[k]
        if isinstance(v, bytes):
            del h.attrs[k]
            h.attrs[k] = v.decode()
PY
ls -l "$seeds"
