#!/usr/bin/env bash
# gpu_check.sh — the one prepared command for a GPU machine. On a lent device
# machine (15 minutes of device time, start included; maybe the only one for
# weeks) it must give the most information whatever goes wrong, so:
#
#  - no step can stop the script: every test and benchmark runs whatever
#    failed before it, each under its own time budget (`timeout`), and the
#    whole run stays inside RTR_GPU_CHECK_SECONDS (default 480 s; the device
#    call's timeout is 540): a step that would start without time left is
#    recorded as not run;
#  - each step's status (pass, skip, FAIL rc, TIMEOUT, not run), time and
#    headline figure go into a summary table printed last (the device tool
#    returns the end of the output) and into $OUT/summary.tsv; every step's
#    full log goes into $OUT/steps.tar.gz; $OUT defaults to a new folder
#    under ${TMPDIR:-/tmp} when unset;
#  - exit status: 0 all passed, 1 anything failed or timed out, 77 no GPU
#    visible (nothing failed; the GPU steps were not run).
#
# Steps, most informative first: the machine (OS, glibc, CPU, card, driver,
# toolkit, Python packages); the libraries each binary resolves; the card's
# measured ceilings (device-to-device copy, an 8192³ bf16 matmul through
# PyTorch), which bench_backend then uses as its peaks; random-weight MiniLM
# and MPNet built from their config.json (tools/random-encoder); test_gpu
# (every backend op against the reference backend, the encoder on the GPU
# against the CPU on the real fp16 MiniLM and on MPNet, training against the
# CPU trainer); bench_backend (every op, its roofline floor beside it);
# encode throughput of rtr against sentence-transformers fp16 on the same
# GPU (MiniLM and MPNet at real question lengths, and the headline: MPNet
# at 64 tokens, target 50,000 queries/s on an H100); a training epoch over
# 1M x 24; the exact λ path over 1M x 24; how many routing decisions a bf16
# scoring GEMM changes (bench_score_bf16); test_gpu's backend suite once
# more under compute-sanitizer memcheck and racecheck (skipped, with the
# reason, where the runtime refuses: gVisor); the tensor-core and 16-byte
# instructions in the new kernels' machine code (cuobjdump); then the CPU
# section (below); the emulated kernel tests last.
#
# The CPU section: this machine's CPU is the only one with AVX-512 BF16 (or
# AMX) we are lent, and rtr's oneDNN bf16 path has never run anywhere else
# (issue 14; docs/ENCODER.md, "CPU bf16 GEMMs"). It keeps its own window of
# RTR_GPU_CHECK_CPU_SECONDS (default 160 s) out of the total: the GPU steps
# end that long before the deadline, so they cannot eat it (0: no CPU
# section, its steps recorded as skipped). Its steps: the
# CPU's model and flags (avx512_bf16, amx_bf16, avx512_vnni, avx_vnni, ...)
# and what oneDNN makes of them (its verbose log of one small bf16 encode:
# the ISA it JITs for and the matmul implementation it picked; the bundle's
# binaries are built for x86-64-v2, oneDNN dispatches at run time); the bf16
# cases of test_cpu_gemm_dnnl (every layer shape against the model of the
# arithmetic, the whole MiniLM in bf16 against sentence-transformers' golden
# embeddings, cosine >= 0.999 per text); bench/bench_encode.py on MiniLM
# (the bundle's weights), ONNX Runtime fp32 (the machine's own Python and
# onnxruntime; the model exported there by torch) against rtr fp32 and bf16,
# short questions and 384-token texts, 3 interleaved rounds, medians with
# min-max, at 2 threads (docs/ENCODER.md's figures) and at all cores; and
# bench/bench_encode_batch.py: each text alone against all in one call, in
# fp32 and bf16 (whether bf16 embeddings depend on the batch). Without
# AVX-512 BF16 it prints "no AVX-512 BF16: CPU bf16 skipped", records the
# bf16 test as a skip and still measures fp32. RTR_GPU_CHECK_ONLY=cpu runs
# the CPU section alone (the local dry run, docs/CUDA.md).
#
#   bench/gpu_check.sh --bundle .device     the lent device machines: the binaries,
#                                           libraries and models packed here by
#                                           tools/device-bundle; nothing is built
#   bench/gpu_check.sh [BUILD_DIR]          a GPU machine with rtr's dependencies:
#                                           builds (default build-gpu) for the card
#   RTR_GPU_ARCH=80 bench/gpu_check.sh      (A100; default: the card's own arch)
#
# The device call (docs/CUDA.md): `bench/gpu_check.sh --bundle .device 2>&1 |
# tee $OUT/gpu_check.log`, carry [".device"], timeout 540.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
t_start=$(date +%s)
deadline=$((t_start + ${RTR_GPU_CHECK_SECONDS:-480}))
# steps stop at section_end: the GPU steps leave the CPU section its window
cpu_window=${RTR_GPU_CHECK_CPU_SECONDS:-160}
section_end=$((deadline - cpu_window))
only=${RTR_GPU_CHECK_ONLY:-}
out=${OUT:-${TMPDIR:-/tmp}/rtr-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/rtr-gpu-check.XXXXXX")
onnx_pid=
trap '[ -z "$onnx_pid" ] || kill "$onnx_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/steps"
export PYTHONUNBUFFERED=1 RTR_SOURCE_DIR="$root"

bundle_src=
case "${1:-}" in
    --bundle)
        [ -f "${2:-}/runtime.tar.xz" ] ||
            { echo "usage: $0 --bundle DIR (made by tools/device-bundle) | $0 [BUILD_DIR]" >&2; exit 2; }
        bundle_src=$(cd "$2" && pwd) ;;
    -*) echo "usage: $0 --bundle DIR | $0 [BUILD_DIR]" >&2; exit 2 ;;
esac

# ---- the step runner -------------------------------------------------------
names=() statuses=() times=() figures=()
failed=0
# step NAME BUDGET_S KEY_REGEX CMD...: run CMD (a program, or a function of
# this script: they are exported, as are the variables they read) under
# `timeout`, output to the console and the step's log; record status,
# seconds and the last line of the log matching KEY_REGEX (the headline).
# With RTR_GPU_CHECK_ONLY=PREFIX only the steps named PREFIX* run (and the
# one that makes the binaries); the others are recorded as skipped.
step() {
    local name=$1 budget=$2 key=$3 rc status t0 left
    shift 3
    case "$only:$name" in
        :* | *:libraries | *:build | "$only:$only"*) ;;
        *) names+=("$name") statuses+=("skip (RTR_GPU_CHECK_ONLY=$only)") times+=(0) figures+=("")
           return 0 ;;
    esac
    left=$((section_end - $(date +%s)))
    [ "$budget" -le "$left" ] || budget=$left
    echo
    echo "== [$name] $(date -u +%H:%M:%S), budget ${budget} s: $*"
    t0=$(date +%s)
    if [ "$budget" -lt 10 ]; then
        status="not run (out of time)" rc=1
        echo "$status" >"$work/steps/$name.log"
    else
        timeout -k 5 "$budget" bash -c '"$@"' "$name" "$@" </dev/null 2>&1 | tee "$work/steps/$name.log"
        rc=${PIPESTATUS[0]}
        case $rc in
            0) status=pass ;;
            77) status=skip ;;
            124 | 137) status="TIMEOUT (${budget} s)" ;;
            *) status="FAIL (rc $rc)" ;;
        esac
    fi
    case $rc in 0 | 77) ;; *) failed=1 ;; esac
    names+=("$name") statuses+=("$status") times+=($(($(date +%s) - t0)))
    figures+=("$([ -n "$key" ] && grep -E "$key" "$work/steps/$name.log" | tail -1 | cut -c1-150)")
    return 0
}
# a step that needs a GPU: recorded as skipped when none is visible
gpu_step() {
    if [ "$gpu" = 1 ]; then step "$@"; else
        names+=("$1") statuses+=("skip (no GPU visible)") times+=(0) figures+=("")
    fi
}
# a step of the CPU section: recorded as skipped when its window is 0 (the
# GPU steps then have the whole run)
cpu_step() {
    if [ "$cpu_window" -gt 0 ]; then step "$@"; else
        names+=("$1") statuses+=("skip (RTR_GPU_CHECK_CPU_SECONDS=0)") times+=(0) figures+=("")
    fi
}

# ---- the machine -----------------------------------------------------------
machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(hostname); kernel: $(uname -r)"
    echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); $(ldd --version 2>&1 | head -1)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) online;" \
         "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -oE ' (avx2|avx512f|avx512_bf16|amx_tile)' | tr -d '\n')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,compute_cap \
               --format=csv 2>&1 || echo "nvidia-smi: not usable"
    nvcc --version 2>/dev/null | tail -1 || true
    command -v compute-sanitizer >/dev/null && echo "compute-sanitizer: $(command -v compute-sanitizer)"
    command -v ncu >/dev/null && echo "ncu: $(command -v ncu)"
    python3 - <<'PY' 2>&1 || true
import importlib, sys
v = [f"python {sys.version.split()[0]} ({sys.executable})"]
for m in ("torch", "transformers", "sentence_transformers", "tokenizers", "numpy", "h5py"):
    try:
        v.append(f"{m} {importlib.import_module(m).__version__}")
    except Exception as e:
        v.append(f"{m} absent ({type(e).__name__})")
print("; ".join(v))
PY
}
echo "== rtr gpu_check: figures and logs in $out"
machine | tee "$out/machine.txt"
gpu=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then gpu=1; else
    echo "no GPU visible (nvidia-smi -L failed): the steps that need one are not run"
fi
arch=${RTR_GPU_ARCH:-$( [ $gpu = 1 ] && nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d . || echo 90)}

# ---- the binaries: unpack the bundle, or build ---------------------------
# find_lib SONAME: the first folder holding SONAME among the CUDA wheels
# (CUDA 12: nvidia/<lib>/lib, CUDA 13: nvidia/cu13/lib) of every Python on
# the PATH, the CUDA toolkits, and the linker cache.
find_lib() {
    local so=$1 d py
    {
        for py in python3 python; do
            command -v "$py" >/dev/null || continue
            "$py" -c 'import site, sys; print(*site.getsitepackages(), *sys.path, sep="\n")' 2>/dev/null |
                while read -r d; do ls -d "$d"/nvidia/*/lib "$d"/torch/lib 2>/dev/null; done
        done
        ls -d ${CUDA_HOME:-/nonexistent}/lib* /usr/local/cuda*/lib* /usr/local/cuda*/targets/*/lib \
              /opt/nvidia/*/lib* 2>/dev/null
        ldconfig -p 2>/dev/null | awk -v so="$so" '$1 == so {sub(/\/[^\/]*$/, "", $NF); print $NF}'
    } | while read -r d; do [ -e "$d/$so" ] && { echo "$d"; break; }; done
}
# The bundle: bin/ finds lib/ through its RPATH ($ORIGIN/../lib); the CUDA
# libraries it does not carry (cuBLAS) are linked into lib/ from wherever
# this machine has them, so nothing else sees the bundle's libraries.
unpack_bundle() {
    bundle=$work/bundle
    mkdir -p "$bundle"
    tar -C "$bundle" -xJf "$bundle_src/runtime.tar.xz" || return 1
    local missing=0 so dir b loaded
    # what the binaries lack, and what they load themselves at run time
    # (cuBLASLt: dlopen when a CUDA backend opens, kernels/backend_cuda.cu;
    # found through the same RPATH, so it goes into lib/ too)
    loaded=$(grep -aohE 'libcublasLt\.so\.[0-9]+' "$bundle"/bin/* | sort -u)
    for so in $( (for b in "$bundle"/bin/*; do ldd "$b"; done | awk '$2 == "=>" && $3 == "not" {print $1}'
                  echo "$loaded") | sort -u); do
        [ -e "$bundle/lib/$so" ] && continue
        dir=$(find_lib "$so")
        if [ -n "$dir" ]; then
            ln -s "$dir/$so" "$bundle/lib/$so"
            echo "$so: $dir"
        else
            echo "$so: NOT FOUND on this machine (wheels nvidia/*/lib of $(command -v python3), /usr/local/cuda*, ldconfig)"
        fi
    done
    for b in "$bundle"/bin/*; do
        if ldd "$b" | grep 'not found'; then echo "$(basename "$b"): libraries missing (above)"; missing=1; fi
    done
    for so in $loaded; do
        [ -e "$bundle/lib/$so" ] || { echo "$so (loaded at run time): missing"; missing=1; }
    done
    [ $missing = 0 ] && echo "every binary resolves its libraries:" && ldd "$bundle/bin/rtr" | sed 's/^/  /'
    return $missing
}
build_rtr() {
    command -v cmake >/dev/null || { echo "cmake not found: run tools/setup-deps first"; return 1; }
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRTR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" &&
        cmake --build "$build" -j"$(nproc)" --target rtr test_gpu test_kernels_emu test_emu test_encoder_emu \
              test_train_emu test_route_emu bench_backend bench_score_bf16 bench_train bench_sweep \
              test_cpu_gemm_dnnl bench_encode_cpu
}
export -f find_lib unpack_bundle build_rtr
export work out root bundle_src arch
if [ -n "$bundle_src" ]; then
    step libraries 60 'resolves|NOT FOUND' unpack_bundle
    rtr=$work/bundle/bin/rtr kbin=$work/bundle/bin bbin=$work/bundle/bin tbin=$work/bundle/bin
    models=$work/bundle/models randsrc=$work/bundle/random-src shared=$work/bundle/shared
else
    export build=${1:-$root/build-gpu}
    step build 400 'Built target|Error' build_rtr
    rtr=$build/rtr kbin=$build/kernels bbin=$build/bench tbin=$build/tests
    models=${RTR_MODELS_DIR:-$root/data/models} randsrc=$models shared=${RTR_SHARED_DATA:-$root/../shared/data}
fi
export rtr kbin bbin tbin models randsrc shared

# The CPU section's ONNX model (MiniLM exported by torch for the ONNX Runtime
# peer: 20-60 s of one Python thread) is made now, in the background at
# nice 10, while the GPU steps run on the card; its step waits for it.
onnx_export() {
    RTR_CACHE=$work/cache nice -n 10 python3 "$root/bench/bench_encode.py" --export-only --models "$models" \
        --only all-MiniLM-L6-v2 --configs ort >"$work/onnx-export.log" 2>&1
    echo $? >"$work/onnx-export.rc"
}
export -f onnx_export
if [ "$cpu_window" -gt 0 ]; then
    timeout -k 5 300 bash -c onnx_export </dev/null &
    onnx_pid=$!
fi

# ---- the card's ceilings, measured (the peaks of every floor below) -------
ceilings() {
    python3 - "$out/ceilings.txt" <<'PY'
import sys
try:
    import torch
except ImportError as e:
    print(f"torch absent ({e}): the datasheet peaks are used")
    sys.exit(77)
if not torch.cuda.is_available():
    print("torch sees no CUDA device")
    sys.exit(77)

def median_ms(fn, reps):
    fn(); fn(); torch.cuda.synchronize()
    t = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        t.append(a.elapsed_time(b))
    return sorted(t)[len(t) // 2]

x = torch.randint(0, 255, (1 << 31,), dtype=torch.uint8, device="cuda")
y = torch.empty_like(x)
bw = 2 * x.numel() / (median_ms(lambda: y.copy_(x), 20) * 1e-3)
del x, y
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
tc = 2 * n ** 3 / (median_ms(lambda: a @ b, 20) * 1e-3)
a, b = a.float(), b.float()
torch.backends.cuda.matmul.allow_tf32 = False
f32 = 2 * n ** 3 / (median_ms(lambda: a @ b, 5) * 1e-3)
p = torch.cuda.get_device_properties(0)
print(f"{p.name}: {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB; measured: device-to-device copy "
      f"{bw / 1e12:.2f} TB/s (read + write, 2 GiB), bf16 matmul 8192^3 {tc / 1e12:.0f} TFLOP/s, fp32 (no tf32) "
      f"{f32 / 1e12:.1f} TFLOP/s (random data, medians)")
with open(sys.argv[1], "w") as f:
    f.write(f"{tc / 1e12:.1f} {f32 / 1e12:.2f} {bw / 1e12:.3f}\n")
PY
}
export -f ceilings
gpu_step ceilings 60 'measured' ceilings
peaks=()
if [ -s "$out/ceilings.txt" ]; then
    read -r p_tc p_f32 p_bw <"$out/ceilings.txt"
    peaks=(--peak-tc "$p_tc" --peak-fp32 "$p_f32" --peak-bw "$p_bw")
fi

# ---- encoder folders: the real fp16 MiniLM (correctness) and random-weight
# MiniLM and MPNet (throughput), built here from their config.json --------
random_models() {
    python3 "$root/tools/random-encoder" "$models/all-MiniLM-L6-v2" "$work/random/all-MiniLM-L6-v2" &&
        python3 "$root/tools/random-encoder" "$randsrc/all-mpnet-base-v2" "$work/random/all-mpnet-base-v2"
}
export -f random_models
step random-models 120 'mpnet' random_models
# the models the encoder tests compare GPU and CPU on: the real MiniLM, and
# MPNet real where this machine has it, else random (its GPU path still runs)
mkdir -p "$work/test-models"
ln -s "$models/all-MiniLM-L6-v2" "$work/test-models/all-MiniLM-L6-v2"
for d in "$models/all-mpnet-base-v2" "$work/random/all-mpnet-base-v2"; do
    [ -f "$d/model.safetensors" ] && { ln -s "$d" "$work/test-models/all-mpnet-base-v2"; break; }
done
export RTR_MODELS_DIR=$work/test-models

# ---- tests and benchmarks on the GPU ---------------------------------------
gpu_step test_gpu 200 'passed' "$kbin/test_gpu"
gpu_step bench_backend 90 'bf16 encoder, all-mpnet' "$kbin/bench_backend" "${peaks[@]}"
encode() { # MODEL N [extra args of bench_encode_gpu.py]
    local m=$1 n=$2
    shift 2
    [ -f "$work/random/$m/model.safetensors" ] || { echo "no random $m (step random-models)"; return 1; }
    python3 "$root/bench/bench_encode_gpu.py" --rtr "$rtr" --models "$work/random" --model "$m" -n "$n" \
        --rounds 2 --st-batches 256 ${p_tc:+--peak-tflops "$p_tc"} ${p_bw:+--peak-tbps "$p_bw"} "$@"
}
export -f encode
export p_tc=${p_tc:-} p_bw=${p_bw:-}
gpu_step encode-mpnet-64tok 100 '^summary:' encode all-mpnet-base-v2 100000 --tokens 64
gpu_step encode-mpnet 100 '^summary:' encode all-mpnet-base-v2 50000
gpu_step encode-minilm 80 '^summary:' encode all-MiniLM-L6-v2 100000
gpu_step train 100 'epoch' "$bbin/bench_train" --device cuda --queries 1000000 --epochs 3 --peer-queries 5000
# Per-batch time of the three ways the trainer launches a batch
# (src/predictor/train.c; docs/CUDA.md, "Launch overhead"): host arguments
# per launch (args), the batch table in device memory (table), and one CUDA
# graph per full batch (graph, the default); 200k x 24, 6,250 batches of 32.
train_launch() {
    local m line sec rc=0 args=
    for m in args table graph; do
        line=$(RTR_TRAIN_LAUNCH=$m "$bbin/bench_train" --device cuda --queries 200000 --epochs 3 --peer-queries 0 |
               grep 's/epoch') || { echo "$m: bench_train failed"; rc=1; continue; }
        sec=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "s/epoch") print $i}')
        echo "$line"
        awk -v m="$m" -v s="$sec" -v a="$args" 'BEGIN {
            us = s * 1e6 / 6250
            printf "launch %-5s %8.1f us/batch%s\n", m, us, a ? sprintf("  (%.2fx the args path)", a / us) : ""
        }'
        [ "$m" = args ] && args=$(awk -v s="$sec" 'BEGIN {print s * 1e6 / 6250}')
    done
    echo "model (docs/CUDA.md): ~40 launches x 3-5 us of host time = 120-200 us/batch with plain launches;" \
         "the batch's kernels ~110 us on an H100, ~85 us on an H200 (Adam's 165 MB and ~1 us per kernel)"
    return $rc
}
export -f train_launch
gpu_step train-launch 60 'launch graph' train_launch
gpu_step sweep 60 'GPU|speedup' "$bbin/bench_sweep" --device cuda 1000000 24 0
gpu_step score-bf16 90 'max \|dp\|' "$kbin/bench_score_bf16" --device cuda

# ---- test_gpu's backend suite under compute-sanitizer --------------------
sanitize() { # TOOL
    local cs log=$work/sanitizer-$1.log
    cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
    [ -n "$cs" ] || { echo "compute-sanitizer not on this machine: skipped"; return 77; }
    RTR_TEST_GPU_ONLY=backend "$cs" --tool "$1" --error-exitcode 3 "$kbin/test_gpu" >"$log" 2>&1
    local rc=$?
    if grep -qE 'Device not supported|not supported on this platform|Unable to find injection|error 999' "$log"; then
        grep -m3 -E 'not supported|injection|999' "$log"
        echo "compute-sanitizer refused this runtime (gVisor does): skipped"
        return 77
    fi
    grep -vE '^(ok|skip)  ' "$log" | tail -40
    return $rc
}
export -f sanitize
gpu_step memcheck 75 'ERROR SUMMARY' sanitize memcheck
gpu_step racecheck 90 'ERROR SUMMARY|RACECHECK SUMMARY' sanitize racecheck

# ---- the machine code: tensor-core and 16-byte instructions where meant ----
sass() {
    local cod
    cod=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
    [ -n "$cod" ] || { echo "cuobjdump not on this machine: skipped"; return 77; }
    "$cod" --dump-sass "$rtr" >"$work/sass.txt" 2>&1 || { tail -3 "$work/sass.txt"; return 1; }
    awk '/Function :/ {f = $3} /HMMA|HGMMA/ {h[f]++} /LDG.E.128|LDG.E.ENL2.256/ {v[f]++} /STL|LDL/ {l[f]++}
         END {for (k in h) if (k ~ /attention_bf16|heads_score/) printf "%s: %d HMMA, %d 16-byte loads, %d local\n", k, h[k], v[k], l[k];
              for (k in v) if (k ~ /heads_score/ && !(k in h)) printf "%s: %d 16-byte loads, %d local\n", k, v[k], l[k]}' \
        "$work/sass.txt" | sort
}
export -f sass
step sass 30 'attention_bf16_kernelILi64' sass

# ---- the CPU: rtr's bf16 GEMMs (oneDNN) where AVX-512 BF16 is --------------
# The section's window starts now (the GPU steps left it; at most to the
# deadline) and ends before the emulated tests. With RTR_GPU_CHECK_ONLY=cpu
# no GPU step ran to hide the ONNX export behind: it is waited for first.
if [ -n "$only" ] && [ -n "$onnx_pid" ]; then
    t0=$(date +%s)
    wait "$onnx_pid"
    echo "waited $(($(date +%s) - t0)) s for the ONNX export (on the device it runs behind the GPU steps)"
fi
section_end=$(($(date +%s) + cpu_window))
[ "$section_end" -le "$deadline" ] || section_end=$deadline
# bf16 needs the CPU's AVX-512 BF16 and a bundle built with oneDNN
# (tools/device-bundle leaves oneDNN out when the bundle would not fit the
# device tool's limit with it)
cpu_bf16=0 bf16_why="no AVX-512 BF16"
if ! grep -qw avx512_bf16 /proc/cpuinfo; then :
elif ! ldd "$tbin/bench_encode_cpu" 2>/dev/null | grep -q libdnnl; then bf16_why="rtr built without oneDNN"
else cpu_bf16=1; fi
export bf16_why
export cpu_bf16
cpu_info() {
    local f flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) " have=() lack=() rc
    for f in avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 amx_tile amx_bf16 amx_int8; do
        case $flags in *" $f "*) have+=("$f") ;; *) lack+=("$f") ;; esac
    done
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) online"
    echo "cpu flags: has ${have[*]:-none}; lacks ${lack[*]:-none}"
    # What rtr and oneDNN make of this CPU: a small bf16 encode with oneDNN's
    # verbose log (2.x reads DNNL_VERBOSE; later ONEDNN_VERBOSE): the ISA its
    # JIT targets and the matmul implementations it picked; without AVX-512
    # BF16, rtr's refusal naming the features it read.
    printf '%s\n' "what is the capital of France" "a second, longer question about routing queries to models" |
        DNNL_VERBOSE=1 ONEDNN_VERBOSE=1 "$tbin/bench_encode_cpu" --model "$models/all-MiniLM-L6-v2" --precision bf16 \
            --threads 2 >"$work/dnnl-verbose.log" 2>&1
    rc=$?
    grep -m4 -E '_verbose,info,(oneDNN|cpu)' "$work/dnnl-verbose.log"
    # exec lines: onednn_verbose,exec,cpu,matmul,IMPLEMENTATION,PROP,src_TYPE:...
    awk -F, '$2 == "exec" && $4 == "matmul" {split($7, md, ":"); print $5, md[1]}' "$work/dnnl-verbose.log" |
        sort | uniq -c | sed 's/^ */oneDNN matmul calls (count, implementation, source): /'
    if [ "$cpu_bf16" = 0 ]; then
        echo "rtr: $(grep -m1 -i 'bf16' "$work/dnnl-verbose.log" | cut -c1-300)"
        echo "$bf16_why: CPU bf16 skipped"
        # refused, as it must be where it cannot run
        [ $rc != 0 ] || { echo "bench_encode_cpu --precision bf16 ran where it cannot ($bf16_why)"; return 1; }
        return 0
    fi
    [ $rc = 0 ] || { tail -5 "$work/dnnl-verbose.log"; echo "bf16 encode failed (rc $rc)"; return 1; }
    grep -q ',cpu,matmul,.*bf16' "$work/dnnl-verbose.log" ||
        { echo "no bf16 matmul in oneDNN's log: the bf16 path did not run through oneDNN"; return 1; }
    echo "bf16 dispatched: $(awk -F, '$2 == "exec" && $4 == "matmul" {print $5}' "$work/dnnl-verbose.log" | sort -u |
                              tr '\n' ' ')"
}
# test_cpu_gemm_dnnl on the bundle's MiniLM (all-mpnet-base-v2's weights are
# not carried: that part skips, and the test exits 77 for it; a run whose
# bf16 cases passed on MiniLM is a pass)
cpu_bf16_test() {
    [ "$cpu_bf16" = 1 ] || { echo "$bf16_why: CPU bf16 skipped"; return 77; }
    RTR_MODELS_DIR=$models RTR_SHARED_DATA=$shared "$tbin/test_cpu_gemm_dnnl" 2>&1 | tee "$work/cpu-bf16-test.log"
    local rc=${PIPESTATUS[0]}
    if [ $rc = 77 ] && grep -q '^ok   test_bf16_layers' "$work/cpu-bf16-test.log" &&
        grep -q '^all-MiniLM-L6-v2 bf16 (oneDNN) vs sentence-transformers' "$work/cpu-bf16-test.log" &&
        ! grep -q '^FAIL' "$work/cpu-bf16-test.log"; then
        echo "bf16 layers and MiniLM in bf16 passed (the mpnet part skipped: no weights in the bundle)"
        return 0
    fi
    return $rc
}
# the background export (above): done, or waited for
cpu_onnx() {
    while [ ! -e "$work/onnx-export.rc" ] && kill -0 "$1" 2>/dev/null; do sleep 1; done
    grep -v '^\[torch.onnx\]' "$work/onnx-export.log" | tail -5
    [ -e "$work/onnx-export.rc" ] || { echo "the export ended without a status (killed at 300 s?)"; return 1; }
    return "$(cat "$work/onnx-export.rc")"
}
# bench_encode.py at THREADS: texts in proportion to the threads (runs of
# about a second on the device's cores); ONNX Runtime left out, saying so,
# where the export failed (rtr's own figures still come)
cpu_encode() {
    local t=$1 configs=rtr-fp32
    if [ -s "$work/cache/onnx/all-MiniLM-L6-v2/model.onnx" ]; then configs=ort,$configs; else
        echo "no ONNX model (step cpu-onnx): ONNX Runtime left out"; fi
    if [ "$cpu_bf16" = 1 ]; then configs=$configs,rtr-bf16; else echo "$bf16_why: CPU bf16 skipped (fp32 only)"; fi
    RTR_SHARED_DATA=$shared RTR_CACHE=$work/cache python3 "$root/bench/bench_encode.py" \
        --rtr-bench "$tbin/bench_encode_cpu" --models "$models" --only all-MiniLM-L6-v2 --threads "$t" --rounds 3 \
        --configs "$configs" --short-texts $((48 * t)) --long-texts $((t < 8 ? 8 : 2 * t))
}
# a text alone and in a batch: whether CPU `auto` may pick bf16 (online
# route against a batch-encoded corpus; docs/ENCODER.md, "What auto should
# pick"); without bf16, fp32 alone (the model of bf16's arithmetic,
# bf16-model, takes minutes here: docs/ENCODER.md has its figure)
cpu_batch() {
    RTR_SHARED_DATA=$shared python3 "$root/bench/bench_encode_batch.py" --rtr-bench "$tbin/bench_encode_cpu" \
        --model "$models/all-MiniLM-L6-v2" --threads 2 --texts 16 --long-words 120 \
        --precisions "$([ "$cpu_bf16" = 1 ] && echo fp32,bf16 || echo fp32)"
}
export -f cpu_info cpu_onnx cpu_bf16_test cpu_encode cpu_batch
cpu_step cpu 10 'dispatched|CPU bf16 skipped|cpu flags' cpu_info
cpu_step cpu-onnx 60 'ONNX model|export' cpu_onnx "$onnx_pid"
cpu_step cpu-bf16-test 20 'passed|CPU bf16 skipped' cpu_bf16_test
cpu_step cpu-encode-2t 75 'ratio rtr (bf16|fp32)' cpu_encode 2
cpu_step cpu-batch 25 'alone vs batched' cpu_batch
if [ "$(nproc)" -gt 2 ]; then
    cpu_step cpu-encode-all 30 'ratio rtr (bf16|fp32)' cpu_encode "$(nproc)"
fi
section_end=$deadline

# ---- the emulated kernels (CPU only: what CI runs, here on this machine) ---
step test_emu 30 'passed' "$kbin/test_emu"
step test_kernels_emu 60 'passed' "$kbin/test_kernels_emu"
step test_train_emu 40 'passed' "$kbin/test_train_emu"
step test_route_emu 40 'passed' "$kbin/test_route_emu"
step test_encoder_emu 90 'passed|max' "$kbin/test_encoder_emu"

# ---- the summary ------------------------------------------------------------
tar -C "$work" -czf "$out/steps.tar.gz" steps $(cd "$work" && ls sanitizer-*.log 2>/dev/null)
{
    printf 'step\tstatus\tseconds\tfigure\n'
    for i in "${!names[@]}"; do printf '%s\t%s\t%s\t%s\n' "${names[$i]}" "${statuses[$i]}" "${times[$i]}" "${figures[$i]}"; done
} >"$out/summary.tsv"
echo
echo "== summary ($(($(date +%s) - t_start)) s; $(head -1 "$out/machine.txt" | cut -c1-60); logs: $out)"
[ -s "$out/ceilings.txt" ] && grep -h 'measured' "$work/steps/ceilings.log" | tail -1
for i in "${!names[@]}"; do
    printf '%-20s %-24s %4s s  %s\n' "${names[$i]}" "${statuses[$i]}" "${times[$i]}" "${figures[$i]}"
done
[ $failed = 0 ] || { echo "gpu_check: FAILED (above)"; exit 1; }
[ $gpu = 1 ] || { echo "gpu_check: no GPU visible: GPU steps not run"; exit 77; }
echo "gpu_check: all passed"
