"""`--max-length` on encode (and online route) as on embed: a length other
than the model folder's is part of the encoder hash, so the encoding says
so, its embeddings are embed's at that length, a shard encoded at another
length is never taken as up to date, and a checkpoint trained on it routes
online only with the same length (another is refused naming both hashes).
Skips (77) without the all-MiniLM-L6-v2 folder (tools/fetch-encoder)."""
import json
import os
import shutil
import tempfile

from rtrtest import MODELS, check, demo_corpus, finish, require_numpy_h5py, require_rtr, run, skip

require_rtr()
require_numpy_h5py()
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import rtrdata  # noqa: E402

MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
    skip("needs the all-MiniLM-L6-v2 folder (tools/fetch-encoder)")


def encode(corpus, *args):
    r = run("encode", "--model", MINILM, corpus, "--device", "cpu", "--threads", "1", "--json", "--quiet", *args)
    check(r.returncode == 0, "encode %s: %s" % (" ".join(args), r.stderr))
    return json.loads(r.stdout) if r.returncode == 0 else {}


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_cli_max_length_")
    corpus = demo_corpus(tmp, 60, 9, 30)
    full = encode(corpus, "--name", "full")
    short = encode(corpus, "--name", "short", "--max-length", "8")
    check(full.get("encoder_hash") and short.get("encoder_hash") and full["encoder_hash"] != short["encoder_hash"],
          "--max-length 8 is part of the encoder hash: %s vs %s" % (full.get("encoder_hash"), short.get("encoder_hash")))
    same = encode(corpus, "--name", "same", "--max-length", "256")  # all-MiniLM-L6-v2's own length
    check(same.get("encoder_hash") == full.get("encoder_hash"), "the folder's own length keeps the weights' hash")
    again = encode(corpus, "--name", "short", "--max-length", "8")
    check(again.get("shards_skipped") == again.get("n_shards") == 2, "the same length again: up to date %s" % again)
    other = encode(corpus, "--name", "short", "--max-length", "12")
    check(other.get("shards_skipped") == 0 and other.get("queries_encoded") == 60,
          "another length into the same encoding: every shard encoded again %s" % other)
    encode(corpus, "--name", "short", "--max-length", "8")

    # the stored embeddings are embed's at that length
    path, file = rtrdata.shards(corpus)[0][:2]
    with h5py.File(os.path.join(corpus, "embeddings", "short", file), "r") as h:
        stored = np.asarray(h["embedding/query"])
    with h5py.File(path, "r") as h:
        texts = rtrdata.strings(h, "text")
    r = run("embed", "--model", MINILM, "--device", "cpu", "--max-length", "8", stdin="".join(t + "\n" for t in texts[:5]))
    embedded = np.array([json.loads(line) for line in r.stdout.splitlines()])
    check(r.returncode == 0 and embedded.shape == stored[:5].shape and np.abs(embedded - stored[:5]).max() < 1e-5,
          "encode --max-length 8 stores embed --max-length 8's vectors")

    # a checkpoint of the short encoding routes online only at that length
    ckpt = os.path.join(tmp, "ck.safetensors")
    r = run("train", corpus, "--encoder", "short", "--out", ckpt, "--hidden", "8", "--learn-dim", "4", "--epochs", "2",
            "--device", "cpu", "--quiet")
    check(r.returncode == 0, "train on the short encoding: " + r.stderr)
    route = ("route", "--model", MINILM, "--checkpoint", ckpt, "--lambda", "0.5", "--device", "cpu", "--threads", "1")
    r = run(*route, stdin="How many coins are left?\n")
    check(r.returncode == 1 and short.get("encoder_hash", "?") in r.stderr and full.get("encoder_hash", "?") in r.stderr,
          "the model's own length is refused, naming both hashes: " + r.stderr.strip())
    r = run(*route, "--max-length", "8", stdin="How many coins are left?\n")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1, "--max-length 8 routes: " + r.stderr)
    r = run("encode", "--model", MINILM, corpus, "--device", "cpu", "--max-length", "100000")
    check(r.returncode == 1 and "exceeds" in r.stderr, "a length beyond the model's positions: exit 1 " + r.stderr.strip())
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
