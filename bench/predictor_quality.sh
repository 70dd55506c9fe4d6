#!/bin/bash
# Real-data prediction quality of `rtr train` (docs/PREDICTOR.md, "Measured
# quality"): for an encoded corpus, train with each token-target setting and
# print held-out metrics next to the naive per-pair predictor.
#
#   bench/predictor_quality.sh RTR CORPUS_DIR OUT_DIR [extra `rtr train` options]
#
# The corpus comes from tools/convert-outcomes + `rtr ingest`, then `rtr
# encode` (or bench/st_embed.py, the sentence-transformers reference).
set -euo pipefail
rtr=$1 corpus=$2 out=$3
shift 3
mkdir -p "$out"
printf '%-24s %8s %8s %6s %6s %7s %7s %7s %7s %6s %6s %8s\n' setting logloss naive auc naive ece naive \
    tokMAE naive MdAE naive 'ep,s'
for setting in "raw --no-token-scale" "raw" "log --no-token-scale" "log"; do
    tag=$(echo "$setting" | tr -d ' -')
    t0=$(date +%s.%N)
    "$rtr" train "$corpus" --out "$out/$tag.safetensors" --token-target $setting "$@" --json \
        >"$out/$tag.train.json" 2>"$out/$tag.train.log"
    t1=$(date +%s.%N)
    "$rtr" eval-predictor --checkpoint "$out/$tag.safetensors" "$corpus" --json >"$out/$tag.eval.json"
    python3 - "$out/$tag" "$setting" "$t0" "$t1" <<'EOF'
import json, sys
base, setting, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
o = json.load(open(base + ".eval.json"))["overall"]
p, n = o["predictor"], o["naive"]
epochs = len(json.load(open(base + ".train.json"))["epochs"])
print(f"{setting:<24} {p['log_loss']:8.4f} {n['log_loss']:8.4f} {p['auc']:6.3f} {n['auc']:6.3f} {p['ece']:7.4f} "
      f"{n['ece']:7.4f} {p['token_mae']:7.1f} {n['token_mae']:7.1f} {p['token_median_ae']:6.1f} "
      f"{n['token_median_ae']:6.1f} {epochs:3d},{t1 - t0:4.0f}")
EOF
done
