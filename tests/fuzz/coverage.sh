#!/usr/bin/env bash
# tests/fuzz/coverage.sh [HARNESS...] — line coverage of what the fuzz
# corpora reach: rtr's library and commands built with clang's source
# coverage (-fprofile-instr-generate -fcoverage-mapping, no sanitizers), each
# harness run once over its corpus (the seeds, the regression inputs and the
# corpus tools/run-fuzz grew in $RTR_FUZZ_BUILD/corpus-<harness>), and
# llvm-cov's line coverage of the source files the harness is about.
# Prints one line per harness (docs/robustness.md records them).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fz=${RTR_FUZZ_BUILD:-$root/build-fuzz}
out=$fz/coverage
cc=${CC_FUZZ:-clang} cxx=${CXX_FUZZ:-clang++}
profdata=$(command -v llvm-profdata || ls /usr/bin/llvm-profdata-* | tail -1)
cov=$(command -v llvm-cov || ls /usr/bin/llvm-cov-* | tail -1)
mkdir -p "$out"
flags="-g -O1 -fprofile-instr-generate -fcoverage-mapping"
cmake -S "$root" -B "$out/rtr" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=None \
  -DRTR_CUDA=OFF -DRTR_NATIVE=OFF -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" \
  >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build "$out/rtr" --target rtr -j"$(nproc)" >>"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
link=$(sed -n 's/.* -o rtr  *//p' "$out/rtr/CMakeFiles/rtr.dir/link.txt")
cli_objs=$(ls "$out"/rtr/CMakeFiles/rtr.dir/src/cli/*.o | grep -v '/main\.c\.o$')

# The source files each harness is about (coverage is reported over them).
targets() {
  case $1 in
    safetensors) echo src/store/safetensors.c ;;
    tokenizer|tokenizer_json) echo src/encoder/tokenizer.c ;;
    catalog) echo src/store/catalog.c ;;
    pair_cost) echo src/route/route.c ;;
    outcomes) echo src/store/ingest.c src/store/store.c src/store/catalog.c ;;
    eval_json) echo src/eval/report.c src/eval/svg.c ;;
    cli) echo src/cli/args.c src/cli/cli.c ;;
    model_config) echo src/encoder/encoder.c ;;
    checkpoint) echo src/predictor/checkpoint.c ;;
    manifest|shard) echo src/store/store.c src/route/route_data.c src/predictor/pred_data.c ;;
  esac
}

all=$(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
export RTR_FUZZ_SKIP=${RTR_FUZZ_SKIP-eval-predictor,eval}
for h in ${*:-$all}; do
  (cd "$out/rtr" && $cc $flags -fsanitize=fuzzer -std=c11 -Wno-unused-function -D_XOPEN_SOURCE=700 -D_DEFAULT_SOURCE \
     -I"$root/include" -I"$root/src" -I"$root/tests/fuzz" $(pkg-config --cflags libcjson) \
     -o "$out/fuzz_$h" "$root/tests/fuzz/fuzz_$h.c" $cli_objs $link) >"$out/build-$h.log" 2>&1 \
    || { cat "$out/build-$h.log" >&2; exit 1; }
  dirs=""
  for d in "$root/tests/fuzz/corpus/$h" "$fz/corpus-$h"; do
    [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && dirs="$dirs $d"
  done
  rm -f "$out/$h".*.profraw
  # the corpora in one run (they hold no crashing input; the profile is
  # written at exit), the regression inputs one run each (they may crash)
  LLVM_PROFILE_FILE="$out/$h.%p.profraw" "$out/fuzz_$h" -runs=0 -close_fd_mask=3 $dirs >/dev/null 2>&1 || true
  for f in $(find "$root/tests/fuzz/regress/$h" -type f 2>/dev/null); do
    LLVM_PROFILE_FILE="$out/$h.%p.profraw" "$out/fuzz_$h" -runs=1 -close_fd_mask=3 "$f" >/dev/null 2>&1 || true
  done
  "$profdata" merge -sparse "$out/$h".*.profraw -o "$out/$h.profdata"
  files=$(for t in $(targets "$h"); do [ -f "$root/$t" ] && echo "$root/$t"; done)
  # llvm-cov's TOTAL row: regions (3 columns), functions (3), lines (3), branches (3)
  line=$("$cov" report "$out/fuzz_$h" -instr-profile="$out/$h.profdata" $files 2>/dev/null |
         awk '/^TOTAL/ {print $8 " lines, " $9 " missed: " $10 " covered; branches " $13}')
  n=$( (find $dirs "$root/tests/fuzz/regress/$h" -type f 2>/dev/null || true) | wc -l)
  echo "coverage: $h: $n inputs; $(targets "$h" | tr '\n' ' ')-> $line"
done
