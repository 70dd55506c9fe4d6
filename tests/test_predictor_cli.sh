#!/bin/bash
# End-to-end test of `rtr train`, `rtr score` and `rtr eval-predictor` on the
# demo corpus, with stand-in query embeddings (hashed bag of words, written
# beside the shards with h5py as docs/FORMAT.md says, so this test does not
# need encoder weights); named tables that coexist and go stale when the
# embeddings are re-encoded; and the failure cases: a corpus without
# embeddings, another encoder's embeddings, another catalog, a diverging run,
# an unknown --device, NaN or corrupt embeddings. A failed run must exit 1
# and leave existing outputs as they were.
set -u
RTR=${RTR:?path of the rtr binary}
python3 -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: h5py/numpy missing"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

"$RTR" gen-demo --queries 1200 --seed 5 "$W/demo" >/dev/null 2>&1 || { echo "gen-demo failed"; exit 1; }
"$RTR" ingest --catalog "$W/demo/catalog.json" --out "$W/corpus" --shard-size 500 "$W/demo/outcomes.jsonl" \
    >/dev/null 2>&1 || { echo "ingest failed"; exit 1; }
cp -r "$W/corpus" "$W/plain"   # a corpus never encoded

# Stand-in encoder: each word adds a fixed random vector; rows L2-normalised.
export PYTHONPATH="${RTR_SOURCE_DIR:-$(dirname "$0")/..}/tests${PYTHONPATH:+:$PYTHONPATH}"
embed() { # corpus_dir encoder_hash
    python3 -c "import sys, rtrdata; rtrdata.write_bag_of_words(sys.argv[1], 'bow', sys.argv[2], 32, 'test-bag-of-words')" "$1" "$2"
}
embed "$W/corpus" hashA || { echo "embedding failed"; exit 1; }
T="--hidden 24 --learn-dim 8 --epochs 15 --patience 4"
check "train writes a checkpoint" "'$RTR' train '$W/corpus' --out '$W/ck.safetensors' $T --json >'$W/train.json' 2>'$W/train.log'"
check "train logs epochs and its device" "grep -q '^epoch   1' '$W/train.log' && python3 -c \"import json;d=json.load(open('$W/train.json'));assert len(d['epochs'])>=2 and d['device']\""
check "paper setting trains" "'$RTR' train '$W/corpus' --out '$W/paper.safetensors' $T --token-target raw --no-token-scale >/dev/null 2>&1"
# embeddings above the memory budget are memory-mapped: the same checkpoint, bit for bit
check "train with the embeddings memory-mapped" "'$RTR' train '$W/corpus' --out '$W/mapped.safetensors' $T --memory-budget 0.05 --json >'$W/mapped.json' 2>/dev/null"
check "... says so, and trains the same checkpoint" "python3 -c \"import json;a=json.load(open('$W/train.json'));b=json.load(open('$W/mapped.json'));assert b['memory_mapped'] and not a['memory_mapped'] and a['checkpoint_hash']==b['checkpoint_hash'], (a['checkpoint_hash'], b['checkpoint_hash'])\" && cmp -s '$W/ck.safetensors' '$W/mapped.safetensors'"
check "score writes routing tables" "'$RTR' score --checkpoint '$W/ck.safetensors' '$W/corpus' >/dev/null 2>'$W/score.log'"
check "tables have the right shape and range, tied to their shards" "python3 - '$W/corpus' <<'EOF'
import sys, h5py, numpy as np, rtrdata
for path, file, shard_hash, n in rtrdata.shards(sys.argv[1]):
    with h5py.File(path) as f, h5py.File(sys.argv[1] + '/tables/ck/' + file) as t:
        k = f['outcomes/correct'].shape[1]
        pc, tk = t['routing/p_correct'][()], t['routing/tokens'][()]
        assert pc.shape == (n, k) and tk.shape == (n, k)
        assert np.all((pc > 0) & (pc < 1)) and np.all(tk >= 0) and len(t.attrs['checkpoint_hash']) == 16
        assert t.attrs['shard_hash'].decode() == shard_hash and t.attrs['encoder_hash'] == b'hashA'
EOF"
check "tables equal the paper's concat MLP (NumPy, from the checkpoint)" "python3 - '$W/corpus' '$W/ck.safetensors' <<'EOF'
import json, struct, sys, h5py, numpy as np
raw = open(sys.argv[2], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); meta = hdr.pop('__metadata__'); buf = raw[8 + n:]
t = {k: np.frombuffer(buf[v['data_offsets'][0]:v['data_offsets'][1]], np.float32).reshape(v['shape']) for k, v in hdr.items()}
pm, ps = t['pair_model'].astype(int), t['pair_strategy'].astype(int)
D = t['d_model'].shape[1]
with h5py.File(sys.argv[1] + '/embeddings/bow/shard-00000.h5') as f, h5py.File(sys.argv[1] + '/tables/ck/shard-00000.h5') as g:
    e = f['embedding/query'][:50].astype(np.float64); P = g['routing/p_correct'][:50]; T = g['routing/tokens'][:50]
K = len(pm)
x = np.concatenate([np.repeat(e, K, 0), np.tile(t['d_model'][pm], (50, 1)), np.tile(t['d_strategy'][ps], (50, 1)),
                    np.tile(t['u_model'][pm], (50, 1)), np.tile(t['u_strategy'][ps], (50, 1))], 1)
z = []
for h in ('correct', 'tokens'):
    Wm, Ws = t['head.%s.W_m' % h], t['head.%s.W_s' % h]
    W1 = np.concatenate([t['head.%s.W_q' % h], Wm[:, :D], Ws[:, :D], Wm[:, D:], Ws[:, D:]], 1)
    z.append((np.maximum(x @ W1.T + t['head.%s.b1' % h], 0) @ t['head.%s.w2' % h] + t['head.%s.b2' % h][0]).reshape(50, K))
p = 1 / (1 + np.exp(-z[0]))
tok = np.logaddexp(0, z[1]) * float(meta['token_scale'])
tok = np.expm1(tok) if meta['token_target'] == 'log' else tok
assert np.abs(p - P).max() < 1e-5 and (np.abs(tok - T) / np.maximum(1, tok)).max() < 1e-4, (np.abs(p - P).max(), np.abs(tok - T).max())
EOF"
# ---- streamed scoring: the backend and the chunking change nothing
tables() { python3 -c "import glob,h5py,sys;sys.stdout.buffer.write(b''.join(h5py.File(p)['routing/'+k][()].tobytes() for p in sorted(glob.glob(sys.argv[1]+'/tables/ck/shard-*.h5')) for k in ('p_correct','tokens')))" "$1"; }
close_tables() { python3 - "$1" "$2" <<'EOF'
import glob, sys, h5py, numpy as np
for a, b in zip(sorted(glob.glob(sys.argv[1] + '/tables/ck/shard-*.h5')), sorted(glob.glob(sys.argv[2] + '/tables/ck/shard-*.h5'))):
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for k, tol in (('p_correct', 1e-6), ('tokens', 1e-5)):
            x, y = fa['routing/' + k][()], fb['routing/' + k][()]
            assert x.shape == y.shape and np.all(np.abs(x - y) <= tol * np.maximum(1, np.abs(y))), (a, k)
EOF
}
tables "$W/corpus" >"$W/t_first"
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/corpus" --device cpu --json >"$W/score_cpu.json" 2>/dev/null
tables "$W/corpus" >"$W/t_cpu"
check "score reports the CPU device" "python3 -c \"import json;assert json.load(open('$W/score_cpu.json'))['device'].startswith('CPU')\""
cp -r "$W/corpus" "$W/auto"
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/auto" --device auto --json >"$W/score_auto.json" 2>/dev/null
if python3 -c "import json,sys;sys.exit(0 if json.load(open('$W/score_auto.json'))['device'].startswith('CPU') else 1)"; then
    check "score --device cpu and auto on the CPU: the first run's tables, bit for bit" \
        "cmp -s '$W/t_first' '$W/t_cpu' && tables '$W/auto' | cmp -s - '$W/t_cpu'"
else
    check "score --device auto on a GPU: the CPU's tables within float rounding" "close_tables '$W/auto' '$W/corpus'"
fi
cp -r "$W/corpus" "$W/chunked"
check "score in chunks of 7 (500-query shards: the last chunk partial)" \
    "'$RTR' score --checkpoint '$W/ck.safetensors' '$W/chunked' --device cpu --chunk-rows 7 >/dev/null 2>&1 && close_tables '$W/chunked' '$W/corpus'"
rm -rf "$W/auto" "$W/chunked"
check "eval-predictor runs" "'$RTR' eval-predictor --checkpoint '$W/ck.safetensors' '$W/corpus' --json >'$W/eval.json'"
check "eval-predictor reports both predictors" "python3 -c \"import json;d=json.load(open('$W/eval.json'));o=d['overall'];assert o['predictor']['n_correct']>0 and o['naive']['log_loss']>0 and len(d['pairs'])==16\""

# ---- named tables: a second one beside the first, both listed complete; the
# second scoring writes only its own table (the shards and embeddings keep
# their bytes)
shards_sum() { cat "$1"/shard-*.h5 "$1"/embeddings/*/*.h5 | sha1sum; }
before_shards=$(shards_sum "$W/corpus")
check "score --name paper2 writes a second table" "'$RTR' score --checkpoint '$W/paper.safetensors' '$W/corpus' --name paper2 --device cpu >/dev/null 2>&1"
check "... and touches nothing else" "[ '$before_shards' = \"\$(shards_sum '$W/corpus')\" ] && tables '$W/corpus' | cmp -s - '$W/t_cpu'"
"$RTR" info "$W/corpus" --json >"$W/info.json"
check "info lists the encoding and both tables, complete" "python3 -c \"
import json; d = json.load(open('$W/info.json'))
assert [(e['name'], e['encoder_hash'], e['complete']) for e in d['encodings']] == [('bow', 'hashA', True)], d['encodings']
t = {x['name']: x for x in d['tables']}
assert sorted(t) == ['ck', 'paper2'] and all(x['complete'] and x['usable'] for x in t.values()), t
assert t['ck']['checkpoint'] == 'ck.safetensors' and len(t['paper2']['checkpoint_hash']) == 16\""
"$RTR" eval-predictor --checkpoint "$W/ck.safetensors" "$W/corpus" --json >"$W/eval2.json" 2>/dev/null
check "eval-predictor is unchanged by the second table" "cmp -s '$W/eval.json' '$W/eval2.json'"

# ---- failures: exit 1, nothing replaced
cp "$W/ck.safetensors" "$W/ck.before"
sum_tables() { cat "$1"/tables/ck/*.h5 | sha1sum; }
before=$(sum_tables "$W/corpus")
"$RTR" train "$W/plain" --out "$W/ck.safetensors" $T >/dev/null 2>"$W/err"; rc=$?
check "train without embeddings fails" "[ $rc = 1 ] && grep -q 'rtr encode' '$W/err' && cmp -s '$W/ck.safetensors' '$W/ck.before'"
"$RTR" train "$W/corpus" --out "$W/ck.safetensors" $T --lr 1e30 >/dev/null 2>"$W/err"; rc=$?
check "diverging run fails, checkpoint kept" "[ $rc = 1 ] && grep -q diverged '$W/err' && cmp -s '$W/ck.safetensors' '$W/ck.before'"
"$RTR" train "$W/corpus" --out "$W/ck.safetensors" $T --device tpu >/dev/null 2>"$W/err"; rc=$?
check "unknown device fails, checkpoint kept" "[ $rc = 1 ] && grep -q 'tpu' '$W/err' && cmp -s '$W/ck.safetensors' '$W/ck.before'"
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/plain" >/dev/null 2>"$W/err"; rc=$?
check "score without embeddings fails" "[ $rc = 1 ] && grep -q 'rtr encode' '$W/err'"
embed "$W/corpus" hashB
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/corpus" >/dev/null 2>"$W/err"; rc=$?
check "score with another encoder fails, tables kept" "[ $rc = 1 ] && grep -q 'encoder hash hashA' '$W/err' && [ '$before' = \"\$(sum_tables '$W/corpus')\" ]"
"$RTR" route "$W/corpus" --table ck --lambda 0.5 --out "$W/stale.csv" >/dev/null 2>"$W/err"; rc=$?
check "the tables scored from the old embeddings are refused as stale" "[ $rc = 1 ] && grep -q 'stale' '$W/err' && grep -q 'rtr score' '$W/err' && [ ! -e '$W/stale.csv' ]"
"$RTR" eval-predictor --checkpoint "$W/ck.safetensors" "$W/corpus" >/dev/null 2>"$W/err"; rc=$?
check "eval with another encoder fails" "[ $rc = 1 ] && grep -q 'encoder' '$W/err'"
python3 - "$W/demo/catalog.json" "$W/other.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["models"][0]["description"] += " (changed)"
json.dump(c, open(sys.argv[2], "w"))
EOF
"$RTR" ingest --catalog "$W/other.json" --out "$W/other" "$W/demo/outcomes.jsonl" >/dev/null 2>&1 && embed "$W/other" hashA
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/other" >/dev/null 2>"$W/err"; rc=$?
check "score with another catalog fails" "[ $rc = 1 ] && grep -q 'catalog' '$W/err'"
embed "$W/corpus" hashA   # back to the checkpoint's encoder, then spoil the last shard
python3 - "$W/corpus" <<'EOF'
import glob, sys, h5py, numpy as np
with h5py.File(sorted(glob.glob(sys.argv[1] + "/embeddings/bow/shard-*.h5"))[-1], "r+") as f:
    f["embedding/query"][3, 1] = np.nan
EOF
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/corpus" >/dev/null 2>"$W/err"; rc=$?
check "NaN embedding fails, no table changes" "[ $rc = 1 ] && grep -q 'shard-00002.h5: dataset /embedding/query row 3 column 1' '$W/err' && grep -q 'NaN' '$W/err' && [ '$before' = \"\$(sum_tables '$W/corpus')\" ]"
embed "$W/corpus" hashA
python3 - "$W/corpus" <<'EOF'   # the last shard's embeddings in 50-row gzip chunks, the third one corrupt
import glob, sys, h5py, numpy as np
path = sorted(glob.glob(sys.argv[1] + "/embeddings/bow/shard-*.h5"))[-1]
with h5py.File(path, "r+") as f:
    e, attrs = f["embedding/query"][()], dict(f["embedding/query"].attrs)
    del f["embedding/query"]
    d = f.create_dataset("embedding/query", data=e, chunks=(50, e.shape[1]), compression="gzip")
    d.attrs.update(attrs)
    info = d.id.get_chunk_info(2)
with open(path, "r+b") as raw:
    raw.seek(info.byte_offset + info.size // 2)
    raw.write(b"\x5a" * 32)
EOF
last=$(ls "$W/corpus"/embeddings/bow/shard-*.h5 | tail -1)
"$RTR" score --checkpoint "$W/ck.safetensors" "$W/corpus" --chunk-rows 60 >/dev/null 2>"$W/err"; rc=$?
check "a shard corrupt mid-stream: exit 1, the file and rows named" "[ $rc = 1 ] && grep -q \"$last: cannot read rows 60 to 119\" '$W/err'"
check "... no table replaced, no temporary file left" "[ '$before' = \"\$(sum_tables '$W/corpus')\" ] && [ -z \"\$(find '$W/corpus' -name '*.tmp.*')\" ]"
printf 'not a checkpoint' >"$W/junk.safetensors"
"$RTR" score --checkpoint "$W/junk.safetensors" "$W/corpus" >/dev/null 2>"$W/err"; rc=$?
check "corrupt checkpoint fails" "[ $rc = 1 ]"
"$RTR" train "$W/corpus" >/dev/null 2>&1; rc=$?
check "missing --out is a usage error" "[ $rc = 2 ]"
exit $fail
