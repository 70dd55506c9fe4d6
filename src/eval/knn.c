/* Exact and inverted-file nearest-neighbour search by cosine; see knn.h. */
#include "eval/knn.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define QUERY_BLOCK 256   /* query rows per GEMM block */
#define SEARCH_BLOCK 8192 /* IVF queries grouped per list at most (ivf_search) */
#define REF_BLOCK 16384   /* reference rows per exact-search GEMM (bounds the score block) */
#define KMEANS_ITERS 10
#define KMEANS_PER_LIST 64 /* training rows per list, at most KMEANS_MAX_TRAIN in all */
#define KMEANS_MAX_TRAIN 131072
#define CALIBRATION_ROWS 512
#define KNN_SIM_EPS 1e-5f /* cosines closer than this are a tie */

struct knn_index {
    int64_t n;
    int32_t d, lists, nprobe;
    float *vec;      /* the normalised rows, list by list when an IVF */
    int64_t *ids;    /* row number in ref of each row of vec (IVF) */
    int64_t *offset; /* [lists + 1]: list l is rows offset[l] .. offset[l+1] of vec */
    float *centre;   /* [lists x d], unit length */
    double recall;
};

knn_params knn_default_params(void) {
    return (knn_params){.exact_max = 50000, .lists = 0, .nprobe = 0, .k = 10, .target_recall = 0.97, .seed = 42};
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void normalise_rows(float *y, const float *x, int64_t n, int32_t d) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double ss = 0;
        for (int32_t t = 0; t < d; t++) ss += (double)xi[t] * xi[t];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int32_t t = 0; t < d; t++) y[i * d + t] = xi[t] * inv;
    }
}

/* Keep the nn best (s, id) of a row in bs/bi, sorted descending; *have
 * counts the filled entries. Ties keep the earlier id. */
static inline void topk_push(float *bs, int64_t *bi, int32_t *have, int32_t nn, float s, int64_t id) {
    if (*have == nn && !(s > bs[nn - 1])) return;
    int32_t pos = *have < nn ? (*have)++ : nn - 1;
    for (; pos > 0 && bs[pos - 1] < s; pos--) bs[pos] = bs[pos - 1], bi[pos] = bi[pos - 1];
    bs[pos] = s;
    bi[pos] = id;
}

/* Exact: the nn best of rows ref[0..n) for each normalised query (ids are
 * ref row numbers), blocked so the score block stays bounded. Parallel over
 * query blocks; each thread's GEMMs are serial. */
static rtr_status exact_search(const float *ref, int64_t n, int32_t d, const float *qn, int64_t n_q, int32_t nn,
                               int64_t *idx, float *sim) {
    int64_t rb = n < REF_BLOCK ? n : REF_BLOCK;
    int nt = omp_get_max_threads();
    float *scratch = rtr_malloc((size_t)nt * QUERY_BLOCK * (size_t)rb * sizeof *scratch);
    int32_t *have = rtr_malloc((size_t)n_q * sizeof *have);
    if (!scratch || !have) {
        free(scratch), free(have);
        return RTR_ERR_NOMEM;
    }
    memset(have, 0, (size_t)n_q * sizeof *have);
#pragma omp parallel for schedule(dynamic)
    for (int64_t b0 = 0; b0 < n_q; b0 += QUERY_BLOCK) {
        float *s = scratch + (size_t)omp_get_thread_num() * QUERY_BLOCK * (size_t)rb;
        int64_t nb = n_q - b0 < QUERY_BLOCK ? n_q - b0 : QUERY_BLOCK;
        for (int64_t r0 = 0; r0 < n; r0 += rb) {
            int64_t nr = n - r0 < rb ? n - r0 : rb;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nr, d, 1.0f, qn + b0 * d, d,
                        ref + r0 * d, d, 0.0f, s, (int)nr);
            for (int64_t r = 0; r < nb; r++)
                for (int64_t t = 0; t < nr; t++)
                    topk_push(sim + (b0 + r) * nn, idx + (b0 + r) * nn, &have[b0 + r], nn, s[r * nr + t], r0 + t);
        }
    }
    free(scratch), free(have);
    return RTR_OK;
}

/* The IVF's answer must not depend on what else is searched with a query:
 * a GEMM's rounding of a score depends on the query's row in the call
 * (OpenBLAS computes rows in tiles whose parts round differently), and the
 * rows a query shares a call with depend on its superblock, the thread
 * count and the other queries. So the GEMM scores g only preselect: a
 * query keeps its best KEEP(n) candidates by g, and the n chosen are
 * the best of those by a score computed the same way wherever the query
 * sits (dot_fixed: in double, in a fixed order; ties to the lower row
 * number). For unit vectors |g - dot| <= DOT_SLACK(d) (the fp32 dot's error
 * bound d·2^-24 over sum |a·b| <= 1, doubled for the norms' rounding), so
 * any row among the true n best has g >= g_n - 2·DOT_SLACK, g_n the n-th
 * best g: when the last candidate kept is above that, every row that could
 * be among the n best is a candidate; otherwise (near-ties all the way
 * down) the query's probed rows are all rescored. Cost, measured with
 * bench_knn (100,000 rows, 20,000 queries, d = 384, nprobe 2; 5 rounds
 * interleaved with the GEMM-ranked search, 2 threads, load 7-55): search
 * 1.11 s (1.03-1.44) against 0.81 s (0.68-1.04), the index build (5-7 s)
 * unchanged; with 2n + 8 candidates it was 1.16 s, and no query of that
 * run needed the full rescoring at n + 4. */
#define KEEP(n) ((n) + 8)
#define DOT_SLACK(d) ((float)(2.0 * ((d) + 2) * 0x1p-24))

static double dot_fixed(const float *a, const float *b, int32_t d) {
    /* eight lanes, each summed in index order and then added in lane
     * order: a fixed order the compiler may vectorise */
    double lane[8] = {0};
    int32_t t = 0;
    for (; t + 8 <= d; t += 8)
        for (int j = 0; j < 8; j++) lane[j] += (double)a[t + j] * b[t + j];
    for (; t < d; t++) lane[t % 8] += (double)a[t] * b[t];
    double s = 0;
    for (int j = 0; j < 8; j++) s += lane[j];
    return s;
}

/* Whether g-candidates g[0..have) (best first, at most cap kept) certainly
 * hold the n best by the fixed score: all were kept, or the last kept is
 * below the n-th by more than twice the slack. */
static bool candidates_cover(const float *g, int32_t have, int32_t cap, int32_t n, int32_t d) {
    return have < cap || n >= have || g[have - 1] < g[n - 1] - 2 * DOT_SLACK(d);
}

/* Keep the n best (s, row) of a query in top[0..*have), sorted by s
 * descending, ties to the lower row, whatever order they come in. */
typedef struct {
    double s;
    int64_t row; /* ref row (or list) number: the tie order */
} scored;
static void push_fixed(scored *top, int32_t *have, int32_t n, double s, int64_t row) {
    if (*have == n && !(s > top[n - 1].s || (s == top[n - 1].s && row < top[n - 1].row))) return;
    int32_t pos = *have < n ? (*have)++ : n - 1;
    for (; pos > 0 && (top[pos - 1].s < s || (top[pos - 1].s == s && top[pos - 1].row > row)); pos--)
        top[pos] = top[pos - 1];
    top[pos] = (scored){s, row};
}

/* The nprobe lists a query searches (into out, in any order): the best by
 * fixed score among its best centres by the GEMM's score, or among all
 * centres when near-ties reach past those. bs, bi: KEEP(nprobe) entries;
 * top: nprobe. */
static void best_lists(const float *score, const float *q, const float *centre, int32_t lists, int32_t d,
                       int32_t nprobe, int32_t *out, float *bs, int64_t *bi, scored *top) {
    int32_t cap = KEEP(nprobe) < lists ? KEEP(nprobe) : lists, have = 0, kept = 0;
    for (int32_t l = 0; l < lists; l++) topk_push(bs, bi, &have, cap, score[l], l);
    bool cover = candidates_cover(bs, have, cap, nprobe, d);
    for (int32_t j = 0; j < (cover ? have : lists); j++) {
        int64_t l = cover ? bi[j] : j;
        push_fixed(top, &kept, nprobe, dot_fixed(q, centre + (size_t)l * d, d), l);
    }
    for (int32_t j = 0; j < kept; j++) out[j] = (int32_t)top[j].row;
}

/* IVF: per superblock of queries, the probed lists (centre scores a block
 * of QUERY_BLOCK at a time), then one GEMM per probed list against the
 * superblock's queries that probe it, QUERY_BLOCK at a time. The superblock
 * is what makes a list's rows read once for several queries: with 256
 * queries, 2,000 lists and 2 probes most lists had one query each, and the
 * search streamed ~1.5 MB of list rows per query (1M rows, d = 384). */
static rtr_status ivf_search(const knn_index *ix, int32_t nprobe, const float *qn, int64_t n_q, int32_t nn,
                             int64_t *idx, float *sim) {
    int32_t d = ix->d, L = ix->lists;
    int64_t longest = 0;
    for (int32_t l = 0; l < L; l++)
        if (ix->offset[l + 1] - ix->offset[l] > longest) longest = ix->offset[l + 1] - ix->offset[l];
    /* a few superblocks per thread, so dynamic scheduling still balances */
    int64_t sb = n_q / (4 * (int64_t)omp_get_max_threads()) / QUERY_BLOCK * QUERY_BLOCK;
    sb = sb < QUERY_BLOCK ? QUERY_BLOCK : sb > SEARCH_BLOCK ? SEARCH_BLOCK : sb;
    int failed = 0;
    int32_t cap = KEEP(nn); /* GEMM candidates per query (dot_fixed's comment) */
#pragma omp parallel reduction(| : failed)
    {
        float *cs = malloc((size_t)QUERY_BLOCK * L * sizeof *cs);
        int32_t *probe = malloc((size_t)sb * nprobe * sizeof *probe);
        int32_t *count = malloc((size_t)(L + 1) * sizeof *count), *who = malloc((size_t)sb * nprobe * sizeof *who);
        int32_t *have = malloc((size_t)sb * sizeof *have);
        float *qs = malloc((size_t)QUERY_BLOCK * d * sizeof *qs);
        float *s = malloc((size_t)QUERY_BLOCK * (longest ? longest : 1) * sizeof *s);
        float *gs = malloc((size_t)sb * cap * sizeof *gs), *ps = malloc((size_t)KEEP(nprobe) * sizeof *ps);
        int64_t *gp = malloc((size_t)sb * cap * sizeof *gp), *pi = malloc((size_t)KEEP(nprobe) * sizeof *pi);
        scored *top = malloc((size_t)(nn > nprobe ? nn : nprobe) * sizeof *top);
        if (!cs || !probe || !count || !who || !have || !qs || !s || !gs || !ps || !gp || !pi || !top) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t b0 = 0; b0 < n_q; b0 += sb) {
            if (failed) continue;
            int nb = (int)(n_q - b0 < sb ? n_q - b0 : sb);
            for (int c0 = 0; c0 < nb; c0 += QUERY_BLOCK) {
                int nc = nb - c0 < QUERY_BLOCK ? nb - c0 : QUERY_BLOCK;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nc, L, d, 1.0f, qn + (b0 + c0) * d, d,
                            ix->centre, d, 0.0f, cs, L);
                for (int r = 0; r < nc; r++)
                    best_lists(cs + (size_t)r * L, qn + (b0 + c0 + r) * d, ix->centre, L, d, nprobe,
                               probe + (size_t)(c0 + r) * nprobe, ps, pi, top);
            }
            /* invert: for each list, the superblock's queries that probe it (counting sort) */
            memset(count, 0, (size_t)(L + 1) * sizeof *count);
            for (size_t j = 0; j < (size_t)nb * nprobe; j++) count[probe[j] + 1]++;
            for (int32_t l = 0; l < L; l++) count[l + 1] += count[l];
            for (int r = 0; r < nb; r++)
                for (int j = 0; j < nprobe; j++) who[count[probe[(size_t)r * nprobe + j]]++] = r;
            for (int32_t l = L; l > 0; l--) count[l] = count[l - 1]; /* back to starts */
            count[0] = 0;
            memset(have, 0, (size_t)nb * sizeof *have);
            for (int32_t l = 0; l < L; l++) {
                int64_t o = ix->offset[l], len = ix->offset[l + 1] - o;
                if (!len) continue;
                for (int j0 = count[l]; j0 < count[l + 1]; j0 += QUERY_BLOCK) {
                    int m = count[l + 1] - j0 < QUERY_BLOCK ? count[l + 1] - j0 : QUERY_BLOCK;
                    for (int j = 0; j < m; j++)
                        memcpy(qs + (size_t)j * d, qn + (b0 + who[j0 + j]) * d, (size_t)d * sizeof *qs);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, (int)len, d, 1.0f, qs, d,
                                ix->vec + o * d, d, 0.0f, s, (int)len);
                    for (int j = 0; j < m; j++) {
                        int r = who[j0 + j];
                        for (int64_t t = 0; t < len; t++)
                            topk_push(gs + (size_t)r * cap, gp + (size_t)r * cap, &have[r], cap, s[(size_t)j * len + t],
                                      o + t);
                    }
                }
            }
            /* the nn best by fixed score, of the candidates or of every probed row */
            for (int r = 0; r < nb; r++) {
                const float *q = qn + (b0 + r) * d;
                int32_t kept = 0;
                if (candidates_cover(gs + (size_t)r * cap, have[r], cap, nn, d)) {
                    for (int32_t j = 0; j < have[r]; j++) {
                        int64_t at = gp[(size_t)r * cap + j];
                        push_fixed(top, &kept, nn, dot_fixed(q, ix->vec + at * d, d), ix->ids[at]);
                    }
                } else {
                    for (int j = 0; j < nprobe; j++) {
                        int32_t l = probe[(size_t)r * nprobe + j];
                        for (int64_t at = ix->offset[l]; at < ix->offset[l + 1]; at++)
                            push_fixed(top, &kept, nn, dot_fixed(q, ix->vec + at * d, d), ix->ids[at]);
                    }
                }
                /* fewer than nn rows in the probed lists: pad, never leave garbage */
                for (int32_t j = 0; j < nn; j++) {
                    idx[(b0 + r) * nn + j] = j < kept ? top[j].row : -1;
                    sim[(b0 + r) * nn + j] = j < kept ? (float)top[j].s : -INFINITY;
                }
            }
        }
        free(cs), free(probe), free(count), free(who), free(have), free(qs), free(s);
        free(gs), free(ps), free(gp), free(pi), free(top);
    }
    return failed ? RTR_ERR_NOMEM : RTR_OK;
}

/* Spherical k-means on a seeded sample, then every row into its list. */
static rtr_status build_lists(knn_index *ix, const float *xn, uint64_t seed) {
    int64_t n = ix->n;
    int32_t d = ix->d, L = ix->lists;
    int64_t m = (int64_t)L * KMEANS_PER_LIST;
    if (m > KMEANS_MAX_TRAIN) m = KMEANS_MAX_TRAIN;
    if (m > n) m = n;
    int64_t *perm = rtr_malloc((size_t)n * sizeof *perm);
    float *train = rtr_malloc((size_t)m * d * sizeof *train), *sum = rtr_malloc((size_t)L * d * sizeof *sum);
    int32_t *assign = rtr_malloc((size_t)n * sizeof *assign);
    int64_t *cnt = rtr_malloc((size_t)L * sizeof *cnt);
    ix->centre = rtr_malloc((size_t)L * d * sizeof *ix->centre);
    ix->vec = rtr_malloc((size_t)n * d * sizeof *ix->vec);
    ix->ids = rtr_malloc((size_t)n * sizeof *ix->ids);
    ix->offset = rtr_malloc((size_t)(L + 1) * sizeof *ix->offset);
    rtr_status st = perm && train && sum && assign && cnt && ix->centre && ix->vec && ix->ids && ix->offset
                        ? RTR_OK
                        : RTR_ERR_NOMEM;
    float *cs = st ? NULL : rtr_malloc((size_t)QUERY_BLOCK * L * sizeof *cs * omp_get_max_threads());
    if (!st && !cs) st = RTR_ERR_NOMEM;
    if (!st) {
        uint64_t r = seed * 0x9e3779b97f4a7c15ULL + 1;
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = 0; i < m; i++) { /* partial Fisher-Yates: the first m are the sample */
            int64_t j = i + (int64_t)(rng_next(&r) % (uint64_t)(n - i)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        for (int64_t i = 0; i < m; i++) memcpy(train + i * d, xn + perm[i] * d, (size_t)d * sizeof *train);
        memcpy(ix->centre, train, (size_t)L * d * sizeof *train); /* L <= m distinct sample rows */
        for (int it = 0; it <= KMEANS_ITERS; it++) {
            /* the last pass assigns every row, not only the sample */
            const float *x = it < KMEANS_ITERS ? train : xn;
            int64_t rows = it < KMEANS_ITERS ? m : n;
#pragma omp parallel for schedule(dynamic)
            for (int64_t b0 = 0; b0 < rows; b0 += QUERY_BLOCK) {
                float *c = cs + (size_t)omp_get_thread_num() * QUERY_BLOCK * L;
                int nb = (int)(rows - b0 < QUERY_BLOCK ? rows - b0 : QUERY_BLOCK);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, L, d, 1.0f, x + b0 * d, d, ix->centre, d,
                            0.0f, c, L);
                for (int i = 0; i < nb; i++) {
                    int32_t best = 0;
                    for (int32_t l = 1; l < L; l++)
                        if (c[(size_t)i * L + l] > c[(size_t)i * L + best]) best = l;
                    assign[b0 + i] = best;
                }
            }
            if (it == KMEANS_ITERS) break;
            memset(sum, 0, (size_t)L * d * sizeof *sum);
            memset(cnt, 0, (size_t)L * sizeof *cnt);
            for (int64_t i = 0; i < m; i++) {
                cnt[assign[i]]++;
                for (int32_t t = 0; t < d; t++) sum[(size_t)assign[i] * d + t] += train[i * d + t];
            }
            /* an empty list takes a random sample row as its centre; then all
             * centres normalised in one parallel pass (one pass per list paid a
             * parallel region each: 2,000 per iteration at 1M rows, most of
             * the build's time on a loaded machine) */
            for (int32_t l = 0; l < L; l++)
                if (!cnt[l])
                    memcpy(sum + (size_t)l * d, train + (int64_t)(rng_next(&r) % (uint64_t)m) * d,
                           (size_t)d * sizeof *sum);
            normalise_rows(ix->centre, sum, L, d);
        }
        /* counting sort of the rows by list */
        memset(ix->offset, 0, (size_t)(L + 1) * sizeof *ix->offset);
        for (int64_t i = 0; i < n; i++) ix->offset[assign[i] + 1]++;
        for (int32_t l = 0; l < L; l++) ix->offset[l + 1] += ix->offset[l];
        memcpy(cnt, ix->offset, (size_t)L * sizeof *cnt);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = cnt[assign[i]]++;
            ix->ids[at] = i;
            memcpy(ix->vec + at * d, xn + i * d, (size_t)d * sizeof *ix->vec);
        }
    }
    free(perm), free(train), free(sum), free(assign), free(cnt), free(cs);
    return st;
}

/* Recall@k of the IVF at `nprobe` on a sample of reference rows, each
 * searched for k + 1 and itself dropped; a result counts when it is at
 * least as similar as the exact k-th, to float rounding (ties are equally
 * good answers, and the two searches' GEMMs round differently). nprobe is
 * doubled until the recall reaches target (0: measure nprobe0 only). */
static rtr_status calibrate(knn_index *ix, const float *xn, int32_t k, double target, int32_t nprobe0, uint64_t seed) {
    int64_t n = ix->n, s = n < CALIBRATION_ROWS ? n : CALIBRATION_ROWS;
    int32_t d = ix->d, kk = k + 1 < n ? k + 1 : (int32_t)n;
    float *q = rtr_malloc((size_t)s * d * sizeof *q), *es = rtr_malloc((size_t)s * kk * sizeof *es);
    float *as = rtr_malloc((size_t)s * kk * sizeof *as);
    int64_t *ei = rtr_malloc((size_t)s * kk * sizeof *ei), *ai = rtr_malloc((size_t)s * kk * sizeof *ai),
            *row = rtr_malloc((size_t)s * sizeof *row);
    rtr_status st = q && es && as && ei && ai && row ? RTR_OK : RTR_ERR_NOMEM;
    uint64_t r = seed ^ 0x5851f42d4c957f2dULL;
    for (int64_t i = 0; !st && i < s; i++) {
        row[i] = (int64_t)(rng_next(&r) % (uint64_t)n);
        memcpy(q + i * d, xn + row[i] * d, (size_t)d * sizeof *q);
    }
    if (!st) st = exact_search(xn, n, d, q, s, kk, ei, es);
    int32_t nprobe = nprobe0;
    while (!st) {
        st = ivf_search(ix, nprobe, q, s, kk, ai, as);
        if (st) break;
        double hits = 0, want = 0;
        for (int64_t i = 0; i < s; i++) {
            /* the exact k-th similarity, itself excluded */
            float kth = -INFINITY;
            int32_t seen = 0;
            for (int32_t j = 0; j < kk && seen < k; j++)
                if (ei[i * kk + j] != row[i]) kth = es[i * kk + j], seen++;
            int32_t got = 0;
            for (int32_t j = 0; j < kk && got < seen; j++)
                if (ai[i * kk + j] != row[i] && ai[i * kk + j] >= 0 && as[i * kk + j] >= kth - KNN_SIM_EPS) got++;
            hits += got, want += seen;
        }
        ix->recall = want ? hits / want : 1.0;
        ix->nprobe = nprobe;
        if (ix->recall >= target || nprobe >= ix->lists) break;
        nprobe = 2 * nprobe < ix->lists ? 2 * nprobe : ix->lists;
    }
    free(q), free(es), free(as), free(ei), free(ai), free(row);
    return st;
}

rtr_status knn_index_build(knn_index **out, const float *ref, int64_t n, int32_t d, const knn_params *params) {
    *out = NULL;
    knn_params p = params ? *params : knn_default_params();
    if (n < 1 || d < 1) return rtr_fail(RTR_ERR_INVALID, "kNN index: %lld rows of %d values", (long long)n, (int)d);
    knn_index *ix = rtr_calloc(1, sizeof *ix);
    float *xn = rtr_malloc((size_t)n * d * sizeof *xn);
    if (!ix || !xn) {
        free(ix), free(xn);
        return RTR_ERR_NOMEM;
    }
    ix->n = n, ix->d = d, ix->recall = 1.0;
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1); /* parallel over query blocks instead */
    normalise_rows(xn, ref, n, d);
    rtr_status st = RTR_OK;
    if (n <= p.exact_max) {
        ix->vec = xn; /* exact: rows in their own order */
        xn = NULL;
    } else {
        int32_t L = p.lists > 0 ? p.lists : (int32_t)(2 * sqrt((double)n));
        ix->lists = L < 1 ? 1 : L > n ? (int32_t)n : L;
        st = build_lists(ix, xn, p.seed);
        int32_t k = p.k > 0 ? p.k : 10;
        if (!st && p.nprobe > 0) {
            ix->nprobe = p.nprobe < ix->lists ? p.nprobe : ix->lists;
            st = calibrate(ix, xn, k, 0.0, ix->nprobe, p.seed);
        } else if (!st) {
            st = calibrate(ix, xn, k, p.target_recall, 1, p.seed);
        }
    }
    openblas_set_num_threads(blas);
    free(xn);
    if (st) {
        knn_index_free(ix);
        return st;
    }
    *out = ix;
    return RTR_OK;
}

void knn_index_free(knn_index *ix) {
    if (!ix) return;
    free(ix->vec), free(ix->ids), free(ix->offset), free(ix->centre);
    free(ix);
}

rtr_status knn_index_search(const knn_index *ix, int64_t *idx, float *sim, const float *q, int64_t n_q, int32_t nn) {
    if (nn <= 0 || nn > ix->n)
        return rtr_fail(RTR_ERR_INVALID, "kNN: k = %d neighbours but %lld reference rows", (int)nn, (long long)ix->n);
    float *qn = rtr_malloc((size_t)(n_q ? n_q : 1) * ix->d * sizeof *qn);
    if (!qn) return RTR_ERR_NOMEM;
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    normalise_rows(qn, q, n_q, ix->d);
    rtr_status st = ix->lists ? ivf_search(ix, ix->nprobe, qn, n_q, nn, idx, sim)
                              : exact_search(ix->vec, ix->n, ix->d, qn, n_q, nn, idx, sim);
    openblas_set_num_threads(blas);
    free(qn);
    return st;
}

int knn_index_is_exact(const knn_index *ix) { return ix->lists == 0; }
int32_t knn_index_lists(const knn_index *ix) { return ix->lists; }
int32_t knn_index_nprobe(const knn_index *ix) { return ix->nprobe; }
double knn_index_recall(const knn_index *ix) { return ix->recall; }
