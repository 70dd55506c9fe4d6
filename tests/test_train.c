/* Training tests on a synthetic routing problem whose correctness and token
 * counts depend on the query embedding and the pair: training lowers the
 * loss, beats the naive per-pair predictor on held-out rows, is
 * deterministic (same seed, same checkpoint bytes), round-trips through a
 * checkpoint, and fails cleanly on NaN input or a diverging run. Adam's
 * step is the float formula element by element on any thread count. */
#include "predictor/predictor_int.h"
#include "rtr/backend.h"
#include "rtr/ops.h"
#include "test.h"
#include "common/util.h"

#include <float.h>
#include <omp.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

enum { D = 16, NM = 3, NS = 2, K = NM * NS, N_TRAIN = 1500, N_TEST = 500, N_ALL = N_TRAIN + N_TEST };

static const char *CATALOG = "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}],"
                             "\"strategies\":[{\"name\":\"direct\"},{\"name\":\"cot\"}]}";

static float emb[N_ALL * D], correct[N_ALL * K], tokens[N_ALL * K], d_model[NM * D], d_strategy[NS * D];
static rtr_catalog cat;

/* Pair k's skill direction and token profile depend on its model and
 * strategy; labels are drawn from those (Bernoulli, log-normal noise). */
static void make_data(void) {
    static bool done;
    if (done) return;
    done = true;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "test") == RTR_OK);
    test_unit_rows(emb, N_ALL, D);
    test_unit_rows(d_model, NM, D);
    test_unit_rows(d_strategy, NS, D);
    float dir[K * D], tdir[K * D];
    test_unit_rows(dir, K, D);
    test_unit_rows(tdir, K, D);
    for (int i = 0; i < N_ALL; i++)
        for (int k = 0; k < K; k++) {
            double a = 0, t = 0;
            for (int j = 0; j < D; j++) a += dir[k * D + j] * emb[i * D + j], t += tdir[k * D + j] * emb[i * D + j];
            int s = k % NS;
            double p = 1 / (1 + exp(-(6 * a + 0.3 * (k - 2.5))));
            correct[i * K + k] = test_urand() < p ? 1.0f : 0.0f;
            tokens[i * K + k] = (float)round(exp(5.0 + 1.0 * s + 1.2 * t + 0.15 * test_nrand()));
            if (test_urand() < 0.05) correct[i * K + k] = NAN, tokens[i * K + k] = NAN; /* missing outcome */
        }
}

static rtr_train_params small_params(void) {
    rtr_train_params c = rtr_train_default_params();
    c.hidden = 32, c.learn_dim = 8, c.max_epochs = 40, c.patience = 5, c.seed = 3;
    return c;
}

typedef struct {
    double first_train, last_train;
    int epochs;
} loss_trace;
static void trace(const rtr_epoch_log *e, void *user) {
    loss_trace *t = user;
    double l = e->train_bce + e->train_tok;
    if (e->epoch == 1) t->first_train = l;
    t->last_train = l;
    t->epochs = e->epoch;
}

static rtr_status train_one(rtr_predictor *p, rtr_train_params cfg, loss_trace *t) {
    rtr_status st = rtr_predictor_init(p, &cfg, &cat, D, d_model, d_strategy);
    if (st) return st;
    rtr_train_data data = {.n = N_TRAIN, .D = D, .K = K, .emb = emb, .correct = correct, .tokens = tokens};
    return rtr_predictor_train(p, &data, t ? trace : NULL, t);
}

/* Held-out metrics of p and of the naive predictor fitted on the train rows. */
static void held_out(const rtr_predictor *p, rtr_pred_metrics *mp, rtr_pred_metrics *mn) {
    static float pc[N_TEST * K], pt[N_TEST * K], nc[N_TEST * K], nt[N_TEST * K];
    float mean_c[K], med_t[K];
    const float *yc = correct + N_TRAIN * K, *yt = tokens + N_TRAIN * K;
    CHECK(rtr_predictor_score(pc, pt, p, emb + N_TRAIN * D, N_TEST) == RTR_OK);
    CHECK(rtr_naive_fit(mean_c, med_t, correct, tokens, N_TRAIN, K) == RTR_OK);
    for (int i = 0; i < N_TEST * K; i++) nc[i] = mean_c[i % K], nt[i] = med_t[i % K];
    rtr_pred_metrics_compute(mp, pc, pt, yc, yt, N_TEST * K, 1);
    rtr_pred_metrics_compute(mn, nc, nt, yc, yt, N_TEST * K, 1);
}

/* Adam (src/ref/optim.c): three steps over a length that is neither a
 * multiple of the vector width nor of the chunk, on 1 and 2 threads, equal
 * bit for bit to the float formula written out here element by element. */
static void test_adam_update(void) {
    enum { N = 200003, STEPS = 3 };
    static float g[N], p0[N], m0[N], v0[N], want[3 * N], got[2][3 * N];
    uint64_t keep_rng = test_rng; /* the other tests' data stay as they were */
    for (int i = 0; i < N; i++) {
        g[i] = (float)(test_nrand() * (i % 5 == 0 ? 1e-6 : 1e-2));
        p0[i] = (float)test_nrand(), m0[i] = (float)(test_nrand() * 1e-3), v0[i] = (float)(test_urand() * 1e-5);
    }
    const float b1 = (float)RTR_ADAM_B1, c1 = (float)(1 - RTR_ADAM_B1), b2 = (float)RTR_ADAM_B2,
                c2 = (float)(1 - RTR_ADAM_B2), eps = (float)RTR_ADAM_EPS;
    float *p = want, *m = want + N, *v = want + 2 * N;
    memcpy(p, p0, sizeof p0), memcpy(m, m0, sizeof m0), memcpy(v, v0, sizeof v0);
    for (int t = 1; t <= STEPS; t++) {
        float step = rtr_adam_step_size(1e-3, t);
        for (int i = 0; i < N; i++) {
            m[i] = b1 * m[i] + c1 * g[i];
            v[i] = b2 * v[i] + c2 * g[i] * g[i];
            p[i] = p[i] - step * m[i] / (sqrtf(v[i]) + eps);
        }
    }
    int threads = omp_get_max_threads();
    for (int w = 0; w < 2; w++) {
        float *q = got[w];
        memcpy(q, p0, sizeof p0), memcpy(q + N, m0, sizeof m0), memcpy(q + 2 * N, v0, sizeof v0);
        omp_set_num_threads(w + 1);
        for (int t = 1; t <= STEPS; t++) rtr_adam_update(q, g, q + N, q + 2 * N, N, 1e-3, t);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < 3 * (size_t)N; i++)
            if (memcmp(&q[i], &want[i], sizeof(float)) && !bad++) first = i;
        CHECK_MSG(bad == 0, "%d thread(s): %zu of %d values differ from the formula, first at %zu (%.9g vs %.9g)",
                  w + 1, bad, 3 * N, first, q[first], want[first]);
    }
    omp_set_num_threads(threads);
    test_rng = keep_rng;
    double moved = 0;
    for (int i = 0; i < N; i++) moved += fabs((double)got[1][i] - p0[i]);
    CHECK(moved > 1e-4 * N); /* the steps did move the parameters */
}

static void test_learns_and_beats_naive(void) {
    make_data();
    for (int target = 0; target < 2; target++) {
        rtr_predictor p;
        loss_trace t = {0};
        rtr_train_params cfg = small_params();
        cfg.token_target = target;
        CHECK(train_one(&p, cfg, &t) == RTR_OK);
        CHECK(t.epochs > 1);
        CHECK_MSG(t.last_train < 0.85 * t.first_train, "train loss %g -> %g", t.first_train, t.last_train);
        rtr_pred_metrics mp, mn;
        held_out(&p, &mp, &mn);
        fprintf(stderr, "  %s target: log-loss %.4f (naive %.4f) AUC %.3f (naive %.3f) MAE %.1f (naive %.1f)\n",
                target ? "log" : "raw", mp.log_loss, mn.log_loss, mp.auc, mn.auc, mp.mae, mn.mae);
        CHECK(mp.log_loss < 0.9 * mn.log_loss);
        CHECK(mp.auc > mn.auc + 0.1);
        CHECK(mp.mae < 0.8 * mn.mae);
        CHECK(mp.n_correct > 0.9 * N_TEST * K && mp.n_correct < N_TEST * K); /* missing entries skipped */
        rtr_predictor_free(&p);
    }
}

typedef struct {
    double loss[8][4];
    int n;
} epoch_losses;
static void record_losses(const rtr_epoch_log *e, void *user) {
    epoch_losses *t = user;
    if (t->n < 8) t->loss[t->n][0] = e->train_bce, t->loss[t->n][1] = e->train_tok, t->loss[t->n][2] = e->val_bce,
                  t->loss[t->n][3] = e->val_tok, t->n++;
}

/* The CPU backend's host step (a batch cut into tasks over the threads):
 * the same bits on 1 and 2 threads, and the same training as the generic
 * step (whole-batch ops, full gradient, one Adam update) up to float
 * summation order: every epoch's losses within 1e-5 relative, the final
 * parameters within 1e-5 (absolute and relative), where 4 epochs of Adam
 * steps of 1e-3 move them by up to 0.17. */
static void test_host_step(void) {
    make_data();
    rtr_train_params cfg = small_params();
    cfg.max_epochs = 4;
    rtr_train_data data = {.n = N_TRAIN, .D = D, .K = K, .emb = emb, .correct = correct, .tokens = tokens};
    rtr_predictor run[3];
    epoch_losses loss[3] = {{.n = 0}};
    int threads = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        CHECK(rtr_predictor_init(&run[r], &cfg, &cat, D, d_model, d_strategy) == RTR_OK);
        CHECK(rtr_predictor_train(&run[r], &data, record_losses, &loss[r]) == RTR_OK);
    }
    omp_set_num_threads(threads);
    CHECK(!memcmp(run[0].params, run[1].params, sizeof(float) * run[0].n_params));
    CHECK(!memcmp(loss[0].loss, loss[1].loss, sizeof loss[0].loss));
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    CHECK(rtr_predictor_init(&run[2], &cfg, &cat, D, d_model, d_strategy) == RTR_OK);
    CHECK(rtr_predictor_train_generic_(&cpu, &run[2], &data, record_losses, &loss[2]) == RTR_OK);
    rtr_backend_free(&cpu);
    CHECK(loss[2].n == 4 && loss[0].n == 4);
    double worst_loss = 0, worst_param = 0, moved = 0;
    for (int e = 0; e < loss[0].n; e++)
        for (int j = 0; j < 4; j++) {
            double r = fabs(loss[0].loss[e][j] - loss[2].loss[e][j]) / fabs(loss[2].loss[e][j]);
            worst_loss = fmax(worst_loss, r);
        }
    size_t bad = 0;
    rtr_predictor init;
    CHECK(rtr_predictor_init(&init, &cfg, &cat, D, d_model, d_strategy) == RTR_OK);
    for (size_t i = 0; i < run[0].n_trainable; i++) {
        double diff = fabs((double)run[0].params[i] - run[2].params[i]);
        worst_param = fmax(worst_param, diff);
        moved = fmax(moved, fabs((double)run[2].params[i] - init.params[i]));
        bad += !(diff <= 1e-5 + 1e-5 * fabs(run[2].params[i]));
    }
    fprintf(stderr, "  host vs generic step: worst relative loss difference %.3g, worst parameter difference %.3g "
            "(largest move %.3g)\n", worst_loss, worst_param, moved);
    CHECK(worst_loss <= 1e-5);
    CHECK_MSG(bad == 0, "%zu of %zu parameters differ", bad, run[0].n_trainable);
    CHECK(moved > 1e-2);
    for (int r = 0; r < 3; r++) rtr_predictor_free(&run[r]);
    rtr_predictor_free(&init);
}

/* Row windows: every epoch's order is a permutation of the fit rows in
 * which each window's rows form one segment, windows visited in a shuffled
 * order; no window (0, or one covering every row) is a plain shuffle. */
static void test_row_order(void) {
    enum { NR = 1000, W = 64 };
    static int64_t fit[NR], out[NR];
    int64_t n_fit = 0;
    for (int64_t i = 0; i < NR; i++)
        if (i % 7 != 3) fit[n_fit++] = (i * 389) % NR; /* not ascending, as the carve leaves them */
    for (int e = 1; e <= 3; e++) {
        CHECK(rtr_train_row_order_(out, fit, n_fit, NR, W, 77, e) == RTR_OK);
        static bool seen[NR];
        memset(seen, 0, sizeof seen);
        int segments = 0, ascending_windows = 1;
        for (int64_t r = 0; r < n_fit; r++) {
            CHECK(out[r] >= 0 && out[r] < NR && !seen[out[r]]);
            seen[out[r]] = true;
            if (r == 0 || out[r] / W != out[r - 1] / W) {
                segments++;
                if (r > 0 && out[r] / W < out[r - 1] / W) ascending_windows = 0;
            }
        }
        for (int64_t r = 0; r < n_fit; r++) CHECK(seen[fit[r]]);
        CHECK_MSG(segments == (NR + W - 1) / W, "epoch %d: %d segments for %d windows", e, segments, (NR + W - 1) / W);
        CHECK(!ascending_windows);
    }
    static int64_t a[NR], b[NR];
    CHECK(rtr_train_row_order_(a, fit, n_fit, NR, 0, 77, 1) == RTR_OK);
    CHECK(rtr_train_row_order_(b, fit, n_fit, NR, NR, 77, 1) == RTR_OK);
    CHECK(!memcmp(a, b, sizeof(int64_t) * (size_t)n_fit));
    int jumps = 0;
    for (int64_t r = 1; r < n_fit; r++) jumps += a[r] / W != a[r - 1] / W;
    CHECK(jumps > n_fit / 2); /* a whole shuffle, not windows */
}

/* Resident kB of the mapping that starts at addr (/proc/self/smaps), -1 if not found. */
static long mapping_rss_kb(const void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    bool in = false;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = lo == (unsigned long)addr;
        else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

typedef struct {
    const void *map;
    volatile int stop;
    long peak_kb, samples;
} rss_sampler;
static void *sample_rss(void *arg) {
    rss_sampler *s = arg;
    while (!s->stop) {
        long kb = mapping_rss_kb(s->map);
        if (kb > s->peak_kb) s->peak_kb = kb;
        s->samples++;
        usleep(200);
    }
    return NULL;
}

/* Training from a shared file mapping with windows (rtr_rows_gather's
 * layout above its budget), 16,384 rows of 256 floats (16 MB) in windows of
 * 1,024 rows (1 MB): the same checkpoint as from the heap with the same
 * windows, and while it trains (a thread samples /proc/self/smaps) the
 * mapping holds at most two windows plus two page-cache folios (a fault
 * maps a file's whole large folio, up to 2 MB, on recent kernels), where
 * reading every row makes all 16 MB resident. Windows change only the
 * order: it still learns; window_rows is kept in the checkpoint. */
static void test_window_mapped(void) {
    enum { NW = 16384, DW = 256, W = 1024 };
    float *e = malloc(sizeof(float) * NW * DW), *yc = malloc(sizeof(float) * NW * K), *yt = malloc(sizeof(float) * NW * K);
    uint64_t keep_rng = test_rng;
    test_rng = 5;
    test_unit_rows(e, NW, DW);
    for (int i = 0; i < NW * K; i++) {
        double a = 16 * e[(i / K) * DW + i % K]; /* about N(0, 1) */
        yc[i] = test_urand() < 1 / (1 + exp(-3 * a)) ? 1.0f : 0.0f;
        yt[i] = (float)round(exp(5 + 0.5 * a));
    }
    float dm[NM * DW], ds[NS * DW];
    test_unit_rows(dm, NM, DW);
    test_unit_rows(ds, NS, DW);
    test_rng = keep_rng;
    size_t bytes = sizeof(float) * NW * DW;
    char path[] = RTR_BINARY_DIR "/test_train_mapXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, e, bytes) == (ssize_t)bytes);
    float *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED);
    close(fd);
    unlink(path);
    long page_kb = sysconf(_SC_PAGESIZE) / 1024, all_kb = (long)(bytes / 1024), window_kb = W * DW * 4 / 1024;
    volatile float touch = 0;
    for (size_t i = 0; i < bytes / sizeof(float); i += 256) touch += map[i];
    CHECK(mapping_rss_kb(map) >= all_kb - page_kb); /* the whole file is resident once read */
    CHECK(madvise(map, bytes, MADV_DONTNEED) == 0);
    CHECK(mapping_rss_kb(map) == 0);

    rtr_train_params cfg = small_params();
    cfg.max_epochs = 3, cfg.window_rows = W;
    rtr_predictor heap, mapped, loaded;
    loss_trace t = {0};
    rtr_train_data data = {.n = NW, .D = DW, .K = K, .emb = e, .correct = yc, .tokens = yt};
    CHECK(rtr_predictor_init(&heap, &cfg, &cat, DW, dm, ds) == RTR_OK);
    CHECK(rtr_predictor_train(&heap, &data, trace, &t) == RTR_OK);
    CHECK_MSG(t.last_train < 0.95 * t.first_train, "train loss %g -> %g", t.first_train, t.last_train);
    data.emb = map, data.emb_mapped = true;
    CHECK(rtr_predictor_init(&mapped, &cfg, &cat, DW, dm, ds) == RTR_OK);
    rtr_predictor_init(&loaded, &cfg, &cat, DW, dm, ds); /* warm: the sampler times training, not setup */
    rtr_predictor_free(&loaded);
    rss_sampler smp = {.map = map, .peak_kb = 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, sample_rss, &smp) == 0);
    CHECK(rtr_predictor_train(&mapped, &data, NULL, NULL) == RTR_OK);
    smp.stop = 1;
    pthread_join(th, NULL);
    CHECK(!memcmp(heap.params, mapped.params, sizeof(float) * heap.n_params));
    long rss = mapping_rss_kb(map);
    fprintf(stderr, "  mapping of %ld kB, windows of %ld kB: peak %ld kB resident while training (%ld samples), "
            "%ld kB after\n", all_kb, window_kb, smp.peak_kb, smp.samples, rss);
    CHECK(rss >= 0 && rss <= 2 * page_kb);
    CHECK(smp.samples > 10);
    CHECK_MSG(smp.peak_kb <= 2 * window_kb + 2 * 2048, "peak %ld kB, bound %ld kB", smp.peak_kb,
              2 * window_kb + 2 * 2048);
    const char *ck = RTR_BINARY_DIR "/test_train_window.safetensors";
    mapped.encoder_hash = rtr_strdup("abc");
    CHECK(rtr_predictor_save(&mapped, ck) == RTR_OK && rtr_predictor_load(&loaded, ck) == RTR_OK);
    CHECK(loaded.cfg.window_rows == W);
    rtr_predictor_free(&loaded);
    remove(ck);
    rtr_predictor_free(&heap);
    rtr_predictor_free(&mapped);
    munmap(map, bytes);
    free(e), free(yc), free(yt);
}

static void test_deterministic_and_roundtrip(void) {
    make_data();
    rtr_train_params cfg = small_params();
    cfg.max_epochs = 3;
    rtr_predictor a, b, c;
    CHECK(train_one(&a, cfg, NULL) == RTR_OK);
    CHECK(train_one(&b, cfg, NULL) == RTR_OK);
    const char *pa = RTR_BINARY_DIR "/test_train_a.safetensors", *pb = RTR_BINARY_DIR "/test_train_b.safetensors";
    a.encoder_hash = rtr_strdup("abc123");
    b.encoder_hash = rtr_strdup("abc123");
    CHECK(rtr_predictor_save(&a, pa) == RTR_OK);
    CHECK(rtr_predictor_save(&b, pb) == RTR_OK);
    char *da, *db;
    size_t la, lb;
    CHECK(rtr_read_file(pa, &da, &la) == RTR_OK && rtr_read_file(pb, &db, &lb) == RTR_OK);
    CHECK(la == lb && !memcmp(da, db, la));
    free(da);
    free(db);
    /* another seed gives other parameters */
    cfg.seed = 4;
    CHECK(train_one(&c, cfg, NULL) == RTR_OK);
    CHECK(memcmp(a.params, c.params, sizeof(float) * a.n_trainable) != 0);
    rtr_predictor_free(&c);
    /* one window covering every row is no window: the same training */
    rtr_train_params whole = small_params();
    whole.max_epochs = 3, whole.window_rows = N_TRAIN;
    CHECK(train_one(&c, whole, NULL) == RTR_OK);
    CHECK(!memcmp(a.params, c.params, sizeof(float) * a.n_trainable));
    rtr_predictor_free(&c);

    /* load reproduces every field scoring depends on, and the scores */
    CHECK(rtr_predictor_load(&c, pa) == RTR_OK);
    CHECK(c.n_params == a.n_params && !memcmp(c.params, a.params, sizeof(float) * a.n_params));
    CHECK(c.token_scale == a.token_scale && c.cfg.token_target == a.cfg.token_target);
    CHECK(c.catalog_hash == a.catalog_hash && c.encoder_hash && !strcmp(c.encoder_hash, "abc123"));
    CHECK(!memcmp(c.pair_model, a.pair_model, sizeof(int32_t) * K));
    /* the validation rows: 10% of the training rows, by embedding hash, none a fitted row */
    CHECK_MSG(a.n_val_hash == 150 && c.n_val_hash == a.n_val_hash, "%lld %lld", (long long)a.n_val_hash, (long long)c.n_val_hash);
    CHECK(c.val_hash && !memcmp(c.val_hash, a.val_hash, sizeof(uint64_t) * (size_t)a.n_val_hash));
    int found = 0;
    for (int i = 0; i < N_TRAIN; i++) {
        uint64_t h = rtr_embedding_hash(emb + i * D, D);
        for (int64_t v = 0; v < a.n_val_hash; v++) found += h == a.val_hash[v];
    }
    CHECK(found == 150);
    for (int i = N_TRAIN; i < N_ALL; i++)
        for (int64_t v = 0; v < a.n_val_hash; v++) CHECK(rtr_embedding_hash(emb + i * D, D) != a.val_hash[v]);
    char ha[17], hc[17];
    rtr_predictor_hash_hex(&a, ha);
    rtr_predictor_hash_hex(&c, hc);
    CHECK(!strcmp(ha, hc));
    static float s1[10 * K], s2[10 * K], t1[10 * K], t2[10 * K];
    CHECK(rtr_predictor_score(s1, t1, &a, emb, 10) == RTR_OK && rtr_predictor_score(s2, t2, &c, emb, 10) == RTR_OK);
    CHECK(!memcmp(s1, s2, sizeof s1) && !memcmp(t1, t2, sizeof t1));
    rtr_predictor_free(&a);
    rtr_predictor_free(&b);
    rtr_predictor_free(&c);
    remove(pa);
    remove(pb);
}

static void test_bad_input(void) {
    make_data();
    rtr_predictor p;
    rtr_train_params cfg = small_params();
    cfg.max_epochs = 2;
    /* NaN in an embedding */
    float keep = emb[5 * D + 3];
    emb[5 * D + 3] = NAN;
    CHECK(train_one(&p, cfg, NULL) == RTR_ERR_NUMERIC);
    CHECK(strstr(rtr_last_error(), "row 5") != NULL);
    rtr_predictor_free(&p);
    emb[5 * D + 3] = keep;
    /* a label outside [0, 1] */
    keep = correct[7 * K + 1];
    correct[7 * K + 1] = 2.0f;
    CHECK(train_one(&p, cfg, NULL) == RTR_ERR_NUMERIC);
    rtr_predictor_free(&p);
    correct[7 * K + 1] = keep;
    /* no token outcome at all: refused, naming the reason */
    static float no_tokens[N_ALL * K];
    for (int i = 0; i < N_ALL * K; i++) no_tokens[i] = NAN;
    CHECK(rtr_predictor_init(&p, &cfg, &cat, D, d_model, d_strategy) == RTR_OK);
    rtr_train_data nt = {.n = N_TRAIN, .D = D, .K = K, .emb = emb, .correct = correct, .tokens = no_tokens};
    CHECK(rtr_predictor_train(&p, &nt, NULL, NULL) == RTR_ERR_INVALID);
    CHECK(strstr(rtr_last_error(), "token head has nothing to learn") != NULL);
    rtr_predictor_free(&p);
    /* a diverging run */
    cfg.lr = 1e30;
    CHECK(train_one(&p, cfg, NULL) == RTR_ERR_NUMERIC);
    CHECK(strstr(rtr_last_error(), "diverged") != NULL);
    rtr_predictor_free(&p);
    /* finite weights whose scores overflow float (a damaged checkpoint): both
     * scoring paths refuse, naming the row and pair, instead of routing on
     * NaN / inf */
    cfg.lr = small_params().lr;
    CHECK(train_one(&p, cfg, NULL) == RTR_OK);
    static float sp[4 * K], st[4 * K];
    CHECK(rtr_predictor_score(sp, st, &p, emb, 4) == RTR_OK);
    /* E·W_q = FLT_MAX·Σ|e| at row 0: inf in both paths, whatever the training
     * gave (w2 = 1: the backend path folds |w2| into W_q, and a small w2 kept
     * its product finite in some builds) */
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < p.H * D; i++) p.head[h].W_q[i] = emb[i % D] < 0 ? -FLT_MAX : FLT_MAX;
        for (int j = 0; j < p.H; j++) p.head[h].w2[j] = 1.0f;
    }
    CHECK(rtr_predictor_score(sp, st, &p, emb, 4) == RTR_ERR_NUMERIC);
    CHECK_MSG(strstr(rtr_last_error(), "row 0 pair 0") && strstr(rtr_last_error(), "overflow"), "%s", rtr_last_error());
    rtr_backend hb;
    rtr_backend_ref_open(&hb);
    CHECK(rtr_predictor_score_backend(&hb, sp, st, &p, emb, 4, 2) == RTR_ERR_NUMERIC);
    CHECK_MSG(strstr(rtr_last_error(), "row 0 pair 0"), "%s", rtr_last_error());
    rtr_backend_free(&hb);
    rtr_predictor_free(&p);
    /* a corrupt checkpoint */
    const char *path = RTR_BINARY_DIR "/test_train_bad.safetensors";
    CHECK(rtr_write_file_atomic(path, "garbage", 7) == RTR_OK);
    CHECK(rtr_predictor_load(&p, path) != RTR_OK);
    remove(path);
}

/* A checkpoint whose bytes changed after saving (one weight, or the stored
 * hash itself) fails to load, naming both hashes; the intact file loads. */
/* A predictor trained for one epoch on the test data, saved to path. */
static void saved_checkpoint(rtr_predictor *p, const char *path) {
    make_data();
    rtr_train_params cfg = small_params();
    cfg.max_epochs = 1;
    CHECK(train_one(p, cfg, NULL) == RTR_OK);
    CHECK(rtr_predictor_save(p, path) == RTR_OK);
}

static void test_checkpoint_hash_verified(void) {
    rtr_predictor p, q;
    const char *path = RTR_BINARY_DIR "/test_train_hash.safetensors";
    saved_checkpoint(&p, path);
    CHECK(rtr_predictor_load(&q, path) == RTR_OK);
    rtr_predictor_free(&q);
    char *data;
    size_t len;
    CHECK(rtr_read_file(path, &data, &len) == RTR_OK);
    char hash[17];
    rtr_predictor_hash_hex(&p, hash);
    /* flip one bit of every tensor in turn (the tensors follow the header):
     * a parameter, a frozen description or a pair index, each is caught */
    uint64_t header;
    memcpy(&header, data, 8);
    size_t body = 8 + header, step = (len - body) / 7 + 1;
    for (size_t at = body + 1; at < len; at += step) {
        data[at] ^= 0x10;
        CHECK(rtr_write_file_atomic(path, data, len) == RTR_OK);
        CHECK_MSG(rtr_predictor_load(&q, path) != RTR_OK, "bit flip at byte %zu of %zu loads", at, len);
        data[at] ^= 0x10;
    }
    /* the last pair's strategy index (the last float), 0 or 1, swapped for
     * the other: still a valid index, so only the hash can catch it */
    float was, other;
    memcpy(&was, data + len - 4, 4);
    CHECK(was == 0.0f || was == 1.0f);
    other = 1.0f - was;
    memcpy(data + len - 4, &other, 4);
    CHECK(rtr_write_file_atomic(path, data, len) == RTR_OK);
    CHECK(rtr_predictor_load(&q, path) == RTR_ERR_FORMAT);
    CHECK_MSG(strstr(rtr_last_error(), "stored checkpoint_hash") != NULL && strstr(rtr_last_error(), hash) != NULL,
              "%s", rtr_last_error());
    /* the parameters intact but the stored hash edited */
    memcpy(data + len - 4, &was, 4);
    char *h = strstr(data + 8, hash);
    CHECK(h != NULL && h < data + 8 + header);
    if (h) h[0] = h[0] == '0' ? '1' : '0';
    CHECK(rtr_write_file_atomic(path, data, len) == RTR_OK);
    CHECK(rtr_predictor_load(&q, path) == RTR_ERR_FORMAT);
    free(data);
    rtr_predictor_free(&p);
    remove(path);
}

/* A \u escape without 4 hex digits in the config metadata (JSON inside the
 * header's JSON): cJSON read it as NUL, so "log\u00zz" loaded as "log";
 * now refused, naming the file and the column. */
static void test_checkpoint_bad_escape(void) {
    rtr_predictor p, q;
    const char *path = RTR_BINARY_DIR "/test_train_escape.safetensors";
    saved_checkpoint(&p, path);
    rtr_predictor_free(&p);
    char *data;
    size_t len;
    CHECK(rtr_read_file(path, &data, &len) == RTR_OK);
    uint64_t header;
    memcpy(&header, data, 8);
    /* the value's closing quote, escaped in the header: \" */
    char *key = strstr(data + 8, "token_target\\\":\\\"");
    char *close = key ? strstr(key + 17, "\\\"") : NULL;
    CHECK(close != NULL && close < data + 8 + header);
    if (!close) return;
    const char *ins = "\\\\u00zz";
    size_t at = (size_t)(close - data), k = strlen(ins), n = len + k;
    char *out = malloc(n);
    uint64_t h2 = header + k;
    memcpy(out, &h2, 8);
    memcpy(out + 8, data + 8, at - 8);
    memcpy(out + at, ins, k);
    memcpy(out + at + k, data + at, len - at);
    CHECK(rtr_write_file_atomic(path, out, n) == RTR_OK);
    CHECK(rtr_predictor_load(&q, path) == RTR_ERR_FORMAT);
    CHECK_MSG(strstr(rtr_last_error(), "metadata 'config' is not valid JSON") && strstr(rtr_last_error(), path) &&
              strstr(rtr_last_error(), "\\u is not followed by 4 hex digits"), "%s", rtr_last_error());
    free(out);
    free(data);
    remove(path);
}

TEST_MAIN(T(test_adam_update), T(test_learns_and_beats_naive), T(test_host_step), T(test_row_order),
          T(test_window_mapped), T(test_deterministic_and_roundtrip), T(test_bad_input),
          T(test_checkpoint_hash_verified), T(test_checkpoint_bad_escape))
