#!/usr/bin/env bash
# Encoder benchmark: rtr vs sentence-transformers on the 2,100 real questions,
# both models, same threads and max length (bench/bench_encode.py does the
# work and prints the ratio). Needs sentence-transformers (pip) and the model
# folders (tools/fetch-encoder). Usage: bench/bench_encode.sh [RTR_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/bench_encode.py" --rtr "${1:-$here/../build/rtr}" "${@:2}"
