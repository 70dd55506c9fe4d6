/* Training on the emulated CUDA backend ("cuda-emu": the kernels of kernels/
 * on the CPU emulator, GEMMs by the CPU BLAS) against training on the CPU
 * backend: the same predictor init, seed, rows and options (3 models x 2
 * strategies, D 24, H 40, U 8, 300 rows with missing labels, batch 32, a
 * validation split, 4 epochs), for both token targets. Every epoch's train
 * and validation losses must agree to a relative 1e-4, the best epochs must
 * be the same, and the final parameters must agree to the tolerance argued
 * at PARAM_ATOL; a diverging run must fail the same way on the device path
 * (losses and parameters come back once per epoch). Small sizes: every
 * thread of a block is a fiber on the emulator. */
#include "backend_suite.h"
#include "test.h"

#include <string.h>

enum { D = 24, H = 40, U = 8, NM = 3, NS = 2, K = NM * NS, N = 300, EPOCHS = 4 };

static const char *CATALOG = "{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}],"
                             "\"strategies\":[{\"name\":\"direct\"},{\"name\":\"cot\"}]}";

static float emb[N * D], correct[N * K], tokens[N * K], d_model[NM * D], d_strategy[NS * D];
static rtr_catalog cat;

/* Labels that depend on the query and the pair, about 7% missing. */
static void make_data(void) {
    static bool done;
    if (done) return;
    done = true;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "test") == RTR_OK);
    test_rng = 2024;
    test_unit_rows(emb, N, D);
    test_unit_rows(d_model, NM, D);
    test_unit_rows(d_strategy, NS, D);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            double a = emb[i * D + k] + 0.5 * emb[i * D + k + K];
            correct[i * K + k] = test_urand() < 1 / (1 + exp(-4 * a)) ? 1.0f : 0.0f;
            tokens[i * K + k] = (float)round(exp(4.0 + (k % NS) + a + 0.2 * test_urand()));
            if (test_urand() < 0.07) correct[i * K + k] = NAN;
            if (test_urand() < 0.07) tokens[i * K + k] = NAN;
        }
}

typedef struct {
    rtr_epoch_log e[EPOCHS];
    int n;
} epoch_trace;

static void trace(const rtr_epoch_log *e, void *user) {
    epoch_trace *t = user;
    if (t->n < EPOCHS) t->e[t->n++] = *e;
}

static rtr_train_params params(int token_target) {
    rtr_train_params c = rtr_train_default_params();
    c.hidden = H, c.learn_dim = U, c.batch = 32, c.max_epochs = EPOCHS, c.patience = 10, c.val_frac = 0.1;
    c.seed = 11, c.token_target = token_target;
    return c;
}

static rtr_status train_on(rtr_backend *b, rtr_predictor *p, rtr_train_params cfg, epoch_trace *t) {
    rtr_status st = rtr_predictor_init(p, &cfg, &cat, D, d_model, d_strategy);
    rtr_train_data data = {.n = N, .D = D, .K = K, .emb = emb, .correct = correct, .tokens = tokens};
    return st ? st : rtr_predictor_train_on(b, p, &data, t ? trace : NULL, t);
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-12); }

/* Final parameters after 4 epochs (9 batches each: 36 Adam steps of lr
 * 1e-3): the backends sum the heads' reductions in different orders
 * (tiles, atomics), so gradients differ in their last bits, and Adam divides
 * by sqrt(v), so a gradient that nearly cancels can carry a relative
 * difference much larger than float epsilon into a step of up to lr.
 * Measured: 2.4e-7 at most. 1e-5 leaves a 40x margin and is still over 3,000
 * times below the 0.036 that 36 steps can move a parameter, so a missing or
 * wrong update (one step is 1e-3) fails. */
#define PARAM_ATOL 1e-5
#define PARAM_RTOL 1e-5

static void test_emu_matches_cpu(void) {
    make_data();
    rtr_backend cpu, emu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    double worst_loss = 0, worst_param = 0;
    for (int target = RTR_TOKENS_RAW; target <= RTR_TOKENS_LOG; target++) {
        rtr_predictor pc, pe;
        epoch_trace tc = {0}, te = {0};
        CHECK(train_on(&cpu, &pc, params(target), &tc) == RTR_OK);
        CHECK(train_on(&emu, &pe, params(target), &te) == RTR_OK);
        CHECK(tc.n == EPOCHS && te.n == EPOCHS);
        CHECK(pc.token_scale == pe.token_scale);
        for (int i = 0; i < tc.n && i < te.n; i++) {
            const rtr_epoch_log *a = &te.e[i], *b = &tc.e[i];
            double l[4][2] = {{a->train_bce, b->train_bce}, {a->train_tok, b->train_tok},
                              {a->val_bce, b->val_bce}, {a->val_tok, b->val_tok}};
            for (int j = 0; j < 4; j++) {
                double r = rel(l[j][0], l[j][1]);
                if (r > worst_loss) worst_loss = r;
                CHECK_MSG(r <= 1e-4, "%s target, epoch %d, loss %d: emu %.9g cpu %.9g", target ? "log" : "raw",
                          i + 1, j, l[j][0], l[j][1]);
            }
            CHECK(a->best == b->best);
        }
        size_t bad = 0;
        for (size_t i = 0; i < pc.n_trainable; i++) {
            double diff = fabs((double)pe.params[i] - pc.params[i]);
            if (diff > worst_param) worst_param = diff;
            bad += !(diff <= PARAM_ATOL + PARAM_RTOL * fabs(pc.params[i]));
        }
        CHECK_MSG(bad == 0, "%zu of %zu parameters differ", bad, pc.n_trainable);
        CHECK(!memcmp(pe.params + pc.n_trainable, pc.params + pc.n_trainable,
                      sizeof(float) * (pc.n_params - pc.n_trainable))); /* frozen descriptions untouched */
        const rtr_epoch_log *le = &te.e[EPOCHS - 1], *lc = &tc.e[EPOCHS - 1];
        fprintf(stderr, "  %s target: last epoch emu/cpu train %.6f/%.6f val %.6f/%.6f\n", target ? "log" : "raw",
                le->train_bce + le->train_tok, lc->train_bce + lc->train_tok, le->val_bce + le->val_tok,
                lc->val_bce + lc->val_tok);
        rtr_predictor_free(&pc);
        rtr_predictor_free(&pe);
    }
    fprintf(stderr, "  worst relative loss difference %.3g (bound 1e-4), worst parameter difference %.3g "
            "(bound %g + %g|p|)\n", worst_loss, worst_param, PARAM_ATOL, PARAM_RTOL);
    rtr_backend_free(&cpu);
    rtr_backend_free(&emu);
}

/* The emulated backend with the trainer's per-batch ops counted: which
 * launch path a run took (args: heads_loss/adam_update per batch; table:
 * batch_select, heads_loss_step, adam_update_step). */
static rtr_backend_iface counted;
static const rtr_backend_iface *emu_iface;
static int n_adam, n_adam_step, n_select;
static rtr_status count_adam(void *ctx, float *param, const float *grad, float *m, float *v, size_t n, double lr,
                             int64_t t) {
    n_adam++;
    return emu_iface->adam_update(ctx, param, grad, m, v, n, lr, t);
}
static rtr_status count_adam_step(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                                  const rtr_batch_step *step) {
    n_adam_step++;
    return emu_iface->adam_update_step(ctx, param, grad, m, v, n, step);
}
static rtr_status count_select(void *ctx, int64_t *idx, rtr_batch_step *step, int64_t *cursor, const int64_t *order,
                               const rtr_batch_step *table, int n) {
    n_select++;
    return emu_iface->batch_select(ctx, idx, step, cursor, order, table, n);
}

/* One run with RTR_TRAIN_LAUNCH=mode (NULL: unset) on the counted emulator. */
static void train_launch(rtr_predictor *p, const char *mode, int token_target, epoch_trace *t) {
    rtr_backend emu;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    emu_iface = emu.iface;
    counted = *emu.iface;
    counted.adam_update = count_adam, counted.adam_update_step = count_adam_step, counted.batch_select = count_select;
    emu.iface = &counted;
    n_adam = n_adam_step = n_select = 0;
    if (mode) setenv("RTR_TRAIN_LAUNCH", mode, 1);
    else unsetenv("RTR_TRAIN_LAUNCH");
    CHECK(train_on(&emu, p, params(token_target), t) == RTR_OK);
    unsetenv("RTR_TRAIN_LAUNCH");
    rtr_backend_free(&emu);
}

/* The batch-table launches (every batch's arguments in backend memory, as
 * a CUDA graph replays them; the default where the backend has no graphs,
 * as the emulator) against today's per-launch host arguments: the same ops
 * in the same order, so every epoch's losses and the final model are
 * bit-identical; both against the CPU trainer to test_emu_matches_cpu's
 * bound. 300 rows, 30 for validation: 9 batches an epoch, the last of 14
 * rows (a partial batch through the table too). */
static void test_table_launch_identical(void) {
    make_data();
    enum { BATCHES = 9 };
    rtr_backend cpu;
    CHECK(rtr_backend_cpu_open(&cpu) == RTR_OK);
    for (int target = RTR_TOKENS_RAW; target <= RTR_TOKENS_LOG; target++) {
        rtr_predictor pa, pt, pd, pc;
        epoch_trace ta = {0}, tt = {0}, td = {0};
        train_launch(&pa, "args", target, &ta);
        CHECK_MSG(n_adam == EPOCHS * BATCHES && n_adam_step == 0 && n_select == 0, "args: %d adam, %d step, %d select",
                  n_adam, n_adam_step, n_select);
        train_launch(&pt, "table", target, &tt);
        CHECK_MSG(n_adam == 0 && n_adam_step == EPOCHS * BATCHES && n_select == EPOCHS * BATCHES,
                  "table: %d adam, %d step, %d select", n_adam, n_adam_step, n_select);
        train_launch(&pd, NULL, target, &td); /* the default: graph, which the emulator lacks, is the table */
        CHECK(n_adam == 0 && n_select == EPOCHS * BATCHES);
        CHECK(ta.n == EPOCHS && tt.n == EPOCHS && td.n == EPOCHS);
        for (int i = 0; i < EPOCHS; i++) {
            const rtr_epoch_log *a = &ta.e[i], *b = &tt.e[i];
            CHECK_MSG(a->train_bce == b->train_bce && a->train_tok == b->train_tok && a->val_bce == b->val_bce &&
                      a->val_tok == b->val_tok && a->best == b->best,
                      "%s target, epoch %d: args %.17g %.17g, table %.17g %.17g", target ? "log" : "raw", i + 1,
                      a->train_bce, a->train_tok, b->train_bce, b->train_tok);
        }
        CHECK_MSG(!memcmp(pa.params, pt.params, sizeof(float) * pa.n_params), "%s target: the models differ",
                  target ? "log" : "raw");
        CHECK(!memcmp(pa.params, pd.params, sizeof(float) * pa.n_params));
        CHECK(train_on(&cpu, &pc, params(target), NULL) == RTR_OK);
        size_t bad = 0;
        for (size_t i = 0; i < pc.n_trainable; i++)
            bad += !(fabs((double)pt.params[i] - pc.params[i]) <= PARAM_ATOL + PARAM_RTOL * fabs(pc.params[i]));
        CHECK_MSG(bad == 0, "table path: %zu of %zu parameters differ from the CPU trainer's", bad, pc.n_trainable);
        rtr_predictor_free(&pa), rtr_predictor_free(&pt), rtr_predictor_free(&pd), rtr_predictor_free(&pc);
    }
    rtr_predictor p;
    setenv("RTR_TRAIN_LAUNCH", "graphs", 1);
    rtr_backend emu;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    CHECK(train_on(&emu, &p, params(RTR_TOKENS_RAW), NULL) == RTR_ERR_INVALID);
    CHECK(strstr(rtr_last_error(), "RTR_TRAIN_LAUNCH=graphs") != NULL);
    unsetenv("RTR_TRAIN_LAUNCH");
    rtr_predictor_free(&p);
    rtr_backend_free(&emu);
    rtr_backend_free(&cpu);
}

static void test_emu_divergence(void) {
    make_data();
    rtr_backend emu;
    CHECK(rtr_backend_emu_open(&emu) == RTR_OK);
    rtr_predictor p;
    rtr_train_params cfg = params(RTR_TOKENS_RAW);
    cfg.lr = 1e30, cfg.max_epochs = 2;
    CHECK(train_on(&emu, &p, cfg, NULL) == RTR_ERR_NUMERIC);
    CHECK(strstr(rtr_last_error(), "diverged") != NULL);
    rtr_predictor_free(&p);
    rtr_backend_free(&emu);
}

TEST_MAIN(T(test_emu_matches_cpu), T(test_table_launch_identical), T(test_emu_divergence))
