/* librtr called from several threads at once, as a user's program may
 * (docs/LIBRARY.md "Threads"): each thread with its own backend and
 * encoder, sharing one predictor, gets the bits the same call gives alone;
 * corpus stages on distinct corpora run side by side and write what they
 * write alone; the messages a call leaves (rtr_last_error, a JSON parse's
 * position, rtr_shown's escapes) are the calling thread's own, never
 * another thread's. The threads only record what they saw; the checks run
 * on the main thread. */
#include "corpus_fixture.h"
#include "encoder_fixture.h"
#include "common/json.h"
#include "rtr/stages.h"

#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

enum { NT = 4 };

/* ------------------------------------------------------------- messages */

typedef struct {
    int t, rounds;
    int wrong_json, wrong_shown, wrong_last;
} msg_job;

/* Each thread parses a text whose error is on its own line (t + 2) and
 * escapes a string holding its own number, keeping 8 escapes alive (the
 * ring's promise), and fails a call whose message names its own number. */
static void *messages(void *arg) {
    msg_job *j = arg;
    char text[64], want[32], tab[16], shown_want[16], bad_path[64];
    int pad = j->t + 1;
    snprintf(text, sizeof text, "{%.*s\"a\": }", pad, "\n\n\n\n\n\n\n\n");
    snprintf(want, sizeof want, " at line %d,", pad + 1);
    snprintf(tab, sizeof tab, "t%d\tx", j->t);
    snprintf(shown_want, sizeof shown_want, "t%d\\tx", j->t);
    snprintf(bad_path, sizeof bad_path, "/nonexistent/thread-%d/catalog.json", j->t);
    const char *kept[8] = {0};
    for (int r = 0; r < j->rounds; r++) {
        const char *why;
        cJSON *root = rtr_json_parse(text, &why, NULL);
        if (root || strncmp(why, want, strlen(want))) j->wrong_json++;
        cJSON_Delete(root);
        kept[r % 8] = rtr_shown(tab);
        for (int i = 0; i < 8; i++)
            if (kept[i] && strcmp(kept[i], shown_want)) j->wrong_shown++;
        if (r % 64 == 0) {
            rtr_catalog cat;
            if (rtr_catalog_load_json(&cat, bad_path) == RTR_OK || !strstr(rtr_last_error(), bad_path))
                j->wrong_last++;
        }
    }
    return NULL;
}

static void test_messages_per_thread(void) {
    pthread_t th[NT];
    msg_job job[NT];
    for (int t = 0; t < NT; t++) {
        job[t] = (msg_job){.t = t, .rounds = 20000};
        CHECK(pthread_create(&th[t], NULL, messages, &job[t]) == 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(!job[t].wrong_json, "thread %d: %d JSON parse messages not its own", t, job[t].wrong_json);
        CHECK_MSG(!job[t].wrong_shown, "thread %d: %d escaped strings changed under it", t, job[t].wrong_shown);
        CHECK_MSG(!job[t].wrong_last, "thread %d: %d rtr_last_error() not its own", t, job[t].wrong_last);
    }
}

/* ----------------------------------------------------- routing texts */

static const char *CATALOG =
    "{\"models\":[{\"name\":\"small\",\"price_in\":0.1,\"price_out\":0.4},{\"name\":\"large\",\"price_in\":1,"
    "\"price_out\":4}],\"strategies\":[{\"name\":\"direct\"},{\"name\":\"cot\"}],"
    "\"pairs\":[[\"small\",\"direct\"],[\"small\",\"cot\"],[\"large\",\"direct\"],[\"large\",\"cot\"]]}";

static const char *TEXTS[] = {
    "What is 17 times 23?",
    "Prove that the square root of two is irrational.",
    "Which planet is closest to the sun?",
    "Write a function that reverses a linked list.",
    "If a train leaves at 3pm going 60 mph, when does it arrive 150 miles away?",
    "Translate 'good morning' into French.",
    "A bat and a ball cost $1.10 in total; the bat costs $1 more than the ball. How much is the ball?",
    "Name the capital of Australia.",
    "Summarise the causes of the French Revolution in two sentences.",
    "How many primes are there below 100?",
};
enum { N_TEXTS = sizeof TEXTS / sizeof *TEXTS };

/* A predictor with seeded random weights over CATALOG, D-dim. */
static rtr_status make_predictor(rtr_predictor *p, const rtr_catalog *cat, int32_t D, uint64_t seed) {
    rtr_train_params cfg = rtr_train_default_params();
    cfg.seed = seed;
    float *dm = calloc((size_t)cat->n_models * (size_t)D, sizeof *dm);
    float *ds = calloc((size_t)cat->n_strategies * (size_t)D, sizeof *ds);
    for (size_t i = 0; i < (size_t)cat->n_models * (size_t)D; i++) dm[i] = 1.0f;
    rtr_status st = dm && ds ? rtr_predictor_init(p, &cfg, cat, D, dm, ds) : RTR_ERR_NOMEM;
    free(dm), free(ds);
    return st;
}

typedef struct {
    const char *model_dir;
    const rtr_predictor *pred;
    int rounds;
    rtr_status st;
    char error[512];
    int32_t choice[N_TEXTS];
    float p[N_TEXTS * 4], tok[N_TEXTS * 4];
    int differ; /* rounds whose results differ from the thread's first */
} route_job;

/* Load an encoder and a CPU backend of the thread's own, route the texts
 * `rounds` times; keep the first round's results. */
static void *route_texts(void *arg) {
    route_job *j = arg;
    rtr_backend cpu;
    rtr_encoder *enc = NULL;
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.device = "cpu";
    j->st = rtr_backend_init(&cpu, "cpu");
    bool have_cpu = !j->st;
    if (!j->st) j->st = rtr_encoder_load(&enc, j->model_dir, &ep);
    rtr_route_params rp = rtr_route_default_params();
    rp.lambda = 0.7;
    rp.o.cost_scale = 300;
    for (int r = 0; !j->st && r < j->rounds; r++) {
        rtr_text_routes out;
        if ((j->st = rtr_route_texts(&cpu, &out, enc, j->pred, TEXTS, N_TEXTS, &rp))) break;
        size_t nk = (size_t)out.n * (size_t)out.k;
        if (r == 0) {
            memcpy(j->choice, out.choice, sizeof j->choice);
            memcpy(j->p, out.p_correct, nk * sizeof *j->p);
            memcpy(j->tok, out.tokens, nk * sizeof *j->tok);
        } else if (memcmp(j->choice, out.choice, sizeof j->choice) || memcmp(j->p, out.p_correct, nk * sizeof *j->p) ||
                   memcmp(j->tok, out.tokens, nk * sizeof *j->tok))
            j->differ++;
        rtr_text_routes_free(&out);
    }
    if (j->st) snprintf(j->error, sizeof j->error, "%s", rtr_last_error());
    rtr_encoder_free(enc);
    if (have_cpu) rtr_backend_free(&cpu);
    return NULL;
}

static void test_route_texts_concurrent(void) {
    const char *dir = fixture_model_dir("all-MiniLM-L6-v2");
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    char model_dir[1024];
    snprintf(model_dir, sizeof model_dir, "%s", dir);
    rtr_catalog cat;
    rtr_predictor pred;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    CHECK_MSG(make_predictor(&pred, &cat, 384, 11) == RTR_OK, "%s", rtr_last_error());
    /* alone first: the bits every thread must give */
    route_job alone = {.model_dir = model_dir, .pred = &pred, .rounds = 1};
    route_texts(&alone);
    CHECK_MSG(alone.st == RTR_OK, "alone: %s", alone.error);
    pthread_t th[NT];
    route_job *job = calloc(NT, sizeof *job);
    for (int t = 0; t < NT; t++) {
        job[t] = (route_job){.model_dir = model_dir, .pred = &pred, .rounds = 3};
        CHECK(pthread_create(&th[t], NULL, route_texts, &job[t]) == 0);
    }
    int choices = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(job[t].st == RTR_OK, "thread %d: %s", t, job[t].error);
        CHECK_MSG(!job[t].differ, "thread %d: %d rounds differ from its first", t, job[t].differ);
        CHECK_MSG(!memcmp(job[t].choice, alone.choice, sizeof alone.choice) &&
                      !memcmp(job[t].p, alone.p, sizeof alone.p) && !memcmp(job[t].tok, alone.tok, sizeof alone.tok),
                  "thread %d: predictions or choices differ from the same call made alone", t);
    }
    for (int i = 0; i < N_TEXTS; i++) choices |= 1 << alone.choice[i];
    CHECK_MSG(!isnan(alone.p[0]) && alone.tok[0] > 0, "alone: p %g tokens %g", alone.p[0], alone.tok[0]);
    fprintf(stderr, "  %d threads x 3 rounds routed %d texts as one call alone (pairs chosen: mask %#x)\n", NT,
            N_TEXTS, choices);
    free(job);
    rtr_predictor_free(&pred);
    rtr_catalog_free(&cat);
}

/* ------------------------------------------------------ corpus stages */

enum { DIM = 16, N_SHARDS = 2 };
static const int64_t SHARD_ROWS[N_SHARDS] = {300, 211};

static float emb_value(int s, int64_t i, int t) {
    uint32_t x = (uint32_t)(s * 100003 + i * 131 + t * 7 + 1) * 2654435761u;
    return (float)(x >> 8) / 16777216.0f - 0.5f;
}

static void make_rows(rtr_shard *sh, int64_t n, int32_t k, int tag) {
    CHECK(rtr_shard_alloc(sh, n, k) == RTR_OK);
    for (int64_t i = 0; i < n; i++) {
        sh->id[i] = rtr_sprintf("q%d-%lld", tag, (long long)i);
        sh->text[i] = rtr_sprintf("text %lld", (long long)i);
        sh->dataset[i] = rtr_strdup(i % 2 ? "arith" : "logic");
        sh->split[i] = rtr_strdup(i % 4 ? "train" : "test");
        for (int32_t j = 0; j < k; j++) {
            sh->correct[(size_t)i * (size_t)k + (size_t)j] = (float)((i + j) % 3 != 0);
            sh->tokens[(size_t)i * (size_t)k + (size_t)j] = (float)(50 + 40 * j + i % 17);
        }
    }
}

typedef struct {
    const char *corpus;
    const rtr_predictor *pred;
    char out[1024];
    rtr_status st;
    char error[512];
} stage_job;

/* Score the corpus into table "t", then route it to an HDF5 file. */
static void *stages(void *arg) {
    stage_job *j = arg;
    rtr_backend cpu;
    j->st = rtr_backend_init(&cpu, "cpu");
    bool have_cpu = !j->st;
    rtr_score_params sp = {.name = "t", .checkpoint_path = "random.safetensors"};
    rtr_score_summary ss;
    if (!j->st) j->st = rtr_score_corpus(&cpu, &ss, j->corpus, j->pred, &sp);
    rtr_route_params rp = rtr_route_default_params();
    rp.lambda = 0.5;
    rp.o.table = "t";
    rtr_route_summary rs = {0};
    if (!j->st) j->st = rtr_route_corpus(&cpu, j->out, &rs, j->corpus, &rp);
    rtr_route_summary_free(&rs);
    if (j->st) snprintf(j->error, sizeof j->error, "%s", rtr_last_error());
    if (have_cpu) rtr_backend_free(&cpu);
    return NULL;
}

static char *slurp_file(const char *path, size_t *n) { return fixture_slurp(path, n); }

static void test_corpus_stages_concurrent(void) {
    hbool_t safe = 0;
    if (H5is_library_threadsafe(&safe) < 0 || !safe)
        TEST_SKIP("this HDF5 is built without thread safety: corpus stages must then run one at a time");
    rtr_catalog cat;
    rtr_predictor pred;
    CHECK(rtr_catalog_parse_json(&cat, CATALOG, "inline") == RTR_OK);
    CHECK_MSG(make_predictor(&pred, &cat, DIM, 5) == RTR_OK, "%s", rtr_last_error());
    pred.encoder = rtr_strdup("fixture-encoder");
    pred.encoder_hash = rtr_strdup("00000000000000aa");
    rtr_shard rows[N_SHARDS];
    for (int s = 0; s < N_SHARDS; s++) make_rows(&rows[s], SHARD_ROWS[s], cat.n_pairs, s);
    /* NT + 1 identical corpora: one routed alone, then NT at once */
    char *dirs[NT + 1];
    stage_job job[NT + 1];
    for (int t = 0; t <= NT; t++) {
        char name[32];
        snprintf(name, sizeof name, "threads%d", t);
        dirs[t] = fixture_dir(name);
        CHECK(fixture_corpus(dirs[t], &cat, rows, N_SHARDS, 64) == RTR_OK);
        rtr_corpus *c = NULL;
        CHECK(rtr_corpus_open(&c, dirs[t]) == RTR_OK);
        CHECK_MSG(c && fixture_embeddings(c, pred.encoder, pred.encoder_hash, DIM, emb_value) == RTR_OK, "%s",
                  rtr_last_error());
        rtr_corpus_close(c);
        job[t] = (stage_job){.corpus = dirs[t], .pred = &pred};
        snprintf(job[t].out, sizeof job[t].out, "%s/routes.h5", dirs[t]);
    }
    stages(&job[NT]);
    CHECK_MSG(job[NT].st == RTR_OK, "alone: %s", job[NT].error);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) CHECK(pthread_create(&th[t], NULL, stages, &job[t]) == 0);
    size_t n_alone = 0;
    char *alone = slurp_file(job[NT].out, &n_alone);
    CHECK(alone && n_alone > 0);
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(job[t].st == RTR_OK, "thread %d: %s", t, job[t].error);
        /* byte for byte: rtr's HDF5 files carry no times */
        size_t n = 0;
        char *mine = slurp_file(job[t].out, &n);
        CHECK_MSG(mine && alone && n == n_alone && !memcmp(mine, alone, n),
                  "thread %d: %s differs from the one written alone", t, job[t].out);
        for (int s = 0; s < N_SHARDS; s++) {
            char *a = rtr_sprintf("%s/tables/t/shard-%05d.h5", dirs[NT], s), *b = rtr_sprintf("%s/tables/t/shard-%05d.h5", dirs[t], s);
            size_t na = 0, nb = 0;
            char *x = slurp_file(a, &na), *y = slurp_file(b, &nb);
            CHECK_MSG(x && y && na == nb && !memcmp(x, y, na), "thread %d: table of shard %d differs from alone", t, s);
            free(x), free(y), free(a), free(b);
        }
        free(mine);
    }
    free(alone);
    for (int t = 0; t <= NT; t++) {
        rtr_remove_tree(dirs[t]);
        free(dirs[t]);
    }
    for (int s = 0; s < N_SHARDS; s++) rtr_shard_free(&rows[s]);
    rtr_predictor_free(&pred);
    rtr_catalog_free(&cat);
}

TEST_MAIN(T(test_messages_per_thread), T(test_route_texts_concurrent), T(test_corpus_stages_concurrent))
