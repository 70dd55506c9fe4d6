"""rtr corpora read and written with h5py alone, exactly as docs/FORMAT.md
describes them (imported by the Python tests, never run by ctest): the
manifest, the shards' string columns, and stage outputs written beside the
shards, so tests can give a corpus embeddings or routing tables without an
encoder or a trained checkpoint."""
import json
import os

import h5py
import numpy as np


def manifest(corpus):
    with open(os.path.join(corpus, "manifest.json")) as f:
        return json.load(f)


def shards(corpus):
    """[(path, file, content hash, n_queries)] of every shard, in order."""
    return [(os.path.join(corpus, s["file"]), s["file"], s["hash"], s["n_queries"])
            for s in manifest(corpus)["shards"]]


def strings(f, name):
    """A string column of an open shard: UTF-8 bytes back to back, n + 1 offsets."""
    data, off = f[f"queries/{name}/bytes"][:].tobytes(), f[f"queries/{name}/offsets"][:]
    return [data[a:b].decode() for a, b in zip(off[:-1], off[1:])]


def _header(f, schema, m, file, shard_hash, n):
    f.attrs["rtr_schema"] = np.bytes_(schema)
    f.attrs["rtr_schema_version"] = np.int64(2)
    f.attrs["catalog_hash"] = np.bytes_(m["catalog_hash"])
    if file is not None:
        f.attrs["shard"] = np.bytes_(file)
        f.attrs["shard_hash"] = np.bytes_(shard_hash)
        f.attrs["n_queries"] = np.int64(n)


def write_embeddings(corpus, name, encoder_hash, emb_of, desc, encoder="test-encoder"):
    """embeddings/NAME: emb_of(shard_path) -> float32 [n x D] for each shard;
    desc = (model descriptions [M x D], strategy descriptions [S x D])."""
    m = manifest(corpus)
    folder = os.path.join(corpus, "embeddings", name)
    os.makedirs(folder, exist_ok=True)
    for path, file, shard_hash, n in shards(corpus):
        emb = np.asarray(emb_of(path), dtype=np.float32)
        with h5py.File(os.path.join(folder, file), "w") as f:
            _header(f, "rtr-embeddings", m, file, shard_hash, n)
            for k, v in (("encoder", encoder), ("encoder_hash", encoder_hash)):
                f.attrs[k] = np.bytes_(v)
            f.attrs["dim"] = np.int64(emb.shape[1])
            f["embedding/query"] = emb
    with h5py.File(os.path.join(folder, "descriptions.h5"), "w") as f:
        _header(f, "rtr-descriptions", m, None, None, None)
        for k, v in (("encoder", encoder), ("encoder_hash", encoder_hash)):
            f.attrs[k] = np.bytes_(v)
        f.attrs["dim"] = np.int64(np.asarray(desc[0]).shape[1])
        f["embedding/model_desc"] = np.asarray(desc[0], dtype=np.float32)
        f["embedding/strategy_desc"] = np.asarray(desc[1], dtype=np.float32)


def write_table(corpus, name, table_of, checkpoint_hash, encoder="", encoder_hash="", checkpoint="test"):
    """tables/NAME: table_of(shard_path) -> {"p_correct": [n x K], "tokens": [n x K]
    (and optionally "cost": predicted USD [n x K])} for each shard."""
    m = manifest(corpus)
    folder = os.path.join(corpus, "tables", name)
    os.makedirs(folder, exist_ok=True)
    for path, file, shard_hash, n in shards(corpus):
        t = table_of(path)
        with h5py.File(os.path.join(folder, file), "w") as f:
            _header(f, "rtr-table", m, file, shard_hash, n)
            for k, v in (("table", name), ("checkpoint", checkpoint), ("checkpoint_hash", checkpoint_hash),
                         ("encoder", encoder), ("encoder_hash", encoder_hash)):
                f.attrs[k] = np.bytes_(v)
            f.attrs["n_pairs"] = np.int64(len(m["catalog"]["pairs"]))
            for k, v in t.items():
                f["routing/" + k] = np.asarray(v, dtype=np.float32)


def edited_outcomes(src, dest, edit):
    """The outcomes JSON lines of src, each through edit(row), written to dest (returned)."""
    with open(src) as f, open(dest, "w") as out:
        for line in f:
            out.write(json.dumps(edit(json.loads(line))) + "\n")
    return dest


def noisy_table(rng, noise=0.15, lo=0.7, hi=1.3):
    """A stand-in predictor for write_table: table_of(shard_path) blurring the
    shard's outcomes (p_correct = 0.6 correct + 0.2 + N(0, noise) clipped to
    [0, 1], tokens x U(lo, hi) + 1; a missing outcome as 0.5 and 100 tokens),
    drawing from rng as each shard is written."""
    def table_of(path):
        with h5py.File(path, "r") as h:
            correct = np.nan_to_num(h["outcomes/correct"][()], nan=0.5)
            tokens = np.nan_to_num(h["outcomes/tokens"][()], nan=100.0)
        return {"p_correct": np.clip(0.6 * correct + 0.2 + rng.normal(0, noise, correct.shape), 0, 1),
                "tokens": tokens * rng.uniform(lo, hi, tokens.shape) + 1}
    return table_of


def read_table(corpus, name, key):
    """One matrix of a routing table, every shard stacked in order."""
    return np.concatenate([h5py.File(os.path.join(corpus, "tables", name, file), "r")["routing/" + key][()]
                           for _, file, _, _ in shards(corpus)])


def write_bag_of_words(corpus, name, encoder_hash, dim, encoder="bag-of-words"):
    """embeddings/NAME from a stand-in encoder, for tests without weights:
    each word adds a fixed random vector (seeded by its SHA-1), rows
    L2-normalised; queries and catalog descriptions alike."""
    import hashlib
    cache = {}

    def vec(text):
        v = np.zeros(dim)
        for w in text.lower().split():
            if w not in cache:
                seed = int.from_bytes(hashlib.sha1(w.encode()).digest()[:4], "little")
                cache[w] = np.random.default_rng(seed).standard_normal(dim)
            v += cache[w]
        return v / (np.linalg.norm(v) + 1e-9)

    def queries(path):
        with h5py.File(path, "r") as f:
            return np.array([vec(t) for t in strings(f, "text")])
    cat = manifest(corpus)["catalog"]
    desc = (np.array([vec(m["description"]) for m in cat["models"]]),
            np.array([vec(s["description"]) for s in cat["strategies"]]))
    write_embeddings(corpus, name, encoder_hash, queries, desc, encoder=encoder)


_MASK = (1 << 64) - 1


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & _MASK
    return z ^ (z >> 31)


def fnv(s):
    """rtr's 64-bit FNV-1a of a string (a query id's key)."""
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & _MASK
    return h


def sample_hash(seed, qid):
    """eval's sample rule (src/eval/bootstrap.c, eval_boot_sample_hash): the
    bootstrap's bottom M and the baselines' bottom T are the queries with
    the smallest of these."""
    return _mix64(_mix64(fnv(qid)) ^ _mix64(seed ^ 0xd1b54a32d192ed03))


def outcome_table(path):
    """A routing table that is a fixed function of a shard's outcomes, so a
    query has the same table in any corpus that holds it."""
    with h5py.File(path, "r") as h:
        y = np.nan_to_num(h["outcomes/correct"][()], nan=0.5)
        t = np.nan_to_num(h["outcomes/tokens"][()], nan=100.0)
    j = np.arange(y.shape[1])[None, :]
    return {"p_correct": np.clip(0.55 * y + 0.2 + 0.2 * np.sin(0.37 * t + j), 0, 1), "tokens": 1.1 * t + 1}
