/* `rtr route CORPUS_DIR --lambda L | --budget B --out FILE.csv|.jsonl|.h5`:
 * the routing stage (rtr_route_corpus, src/route/route_corpus.c): one
 * decision per query from a routing table of `rtr score`, streamed. Online
 * (--model, --checkpoint) the queries are stdin lines routed in memory
 * (rtr_route_texts) as they arrive, the decisions JSON lines on stdout
 * (docs/CLI.md, "Online routing"). Decisions, paths and the online scores
 * are computed on a backend (--device). */
#include "cli/cli.h"
#include "rtr/stages.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Online input: one query per stdin line, the raw text or a JSON object
 * {"text": ..., "id": ...} (id defaults to the line number); blank lines
 * are skipped. Lines are read from the descriptor with poll(), not through
 * stdio, whose buffer would hide lines already read from poll: a micro-batch
 * takes the lines that have arrived and is answered while the writer waits. */
typedef struct {
    char *buf;
    size_t start, len, cap; /* unread bytes: buf[start, len) */
    bool eof;
    int64_t lineno;
} line_reader;

/* A line longer than this is refused (untrusted input: memory stays bounded). */
#define ONLINE_MAX_LINE ((size_t)16 << 20)

/* The next line of stdin into *line (NUL-terminated, in r's buffer, valid
 * until the next call), waiting at most wait_ms (< 0: as long as it takes).
 * *got is false when none arrived in time or at the end of input (r->eof);
 * a last line without a newline counts. */
static rtr_status next_line(line_reader *r, int wait_ms, char **line, size_t *len, bool *got) {
    double deadline = rtr_now() + wait_ms / 1000.0;
    *got = false;
    for (;;) {
        char *nl = r->len > r->start ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
        if (nl || (r->eof && r->len > r->start)) {
            size_t end = nl ? (size_t)(nl - r->buf) : r->len;
            *line = r->buf + r->start;
            *len = end - r->start;
            r->buf[end] = '\0'; /* over the newline, or the spare byte kept after len */
            r->start = nl ? end + 1 : end;
            r->lineno++;
            *got = true;
            return RTR_OK;
        }
        if (r->eof) return RTR_OK;
        if (r->len - r->start > ONLINE_MAX_LINE)
            return rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: line longer than %zu bytes", (long long)r->lineno + 1, ONLINE_MAX_LINE);
        if (wait_ms >= 0) {
            double left = deadline - rtr_now();
            struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
            int ready = left > 0 ? poll(&pf, 1, (int)ceil(left * 1000.0)) : poll(&pf, 1, 0);
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return rtr_fail(RTR_ERR_IO, "stdin: poll: %s", strerror(errno));
            if (ready == 0) return RTR_OK;
        }
        if (r->start) { /* keep the unread bytes at the front */
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        if (r->cap - r->len < 65536 + 1) {
            size_t cap = r->cap ? 2 * r->cap : 131072;
            char *b = realloc(r->buf, cap);
            if (!b) return rtr_fail(RTR_ERR_NOMEM, "stdin: out of memory");
            r->buf = b, r->cap = cap;
        }
        ssize_t got_bytes = read(STDIN_FILENO, r->buf + r->len, r->cap - r->len - 1);
        if (got_bytes < 0 && errno == EINTR) continue;
        if (got_bytes < 0) return rtr_fail(RTR_ERR_IO, "stdin: %s", strerror(errno));
        if (got_bytes == 0) r->eof = true;
        r->len += (size_t)got_bytes;
    }
}

/* The text and id of one line (*text NULL for a blank line). */
static rtr_status parse_line(char *line, size_t len, int64_t lineno, char **text, char **id) {
    *text = *id = NULL;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n')) line[--len] = '\0';
    if (!len) return RTR_OK;
    size_t bad;
    if (!rtr_utf8_valid(line, len, &bad))
        return rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: invalid UTF-8 at byte %zu", (long long)lineno, bad);
    if (memchr(line, '\0', len)) return rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: a NUL byte in the line", (long long)lineno);
    rtr_status st = RTR_OK;
    if (line[0] == '{') {
        /* a second object on the line was dropped silently */
        const char *why;
        cJSON *o = rtr_json_parse(line, &why, NULL);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(o, "text"), *ji = cJSON_GetObjectItemCaseSensitive(o, "id");
        const char *col = strncmp(why, " at line 1, ", 12) ? NULL : why + 12; /* one line: its column */
        if (!o && col) st = rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: not valid JSON at %s", (long long)lineno, col);
        else if (!o) st = rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: not valid JSON%s", (long long)lineno,
                                   strstr(why, "more text") ? ": more text after the JSON object (one per line)" : why);
        else if (!cJSON_IsString(jt)) st = rtr_fail(RTR_ERR_FORMAT, "stdin:%lld: a JSON line needs a string \"text\"", (long long)lineno);
        else {
            *text = rtr_strdup(jt->valuestring);
            *id = cJSON_IsString(ji) ? rtr_strdup(ji->valuestring) : cJSON_IsNumber(ji) ? rtr_sprintf("%.17g", ji->valuedouble) : NULL;
        }
        cJSON_Delete(o);
    } else {
        *text = rtr_strdup(line);
    }
    if (!st && *text && !*id) *id = rtr_sprintf("%lld", (long long)lineno);
    if (!st && (!*text || !*id)) st = RTR_ERR_NOMEM;
    if (st) { free(*text); free(*id); *text = *id = NULL; }
    return st;
}

/* One micro-batch of queries: texts, ids (owned) and their count. */
typedef struct {
    char **texts, **ids;
    int64_t n, room;
} query_batch;

static void batch_clear(query_batch *q) {
    for (int64_t i = 0; i < q->n; i++) free(q->texts[i]), free(q->ids[i]);
    q->n = 0;
}

static void batch_free(query_batch *q) {
    batch_clear(q);
    free(q->texts);
    free(q->ids);
}

/* Read up to max_n queries into q (cleared first): wait for the first as
 * long as it takes, then at most max_wait_ms for the rest (< 0: until the
 * end of input). Stops early at the end of input or at a bad line (whose
 * error is returned with the queries read before it kept in q). */
static rtr_status read_batch(line_reader *r, query_batch *q, int64_t max_n, long max_wait_ms) {
    batch_clear(q);
    double first = 0;
    rtr_status st = RTR_OK;
    while (!st && q->n < max_n) {
        int wait = -1;
        if (q->n && max_wait_ms >= 0) {
            double left = max_wait_ms - (rtr_now() - first) * 1000.0;
            wait = left > INT_MAX ? INT_MAX : left > 0 ? (int)left : 0;
        }
        char *line;
        size_t len;
        bool got;
        if ((st = next_line(r, wait, &line, &len, &got)) || !got) break;
        char *text, *id;
        if ((st = parse_line(line, len, r->lineno, &text, &id)) || !text) continue;
        if (q->n == q->room) {
            int64_t room = q->room ? 2 * q->room : 64;
            char **t = realloc(q->texts, (size_t)room * sizeof *t), **d = t ? realloc(q->ids, (size_t)room * sizeof *d) : NULL;
            if (t) q->texts = t;
            if (d) q->ids = d, q->room = room;
            if (!t || !d) { free(text), free(id); st = rtr_fail(RTR_ERR_NOMEM, "stdin: out of memory"); break; }
        }
        if (!q->n) first = rtr_now();
        q->texts[q->n] = text;
        q->ids[q->n++] = id;
    }
    return st;
}

/* Print (or --json) what was decided: λ, predicted and realised means, mix. */
static void report(const rtr_route_summary *s, const char *device, bool json) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n_queries", (double)s->n_queries);
        cJSON_AddNumberToObject(o, "lambda", s->lambda);
        cJSON_AddStringToObject(o, "chosen_by", s->chosen_by);
        cJSON_AddStringToObject(o, "device", device);
        cJSON_AddNumberToObject(o, "cost_scale", s->cost_scale);
        cJSON_AddStringToObject(o, "checkpoint_hash", s->checkpoint_hash);
        cJSON_AddNumberToObject(o, "pred_accuracy", s->pred_acc);
        cJSON_AddNumberToObject(o, "pred_mean_cost", s->pred_cost);
        if (!isnan(s->acc)) {
            cJSON_AddNumberToObject(o, "accuracy", s->acc);
            cJSON_AddNumberToObject(o, "mean_cost", s->cost);
            cJSON_AddNumberToObject(o, "n_missing", (double)s->n_missing);
        }
        cJSON *mix = cJSON_AddObjectToObject(o, "pairs");
        for (int32_t j = 0; j < s->k; j++) cJSON_AddNumberToObject(mix, s->pair_names[j], (double)s->count[j]);
        cli_print_json(o);
        return;
    }
    printf("routed %lld queries at lambda %.9g (%s; cost scale %.6g) on %s\n", (long long)s->n_queries, s->lambda,
           s->chosen_by, s->cost_scale, device);
    printf("predicted: accuracy %.4f, mean cost %.6g\n", s->pred_acc, s->pred_cost);
    if (!isnan(s->acc))
        printf("realised:  accuracy %.4f, mean cost %.6g (%lld missing outcomes)\n", s->acc, s->cost, (long long)s->n_missing);
    for (int32_t j = 0; j < s->k; j++)
        if (s->count[j])
            printf("  %-48s %10lld  %5.1f%%\n", s->pair_names[j], (long long)s->count[j],
                   100.0 * (double)s->count[j] / (double)s->n_queries);
}

/* Online output: one JSON line per query with the choice and every pair's predictions. */
static void print_online(const rtr_text_routes *r, char *const *ids) {
    const rtr_catalog *cat = &r->cat;
    for (int64_t i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        int32_t j = r->choice[i];
        cJSON_AddStringToObject(o, "id", ids[i]);
        cJSON_AddStringToObject(o, "model", cat->models[cat->pair_model[j]].name);
        cJSON_AddStringToObject(o, "strategy", cat->strategies[cat->pair_strategy[j]].name);
        cJSON_AddNumberToObject(o, "lambda", r->lambda);
        cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
        for (int32_t t = 0; t < r->k; t++) {
            size_t at = (size_t)i * (size_t)r->k + (size_t)t;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "model", cat->models[cat->pair_model[t]].name);
            cJSON_AddStringToObject(e, "strategy", cat->strategies[cat->pair_strategy[t]].name);
            rtr_json_add_number(e, "p_correct", r->p_correct[at]); /* null: excluded */
            cJSON_AddNumberToObject(e, "tokens", r->tokens[at]);
            cJSON_AddNumberToObject(e, "cost", r->cost[at]);
            cJSON_AddItemToArray(pairs, e);
        }
        cli_print_json(o);
    }
}

/* How online route takes stdin: micro-batches of at most batch queries,
 * gathered for at most max_wait_ms after the first arrives. */
typedef struct {
    long batch, max_wait_ms;
} online_pace;

/* `rtr route --model DIR --checkpoint CKPT`: stdin's queries routed in
 * memory. At --lambda onto stdout each micro-batch is answered and flushed
 * as soon as it is read, so a pipe gets its answers before it closes; a
 * budget (a constraint on the whole set) or a decisions file takes all of
 * stdin as one set. The cost scale is the checkpoint's, never the batch's
 * (rtr_route_texts), so a decision does not depend on the other lines. */
static rtr_status route_online(rtr_backend *be, const char *model_dir, const char *ckpt, const char *out,
                               const rtr_route_params *prm, online_pace pace, long max_len) {
    rtr_predictor pred = {0};
    rtr_encoder *enc = NULL;
    char hash[17] = "";
    bool stream = !out && isnan(prm->budget);
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.max_seq_length = max_len > 1 << 20 ? 1 << 20 : (int)max_len; /* the encoder refuses what exceeds the model */
    /* On the CPU `rtr encode`'s default (auto: bf16 where the CPU has bf16
     * GEMMs, whose rows do not depend on the batch), so a query routed
     * alone gets the bits of its row in a corpus encoded on this machine;
     * on a GPU fp32, as close as it gets to a corpus encoded anywhere. */
    ep.precision = rtr_backend_is_host(be) ? "auto" : "fp32";
    rtr_status st = rtr_predictor_load(&pred, ckpt);
    if (!st && !(prm->o.cost_scale > 0) && !pred.pair_mean_tokens) {
        if (stream)
            st = rtr_fail(RTR_ERR_INVALID, "%s records no cost scale (saved before checkpoints kept their pairs' "
                          "training mean tokens): pass --cost-scale S (rtr route or rtr sweep on the corpus print "
                          "theirs), or train it again", ckpt);
        else
            rtr_note("route: %s records no cost scale (saved before checkpoints kept their pairs' training mean "
                     "tokens): it is computed over the queries read", ckpt);
    }
    if (!st) st = rtr_encoder_load_on(be, &enc, model_dir, &ep);
    if (!st) rtr_predictor_hash_hex(&pred, hash);
    line_reader lr = {0};
    query_batch q = {0};
    int64_t routed = 0;
    while (!st) {
        rtr_status rs = read_batch(&lr, &q, stream ? pace.batch : INT64_MAX, stream ? pace.max_wait_ms : -1);
        if (rs && !stream) { /* one set: a bad line routes none of it (and writes no file) */
            st = rs;
            break;
        }
        if (q.n) {
            rtr_text_routes r = {0};
            if ((st = rtr_route_texts(be, &r, enc, &pred, (const char *const *)q.texts, q.n, prm)))
                rtr_fail_prefix(st, "%s: ", ckpt);
            if (!st && !routed)
                rtr_note("route: cost scale %.9g (%s)", r.cost_scale,
                         prm->o.cost_scale > 0 ? "--cost-scale" : pred.pair_mean_tokens ? "the checkpoint's" : "over the queries read");
            if (!st && out) st = rtr_text_routes_write(out, &r, (const char *const *)q.ids, rtr_cost_model_name(prm->o.cost_model), hash);
            if (!st && !out) {
                print_online(&r, q.ids);
                /* a full or closed stdout loses the decisions: an error, not a success */
                if (fflush(stdout) != 0 || ferror(stdout)) st = rtr_fail(RTR_ERR_IO, "stdout: write error");
            }
            routed += q.n;
            rtr_text_routes_free(&r);
        }
        if (!st) st = rs;
        if (!q.n || !stream) break; /* the end of input, or the one set */
    }
    if (!st && !routed) st = rtr_fail(RTR_ERR_INVALID, "stdin: no query to route");
    batch_free(&q);
    free(lr.buf);
    rtr_encoder_free(enc);
    rtr_predictor_free(&pred);
    return st;
}

int cmd_route(int argc, char **argv) {
    rtr_route_params rp = rtr_route_default_params();
    const char *mode = "mean", *out = NULL, *model = NULL, *ckpt = NULL;
    double lambda = NAN, budget = NAN; /* NaN: not given */
    const char *device = "auto";
    long threads = 0, max_len = 0;
    online_pace pace = {.batch = 1, .max_wait_ms = 5};
    cli_route cli = {.cost = "tokens"};
    const rtr_opt opts[] = {
        {"lambda", RTR_OPT_UNIT, &lambda, "trade-off in [0,1]: 1 = accuracy only, 0 = cost only"},
        {"budget", RTR_OPT_NONNEG, &budget, "instead of --lambda: the most accurate routing whose predicted cost fits"},
        {"budget-mode", RTR_OPT_STR, &mode, "mean (per query) or total (over the routed queries)"},
        {"out", RTR_OPT_STR, &out, "decisions file: .csv, .jsonl or .h5 (online: JSON lines on stdout when absent)"},
        {"model", RTR_OPT_STR, &model, "online: sentence-encoder folder; queries come from stdin"},
        {"checkpoint", RTR_OPT_STR, &ckpt, "online: predictor checkpoint from `rtr train`"},
        {"batch-size", RTR_OPT_COUNT, &pace.batch, "online: queries encoded together (1: each alone, its answer bit for bit independent of the other lines)"},
        {"max-length", RTR_OPT_INT, &max_len, "online: tokens per text incl. specials (0: the model's; as the corpus was encoded)"},
        {"max-wait-ms", RTR_OPT_INT, &pace.max_wait_ms, "online: after a query arrives, wait at most this long for more to fill --batch-size"},
        RTR_OPT_DEVICE(&device),
        CLI_OPT_THREADS(&threads),
        CLI_ROUTE_OPTS(cli),
        {0},
    };
    const rtr_cmd_spec spec = {"route", "CORPUS_DIR (--lambda L | --budget B) --out FILE.csv|.jsonl|.h5\n"
                                        "       rtr route --model MODEL_DIR --checkpoint CKPT (--lambda L | --budget B) < queries",
                               "Choose one (model, strategy) pair per query from a routing table of\n"
                               "`rtr score`: the highest lambda*p - (1-lambda)*cost, costs divided by the\n"
                               "cost scale (docs/ROUTING.md). With --budget, lambda is found on the exact path.\n"
                               "Online, each stdin line (a text, or {\"text\": ..., \"id\": ...}) is encoded,\n"
                               "scored and routed as it arrives: one JSON line per query with every pair's\n"
                               "predictions, flushed per micro-batch; the cost scale is the checkpoint's.\n"
                               "With --budget or --out all of stdin is read first and routed as one set.",
                               opts, 0, 1};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *dir = a.npos ? a.pos[0] : NULL;
    cli_set_threads(threads);
    bool online = model || ckpt;
    if (online == (dir != NULL) || (online && (!model || !ckpt))) {
        fprintf(stderr, "rtr route: give a CORPUS_DIR, or --model and --checkpoint (queries on stdin)\n");
        return 2;
    }
    static const char *const exts[] = {".csv", ".jsonl", ".h5", NULL};
    if (!online && !out) {
        fprintf(stderr, "rtr route: --out FILE.csv, FILE.jsonl or FILE.h5 is required\n");
        return 2;
    }
    if (out && (rc = rtr_args_check_ext(&spec, "out", out, exts))) return rc;
    if (isnan(lambda) == isnan(budget)) {
        fprintf(stderr, "rtr route: give exactly one of --lambda and --budget\n");
        return 2;
    }
    if (strcmp(mode, "total") && strcmp(mode, "mean")) {
        fprintf(stderr, "rtr route: --budget-mode '%s': expected mean or total\n", mode);
        return 2;
    }
    rp.lambda = isnan(lambda) ? 0 : lambda;
    rp.budget = budget;
    rp.budget_total = !strcmp(mode, "total");

    rtr_backend be = {0};
    rtr_route_summary s = {0};
    rtr_status st = cli_route_options(&cli, &rp.o);
    if (!st && !online) st = cli_split("route", dir, cli.split, NULL, &rp.o.split);
    if (!st) st = rtr_backend_init(&be, device);
    if (!st && online) st = route_online(&be, model, ckpt, out, &rp, pace, max_len);
    else if (!st) st = rtr_route_corpus(&be, out, &s, dir, &rp);
    if (st) {
        rtr_backend_free(&be);
        return cli_error("route");
    }
    if (!online) report(&s, be.device, a.json);
    rtr_route_summary_free(&s);
    rtr_backend_free(&be);
    return 0;
}
