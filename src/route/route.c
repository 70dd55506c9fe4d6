/* Routing decisions for one λ: the plain argmax (reference of the CUDA
 * kernel), each query's upper envelope of score lines in λ and the batched
 * envelopes streamed through a compute backend, cost models (tokens, USD,
 * user per-pair) with the scale that puts costs against λ, and exclusions.
 * The exact path over all λ is in lambda_path.c. */
#include "rtr/route.h"
#include "route/route_data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

/* ---------------------------------------------------------------- costs */

rtr_status rtr_cost_model_parse(rtr_cost_model *out, const char *s) {
    static const char *const names[] = {"tokens", "usd", "user"};
    for (int m = 0; m < 3; m++)
        if (!strcmp(s, names[m])) { *out = (rtr_cost_model)m; return RTR_OK; }
    return rtr_fail(RTR_ERR_INVALID, "cost model '%s': expected tokens, usd or user", s);
}

const char *rtr_cost_model_name(rtr_cost_model m) {
    return m == RTR_COST_USD ? "usd" : m == RTR_COST_USER ? "user" : "tokens";
}

rtr_status rtr_cost_usd(float *usd, const float *tokens_out, const float *tokens_in,
                        const rtr_catalog *cat, int64_t n) {
    int32_t k = cat->n_pairs;
    for (int32_t j = 0; j < k; j++) {
        const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
        if (isnan(m->price_out) || (tokens_in && isnan(m->price_in)))
            return rtr_fail(RTR_ERR_INVALID, "catalog: model '%s' has no %s price, needed for USD costs",
                            m->name, isnan(m->price_out) ? "price_out" : "price_in");
    }
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) {
            const rtr_catalog_entry *m = &cat->models[cat->pair_model[j]];
            double in = tokens_in ? tokens_in[i] * m->price_in : 0.0;
            usd[i * k + j] = (float)((in + tokens_out[i * k + j] * m->price_out) / 1e6);
        }
    return RTR_OK;
}

rtr_status rtr_cost_user_parse(double *cost, const char *json, const char *origin,
                               const rtr_catalog *cat) {
    const char *why;
    cJSON *root = rtr_json_parse(json, &why, NULL);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rtr_fail(RTR_ERR_FORMAT, "%s: expected a JSON object {\"model|strategy\": cost}%s", origin, why);
    }
    const char *nul = rtr_json_escaped_nul(json);
    if (nul) { /* cJSON ends the name there: "dem\u0000o|cot" read as "dem" */
        int l = 1;
        for (const char *q = json; q < nul; q++) l += *q == '\n';
        cJSON_Delete(root);
        return rtr_fail(RTR_ERR_FORMAT, "%s:%d: a string holds \\u0000 (NUL), which no pair name has", origin, l);
    }
    rtr_status st = RTR_OK;
    for (int32_t j = 0; j < cat->n_pairs; j++) cost[j] = NAN;
    for (const cJSON *it = root->child; it && st == RTR_OK; it = it->next) {
        const char *bar = strchr(it->string, '|');
        int32_t j = -1;
        if (bar) {
            char *model = rtr_strdup(it->string);
            if (!model) { st = RTR_ERR_NOMEM; break; }
            model[bar - it->string] = '\0';
            j = rtr_catalog_find_pair(cat, model, bar + 1);
            free(model);
        }
        if (j < 0)
            st = rtr_fail(RTR_ERR_INVALID, "%s: '%s' is not a pair of the catalog (model|strategy)", origin, it->string);
        else if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0)
            st = rtr_fail(RTR_ERR_INVALID, "%s: cost of '%s' must be a finite number >= 0", origin, it->string);
        else if (!isnan(cost[j])) /* two costs for one pair: neither may win silently */
            st = rtr_fail(RTR_ERR_INVALID, "%s: cost of '%s' given twice", origin, it->string);
        else
            cost[j] = it->valuedouble;
    }
    for (int32_t j = 0; j < cat->n_pairs && st == RTR_OK; j++)
        if (isnan(cost[j])) {
            char *name = rtr_catalog_pair_name(cat, j);
            st = rtr_fail(RTR_ERR_INVALID, "%s: no cost for pair '%s'", origin, name ? name : "?");
            free(name);
        }
    cJSON_Delete(root);
    return st;
}

rtr_status route_scale_init(route_scale_acc *a, int32_t k) {
    a->k = k;
    a->sum = rtr_calloc((size_t)k, sizeof *a->sum);
    a->cnt = rtr_calloc((size_t)k, sizeof *a->cnt);
    if (a->sum && a->cnt) return RTR_OK;
    route_scale_free(a);
    return RTR_ERR_NOMEM;
}

/* Each pair's sum runs over the rows in order, chunk after chunk: the same
 * additions as over the whole table at once. */
void route_scale_add(route_scale_acc *a, const float *c, int64_t n) {
    int32_t k = a->k;
    for (int32_t j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++)
            if (!isnan(c[i * k + j])) { a->sum[j] += c[i * k + j]; a->cnt[j]++; }
}

rtr_status route_scale_finish(route_scale_acc *a, double *scale) {
    double best = 0;
    bool any = false;
    int32_t inf = -1;
    for (int32_t j = 0; j < a->k; j++) {
        if (a->cnt[j]) { any = true; if (a->sum[j] / a->cnt[j] > best) best = a->sum[j] / a->cnt[j]; }
        if (inf < 0 && isinf(a->sum[j])) inf = j;
    }
    route_scale_free(a);
    /* an infinite scale made every finite cost 0: λ then traded nothing (route ran, exit 0) */
    if (inf >= 0)
        return rtr_fail(RTR_ERR_INVALID, "cost scale: pair %d (counting from 0, in the catalog's order) has an "
                        "infinite cost (past float's range: a price in the catalog too large?)", (int)inf);
    if (!any) return rtr_fail(RTR_ERR_INVALID, "cost scale: no finite predicted cost");
    if (!(best > 0)) return rtr_fail(RTR_ERR_INVALID, "cost scale: every pair's mean cost is 0, cost cannot be traded against accuracy");
    *scale = best;
    return RTR_OK;
}

void route_scale_free(route_scale_acc *a) {
    free(a->sum);
    free(a->cnt);
    a->sum = NULL;
    a->cnt = NULL;
}

rtr_status route_scale_costs(float *c, const float *cost, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) {
        c[i] = (float)(cost[i] / scale);
        if (isinf(c[i]) && isfinite(cost[i]))
            return rtr_fail(RTR_ERR_INVALID, "cost scale %g: a cost of %g divided by it is past float's range; give "
                            "a larger scale (--cost-scale; 0: automatic)", scale, cost[i]);
    }
    return RTR_OK;
}

rtr_status rtr_route_cost_scale(double *scale, const float *c, int64_t n, int32_t k) {
    route_scale_acc a;
    rtr_status st = route_scale_init(&a, k);
    if (st) return st;
    route_scale_add(&a, c, n);
    return route_scale_finish(&a, scale);
}

/* ----------------------------------------------------------- exclusions */

rtr_status rtr_route_parse_exclude(bool *excluded, const rtr_catalog *cat, const char *list) {
    char *copy = rtr_strdup(list);
    if (!copy) return RTR_ERR_NOMEM;
    rtr_status st = RTR_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && st == RTR_OK; item = strtok_r(NULL, ",", &save)) {
        char *bar = strchr(item, '|');
        bool found = false;
        if (bar) {
            *bar = '\0';
            int32_t j = rtr_catalog_find_pair(cat, item, bar + 1);
            *bar = '|';
            if (j >= 0) { excluded[j] = true; found = true; }
        } else {
            for (int32_t j = 0; j < cat->n_pairs; j++)
                if (!strcmp(cat->models[cat->pair_model[j]].name, item) ||
                    !strcmp(cat->strategies[cat->pair_strategy[j]].name, item)) { excluded[j] = true; found = true; }
        }
        if (!found) st = rtr_fail(RTR_ERR_INVALID, "--exclude: '%s' is neither a pair (model|strategy), a model nor a strategy of the catalog", item);
    }
    free(copy);
    return st;
}

void rtr_route_exclude(float *p, const float *tokens, int64_t n, int32_t k,
                       const bool *pair_excluded, double max_tokens) {
    bool cap = tokens && max_tokens > 0;
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++)
            if ((pair_excluded && pair_excluded[j]) || (cap && tokens[i * k + j] > max_tokens))
                p[i * k + j] = NAN;
}

/* ------------------------------------------------- envelopes on a backend */

/* Default chunk, in table entries (queries x pairs): large enough that a
 * launch and a copy cover their overheads and that the host's parallel
 * regions (two barriers per chunk) stay few, which matters on a loaded
 * machine; small enough that the buffers stay bounded (48 MB of pieces per
 * slot, plus 32 MB of p and c per slot on a device). */
#define ENVELOPE_CHUNK_ENTRIES (1 << 22)

/* The buffers of one envelope stream. Host memory (pinned on a device):
 * the pieces of a chunk (two chunks on a device, one being filled while the
 * host reads the other) and on a device the staging of p and c for two
 * chunks. Backend memory (device only): p and c of two chunks, one set of
 * pieces (ops and downloads run in order on the backend's stream). */
typedef struct {
    int32_t *pair[2], *m[2];
    double *start[2];
    float *hp[2], *hc[2];
    float *dp[2], *dc[2];
    int32_t *dpair, *dm;
    double *dstart;
} envelope_bufs;

static rtr_status envelope_bufs_alloc(rtr_backend *b, envelope_bufs *e, size_t rows, size_t k, bool host) {
    size_t nk = rows * k;
    rtr_status st = RTR_OK;
    for (int s = 0; s < (host ? 1 : 2) && !st; s++) {
        st = rtr_backend_host_alloc(b, (void **)&e->pair[s], nk * sizeof(int32_t));
        if (!st) st = rtr_backend_host_alloc(b, (void **)&e->start[s], nk * sizeof(double));
        if (!st) st = rtr_backend_host_alloc(b, (void **)&e->m[s], rows * sizeof(int32_t));
        if (host) continue;
        if (!st) st = rtr_backend_host_alloc(b, (void **)&e->hp[s], nk * sizeof(float));
        if (!st) st = rtr_backend_host_alloc(b, (void **)&e->hc[s], nk * sizeof(float));
        if (!st) st = rtr_backend_alloc(b, (void **)&e->dp[s], nk * sizeof(float));
        if (!st) st = rtr_backend_alloc(b, (void **)&e->dc[s], nk * sizeof(float));
    }
    if (!st && !host) st = rtr_backend_alloc(b, (void **)&e->dpair, nk * sizeof(int32_t));
    if (!st && !host) st = rtr_backend_alloc(b, (void **)&e->dstart, nk * sizeof(double));
    if (!st && !host) st = rtr_backend_alloc(b, (void **)&e->dm, rows * sizeof(int32_t));
    return st;
}

static void envelope_bufs_free(rtr_backend *b, envelope_bufs *e) {
    for (int s = 0; s < 2; s++) {
        rtr_backend_host_free(b, e->pair[s]);
        rtr_backend_host_free(b, e->start[s]);
        rtr_backend_host_free(b, e->m[s]);
        rtr_backend_host_free(b, e->hp[s]);
        rtr_backend_host_free(b, e->hc[s]);
        rtr_backend_free_mem(b, e->dp[s]);
        rtr_backend_free_mem(b, e->dc[s]);
    }
    rtr_backend_free_mem(b, e->dpair);
    rtr_backend_free_mem(b, e->dstart);
    rtr_backend_free_mem(b, e->dm);
}

/* One envelope stream: the table, its chunking, the backend and buffers. */
typedef struct {
    rtr_backend *b;
    bool host;
    const float *p, *c;
    int64_t n, rows;
    int32_t k;
    envelope_bufs e;
} envelope_stream;

/* The slot of chunk j: alternating on a device, always 0 on the host. */
static int slot_of(const envelope_stream *s, int64_t j) { return s->host ? 0 : (int)(j % 2); }

static int64_t chunk_rows_of(const envelope_stream *s, int64_t j) {
    int64_t q0 = j * s->rows;
    return s->n - q0 < s->rows ? s->n - q0 : s->rows;
}

/* Chunk j's p and c into slot j % 2 of the backend: through the pinned
 * staging, beside whatever the backend is computing. Nothing on the host. */
static rtr_status envelope_stage(envelope_stream *s, int64_t j) {
    if (s->host) return RTR_OK;
    int sl = slot_of(s, j);
    size_t at = (size_t)(j * s->rows) * (size_t)s->k, bytes = (size_t)chunk_rows_of(s, j) * (size_t)s->k * sizeof(float);
    memcpy(s->e.hp[sl], s->p + at, bytes);
    memcpy(s->e.hc[sl], s->c + at, bytes);
    rtr_status st = rtr_backend_upload_async(s->b, s->e.dp[sl], s->e.hp[sl], bytes);
    return st ? st : rtr_backend_upload_async(s->b, s->e.dc[sl], s->e.hc[sl], bytes);
}

/* Queue chunk j's envelopes and the download of its pieces into slot j % 2
 * (on the host: computed there and then, from the table itself). */
static rtr_status envelope_run(envelope_stream *s, int64_t j) {
    int sl = slot_of(s, j);
    int64_t rows = chunk_rows_of(s, j);
    size_t nk = (size_t)rows * (size_t)s->k;
    const rtr_backend_iface *f = s->b->iface;
    if (s->host) {
        size_t at = (size_t)(j * s->rows) * (size_t)s->k;
        return f->route_envelope(s->b->ctx, s->e.pair[sl], s->e.start[sl], s->e.m[sl], s->p + at, s->c + at, rows, s->k);
    }
    rtr_status st = f->route_envelope(s->b->ctx, s->e.dpair, s->e.dstart, s->e.dm, s->e.dp[sl], s->e.dc[sl], rows, s->k);
    if (!st) st = rtr_backend_download_async(s->b, s->e.pair[sl], s->e.dpair, nk * sizeof(int32_t));
    if (!st) st = rtr_backend_download_async(s->b, s->e.start[sl], s->e.dstart, nk * sizeof(double));
    if (!st) st = rtr_backend_download_async(s->b, s->e.m[sl], s->e.dm, (size_t)rows * sizeof(int32_t));
    return st;
}

rtr_status rtr_envelopes_on(rtr_backend *b, const float *p, const float *c, int64_t n, int32_t k,
                            int64_t chunk_rows, rtr_envelope_sink sink, void *ctx) {
    if (n <= 0 || k <= 0) return RTR_OK;
    static atomic_bool said; /* the CPU fallback is announced once per process */
    rtr_backend cpu;
    bool host = rtr_backend_is_host(b);
    if (!host && (k > RTR_ENVELOPE_KMAX || !rtr_backend_supports(b, RTR_OP_ROUTE_ENVELOPE))) {
        if (!atomic_exchange(&said, true))
            fprintf(stderr, "rtr: %s computes envelopes of at most %d pairs; the %d-pair envelopes run on the CPU\n",
                    b->device, RTR_ENVELOPE_KMAX, (int)k);
        rtr_backend_cpu_open(&cpu);
        b = &cpu;
        host = true;
    }
    int64_t rows = chunk_rows > 0 ? chunk_rows : ENVELOPE_CHUNK_ENTRIES / k;
    if (rows < 1) rows = 1;
    if (rows > n) rows = n;
    envelope_stream s = {.b = b, .host = host, .p = p, .c = c, .n = n, .rows = rows, .k = k};
    rtr_status st = envelope_bufs_alloc(b, &s.e, (size_t)rows, (size_t)k, host);
    /* Chunk i + 1 is staged while chunk i computes; the host takes chunk i's
     * pieces while chunk i + 1 computes. Only synchronize orders the two. */
    int64_t nc = (n + rows - 1) / rows;
    if (!st) st = envelope_stage(&s, 0);
    if (!st) st = envelope_run(&s, 0);
    for (int64_t i = 0; !st && i < nc; i++) {
        if (i + 1 < nc) st = envelope_stage(&s, i + 1);
        rtr_status sy = rtr_backend_synchronize(b);
        if (!st) st = sy;
        if (!st && i + 1 < nc && !host) st = envelope_run(&s, i + 1);
        int sl = slot_of(&s, i);
        if (!st) st = sink(ctx, i * rows, chunk_rows_of(&s, i), k, s.e.pair[sl], s.e.start[sl], s.e.m[sl]);
        /* the host has nothing to overlap: it computes the next chunk after
         * the sink, into the same slot */
        if (!st && i + 1 < nc && host) st = envelope_run(&s, i + 1);
    }
    if (st) rtr_backend_synchronize(b); /* nothing in flight may outlive the buffers */
    envelope_bufs_free(b, &s.e);
    if (b == &cpu) rtr_backend_free(&cpu);
    return st;
}

/* The pair of a query's envelope at λ (−1 when it has no piece). */
typedef struct {
    int32_t *choice;
    double lambda;
} choose_ctx;

static rtr_status choose_sink(void *ctx, int64_t q0, int64_t n, int32_t k, const int32_t *pair, const double *start,
                              const int32_t *m) {
    const choose_ctx *x = ctx;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const int32_t *pi = pair + i * k;
        const double *si = start + i * k;
        int32_t t = 0;
        while (t + 1 < m[i] && si[t + 1] < x->lambda) t++;
        x->choice[q0 + i] = m[i] ? pi[t] : -1;
    }
    return RTR_OK;
}

rtr_status rtr_envelope_choose_on(rtr_backend *b, int32_t *choice, const float *p, const float *c, double lambda,
                                  int64_t n, int32_t k, int64_t chunk_rows) {
    choose_ctx x = {choice, lambda};
    return rtr_envelopes_on(b, p, c, n, k, chunk_rows, choose_sink, &x);
}

rtr_status rtr_envelope_choose(int32_t *choice, const float *p, const float *c, double lambda,
                               int64_t n, int32_t k) {
    rtr_backend cpu;
    rtr_backend_cpu_open(&cpu);
    rtr_status st = rtr_envelope_choose_on(&cpu, choice, p, c, lambda, n, k, 0);
    rtr_backend_free(&cpu);
    return st;
}
