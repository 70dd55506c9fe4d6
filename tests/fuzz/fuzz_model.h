/* A tiny sentence-encoder folder for the model harnesses: a 15-word
 * vocabulary (vocab.txt + tokenizer_config.json), the sentence-transformers
 * modules of the published models (mean pooling, then Normalize, which rtr
 * applies only when modules.json lists it) and model.safetensors with
 * the tensors of a one-layer BERT and a one-layer MPNet (hidden 8, 2 heads,
 * intermediate 16, 40 positions, 32 relative buckets), so config.json alone
 * decides which architecture loads. Deterministic weights. */
#ifndef RTR_FUZZ_MODEL_H
#define RTR_FUZZ_MODEL_H

#include "fuzz_common.h"
#include "rtr/safetensors.h"

enum { FM_V = 15, FM_C = 8, FM_F = 16, FM_P = 40, FM_NH = 2, FM_BUCKETS = 32 };

static void fuzz_write_vocab(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    const char *vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncafe\nun\n##able\n##s\n,\n!\nwhat\na\n##b\n";
    fuzz_write(p, vocab, strlen(vocab));
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    const char *cfg = "{\"do_lower_case\": true, \"cls_token\": \"[CLS]\", \"sep_token\": \"[SEP]\", \"pad_token\": "
                      "\"[PAD]\", \"unk_token\": \"[UNK]\", \"mask_token\": \"[MASK]\"}";
    fuzz_write(p, cfg, strlen(cfg));
    snprintf(p, sizeof p, "%s/sentence_bert_config.json", dir);
    const char *sbert = "{\"max_seq_length\": 32}";
    fuzz_write(p, sbert, strlen(sbert));
    snprintf(p, sizeof p, "%s/modules.json", dir);
    const char *mods = "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},\n"
                       " {\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},\n"
                       " {\"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}]\n";
    fuzz_write(p, mods, strlen(mods));
    snprintf(p, sizeof p, "%s/1_Pooling", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/1_Pooling/config.json", dir);
    const char *pool = "{\"word_embedding_dimension\": 8, \"pooling_mode_mean_tokens\": true}";
    fuzz_write(p, pool, strlen(pool));
}

static void fuzz_write_weights(const char *dir) {
    static float w[FM_P * FM_C * 4]; /* room for the largest tensor */
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) w[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 4000.0f;
    static char names[64][96];
    rtr_st_write_tensor t[64];
    int n = 0;
#define TENSOR(r, c, ...)                                                                   \
    do {                                                                                    \
        snprintf(names[n], sizeof names[n], __VA_ARGS__);                                   \
        t[n] = (rtr_st_write_tensor){names[n], w, (c) ? 2 : 1, {(r), (c)}};                 \
        n++;                                                                                \
    } while (0)
    TENSOR(FM_V, FM_C, "embeddings.word_embeddings.weight");
    TENSOR(FM_P, FM_C, "embeddings.position_embeddings.weight");
    TENSOR(2, FM_C, "embeddings.token_type_embeddings.weight");
    TENSOR(FM_C, 0, "embeddings.LayerNorm.weight");
    TENSOR(FM_C, 0, "embeddings.LayerNorm.bias");
    TENSOR(FM_BUCKETS, FM_NH, "encoder.relative_attention_bias.weight");
    const char *bert[4] = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"};
    const char *mpnet[4] = {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o"};
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 4; k++) {
            TENSOR(FM_C, FM_C, "encoder.layer.0.%s.weight", (a ? mpnet : bert)[k]);
            TENSOR(FM_C, 0, "encoder.layer.0.%s.bias", (a ? mpnet : bert)[k]);
        }
    const char *lns[3] = {"attention.output.LayerNorm", "attention.LayerNorm", "output.LayerNorm"};
    for (int k = 0; k < 3; k++) {
        TENSOR(FM_C, 0, "encoder.layer.0.%s.weight", lns[k]);
        TENSOR(FM_C, 0, "encoder.layer.0.%s.bias", lns[k]);
    }
    TENSOR(FM_F, FM_C, "encoder.layer.0.intermediate.dense.weight");
    TENSOR(FM_F, 0, "encoder.layer.0.intermediate.dense.bias");
    TENSOR(FM_C, FM_F, "encoder.layer.0.output.dense.weight");
    TENSOR(FM_C, 0, "encoder.layer.0.output.dense.bias");
#undef TENSOR
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (rtr_safetensors_write(p, t, (size_t)n, NULL, NULL, 0) != RTR_OK) {
        fprintf(stderr, "fuzz: %s\n", rtr_last_error());
        abort();
    }
}

#endif
