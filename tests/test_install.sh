#!/bin/bash
# librtr as other programs use it: `cmake --install` into a scratch prefix,
# a C program built with nothing but `pkg-config --cflags --libs rtr`
# (tests/install/route_texts.c: one rtr_route_texts call), and its decisions for three texts equal to
# those of `rtr route --model --checkpoint` on the same texts and checkpoint.
# Needs the all-MiniLM-L6-v2 folder (tools/fetch-encoder; skips without it).
source "$(dirname "$0")/lib.sh"
model=${RTR_SOURCE_DIR:?}/data/models/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || { echo "SKIP: $model missing (tools/fetch-encoder)"; exit 77; }
command -v pkg-config >/dev/null || { echo "FAIL: pkg-config not installed"; exit 1; }
build=${RTR_BINARY_DIR:?}

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 && ok || bad "cmake --install failed: $(tail -3 "$work/install.log")"
[ -f "$work/prefix/lib/librtr.so" ] || [ -n "$(ls "$work"/prefix/lib*/librtr.so 2>/dev/null)" ] && ok || bad "librtr.so not installed"
pc=$(dirname "$(ls "$work"/prefix/lib*/pkgconfig/rtr.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs rtr) && ok || bad "pkg-config --cflags --libs rtr failed"
case "$flags" in *"$work/prefix"*) ok ;; *) bad "pkg-config flags do not point into the prefix: $flags" ;; esac
[ -x "$work/prefix/bin/rtr" ] && [ -f "$work/prefix/include/rtr/rtr.h" ] && ok || bad "rtr binary or headers not installed"
# Only the prefixed API leaves the library.
stray=$(nm -D --defined-only "$pc/../librtr.so" | awk '$3 !~ /^rtr_/ {print $3}' | head -5)
[ -z "$stray" ] && ok || bad "librtr.so exports symbols without the rtr_ prefix: $stray"

cc -std=c11 -Wall -Wextra -Werror -o "$work/route_texts" "$RTR_SOURCE_DIR/tests/install/route_texts.c" $flags \
    2>"$work/cc.log" && ok || bad "building against the installed library failed: $(head -5 "$work/cc.log")"

# A checkpoint to route with: a small demo corpus, encoded and trained briefly.
"$RTR" gen-demo --queries 200 --seed 9 "$work/demo" >/dev/null 2>&1 &&
"$RTR" ingest --catalog "$work/demo/catalog.json" --out "$work/corpus" "$work/demo/outcomes.jsonl" >/dev/null 2>&1 &&
"$RTR" encode --device cpu --model "$model" "$work/corpus" >/dev/null 2>&1 &&
"$RTR" train --device cpu "$work/corpus" --out "$work/ck.safetensors" --hidden 32 --learn-dim 16 --epochs 5 \
    >/dev/null 2>&1 && ok || bad "could not make a checkpoint with the rtr binary"

texts=("What is 17 times 23?" "Prove that the square root of 2 is irrational."
       "A tank fills in 3 hours and drains in 5; how long to fill it with both open?")
for lambda in 0.2 0.9; do
  lib=$(LD_LIBRARY_PATH="$pc/.." "$work/route_texts" "$model" "$work/ck.safetensors" $lambda 500 "${texts[@]}" 2>"$work/err") \
      || bad "route_texts failed: $(cat "$work/err")"
  cli=$(printf '%s\n' "${texts[@]}" | "$RTR" route --device cpu --model "$model" --checkpoint "$work/ck.safetensors" \
        --lambda $lambda --cost-scale 500 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin: d = json.loads(line); print(d["model"] + "|" + d["strategy"])')
  [ "$(echo "$lib" | wc -l)" = 3 ] && ok || bad "lambda $lambda: expected 3 decisions, got: $lib"
  [ "$lib" = "$cli" ] && ok || bad "lambda $lambda: library decisions differ from rtr route: [$lib] vs [$cli]"
done
finish
