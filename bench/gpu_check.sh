#!/usr/bin/env bash
# gpu_check.sh — the one script to run whenever a GPU node is available
# (meant to finish in under 5 minutes on one H100): builds rtr with CUDA for
# the card in the machine; runs the GPU test (every backend op against the
# reference backend with guard bytes, the whole encoder against the CPU on
# real weights, training against the CPU trainer epoch by epoch) and the
# emulated tests; then benchmarks, each against its floor or its peer in the
# same run: every op (CPU and GPU), encode (100k queries, rtr bf16 against
# sentence-transformers fp16 where torch is installed), a training epoch
# over 1M x 24, and the exact λ path over 1M x 24 (GPU against this node's
# CPU, identical paths required). Paste its output, the card and the date
# into docs/CUDA.md ("Measured on a GPU").
#
# Encoder models: data/models/<name> or $RTR_MODELS_DIR (tools/fetch-encoder);
# without them the encoder parts say so and are skipped.
#
#   bench/gpu_check.sh [BUILD_DIR]        (default: build-gpu)
#   RTR_GPU_ARCH=80 bench/gpu_check.sh    (A100; default: the card's own arch)
#   bench/gpu_check.sh --bundle .device   (the lent device machines: binaries,
#                                          libraries and fp16 MiniLM packed here
#                                          by tools/device-bundle; nothing built)
#
# Exit status: 0 all passed, 1 a test or build failed, 77 no usable GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=
if [ "${1:-}" = --bundle ]; then
    [ -f "${2:-}/runtime.tar.xz" ] || { echo "usage: $0 --bundle DIR (made by tools/device-bundle)" >&2; exit 2; }
    models=$(cd "$2" && pwd)/models
    bundle=$(mktemp -d /tmp/rtr-bundle.XXXXXX)
    trap 'rm -rf "$bundle"' EXIT
    tar -C "$bundle" -xJf "$2/runtime.tar.xz" 
fi
build=${1:-$root/build-gpu}
jobs=$(nproc 2>/dev/null || echo 4)
start=$(date +%s)

echo "== rtr gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU visible (nvidia-smi -L failed): nothing to check" >&2
    exit 77
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
arch=${RTR_GPU_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}

if [ -n "$bundle" ]; then
    echo "== bundle $bundle ($(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version | head -1))"
    # cuBLASLt from the CUDA toolkit or PyTorch's wheel, whichever the image has
    cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' \
             2>/dev/null || true)
    export LD_LIBRARY_PATH="$bundle/lib${cublas:+:$cublas}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    export RTR_MODELS_DIR="$models" RTR_SOURCE_DIR="$root"
    if ldd "$bundle/bin/rtr" | grep 'not found'; then echo "bundle: libraries missing (above)" >&2; exit 1; fi
    rtr=$bundle/bin/rtr kbin=$bundle/bin bbin=$bundle/bin
else
    command -v cmake >/dev/null || { echo "cmake not found: run tools/setup-deps first" >&2; exit 1; }
    echo "== build (sm_$arch)"
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRTR_CUDA=ON \
          -DCMAKE_CUDA_ARCHITECTURES="$arch" >"$build/configure.log" 2>&1 ||
        { tail -20 "$build/configure.log"; exit 1; }
    cmake --build "$build" -j"$jobs" --target rtr test_gpu test_kernels_emu test_emu test_encoder_emu test_train_emu \
          test_route_emu bench_backend bench_train bench_sweep
    rtr=$build/rtr kbin=$build/kernels bbin=$build/bench
fi

echo "== tests"
status=0
"$kbin/test_gpu" || status=$?
if [ "$status" = 77 ]; then echo "test_gpu skipped: the CUDA backend did not open" >&2; exit 77; fi
[ "$status" = 0 ] || { echo "test_gpu FAILED" >&2; exit 1; }
"$kbin/test_emu" >/dev/null
"$kbin/test_kernels_emu" | tail -1
"$kbin/test_train_emu" | tail -1
"$kbin/test_route_emu" | grep -E '^(==|FAIL|no GPU|[0-9]+ passed)'
if [ -x "$kbin/test_encoder_emu" ]; then "$kbin/test_encoder_emu" | tail -1 || [ $? -eq 77 ]; fi

echo "== benchmark (same run: CPU and GPU)"
"$kbin/bench_backend"

echo "== encode: rtr --device cuda --precision bf16 against sentence-transformers fp16 on this GPU, 100k queries"
for m in all-MiniLM-L6-v2 all-mpnet-base-v2; do
    python3 "$root/bench/bench_encode_gpu.py" --rtr "$rtr" --model "$m" -n 100000 || [ $? -eq 77 ]
done

echo "== training epoch, 1M queries x 24 pairs, D = H = U = 768 (target: < 10 s on an H100)"
"$bbin/bench_train" --device cuda --queries 1000000 --epochs 3 --peer-queries 5000

echo "== exact λ path, 1M queries x 24 pairs: the GPU against this node's CPU (same run; identical paths required)"
"$bbin/bench_sweep" --device cuda 1000000 24 0

echo "== done in $(( $(date +%s) - start )) s"
