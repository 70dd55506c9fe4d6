#!/usr/bin/env python3
"""Add sentence-transformers embeddings to a corpus, in the layout `rtr encode`
writes: /embedding/query [n x D], /embedding/model_desc [n_models x D],
/embedding/strategy_desc [n_strategies x D], attributes encoder and
encoder_hash on each. It is the reference rtr's encoder is tested against,
used here so predictor benchmarks and the real-data evaluation in
docs/PREDICTOR.md can run where `rtr encode` is not built.

    bench/st_embed.py MODEL_DIR CORPUS_DIR [--hash H] [--threads N]
"""
import argparse
import glob
import json
import os

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("corpus_dir")
    ap.add_argument("--hash", default=None, help="encoder_hash attribute (default: st:<folder name>)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model_dir, device="cpu")
    name = os.path.basename(os.path.normpath(args.model_dir))
    enc_hash = args.hash or f"st:{name}"
    encode = lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True,
                                        convert_to_numpy=True).astype(np.float32)
    desc = None
    for path in sorted(glob.glob(os.path.join(args.corpus_dir, "shard-*.h5"))):
        with h5py.File(path, "r+") as f:
            texts = [t.decode() if isinstance(t, bytes) else t for t in f["queries/text"][()]]
            if desc is None:
                cat = json.loads(f.attrs["catalog_json"])
                desc = {"model_desc": encode([m["description"] for m in cat["models"]]),
                        "strategy_desc": encode([s["description"] for s in cat["strategies"]])}
            data = dict(desc, query=encode(texts))
            if "embedding" in f:
                del f["embedding"]
            for key, x in data.items():
                d = f.create_dataset("embedding/" + key, data=x)
                d.attrs["encoder"] = f"sentence-transformers/{name}"
                d.attrs["encoder_hash"] = enc_hash
        print(f"{path}: {len(texts)} queries embedded with {name}")


if __name__ == "__main__":
    main()
