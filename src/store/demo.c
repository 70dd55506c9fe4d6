/* The embedded demo corpus: arithmetic word problems whose text carries the
 * signals of difficulty (number of steps, size of the numbers, distracting
 * sentences), and outcomes drawn from a stated latent model over four model
 * sizes and four reasoning strategies. docs/DEMO.md states the model; a
 * router can only beat the best single pair by reading the text.
 *
 *   logit p(correct | q, m, s) = theta_m + beta_s
 *                                - (a_s * steps + b_s * (digits - 1) + c_s * distractors) + eps_q
 *   eps_q ~ N(0, 0.5^2), shared by all pairs of a query (hidden hardness)
 *   self-consistency: majority of 5 independent chain-of-thought samples
 *   tokens = round(mean_{m,s}(steps) * LogNormal(0, 0.25)); cost from prices. */
#include "rtr/demo.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name, *description;
    double theta, verbosity, price_in, price_out;
} demo_model;

typedef struct {
    const char *name, *description;
    double beta, a_steps, b_digits, c_distract;
    double tok_base, tok_per_step, prompt_tokens;
    int samples; /* > 1: majority vote over this many chain-of-thought samples */
} demo_strategy;

static const demo_model MODELS[] = {
    {"demo-1b", "Demo model: a 1-billion-parameter open instruction-tuned transformer; fast and cheap, weak at multi-step arithmetic.", 1.0, 0.8, 0.02, 0.05},
    {"demo-8b", "Demo model: an 8-billion-parameter open instruction-tuned transformer; a capable small model.", 2.2, 0.9, 0.10, 0.20},
    {"demo-70b", "Demo model: a 70-billion-parameter open instruction-tuned transformer; strong general reasoning.", 3.4, 1.0, 0.60, 0.90},
    {"demo-400b", "Demo model: a 400-billion-parameter frontier transformer; the most accurate and the most expensive.", 4.4, 1.2, 1.50, 3.00},
};

static const demo_strategy STRATEGIES[] = {
    {"direct", "Direct answer: the prompt asks for the final answer only, with no intermediate reasoning.",
     0.5, 0.90, 0.60, 0.50, 6, 1, 20, 1},
    {"cot", "Chain-of-thought: the prompt asks the model to reason step by step in words before giving the answer.",
     0.8, 0.45, 0.50, 0.30, 40, 35, 250, 1},
    {"pot", "Program-of-thought: the prompt asks the model to write a Python program whose output is the answer; exact with large numbers.",
     0.4, 0.35, 0.05, 0.45, 60, 18, 300, 1},
    {"sc", "Self-consistency: five chain-of-thought samples and a majority vote over their answers; five times the tokens.",
     0.8, 0.45, 0.50, 0.30, 40, 35, 250, 5},
};

#define N_MODELS (int)(sizeof MODELS / sizeof *MODELS)
#define N_STRATEGIES (int)(sizeof STRATEGIES / sizeof *STRATEGIES)

/* splitmix64: small, seedable, identical on every platform. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }
static int rng_int(uint64_t *s, int lo, int hi) { return lo + (int)(rng_uniform(s) * (hi - lo + 1)); }
static double rng_normal(uint64_t *s) {
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static const char *NAMES[] = {"Maya", "Omar", "Lena", "Tariq", "Sofia", "Kenji", "Amara", "Lucas", "Priya", "Jonas"};
static const char *ITEMS[] = {"apples", "stamps", "marbles", "books", "coins", "stickers", "pencils", "shells"};
static const char *OTHER[] = {"cousin", "neighbour", "teacher", "friend", "brother", "sister"};

/* A number with exactly `digits` digits. */
static long rand_number(uint64_t *s, int digits) {
    long lo = 1;
    for (int i = 1; i < digits; i++) lo *= 10;
    return lo + (long)(rng_uniform(s) * (double)(9 * lo));
}

/* Compose the word problem; the running total is kept positive so every
 * problem has a whole-number answer. */
static void make_text(rtr_buf *b, uint64_t *s, int dataset, int steps, int digits, int distractors) {
    const char *who = NAMES[rng_int(s, 0, 9)];
    const char *item = ITEMS[rng_int(s, 0, 7)];
    long total = rand_number(s, digits);
    b->len = 0;
    if (dataset == 0) rtr_buf_printf(b, "%s has %ld %s.", who, total, item);
    else rtr_buf_printf(b, "A train leaves the station carrying %ld passengers.", total);
    int placed = 0;
    for (int i = 0; i < steps; i++) {
        long x = rand_number(s, digits);
        int op = rng_int(s, 0, 3);
        if (op == 1 && x >= total) op = 0;
        if (op == 2 && total > 100000000L) op = 1;
        if (op == 2 && x > 9) x = x % 9 + 2;
        if (op == 3 && (total < 4 || total % 2)) op = 0;
        if (dataset == 0) {
            switch (op) {
            case 0: rtr_buf_printf(b, " Then %s buys %ld more %s.", who, x, item); total += x; break;
            case 1: rtr_buf_printf(b, " After that %s gives %ld %s to a %s.", who, x, item, OTHER[rng_int(s, 0, 5)]); total -= x; break;
            case 2: rtr_buf_printf(b, " Later the number of %s is multiplied by %ld.", item, x); total *= x; break;
            default: rtr_buf_printf(b, " Then %s shares half of the %s with a %s.", who, item, OTHER[rng_int(s, 0, 5)]); total /= 2; break;
            }
        } else {
            switch (op) {
            case 0: rtr_buf_printf(b, " At the next stop %ld passengers get on.", x); total += x; break;
            case 1: rtr_buf_printf(b, " At the next stop %ld passengers get off.", x); total -= x; break;
            case 2: rtr_buf_printf(b, " A festival makes the number of passengers %ld times larger.", x); total *= x; break;
            default: rtr_buf_printf(b, " Half of the passengers change to another train."); total /= 2; break;
            }
        }
        if (placed < distractors && rng_uniform(s) < 0.5) {
            rtr_buf_printf(b, " Meanwhile a %s owns %ld unrelated %s.", OTHER[rng_int(s, 0, 5)], rand_number(s, digits),
                      ITEMS[rng_int(s, 0, 7)]);
            placed++;
        }
    }
    for (; placed < distractors; placed++)
        rtr_buf_printf(b, " It is %d degrees outside and %ld birds sit on a wire.", rng_int(s, 5, 35), rand_number(s, digits));
    if (dataset == 0) rtr_buf_printf(b, " How many %s does %s have now?", item, who);
    else rtr_buf_printf(b, " How many passengers are on the train now?");
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Probability that the majority of n independent samples is right. */
static double majority_prob(double p, int n) {
    double total = 0;
    for (int k = n / 2 + 1; k <= n; k++) {
        double c = 1;
        for (int j = 0; j < k; j++) c = c * (n - j) / (j + 1);
        total += c * pow(p, k) * pow(1 - p, n - k);
    }
    return total;
}

static rtr_status write_catalog(const char *path) {
    rtr_buf b = {0};
    rtr_buf_printf(&b, "{\n  \"models\": [\n");
    for (int m = 0; m < N_MODELS; m++)
        rtr_buf_printf(&b, "    {\"name\": \"%s\", \"description\": \"%s\", \"price_in\": %g, \"price_out\": %g}%s\n",
                  MODELS[m].name, MODELS[m].description, MODELS[m].price_in, MODELS[m].price_out,
                  m + 1 < N_MODELS ? "," : "");
    rtr_buf_printf(&b, "  ],\n  \"strategies\": [\n");
    for (int s = 0; s < N_STRATEGIES; s++)
        rtr_buf_printf(&b, "    {\"name\": \"%s\", \"description\": \"%s\"}%s\n", STRATEGIES[s].name,
                  STRATEGIES[s].description, s + 1 < N_STRATEGIES ? "," : "");
    rtr_buf_printf(&b, "  ]\n}\n");
    rtr_status st = b.failed ? RTR_ERR_NOMEM : rtr_write_file_atomic(path, b.buf, b.len);
    rtr_buf_free(&b);
    return st;
}

rtr_status rtr_demo_generate(const char *catalog_path, const char *outcomes_path, int64_t n_queries, uint64_t seed,
                             double test_fraction) {
    if (n_queries < 1) return rtr_fail(RTR_ERR_INVALID, "demo: need at least one query");
    if (!(test_fraction >= 0 && test_fraction < 1)) return rtr_fail(RTR_ERR_INVALID, "demo: test fraction must be in [0,1)");
    rtr_status st = write_catalog(catalog_path);
    if (st) return st;
    char *tmp = rtr_tmp_path(outcomes_path);
    FILE *f = tmp ? fopen(tmp, "wb") : NULL;
    if (!f) {
        st = tmp ? rtr_fail(RTR_ERR_IO, "%s: cannot create", tmp) : RTR_ERR_NOMEM;
        free(tmp);
        return st;
    }
    uint64_t rng = seed;
    rtr_buf text = {0}, line = {0};
    for (int64_t q = 0; q < n_queries; q++) {
        int dataset = rng_int(&rng, 0, 1);
        int steps = rng_int(&rng, 1, 8), digits = rng_int(&rng, 1, 4), distractors = rng_int(&rng, 0, 2);
        make_text(&text, &rng, dataset, steps, digits, distractors);
        double eps = 0.5 * rng_normal(&rng);
        const char *split = rng_uniform(&rng) < test_fraction ? "test" : "train";
        double in_tokens = (double)text.len / 4.0;
        line.len = 0;
        rtr_buf_printf(&line, "{\"id\":\"demo-%07lld\",\"text\":\"%s\",\"dataset\":\"%s\",\"split\":\"%s\",\"outcomes\":[",
                  (long long)q, text.buf, dataset == 0 ? "shopping" : "train-ride", split);
        for (int m = 0; m < N_MODELS; m++)
            for (int s = 0; s < N_STRATEGIES; s++) {
                const demo_model *M = &MODELS[m];
                const demo_strategy *S = &STRATEGIES[s];
                double p = sigmoid(M->theta + S->beta - (S->a_steps * steps + S->b_digits * (digits - 1) +
                                                         S->c_distract * distractors) + eps);
                if (S->samples > 1) p = majority_prob(p, S->samples);
                int correct = rng_uniform(&rng) < p;
                double mean_tok = (S->tok_base + S->tok_per_step * steps) * M->verbosity * S->samples;
                double tokens = round(mean_tok * exp(0.25 * rng_normal(&rng)));
                double cost = ((in_tokens + S->prompt_tokens) * S->samples * M->price_in + tokens * M->price_out) / 1e6;
                rtr_buf_printf(&line, "%s{\"model\":\"%s\",\"strategy\":\"%s\",\"correct\":%d,\"tokens\":%.0f,\"cost\":%.9g}",
                          m + s ? "," : "", M->name, S->name, correct, tokens, cost);
            }
        rtr_buf_printf(&line, "]}\n");
        fwrite(line.buf, 1, line.len, f);
    }
    bool ok = !ferror(f) && !text.failed && !line.failed;
    rtr_buf_free(&text);
    rtr_buf_free(&line);
    ok = fclose(f) == 0 && ok;
    st = ok ? rtr_commit_file(tmp, outcomes_path) : rtr_fail(RTR_ERR_IO, "%s: write failed", tmp);
    if (!ok) unlink(tmp);
    free(tmp);
    return st;
}
