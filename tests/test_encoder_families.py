"""Encoder families: sentence-transformers folders whose pipeline is not
all-MiniLM-L6-v2's (mean pooling + Normalize) but whose architecture rtr
runs. From all-MiniLM-L6-v2's config and tokenizer, tools/random-encoder
builds random-weight (seeded) folders in the styles of BGE (CLS pooling,
Normalize) and E5 (mean pooling, the default prompt "query: ", here without
Normalize); variants of them share their weights: E5 with Normalize,
mean_sqrt_len_tokens written as the newer "pooling_mode" field, and no
modules.json nor sentence_bert_config.json (a plain Hugging Face folder:
sentence-transformers then uses mean pooling, no normalisation and
model_max_length). `rtr embed` must give what sentence-transformers gives
loading the same folder: per text cosine >= 0.9999 and |diff| <= 1e-4 (1 +
|value|). Folders asking for what rtr does not run (a Dense module, max /
weighted-mean / last-token / concatenated pooling, Unigram-tokenizer or
rotary model types, a prompt left out of the pooling, ...) are refused with
exit status 1 and a message naming the file and the reason. The encoder
hash (`rtr encode --json`) covers the pooling, the normalisation and the
prompt. Needs the all-MiniLM-L6-v2 folder (tools/fetch-encoder), torch,
transformers and sentence-transformers; exits 77 without them."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtrtest import MODELS, SRC, check, demo_corpus, finish, require_rtr, run, skip  # noqa: E402

TEXTS = [
    "What is the capital of France?",
    "Solve for x: 3x + 7 = 22.",
    "Which of the following is a prime number? A) 21 B) 27 C) 29 D) 33",
    "Café naïve résumé — ÀÉÎÕÜ straße",
    "我爱自然语言处理。東京は日本の首都です。",
    "x² + y³ = z⁴; ½ ∑∫ √2 ≈ 1.414…",
    "a",
    " ".join(["routing queries between language models"] * 60),  # truncated at 256 tokens
]


def embed(folder):
    # fp32: the bound is fp32's (auto is bf16 on a CPU with AVX-512 BF16, docs/ENCODER.md)
    r = run("embed", "--model", folder, "--device", "cpu", "--precision", "fp32", stdin="".join(t + "\n" for t in TEXTS))
    check(r.returncode == 0, f"rtr embed {os.path.basename(folder)}: {r.stderr}")
    return [json.loads(x) for x in r.stdout.splitlines()] if r.returncode == 0 else None


def compare(name, got, ref, normalized):
    """rtr's rows against sentence-transformers' for one folder."""
    import numpy as np
    if got is None:
        return
    got = np.asarray(got, dtype=np.float64)
    check(got.shape == ref.shape, f"{name}: rtr gave {got.shape}, sentence-transformers {ref.shape}")
    if got.shape != ref.shape:
        return
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    excess = (np.abs(got - ref) / (1e-4 * (1 + np.abs(ref)))).max()
    norms = np.linalg.norm(got, axis=1)
    print(f"{name}: worst cosine {cos.min():.7f}, worst |diff| / (1e-4 (1 + |value|)) {excess:.3f}, "
          f"norms {norms.min():.4f}-{norms.max():.4f}")
    check(cos.min() >= 0.9999, f"{name}: cosine {cos.min()} < 0.9999 (text {int(cos.argmin())})")
    check(excess <= 1, f"{name}: an element differs by more than 1e-4 (1 + |value|)")
    if normalized:
        check(np.abs(norms - 1).max() < 1e-5, f"{name}: rows not of unit length with Normalize")
    else:
        check(np.abs(norms - 1).min() > 1e-2, f"{name}: unit rows without a Normalize module")


def variant(base, out, edit):
    """A folder sharing base's weights (symlinked) and tokenizer, its small
    JSON files changed by edit(out)."""
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("model.safetensors"))
    if os.path.exists(os.path.join(base, "model.safetensors")):
        os.symlink(os.path.abspath(os.path.join(base, "model.safetensors")), os.path.join(out, "model.safetensors"))
    edit(out)
    return out


def rewrite(folder, name, change):
    path = os.path.join(folder, name)
    with open(path) as f:
        obj = json.load(f)
    obj = change(obj) or obj
    with open(path, "w") as f:
        json.dump(obj, f)


def random_folder(minilm, out, *opts):
    r = subprocess.run([sys.executable, os.path.join(SRC, "tools", "random-encoder"), minilm, out, "--seed", "7",
                        "--dtype", "float32", *opts], capture_output=True, text=True)
    check(r.returncode == 0, f"random-encoder {' '.join(opts)}: {r.stderr[-2000:]}")
    return out


def check_refused(folder, what, *needles):
    r = run("embed", "--model", folder, "--device", "cpu", stdin="hello\n")
    ok = r.returncode == 1 and all(n in r.stderr for n in needles)
    check(ok, f"{what}: expected exit 1 naming {needles}, got {r.returncode}: {r.stderr.strip()}")


def refusals(tmp, bge):
    """Pipelines and model types rtr does not run, each refused with its reason."""
    cases = [
        ("a Dense module", "modules.json",
         lambda d: rewrite(d, "modules.json", lambda m: m.insert(2, {
             "idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})),
         ("modules.json", "Dense", "not implemented")),
        ("Normalize before Pooling", "modules.json",
         lambda d: rewrite(d, "modules.json", lambda m: [m[0], m[2], m[1]]),
         ("modules.json", "Normalize", "in that order")),
        ("a module class of another package", "modules.json",
         lambda d: rewrite(d, "modules.json", lambda m: m.append({"idx": 3, "path": "", "type": "mylib.Whitening"})),
         ("modules.json", "mylib.Whitening", "outside sentence-transformers")),
        ("no Pooling module", "modules.json", lambda d: rewrite(d, "modules.json", lambda m: m[:1]),
         ("modules.json", "no Pooling module")),
        ("the Transformer in a subfolder", "modules.json",
         lambda d: rewrite(d, "modules.json", lambda m: m[0].update(path="0_Transformer")),
         ("modules.json", "0_Transformer")),
        ("max pooling", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: c.update(
             pooling_mode_cls_token=False, pooling_mode_max_tokens=True)),
         ("1_Pooling/config.json", "'max'", "not implemented")),
        ("last-token pooling", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: {"pooling_mode": "lasttoken"}),
         ("1_Pooling/config.json", "'lasttoken'", "decoder")),
        ("weighted-mean pooling", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: {"pooling_mode": ["weightedmean"]}),
         ("1_Pooling/config.json", "'weightedmean'", "not implemented")),
        ("two pooling modes", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: c.update(pooling_mode_mean_tokens=True)),
         ("1_Pooling/config.json", "2 pooling modes", "concatenation")),
        ("an unknown pooling mode", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: {"pooling_mode": "median"}),
         ("1_Pooling/config.json", "unknown pooling mode 'median'")),
        ("a pooled size that is not hidden_size", "1_Pooling",
         lambda d: rewrite(d, "1_Pooling/config.json", lambda c: c.update(word_embedding_dimension=768)),
         ("1_Pooling/config.json", "word_embedding_dimension", "384")),
        ("xlm-roberta", "config.json", lambda d: rewrite(d, "config.json", lambda c: c.update(model_type="xlm-roberta")),
         ("config.json", "model_type", "xlm-roberta", "Unigram")),
        ("a rotary model type", "config.json",
         lambda d: rewrite(d, "config.json", lambda c: c.update(model_type="nomic_bert")),
         ("config.json", "nomic_bert", "rotary")),
        ("a default prompt that is not among the prompts", "config_sentence_transformers.json",
         lambda d: rewrite(d, "config_sentence_transformers.json", lambda c: c.update(
             prompts={"query": "query: "}, default_prompt_name="passage")),
         ("config_sentence_transformers.json", "default_prompt_name")),
        ("a prompt left out of the pooling", "config_sentence_transformers.json",
         lambda d: (rewrite(d, "config_sentence_transformers.json", lambda c: c.update(
             prompts={"query": "query: "}, default_prompt_name="query")),
             rewrite(d, "1_Pooling/config.json", lambda c: c.update(include_prompt=False))),
         ("config_sentence_transformers.json", "include_prompt")),
        ("a CrossEncoder folder", "config_sentence_transformers.json",
         lambda d: rewrite(d, "config_sentence_transformers.json", lambda c: c.update(model_type="CrossEncoder")),
         ("config_sentence_transformers.json", "CrossEncoder")),
    ]
    for i, (what, _, edit, needles) in enumerate(cases):
        check_refused(variant(bge, os.path.join(tmp, f"refused{i}"), edit), what, *needles)


def encoder_hash(corpus, folder):
    r = run("encode", "--model", folder, "--device", "cpu", "--force", "--json", corpus)
    check(r.returncode == 0, f"rtr encode {os.path.basename(folder)}: {r.stderr}")
    return json.loads(r.stdout)["encoder_hash"] if r.returncode == 0 else None


def main():
    require_rtr()
    minilm = os.path.join(MODELS, "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(minilm, "tokenizer.json")):
        skip(f"{minilm} absent (tools/fetch-encoder all-MiniLM-L6-v2 {minilm})")
    try:
        import numpy as np
        import torch  # noqa: F401
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        skip(f"sentence-transformers, torch and numpy are needed ({e})")
    tmp = tempfile.mkdtemp(prefix="rtr_families_")
    try:
        bge = random_folder(minilm, os.path.join(tmp, "bge-style"), "--pooling", "cls", "--normalize")
        e5 = random_folder(minilm, os.path.join(tmp, "e5-style"), "--pooling", "mean", "--no-normalize",
                           "--prompt", "query=query: ", "--prompt", "passage=passage: ", "--default-prompt", "query")
        folders = [
            ("BGE-style: cls, Normalize", bge, True),
            ("E5-style: mean, prompt 'query: ', no Normalize", e5, False),
            ("E5-style with Normalize", variant(e5, os.path.join(tmp, "e5-norm"), lambda d: rewrite(
                d, "modules.json", lambda m: m.append({"idx": 2, "name": "2", "path": "2_Normalize",
                                                       "type": "sentence_transformers.models.Normalize"}))), True),
            ("mean_sqrt_len_tokens as pooling_mode, no Normalize", variant(
                bge, os.path.join(tmp, "sqrt-len"), lambda d: (
                    rewrite(d, "1_Pooling/config.json", lambda c: {"embedding_dimension": 384,
                                                                   "pooling_mode": "mean_sqrt_len_tokens"}),
                    rewrite(d, "modules.json", lambda m: m[:2]))), False),
            # a plain Hugging Face folder: no sentence-transformers files, so 512 tokens (model_max_length)
            ("no modules.json (mean, no Normalize)", variant(bge, os.path.join(tmp, "plain"), lambda d: [
                os.remove(os.path.join(d, f)) for f in ("modules.json", "sentence_bert_config.json")]), False),
        ]
        if any(not os.path.exists(os.path.join(f, "model.safetensors")) for _, f, _ in folders[:2]):
            finish()
        for name, folder, normalized in folders:
            st = SentenceTransformer(folder, device="cpu")
            ref = st.encode(TEXTS, convert_to_numpy=True, batch_size=4).astype(np.float64)
            compare(name, embed(folder), ref, normalized)
            if folder == e5:
                # the fixture can tell a missing prompt: without it the rows move well past the bound
                bare = st.encode(TEXTS, convert_to_numpy=True, batch_size=4, prompt="").astype(np.float64)
                check(np.abs(bare - ref).max() > 1e-2, "E5-style: the prompt does not change the embeddings")
        refusals(tmp, bge)
        # the hash: weights, and the pipeline whenever it is not mean + Normalize without a prompt
        corpus = demo_corpus(tmp, 12, 3, 8)
        mean_norm = variant(bge, os.path.join(tmp, "mean-norm"), lambda d: rewrite(
            d, "1_Pooling/config.json", lambda c: {"pooling_mode": "mean"}))
        no_prompt = variant(e5, os.path.join(tmp, "e5-no-prompt"), lambda d: rewrite(
            d, "config_sentence_transformers.json", lambda c: c.update(default_prompt_name=None)))
        hashes = {name: encoder_hash(corpus, f) for name, f in
                  [("bge", bge), ("mean+norm", mean_norm), ("e5", e5), ("e5 without its prompt", no_prompt)]}
        print("encoder hashes:", hashes)
        check(len(set(hashes.values())) == 4, f"encoder hashes not all different: {hashes}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
