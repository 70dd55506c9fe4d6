#!/usr/bin/env bash
# gpu_check.sh — the one script to run whenever a GPU node is available
# (about 3 minutes on one H100, well under 5): builds rtr with CUDA for the
# card in the machine, runs the GPU test (every backend op against the CPU,
# guard bytes included) and the emulated kernel tests, then benchmarks every
# op on the CPU and the GPU in the same run and prints the table with each
# op's physical floor, and times the exact λ path (bench_sweep, CPU). Paste its output, the card and the date into
# docs/CUDA.md ("Measured on a GPU").
#
#   bench/gpu_check.sh [BUILD_DIR]        (default: build-gpu)
#   RTR_GPU_ARCH=80 bench/gpu_check.sh    (A100; default: the card's own arch)
#
# Exit status: 0 all passed, 1 a test or build failed, 77 no usable GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
jobs=$(nproc 2>/dev/null || echo 4)
start=$(date +%s)

command -v cmake >/dev/null || { echo "cmake not found: run tools/setup-deps first" >&2; exit 1; }
echo "== rtr gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU visible (nvidia-smi -L failed): nothing to check" >&2
    exit 77
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
arch=${RTR_GPU_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}

echo "== build (sm_$arch)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRTR_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="$arch" >"$build/configure.log" 2>&1 ||
    { tail -20 "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$jobs" --target rtr test_gpu test_kernels_emu test_emu bench_backend

echo "== tests"
status=0
"$build/kernels/test_gpu" || status=$?
if [ "$status" = 77 ]; then echo "test_gpu skipped: the CUDA backend did not open" >&2; exit 77; fi
[ "$status" = 0 ] || { echo "test_gpu FAILED" >&2; exit 1; }
"$build/kernels/test_emu" >/dev/null
"$build/kernels/test_kernels_emu" | tail -1

echo "== benchmark (same run: CPU and GPU)"
"$build/kernels/bench_backend"

echo "== exact λ path, 1M queries x 24 pairs (CPU of this node; no GPU path yet)"
if cmake --build "$build" -j"$jobs" --target bench_sweep >/dev/null 2>&1; then
    "$build/bench/bench_sweep" 1000000 24 0
else
    echo "bench_sweep target not available in this tree: skipped"
fi
echo "(encode and train do not run on the CUDA backend yet: docs/CUDA.md, 'Not yet wired')"

echo "== done in $(( $(date +%s) - start )) s"
