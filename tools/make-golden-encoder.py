#!/usr/bin/env python3
"""Golden fixtures for rtr's tokenizer and encoder, made with the reference
libraries: Hugging Face `tokenizers` (token ids) and `sentence-transformers`
(embeddings).

    tools/make-golden-encoder.py MODEL_DIR [MODEL_DIR ...]

For each model folder it writes tests/fixtures/encoder/<folder name>/:
  tokens.json      {"model", "max_seq_length", "dim", "items": [...]}; an item
                   is {"qid": N} (a question of the shared data set, read back
                   from RTR_SHARED_DATA by the test, so the fixture holds no
                   question text) or {"label", "text_b64"} (an adversarial
                   string written here), plus "ids", the reference token ids.
  embeddings.f32   little-endian float32 [len(items) x dim], same order.

Invalid UTF-8 rule: the bytes are decoded with errors="replace" (each invalid
sequence becomes U+FFFD) before the Hugging Face tokenizer sees them; its
normaliser then drops U+FFFD. rtr applies the same rule in C.
"""
import base64
import csv
import json
import os
import random
import sys

import numpy as np
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RTR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
QUESTIONS = os.path.join(SHARED, "rtr_questions", "all_questions_merged.csv")


def long_text():
    """A deterministic 10,000-character text of mixed words and punctuation."""
    rng = random.Random(3)
    words = ["alpha", "Beta", "gamma,", "δέλτα", "epsilon.", "x=42", "naïve", "routing", "(LLM)", "数学"]
    out = ""
    while len(out) < 10000:
        out += rng.choice(words) + " "
    return out[:10000]


ADVERSARIAL = [
    ("empty", b""),
    ("whitespace", b"   \t\n \r\n  "),
    ("emoji", "I love 🍕 and 🥰 so much 👍🏽! 😀 🫠🪿 ❤️".encode()),
    ("combining", "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 Z\u0324\u0354\u0367\u0311a\u0308\u0356\u032d l\u036e".encode()),
    ("cjk", "我爱自然语言处理。東京は日本の首都です。한국어 텍스트 ＡＢＣ１２３！".encode()),
    ("control", "tab\there\x00nul\x07bell\x1bESC\u200bzwsp\u00adsoft\u2028ls\ufeffbom\x7fdel\x0bvt\x85nel".encode()),
    ("long", long_text().encode()),
    ("invalid_utf8", b"abc\xff\xfedef \xc3\x28 valid\xe2\x82 end \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big \xc0\xaf"),
    ("added_tokens", b"[CLS] hello [SEP] <s> world </s> x <mask> [UNK] <unk> <UNK> <pad>[MASK]"),
    ("case_accents", "ÀÉÎÕÜ İstanbul ΣΊΣΥΦΟΣ straße ǅ Ǆ ﬁ".encode()),
    ("long_word", ("a" * 150 + " short " + "pneumonoultramicroscopicsilicovolcanoconiosis" * 2).encode()),
    ("math", "x² + y³ = z⁴; ½ ∑∫ √2 ≈ 1.414… “quotes” — dash ‐ hyphen ¿¡ «» $5.00 & 50% @home #tag".encode()),
    ("private_use", "\ue000\U0010fffd \U000e0001 tag \ufff0 \U0001d400".encode()),
    ("scripts", "مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก Привет мир".encode()),
    ("mixed_numbers", b"What is 12,345.67 * 8? Answer: 98765.36 (approx). A) 1 B) 2 C) 3 D) 4"),
]


def read_questions():
    with open(QUESTIONS, encoding="utf-8-sig", newline="") as f:
        return {int(r["question_id"]): r["question"] for r in csv.DictReader(f)}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    questions = read_questions()
    # every 7th question plus the 8 longest: 300+ real queries, truncation included
    qids = sorted(set(range(0, len(questions), 7)) |
                  set(sorted(questions, key=lambda q: -len(questions[q]))[:8]))
    for model_dir in sys.argv[1:]:
        name = os.path.basename(os.path.normpath(model_dir))
        st = SentenceTransformer(model_dir, device="cpu")
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        max_len = st.max_seq_length
        tok.enable_truncation(max_len)
        tok.no_padding()
        items, texts = [], []
        for q in qids:
            items.append({"qid": q})
            texts.append(questions[q])
        for label, raw in ADVERSARIAL:
            items.append({"label": label, "text_b64": base64.b64encode(raw).decode()})
            texts.append(raw.decode("utf-8", errors="replace"))
        for item, text in zip(items, texts):
            item["ids"] = tok.encode(text).ids
            # sentence-transformers must see the same ids
            assert st.tokenize([text])["input_ids"][0].tolist() == item["ids"], (name, item)
        emb = st.encode(texts, batch_size=16, convert_to_numpy=True).astype("<f4")
        assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
        out = os.path.join(ROOT, "tests", "fixtures", "encoder", name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "tokens.json"), "w") as f:
            json.dump({"model": name, "max_seq_length": max_len, "dim": int(emb.shape[1]),
                       "items": items}, f, separators=(",", ":"))
            f.write("\n")
        emb.tofile(os.path.join(out, "embeddings.f32"))
        print(f"{name}: {len(items)} items ({len(qids)} questions), dim {emb.shape[1]} -> {out}")


if __name__ == "__main__":
    main()
