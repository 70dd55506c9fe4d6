/* A program outside rtr that routes texts through the installed librtr, the
 * way a user's own code would: built by tests/test_install.sh with
 * `cc route_texts.c $(pkg-config --cflags --libs rtr)` against an installed
 * prefix, and its decisions compared with `rtr route --model --checkpoint`.
 *
 *   route_texts MODEL_DIR CHECKPOINT LAMBDA COST_SCALE TEXT...
 *
 * prints one "model|strategy" line per text: the pair with the highest
 * λ·p − (1−λ)·tokens/COST_SCALE, from one library call (rtr_route_texts). */
#include <rtr/stages.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "route_texts: %s: %s\n", what, rtr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL_DIR CHECKPOINT LAMBDA COST_SCALE TEXT...\n", argv[0]);
        return 2;
    }
    rtr_backend cpu;
    if (rtr_backend_init(&cpu, "cpu")) return fail("backend");
    rtr_encoder_params ep = rtr_encoder_default_params();
    ep.device = "cpu";
    rtr_encoder *enc = NULL;
    if (rtr_encoder_load(&enc, argv[1], &ep)) return fail(argv[1]);
    rtr_predictor pred;
    if (rtr_predictor_load(&pred, argv[2])) return fail(argv[2]);

    rtr_route_params rp = rtr_route_default_params();
    rp.lambda = atof(argv[3]);
    rp.o.cost_scale = atof(argv[4]);
    rtr_text_routes r;
    if (rtr_route_texts(&cpu, &r, enc, &pred, (const char *const *)argv + 5, argc - 5, &rp)) return fail("route");
    for (int64_t i = 0; i < r.n; i++) {
        char *name = rtr_catalog_pair_name(&r.cat, r.choice[i]);
        printf("%s\n", name);
        free(name);
    }
    rtr_text_routes_free(&r);
    rtr_predictor_free(&pred);
    rtr_encoder_free(enc);
    rtr_backend_free(&cpu);
    return 0;
}
