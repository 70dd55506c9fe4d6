#!/usr/bin/env bash
# `rtr encode` and `rtr embed` end to end on a small generated corpus with
# all-MiniLM-L6-v2: an embeddings file beside every shard (schema 2, the
# shards untouched) and the descriptions once, a second run
# skips up-to-date shards, embed prints one unit-norm JSON array per line,
# bad input exits 1 (2 for usage) with a clear message; --device and
# --precision are reported, and refused when they cannot be honoured. Skips
# (77) without the model folder ($RTR_MODELS_DIR or data/models, see
# tools/fetch-encoder).
. "$(dirname "$0")/lib.sh"
model=${RTR_MODELS_DIR:-${RTR_SOURCE_DIR:-.}/data/models}/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || { echo "SKIP: $model absent"; exit 77; }
cd "$work"
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
# Each command's exit status is taken on its own line (rc=$?): a $? read on
# check's line would be that of the $(cat ...) in the message, always 0.

"$RTR" gen-demo --queries 300 demo >/dev/null 2>&1 &&
  "$RTR" ingest --catalog demo/catalog.json --out corpus --shard-size 120 demo/outcomes.jsonl >/dev/null 2>&1
check "demo corpus" test -f corpus/manifest.json

"$RTR" encode --model "$model" --threads 2 corpus > out1.txt 2> err1.txt; rc=$?
check "encode exit 0: $(cat err1.txt)" test $rc -eq 0
check "encode summary: $(cat out1.txt)" grep -q "encoded 300 queries in 3 of 3 shard" out1.txt
"$RTR" encode --model "$model" --json corpus > out2.txt 2>&1
check "second run skips: $(cat out2.txt)" grep -q '"shards_skipped":3,"queries_encoded":0' out2.txt

python3 - "$model" <<'PY' > py.txt 2>&1
# schema 2 (docs/FORMAT.md): one embeddings file per shard beside the
# corpus, tied to its shard by the shard's content hash; descriptions once
import json, h5py, numpy as np
m = json.load(open("corpus/manifest.json"))
enc = "corpus/embeddings/all-MiniLM-L6-v2"
n = 0
for s in m["shards"]:
    with h5py.File(f"{enc}/{s['file']}", "r") as h:
        assert h.attrs["rtr_schema"] == b"rtr-embeddings" and h.attrs["rtr_schema_version"] == 2, s
        assert h.attrs["encoder"] == b"all-MiniLM-L6-v2" and len(h.attrs["encoder_hash"]) == 16, s
        assert h.attrs["shard_hash"].decode() == s["hash"] and h.attrs["n_queries"] == s["n_queries"], s
        q = h["/embedding/query"]
        assert q.shape == (s["n_queries"], 384) and h.attrs["dim"] == 384, s
        assert np.allclose(np.linalg.norm(q[:], axis=1), 1, atol=1e-5), s
        n += q.shape[0]
    with h5py.File(f"corpus/{s['file']}", "r") as h:
        assert "embedding" not in h, "encode wrote into the shard " + s["file"]
with h5py.File(f"{enc}/descriptions.h5", "r") as h:
    assert h.attrs["rtr_schema"] == b"rtr-descriptions"
    assert h["/embedding/model_desc"].shape == (4, 384) and h["/embedding/strategy_desc"].shape == (4, 384)
assert n == 300, n
print("ok")
PY
if python3 -c "import h5py" 2>/dev/null; then check "shard contents: $(cat py.txt)" grep -q '^ok$' py.txt
else skip_part "h5py absent: shard contents not read"; fi

printf 'What is 2+2?\n\nCaf\xc3\xa9 \xff bytes\n' | "$RTR" embed --model "$model" > emb.txt 2> err3.txt; rc=$?
check "embed exit 0: $(cat err3.txt)" test $rc -eq 0
check "embed prints 3 lines" test "$(wc -l < emb.txt)" -eq 3
python3 -c '
import json, sys
rows = [json.loads(l) for l in open("emb.txt")]
assert all(len(r) == 384 and abs(sum(x * x for x in r) - 1) < 1e-5 for r in rows)
assert rows[0] != rows[1]
print("ok")' > py2.txt 2>&1
check "embed rows: $(cat py2.txt)" grep -q '^ok$' py2.txt

echo x | "$RTR" embed > /dev/null 2> err4.txt; rc=$?
check "embed without --model exits 2" test $rc -eq 2
echo x | "$RTR" embed --model "$work/nope" > /dev/null 2> err5.txt; rc=$?
check "embed bad model exits 1" test $rc -eq 1
check "message names the folder: $(cat err5.txt)" grep -q "nope" err5.txt
"$RTR" encode --model "$model" "$work/no-corpus" > /dev/null 2> err6.txt; rc=$?
check "encode missing corpus exits 1" test $rc -eq 1

# bf16 on the CPU runs where the build has oneDNN and the CPU AVX-512 BF16
# (docs/ENCODER.md), and is refused elsewhere; auto is bf16 there, else fp32
cpu_bf16=0
grep -qw avx512_bf16 /proc/cpuinfo && ldd "$RTR" | grep -q libdnnl && cpu_bf16=1
"$RTR" encode --model "$model" --device cpu --precision bf16 --json corpus > out8.txt 2> err8.txt; rc=$?
if [ $cpu_bf16 = 1 ]; then
  check "bf16 on a CPU with AVX-512 BF16 runs and says so: $(cat out8.txt err8.txt)" \
    grep -q '"device":"CPU, [0-9]* threads","precision":"bf16"' out8.txt
else
  check "bf16 on the CPU exits 1 where it cannot run" test $rc -eq 1
  check "bf16 on the CPU is refused: $(cat err8.txt)" grep -q "bf16 needs a CUDA device or bf16 GEMMs on the CPU" err8.txt
fi
"$RTR" encode --model "$model" --device cpu --precision fp16 corpus > /dev/null 2> err8.txt; rc=$?
check "fp16 on the CPU is refused naming CUDA only: $(cat err8.txt)" grep -q "precision fp16 needs a CUDA device (" err8.txt
"$RTR" encode --model "$model" --device cpu --json corpus > out7.txt 2>&1
auto=$([ $cpu_bf16 = 1 ] && echo bf16 || echo fp32)
check "json names device and precision (auto: $auto): $(cat out7.txt)" grep -q '"device":"CPU, [0-9]* threads","precision":"'$auto'"' out7.txt
"$RTR" encode --model "$model" --device cpu --precision fp32 --json corpus > out7.txt 2>&1
check "json names device and precision (fp32): $(cat out7.txt)" grep -q '"device":"CPU, [0-9]* threads","precision":"fp32"' out7.txt
"$RTR" encode --model "$model" --device tpu corpus > /dev/null 2> err9.txt; rc=$?
check "unknown device exits 1" test $rc -eq 1
check "message names the device: $(cat err9.txt)" grep -q tpu err9.txt

finish
