#!/usr/bin/env bash
# Encoder benchmark on the CPU: rtr (fp32 and int8 GEMMs) against
# sentence-transformers and ONNX Runtime (fp32 and its dynamic int8), both
# models, short questions and 384-token texts, interleaved rounds, medians
# with min-max and the ratios (bench/bench_encode.py does the work). Needs
# pip install sentence-transformers onnxruntime onnx onnxscript, the model
# folders (tools/fetch-encoder) and a build with bench/bench_encode_cpu.
# Usage: bench/bench_encode.sh [BUILD_DIR] [bench_encode.py options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/bench_encode.py" --build "${1:-$here/../build}" "${@:2}"
