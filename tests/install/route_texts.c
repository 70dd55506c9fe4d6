/* A program outside rtr that routes texts through the installed librtr, the
 * way a user's own code would: built by tests/test_install.sh with
 * `cc route_texts.c $(pkg-config --cflags --libs rtr)` against an installed
 * prefix, and its decisions compared with `rtr route --model --checkpoint`.
 *
 *   route_texts MODEL_DIR CHECKPOINT LAMBDA COST_SCALE TEXT...
 *
 * prints one "model|strategy" line per text: the pair with the highest
 * λ·p − (1−λ)·tokens/COST_SCALE. */
#include <rtr/encoder.h>
#include <rtr/ops.h>
#include <rtr/predictor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "route_texts: %s: %s\n", what, rtr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL_DIR CHECKPOINT LAMBDA COST_SCALE TEXT...\n", argv[0]);
        return 2;
    }
    const char *const *texts = (const char *const *)argv + 5;
    int n = argc - 5;
    double lambda = atof(argv[3]), scale = atof(argv[4]);

    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.device = "cpu";
    rtr_encoder *enc = NULL;
    if (rtr_encoder_load(argv[1], &ep, &enc)) return fail(argv[1]);
    rtr_predictor pred;
    if (rtr_predictor_load(&pred, argv[2])) return fail(argv[2]);
    rtr_catalog cat;
    if (rtr_catalog_parse_json(&cat, pred.catalog_json, argv[2])) return fail("catalog");
    int D = rtr_encoder_dim(enc), K = pred.n_pairs;
    float *emb = malloc(sizeof(float) * (size_t)n * D), *p = malloc(sizeof(float) * (size_t)n * K);
    float *tokens = malloc(sizeof(float) * (size_t)n * K);
    int32_t *choice = malloc(sizeof(int32_t) * (size_t)n);
    if (!emb || !p || !tokens || !choice) return fail("out of memory");
    if (rtr_encoder_encode(enc, texts, NULL, n, emb)) return fail("encode");
    if (rtr_predictor_score(&pred, emb, n, p, tokens)) return fail("score");
    for (int64_t i = 0; i < (int64_t)n * K; i++) tokens[i] /= (float)scale; /* the cost against λ */
    rtr_route_argmax(choice, p, tokens, lambda, n, K);
    for (int i = 0; i < n; i++) {
        char *name = rtr_catalog_pair_name(&cat, choice[i]);
        printf("%s\n", name);
        free(name);
    }
    free(emb), free(p), free(tokens), free(choice);
    rtr_catalog_free(&cat);
    rtr_predictor_free(&pred);
    rtr_encoder_free(enc);
    return 0;
}
