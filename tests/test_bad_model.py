#!/usr/bin/env python3
"""A model folder that would give wrong embeddings is refused, naming the
field or file (issue 15, class 4; docs/robustness.md): layer_norm_eps not in
(0, 1) (a negative one gave NaN rows), a fractional hidden_size (was
truncated), pad_token_id outside the vocabulary (padding looks it up),
NaN weights (NaN rows were printed by `embed` and stored by `encode`), a
max length rtr cannot honour (max_seq_length outside [2, 512], a
model_max_length below 2, a config that does not parse: all were skipped
silently); and
weights in another form than one model.safetensors (PyTorch's, sharded:
"model.safetensors: cannot open") are refused saying what the folder holds
and how to convert it, and a transformer kept in the subfolder modules.json
names (0_Transformer/, older sentence-transformers) is read from there,
and vocab.txt without tokenizer_config.json takes BERT's defaults;
--threads beyond 1024 (libgomp died of SIGSEGV at 100000), and `embed`
with its stdin closed (was exit 0, as if the input were empty). The
unedited folder still embeds. Needs all-MiniLM-L6-v2 (tools/test fetches
it); SKIP without it."""
import json
import os
import shutil
import struct
import subprocess
import tempfile

from rtrtest import MODELS, RTR, check, finish, require_rtr, run, skip

require_rtr()
MODEL = os.path.join(MODELS, "all-MiniLM-L6-v2")
if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
    skip(f"{MODEL} is not there (tools/fetch-encoder)")


def folder(tmp, name, config=None, nan_weights=False, files=None):
    """A copy of the model folder (weights linked unless edited; files:
    {name: JSON text, or None to delete it})."""
    d = os.path.join(tmp, name)
    shutil.copytree(MODEL, d, ignore=shutil.ignore_patterns("model.safetensors"))
    w = os.path.join(d, "model.safetensors")
    if not nan_weights:
        os.symlink(os.path.abspath(os.path.join(MODEL, "model.safetensors")), w)
    else:
        data = bytearray(open(os.path.join(MODEL, "model.safetensors"), "rb").read())
        hlen = struct.unpack("<Q", data[:8])[0]
        hdr = json.loads(data[8:8 + hlen])
        name = next(k for k in hdr if k.endswith("word_embeddings.weight"))
        a, b = hdr[name]["data_offsets"]
        assert hdr[name]["dtype"] == "F32"
        data[8 + hlen + a:8 + hlen + b] = struct.pack("<f", float("nan")) * ((b - a) // 4)
        open(w, "wb").write(bytes(data))
    if config:
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg.update(config)
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    for f, t in (files or {}).items():
        if t is None:
            os.remove(os.path.join(d, f))
        else:
            open(os.path.join(d, f), "w").write(t)
    return d


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_badmodel_")
    r = run("embed", "--model", folder(tmp, "good"), "--device", "cpu", stdin="what is 2+2?\n")
    check(r.returncode == 0 and len(json.loads(r.stdout)) == 384, f"the unedited folder embeds: {r.stderr}")
    for name, edit, field in (("eps-neg", {"layer_norm_eps": -1.0}, "layer_norm_eps"),
                              ("eps-zero", {"layer_norm_eps": 0}, "layer_norm_eps"),
                              ("hidden-frac", {"hidden_size": 384.5}, "hidden_size"),
                              ("pad-neg", {"pad_token_id": -7}, "pad_token_id"),
                              ("pad-huge", {"pad_token_id": 2147483647}, "pad_token_id"),
                              ("pad-vocab", {"pad_token_id": 30522}, "pad_token_id")):
        r = run("embed", "--model", folder(tmp, name, edit), "--device", "cpu", stdin="what is 2+2?\n")
        check(r.returncode == 1 and field in r.stderr and r.stdout == "",
              f"{name}: exit {r.returncode}, nothing printed, '{field}' named: {r.stderr.strip()}")
    # the max length: a max_seq_length rtr cannot honour was skipped silently
    # (embedding with model_max_length's 512 instead), as were a broken file
    # and a model_max_length below 2
    sbert, tokcfg = "sentence_bert_config.json", "tokenizer_config.json"
    for name, files, named in (("msl-big", {sbert: '{"max_seq_length": 1000}'}, f"{sbert}: max_seq_length 1000"),
                               ("msl-one", {sbert: '{"max_seq_length": 1}'}, f"{sbert}: max_seq_length 1"),
                               ("msl-neg", {sbert: '{"max_seq_length": -5}'}, f"{sbert}: max_seq_length -5"),
                               ("msl-frac", {sbert: '{"max_seq_length": 100.5}'}, f"{sbert}: max_seq_length 100.5"),
                               ("msl-text", {sbert: '{"max_seq_length": "128"}'}, f"{sbert}: max_seq_length"),
                               ("msl-json", {sbert: '{"max_seq_length": 12'}, f"{sbert}: not valid JSON"),
                               ("mml-one", {sbert: None, tokcfg: '{"model_max_length": 1}'},
                                f"{tokcfg}: model_max_length 1")):
        r = run("embed", "--model", folder(tmp, name, files=files), "--device", "cpu", stdin="what is 2+2?\n")
        check(r.returncode == 1 and named in r.stderr and r.stdout == "",
              f"{name}: exit 1, nothing printed, '{named}' named: exit {r.returncode} {r.stderr.strip()}")
    # ... but a max length the caller gives overrides the folder's unusable
    # one (it did before the check came): the same embedding as the intact
    # model at that length
    plain = run("embed", "--model", MODEL, "--device", "cpu", "--max-length", "64", stdin="what is 2+2?\n")
    for name in ("msl-big", "msl-neg", "msl-text", "mml-one"):
        r = run("embed", "--model", os.path.join(tmp, name), "--device", "cpu", "--max-length", "64",
                stdin="what is 2+2?\n")
        check(r.returncode == 0 and plain.returncode == 0 and r.stdout == plain.stdout,
              f"{name} --max-length 64 embeds as the model does: exit {r.returncode} {r.stderr.strip()}")
    # Hugging Face's "no limit" (1e30) is capped at 512, the same embedding as
    # a max_seq_length of 512 (a text past 256 tokens tells them from MiniLM's 256)
    long = " ".join(["word"] * 400) + "\n"
    capped = run("embed", "--model", folder(tmp, "mml-huge", files={sbert: None, tokcfg: json.dumps(dict(
        json.load(open(os.path.join(MODEL, tokcfg))), model_max_length=1e30))}), "--device", "cpu", stdin=long)
    at512 = run("embed", "--model", folder(tmp, "msl-512", files={sbert: '{"max_seq_length": 512}'}), "--device",
                "cpu", stdin=long)
    check(capped.returncode == 0 and capped.stdout == at512.stdout,
          f"model_max_length 1e30 embeds as 512 tokens: exit {capped.returncode} {capped.stderr.strip()}")
    # the weights in another form: "model.safetensors: cannot open: No such
    # file" said nothing of what the folder holds and what to do
    good = run("embed", "--model", MODEL, "--device", "cpu", stdin="what is 2+2?\n")
    for name, files, words in (
            ("torch", {"pytorch_model.bin": "x"}, "PyTorch weights (pytorch_model.bin"),
            ("torch-shards", {"pytorch_model.bin.index.json": "{}"}, "sharded PyTorch weights"),
            ("st-shards", {"model.safetensors.index.json": '{"weight_map": {}}',
                           "model-00001-of-00002.safetensors": "x"}, "sharded safetensors")):
        d = folder(tmp, name, files=files)
        os.remove(os.path.join(d, "model.safetensors"))
        r = run("embed", "--model", d, "--device", "cpu", stdin="what is 2+2?\n")
        check(r.returncode == 1 and f"{d}: no model.safetensors; the folder holds {words}" in r.stderr
              and "save_pretrained" in r.stderr and r.stdout == "", f"{name}: exit 1 saying what the folder holds "
              f"and how to convert it: exit {r.returncode} {r.stderr.strip()}")
    # vocab.txt alone (no tokenizer.json, no tokenizer_config.json): refused
    # as "tokenizer_config.json: cannot open"; BERT's defaults, as
    # transformers takes them (the special tokens of special_tokens_map.json
    # or BERT's), the same embedding
    for name, gone in (("vocab-only", ("tokenizer.json", "tokenizer_config.json")),
                       ("vocab-bare", ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"))):
        r = run("embed", "--model", folder(tmp, name, files={f: None for f in gone}), "--device", "cpu",
                stdin="What is 2+2?\n")
        ref = run("embed", "--model", MODEL, "--device", "cpu", stdin="What is 2+2?\n")
        check(r.returncode == 0 and ref.returncode == 0 and r.stdout == ref.stdout,
              f"{name}: the same embedding as the folder's tokenizer.json: exit {r.returncode} {r.stderr.strip()}")
    # a config.json without hidden_act: transformers takes gelu (rtr refused
    # it); one naming another activation is still refused
    d = folder(tmp, "no-act")
    cfg = json.load(open(os.path.join(d, "config.json")))
    del cfg["hidden_act"]
    os.remove(os.path.join(d, "config.json"))
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    r = run("embed", "--model", d, "--device", "cpu", stdin="what is 2+2?\n")
    check(r.returncode == 0 and r.stdout == good.stdout, f"no hidden_act: gelu, the same embedding: {r.stderr.strip()}")
    r = run("embed", "--model", folder(tmp, "relu", {"hidden_act": "relu"}), "--device", "cpu", stdin="x\n")
    check(r.returncode == 1 and "hidden_act" in r.stderr, f"hidden_act relu refused: {r.stderr.strip()}")
    # an older sentence-transformers folder keeps the transformer in the
    # subfolder modules.json names (0_Transformer/): refused as "config.json:
    # cannot open"; now read from there, the same embedding
    old = os.path.join(tmp, "st-old")
    os.makedirs(os.path.join(old, "0_Transformer"))
    for f in os.listdir(MODEL):
        src = os.path.abspath(os.path.join(MODEL, f))
        if f in ("modules.json", "config_sentence_transformers.json", "1_Pooling", "2_Normalize"):
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(old, f))
        elif os.path.isfile(src):
            os.symlink(src, os.path.join(old, "0_Transformer", f))
    mods = json.load(open(os.path.join(old, "modules.json")))
    mods[0]["path"] = "0_Transformer"
    json.dump(mods, open(os.path.join(old, "modules.json"), "w"))
    r = run("embed", "--model", old, "--device", "cpu", stdin="what is 2+2?\n")
    check(r.returncode == 0 and good.returncode == 0 and r.stdout == good.stdout,
          f"the transformer in 0_Transformer/: the same embedding: exit {r.returncode} {r.stderr.strip()}")
    r = run("embed", "--model", MODEL, "--device", "cpu", "--threads", "100000", stdin="what is 2+2?\n")
    check(r.returncode == 2 and "--threads '100000'" in r.stderr and "at most 1024" in r.stderr,
          f"--threads 100000 (was SIGSEGV): a usage error naming the bound, as in every command: {r.returncode} {r.stderr}")
    r = subprocess.run([RTR, "embed", "--model", MODEL, "--device", "cpu"], capture_output=True, text=True,
                       preexec_fn=lambda: os.close(0))
    check(r.returncode == 1 and "stdin" in r.stderr, f"embed, stdin closed (was exit 0): {r.returncode} {r.stderr}")
    m = folder(tmp, "nan", nan_weights=True)
    r = run("embed", "--model", m, "--device", "cpu", stdin="what is 2+2?\n")
    check(r.returncode == 1 and "non-finite" in r.stderr and "nan" not in r.stdout,
          f"NaN weights, embed: exit {r.returncode}, no NaN printed: {r.stderr.strip()}")
    # encode stores nothing from them
    demo, corpus = os.path.join(tmp, "demo"), os.path.join(tmp, "corp")
    r = run("gen-demo", "--queries", "5", "--seed", "1", demo)
    r = run("ingest", "--catalog", os.path.join(demo, "catalog.json"), "--out", corpus,
            os.path.join(demo, "outcomes.jsonl"))
    check(r.returncode == 0, "ingest: " + r.stderr)
    r = run("encode", "--model", m, "--device", "cpu", corpus)
    stored = os.path.join(corpus, "embeddings", "nan")
    check(r.returncode == 1 and "non-finite" in r.stderr and not any(
        f.startswith("shard-") for f in (os.listdir(stored) if os.path.isdir(stored) else [])),
          f"NaN weights, encode: exit {r.returncode}, no shard's embeddings stored: {r.stderr.strip()}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
    finish()
