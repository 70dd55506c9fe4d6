/* The whole sentence encoder on the emulated CUDA backend ("cuda-emu": the
 * CUDA kernels of kernels/ run on the CPU emulator, GEMMs by the CPU BLAS)
 * against the same encoder on the CPU backend, for short real texts of
 * different lengths from the golden fixture (tests/fixtures/encoder), in
 * batches of two so that there are several batches and each is padded:
 * max |diff| <= 1e-5 per element (min cosine printed). MiniLM (BERT) and
 * MPNet (its relative position bias). The emulated embeddings are also held
 * to sentence-transformers' (the golden test's 1e-4) where the folder holds
 * the float32 weights the golden file was made from (not the device
 * bundle's fp16 MiniLM nor a tools/random-encoder folder). The same texts
 * through the bf16 path (bf16 activations, flash attention on the emulated
 * WMMA, bf16 GEMMs) against the CPU's fp32: cosine >= 0.999. Then how the
 * encoder chooses and refuses GEMM precisions, bf16 on the CPU included (run
 * and held to its bound where the CPU has it, refused with the reason
 * elsewhere). Skips (77) without the model folders (tools/fetch-encoder).
 * Few texts of 5-20 tokens: the emulator runs every thread of a block as a
 * fiber. */
#include "backend_suite.h"
#include "encoder_fixture.h"
#include "rtr/encoder.h"
#include "rtr/safetensors.h"
#include "test.h"

#include <time.h>

#define MAX_TEXTS 8

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Up to k fixture items of 5-20 tokens whose lengths differ by 2 or more,
 * in fixture order; returns how many were found. */
static int pick_short(const fixture *fx, int k, int *which) {
    int m = 0;
    for (int i = 0; i < fx->n && m < k; i++) {
        const fixture_item *it = &fx->items[i];
        bool ok = it->text && it->n_ids >= 5 && it->n_ids <= 20;
        for (int j = 0; ok && j < m; j++) ok = abs(fx->items[which[j]].n_ids - it->n_ids) >= 2;
        if (ok) which[m++] = i;
    }
    return m;
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double md = 0;
    for (int c = 0; c < n; c++) {
        double d = fabs((double)a[c] - b[c]);
        if (!(d <= md)) md = d; /* NaN propagates */
    }
    return md;
}

static double cosine(const float *a, const float *b, int n) {
    double dot = 0, na = 0, nb = 0;
    for (int c = 0; c < n; c++) dot += (double)a[c] * b[c], na += (double)a[c] * a[c], nb += (double)b[c] * b[c];
    return dot / sqrt(na * nb);
}

/* Whether the folder's weights are the ones the golden embeddings came from:
 * no float tensor in 16 bits, and no random_weights.json (tools/random-encoder).
 * Otherwise says why on stderr. */
static bool golden_weights(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/random_weights.json", dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "%s: random weights (tools/random-encoder): not compared with the golden file\n", dir);
        return false;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rtr_safetensors *st = NULL;
    bool f32 = rtr_safetensors_open(&st, path) == RTR_OK;
    for (size_t i = 0; f32 && i < rtr_safetensors_count(st); i++) {
        rtr_dtype t = rtr_safetensors_tensor(st, i)->dtype;
        f32 = t != RTR_DTYPE_F16 && t != RTR_DTYPE_BF16; /* integer buffers (position_ids) do not count */
    }
    rtr_safetensors_close(st);
    if (!f32) fprintf(stderr, "%s: weights in 16 bits (the golden file's are float32): not compared with it\n", dir);
    return f32;
}

/* bf16: the bf16 path (bf16 activations end to end, flash attention on the
 * emulated WMMA, bf16 GEMMs) against the CPU's fp32: cosine >= 0.999 per
 * text (test_gpu's bound), and a max |diff| above 1e-5, which only bf16
 * activations give here (bf16 GEMM inputs on fp32 activations would compute
 * in fp32 on the emulator and match to 1e-7). */
static void emu_against_cpu(const char *name, int n_texts, bool bf16) {
    const char *dir = fixture_model_dir(name);
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    fixture fx;
    if (fixture_load(name, &fx) != 0) {
        CHECK_MSG(0, "fixture of %s missing", name);
        return;
    }
    int which[MAX_TEXTS], m = pick_short(&fx, n_texts, which);
    CHECK_MSG(m == n_texts, "%s: %d short texts in the fixture, %d wanted", name, m, n_texts);
    const char *texts[MAX_TEXTS];
    size_t lens[MAX_TEXTS];
    char tokens[64] = "";
    for (int k = 0; k < m; k++) {
        texts[k] = fx.items[which[k]].text;
        lens[k] = fx.items[which[k]].len;
        snprintf(tokens + strlen(tokens), sizeof tokens - strlen(tokens), "%s%d", k ? "/" : "", fx.items[which[k]].n_ids);
    }
    rtr_backend emu, cpu;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    rtr_encoder_params p = rtr_encoder_default_params();
    p.precision = bf16 ? "bf16" : "fp32";
    p.max_seq_length = 32; /* the texts fit; smaller attention scratch */
    p.batch_tokens = 48;   /* two texts of up to 20 tokens per batch */
    rtr_encoder *on_emu = NULL, *on_cpu = NULL;
    CHECK(rtr_encoder_load_on(&emu, &on_emu, dir, &p) == RTR_OK);
    p.precision = "fp32";
    CHECK(rtr_encoder_load_on(&cpu, &on_cpu, dir, &p) == RTR_OK);
    if (!on_emu || !on_cpu) {
        fprintf(stderr, "%s\n", rtr_last_error());
    } else {
        CHECK(strcmp(rtr_encoder_device(on_emu), emu.device) == 0 &&
              !strcmp(rtr_encoder_precision(on_emu), bf16 ? "bf16" : "fp32"));
        int D = rtr_encoder_dim(on_emu);
        float *got = malloc(sizeof *got * (size_t)m * D), *want = malloc(sizeof *want * (size_t)m * D);
        double t0 = now();
        CHECK(rtr_encoder_encode(on_emu, got, texts, lens, (size_t)m) == RTR_OK);
        double secs = now() - t0;
        CHECK(rtr_encoder_encode(on_cpu, want, texts, lens, (size_t)m) == RTR_OK);
        double worst = 0, min_cos = 1, worst_st = 0;
        bool golden = !bf16 && fx.emb && golden_weights(dir);
        for (int k = 0; k < m; k++) {
            const float *g = got + (size_t)k * D, *w = want + (size_t)k * D;
            double md = max_abs_diff(g, w, D), cs = cosine(g, w, D);
            if (bf16)
                CHECK_MSG(cs >= 0.999, "%s %s: bf16 on cuda-emu vs fp32 cpu cosine %.7f", name, fx.items[which[k]].label,
                          cs);
            else
                CHECK_MSG(md <= 1e-5, "%s %s: cuda-emu vs cpu max|diff| %.2e", name, fx.items[which[k]].label, md);
            if (!(md <= worst)) worst = md;
            if (!(cs >= min_cos)) min_cos = cs;
            if (golden) {
                double ms = max_abs_diff(g, fx.emb + (size_t)which[k] * D, D);
                CHECK_MSG(ms <= 1e-4, "%s %s: cuda-emu vs sentence-transformers %.2e", name, fx.items[which[k]].label,
                          ms);
                if (!(ms <= worst_st)) worst_st = ms;
            }
        }
        if (bf16) CHECK_MSG(worst > 1e-5, "%s: bf16 within %.2e of fp32: the bf16 path did not run", name, worst);
        char vs_st[48] = "not compared";
        if (golden) snprintf(vs_st, sizeof vs_st, "%.2e", worst_st);
        fprintf(stderr,
                "%s: %d texts (%s tokens, batches of 2), cuda-emu %s vs cpu fp32: max|diff| %.2e, min cosine %.9f; "
                "vs sentence-transformers %s; %.1f s on the emulator\n",
                name, m, tokens, bf16 ? "bf16 path" : "fp32", worst, min_cos, vs_st, secs);
        free(got);
        free(want);
    }
    rtr_encoder_free(on_emu);
    rtr_encoder_free(on_cpu);
    rtr_backend_free(&emu);
    rtr_backend_free(&cpu);
    fixture_free(&fx);
}

static void test_minilm_emu_against_cpu(void) { emu_against_cpu("all-MiniLM-L6-v2", 5, false); }
static void test_mpnet_emu_against_cpu(void) { emu_against_cpu("all-mpnet-base-v2", 3, false); }
static void test_minilm_bf16_emu_against_cpu(void) { emu_against_cpu("all-MiniLM-L6-v2", 5, true); }
static void test_mpnet_bf16_emu_against_cpu(void) { emu_against_cpu("all-mpnet-base-v2", 3, true); }

/* bf16 on the CPU backend, where it runs (RTR_CAP_FAST_BF16: oneDNN and
 * AVX-512 BF16): the encoder loads in bf16 and says so, and 5 short golden
 * texts embed within bf16's bound (cosine >= 0.999 per text) of the CPU's
 * fp32 and, with the golden file's weights, of sentence-transformers, and
 * not within 1e-5 of fp32 (else bf16 did not run). */
static void cpu_bf16_embeds(rtr_backend *cpu, const char *dir) {
    fixture fx;
    if (fixture_load("all-MiniLM-L6-v2", &fx) != 0) {
        CHECK_MSG(0, "fixture of all-MiniLM-L6-v2 missing");
        return;
    }
    int which[MAX_TEXTS], m = pick_short(&fx, 5, which);
    const char *texts[MAX_TEXTS];
    size_t lens[MAX_TEXTS];
    for (int k = 0; k < m; k++) texts[k] = fx.items[which[k]].text, lens[k] = fx.items[which[k]].len;
    rtr_encoder_params p = rtr_encoder_default_params();
    rtr_encoder *bf = NULL, *f32 = NULL;
    p.precision = "bf16";
    CHECK_MSG(rtr_encoder_load_on(cpu, &bf, dir, &p) == RTR_OK, "bf16 on a CPU with RTR_CAP_FAST_BF16: %s",
              rtr_last_error());
    p.precision = "fp32";
    CHECK(rtr_encoder_load_on(cpu, &f32, dir, &p) == RTR_OK);
    if (bf && f32) {
        CHECK(!strcmp(rtr_encoder_precision(bf), "bf16") && !strcmp(rtr_encoder_precision(f32), "fp32"));
        int D = rtr_encoder_dim(bf);
        float *got = malloc(sizeof *got * (size_t)m * D), *want = malloc(sizeof *want * (size_t)m * D);
        CHECK(rtr_encoder_encode(bf, got, texts, lens, (size_t)m) == RTR_OK);
        CHECK(rtr_encoder_encode(f32, want, texts, lens, (size_t)m) == RTR_OK);
        bool golden = fx.emb && golden_weights(dir);
        double worst = 0, min_cos = 1, min_st = 1;
        for (int k = 0; k < m; k++) {
            const float *g = got + (size_t)k * D;
            double cs = cosine(g, want + (size_t)k * D, D), md = max_abs_diff(g, want + (size_t)k * D, D);
            CHECK_MSG(cs >= 0.999, "%s: cpu bf16 vs cpu fp32 cosine %.7f", fx.items[which[k]].label, cs);
            if (!(md <= worst)) worst = md;
            if (!(cs >= min_cos)) min_cos = cs;
            if (golden) {
                double st = cosine(g, fx.emb + (size_t)which[k] * D, D);
                CHECK_MSG(st >= 0.999, "%s: cpu bf16 vs sentence-transformers cosine %.7f", fx.items[which[k]].label,
                          st);
                if (!(st >= min_st)) min_st = st;
            }
        }
        CHECK_MSG(worst > 1e-5, "cpu bf16 within %.2e of fp32: bf16 did not run", worst);
        fprintf(stderr, "cpu bf16 (%s): %d texts, vs fp32 max|diff| %.2e, min cosine %.7f; vs sentence-transformers "
                "min cosine %s%.7f\n", rtr_encoder_device(bf), m, worst, min_cos, golden ? "" : "(not compared) ",
                min_st);
        free(got);
        free(want);
    }
    rtr_encoder_free(bf);
    rtr_encoder_free(f32);
    fixture_free(&fx);
}

/* "auto" is bf16 off the CPU, and on it where the backend reports
 * RTR_CAP_FAST_BF16, else fp32. bf16 on the CPU runs there and is refused
 * with the reason elsewhere; fp16 on the CPU, which would compute in fp32,
 * and unknown names are refused. */
static void test_precision_choice(void) {
    const char *dir = fixture_model_dir("all-MiniLM-L6-v2");
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    rtr_backend emu, cpu;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    rtr_encoder_params p = rtr_encoder_default_params();
    p.batch_tokens = 256;
    rtr_encoder *enc = NULL;
    p.precision = "auto";
    CHECK(rtr_encoder_load_on(&emu, &enc, dir, &p) == RTR_OK && !strcmp(rtr_encoder_precision(enc), "bf16"));
    rtr_encoder_free(enc);
    bool cpu_bf16 = rtr_backend_caps(&cpu) & RTR_CAP_FAST_BF16;
    CHECK(rtr_encoder_load_on(&cpu, &enc, dir, &p) == RTR_OK &&
          !strcmp(rtr_encoder_precision(enc), cpu_bf16 ? "bf16" : "fp32"));
    CHECK(rtr_encoder_batch_tokens(enc) == 256);
    rtr_encoder_free(enc);
    p.precision = "bf16";
    if (cpu_bf16) {
        cpu_bf16_embeds(&cpu, dir);
    } else {
        CHECK(rtr_encoder_load_on(&cpu, &enc, dir, &p) == RTR_ERR_INVALID && !enc);
        CHECK_MSG(strstr(rtr_last_error(), "needs a CUDA device or bf16 GEMMs on the CPU") &&
                      (strstr(rtr_last_error(), "AVX-512 BF16") || strstr(rtr_last_error(), "oneDNN")),
                  "bf16 on the CPU refused without its reason: %s", rtr_last_error());
        fprintf(stderr, "cpu bf16 refused here: %s\n", rtr_last_error());
    }
    p.precision = "fp16";
    CHECK(rtr_encoder_load_on(&cpu, &enc, dir, &p) == RTR_ERR_INVALID && !enc);
    p.precision = "fp8";
    CHECK(rtr_encoder_load_on(&emu, &enc, dir, &p) == RTR_ERR_INVALID && strstr(rtr_last_error(), "fp8"));
    p.precision = NULL; /* fp32 */
    p.device = "tpu";
    CHECK(rtr_encoder_load(&enc, dir, &p) == RTR_ERR_INVALID && strstr(rtr_last_error(), "tpu") && !enc);
    p.device = NULL; /* the CPU, its default batch */
    p.batch_tokens = 0;
    CHECK(rtr_encoder_load(&enc, dir, &p) == RTR_OK && rtr_encoder_batch_tokens(enc) == 4096);
    CHECK(enc && !strncmp(rtr_encoder_device(enc), "CPU", 3) && !strcmp(rtr_encoder_precision(enc), "fp32"));
    rtr_encoder_free(enc);
    rtr_backend_free(&emu);
    rtr_backend_free(&cpu);
}

TEST_MAIN(T(test_minilm_emu_against_cpu), T(test_mpnet_emu_against_cpu), T(test_minilm_bf16_emu_against_cpu),
          T(test_mpnet_bf16_emu_against_cpu), T(test_precision_choice))
