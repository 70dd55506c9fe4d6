/* Encoder golden test: embeddings of rtr against sentence-transformers for
 * 300+ real questions and adversarial strings (tests/fixtures/encoder, made by
 * tools/make-golden-encoder.py): cosine >= 0.9999 and max |diff| <= 1e-4 per
 * text. Also bad model folders. Skips when the weights are absent, and
 * reports a skipped part when the shared questions are. */
#include "rtr/encoder.h"
#include "encoder_fixture.h"
#include "test.h"

#include <time.h>

static void golden(const char *name) {
    const char *dir = fixture_model_dir(name);
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    fixture fx;
    if (fixture_load(name, &fx) != 0 || !fx.emb) {
        CHECK_MSG(0, "fixture of %s missing", name);
        return;
    }
    rtr_encoder *enc = NULL;
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_OK);
    if (!enc) {
        fprintf(stderr, "%s\n", rtr_last_error());
        fixture_free(&fx);
        return;
    }
    CHECK(rtr_encoder_dim(enc) == fx.dim && strcmp(rtr_encoder_name(enc), name) == 0);
    CHECK(strlen(rtr_encoder_hash(enc)) == 16);
    const char **texts = malloc(sizeof *texts * (size_t)fx.n);
    size_t *lens = malloc(sizeof *lens * (size_t)fx.n);
    int *which = malloc(sizeof *which * (size_t)fx.n), m = 0;
    for (int i = 0; i < fx.n; i++)
        if (fx.items[i].text) {
            texts[m] = fx.items[i].text;
            lens[m] = fx.items[i].len;
            which[m++] = i;
        }
    float *out = malloc(sizeof *out * (size_t)m * (size_t)fx.dim);
    double t0 = (double)clock();
    CHECK(rtr_encoder_encode(enc, out, texts, lens, (size_t)m) == RTR_OK);
    double secs = ((double)clock() - t0) / CLOCKS_PER_SEC;
    double worst_cos = 1, worst_diff = 0;
    int bad = 0;
    for (int k = 0; k < m; k++) {
        const float *a = out + (size_t)k * fx.dim, *b = fx.emb + (size_t)which[k] * fx.dim;
        double dot = 0, na = 0, nb = 0, md = 0;
        for (int c = 0; c < fx.dim; c++) {
            dot += (double)a[c] * b[c];
            na += (double)a[c] * a[c];
            nb += (double)b[c] * b[c];
            double d = fabs((double)a[c] - b[c]);
            if (!(d <= md)) md = d; /* NaN propagates */
        }
        double cosv = dot / sqrt(na * nb);
        if (!(cosv >= 0.9999 && md <= 1e-4) && bad++ < 5)
            fprintf(stderr, "%s %s: cosine %.7f max|diff| %.2e\n", name, fx.items[which[k]].label, cosv, md);
        if (!(cosv >= worst_cos)) worst_cos = cosv;
        if (!(md <= worst_diff)) worst_diff = md;
    }
    fprintf(stderr, "%s: %d texts, worst cosine %.8f, worst max|diff| %.2e (%.1f s CPU)\n", name, m, worst_cos,
            worst_diff, secs);
    CHECK(bad == 0);
    CHECK(m >= 15);
    if (m < fx.n) TEST_SKIP_PART("the fixture's shared-data questions (RTR_SHARED_DATA/rtr_questions absent)");
    /* the same text alone or in a batch gives the same row (bucketing and
     * padding must not leak into the result) */
    float single[1024];
    CHECK(fx.dim <= 1024 && rtr_encoder_encode(enc, single, texts, lens, 1) == RTR_OK);
    double md = 0;
    for (int c = 0; c < fx.dim && c < 1024; c++) md = fmax(md, fabs(single[c] - out[c]));
    CHECK_MSG(md <= 1e-5, "alone vs batched: %.2e", md);
    free(out);
    free(which);
    free(lens);
    free(texts);
    rtr_encoder_free(enc);
    fixture_free(&fx);
}

static void test_golden_minilm(void) { golden("all-MiniLM-L6-v2"); }
static void test_golden_mpnet(void) { golden("all-mpnet-base-v2"); }

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* A copy of the MiniLM folder whose config or weights are broken. */
static void test_bad_folders(void) {
    const char *src = fixture_model_dir("all-MiniLM-L6-v2");
    if (!src) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    char dir[] = "/tmp/rtr_test_badenc_XXXXXX", cmd[4096];
    if (!mkdtemp(dir)) return;
    snprintf(cmd, sizeof cmd, "cp %s/tokenizer.json %s/sentence_bert_config.json %s/ && ln -s %s/model.safetensors %s/",
             src, src, dir, src, dir);
    CHECK(system(cmd) == 0);
    rtr_encoder *enc = NULL;
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_ERR_IO && strstr(rtr_last_error(), "config.json"));
    write_file(dir, "config.json", "{\"model_type\": \"gpt2\", \"hidden_act\": \"gelu\"}");
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_ERR_UNSUPPORTED && strstr(rtr_last_error(), "model_type"));
    const char *cfg = "{\"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"hidden_size\": 384,"
                      " \"num_hidden_layers\": 6, \"num_attention_heads\": 12, \"intermediate_size\": %d,"
                      " \"vocab_size\": 30522, \"max_position_embeddings\": 512, \"layer_norm_eps\": 1e-12}";
    char text[512];
    snprintf(text, sizeof text, cfg, 1024); /* disagrees with the weights */
    write_file(dir, "config.json", text);
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "intermediate.dense.weight") && strstr(rtr_last_error(), "model.safetensors"));
    snprintf(text, sizeof text, cfg, 1536);
    write_file(dir, "config.json", text);
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_OK);
    rtr_encoder_free(enc);
    enc = NULL;
    /* truncated weights */
    snprintf(cmd, sizeof cmd, "rm %s/model.safetensors && head -c 1000000 %s/model.safetensors > %s/model.safetensors",
             dir, src, dir);
    CHECK(system(cmd) == 0);
    CHECK(rtr_encoder_load(&enc, dir, NULL) == RTR_ERR_FORMAT && strstr(rtr_last_error(), "model.safetensors"));
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    CHECK(enc == NULL);
}

TEST_MAIN(T(test_golden_minilm), T(test_golden_mpnet), T(test_bad_folders))
