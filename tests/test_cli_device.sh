#!/usr/bin/env bash
# `--device auto` where no GPU answers: one line on stderr saying why, then
# the CPU computes ("rtr: no CUDA device (no NVIDIA driver is loaded);
# computing on the CPU" on a machine without a driver, never cudart's
# "driver version is insufficient"); --quiet silences the line; `--device
# cuda` fails with exit 1 and the same reason. With a GPU that answers there
# is no fallback to check: exit 77. Needs all-MiniLM-L6-v2
# ($RTR_MODELS_DIR or data/models, tools/fetch-encoder); exits 77 without.
. "$(dirname "$0")/lib.sh"
model=${RTR_MODELS_DIR:-${RTR_SOURCE_DIR:-.}/data/models}/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || { echo "SKIP: $model absent"; exit 77; }
cd "$work"
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

echo "What is 2+2?" | "$RTR" embed --model "$model" --device auto > out.txt 2> err.txt; rc=$?
check "auto exit 0: $(cat err.txt)" test $rc -eq 0
check "auto embeds: $(head -c 80 out.txt)" test "$(wc -l < out.txt)" -eq 1
if ! grep -q "computing on the CPU" err.txt; then
  echo "SKIP: a GPU answered (no fallback to check): $(cat err.txt)"
  exit 77
fi
check "one line on stderr: $(cat err.txt)" test "$(wc -l < err.txt)" -eq 1
# the reasons rtr_backend_cuda_open and a build without CUDA give
reasons='no CUDA device|no CUDA device \(no NVIDIA driver is loaded\)|the NVIDIA driver supports CUDA [0-9]+\.[0-9]+, older than the CUDA [0-9]+\.[0-9]+ runtime rtr was built with|CUDA device 0 \(.*\) is sm_[0-9]+; rtr needs sm_80 or newer|this rtr was built without CUDA \(configure with nvcc present\)'
check "the reason, then the CPU: $(cat err.txt)" grep -Eqx "rtr: ($reasons); computing on the CPU" err.txt
check "not cudart's words: $(cat err.txt)" test "$(grep -c 'insufficient' err.txt)" -eq 0
# no NVIDIA device node: a CUDA build must say there is no device (this machine, CI)
if ! ls /dev/nvidia[0-9]* > /dev/null 2>&1 && ! grep -q "built without CUDA" err.txt; then
  check "no device node -> no CUDA device: $(cat err.txt)" grep -q "^rtr: no CUDA device" err.txt
fi

echo "What is 2+2?" | "$RTR" embed --model "$model" --device auto --quiet > out.txt 2> err.txt; rc=$?
check "--quiet exit 0: $(cat err.txt)" test $rc -eq 0
check "--quiet silences the fallback line: $(cat err.txt)" test ! -s err.txt

reason=$(echo "What is 2+2?" | "$RTR" embed --model "$model" --device auto 2>&1 >/dev/null | sed 's/^rtr: //; s/; computing on the CPU$//')
echo "What is 2+2?" | "$RTR" embed --model "$model" --device cuda > out.txt 2> err.txt; rc=$?
check "--device cuda exit 1: $rc" test $rc -eq 1
check "--device cuda nothing on stdout" test ! -s out.txt
check "--device cuda gives the reason '$reason': $(cat err.txt)" grep -qF "$reason" err.txt
finish
