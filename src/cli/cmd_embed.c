/* `rtr embed --model MODEL_DIR`: lines of text on stdin, one embedding per
 * line on stdout as a JSON array of floats, in input order. For quick checks
 * and scripting; `rtr encode` is the corpus stage. */
#include "cli/cli.h"
#include "rtr/encoder.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* Lines embedded per encoder call: enough for full batches, small enough
 * that output starts early. */
#define EMBED_BATCH 256

static rtr_status embed_batch(rtr_encoder *enc, char **lines, size_t *lens, size_t n, float *out) {
    rtr_status s = rtr_encoder_encode(enc, out, (const char *const *)lines, lens, n);
    int D = rtr_encoder_dim(enc);
    for (size_t i = 0; !s && i < n; i++) {
        putchar('[');
        for (int c = 0; c < D; c++) printf(c ? ",%.9g" : "%.9g", out[i * (size_t)D + (size_t)c]);
        fputs("]\n", stdout);
    }
    if (!s && ferror(stdout)) s = rtr_fail(RTR_ERR_IO, "stdout: write error");
    return s;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *device = "auto", *precision = "auto";
    long threads = 0, max_len = 0;
    const rtr_opt opts[] = {{"model", RTR_OPT_REQUIRED, &model, "sentence-transformers model folder (tools/fetch-encoder)"},
                            CLI_OPT_THREADS(&threads),
                            {"max-length", RTR_OPT_INT, &max_len, "tokens per text incl. specials (0: the model's)"},
                            RTR_OPT_DEVICE(&device),
                            {"precision", RTR_OPT_STR, &precision,
                             "GEMM inputs: fp32, bf16, fp16 or auto (bf16 on a GPU and on CPUs with AVX-512 BF16, else fp32)"},
                            {0}};
    const rtr_cmd_spec spec = {"embed", "--model MODEL_DIR < lines",
                               "Embed each line of standard input (trailing CR/LF removed) and print its\n"
                               "L2-normalised embedding as a JSON array on one line, in input order.",
                               opts, 0, 0};
    rtr_args a;
    int rc = rtr_args_parse(&spec, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    rtr_encoder_params p = rtr_encoder_default_params();
    p.n_threads = (int)threads;
    p.max_seq_length = max_len > 1 << 20 ? 1 << 20 : (int)max_len; /* the encoder refuses what exceeds the model */
    p.device = device;
    p.precision = precision;
    rtr_encoder *enc = NULL;
    rtr_status s = rtr_encoder_load(&enc, model, &p);
    char *lines[EMBED_BATCH] = {0};
    size_t lens[EMBED_BATCH], caps[EMBED_BATCH] = {0}, n = 0;
    float *out = s ? NULL : rtr_malloc(sizeof(float) * EMBED_BATCH * (size_t)rtr_encoder_dim(enc));
    if (!s && !out) s = RTR_ERR_NOMEM;
    while (!s) {
        ssize_t got = getline(&lines[n], &caps[n], stdin);
        if (got >= 0) {
            size_t len = (size_t)got;
            while (len && (lines[n][len - 1] == '\n' || lines[n][len - 1] == '\r')) len--;
            lens[n++] = len;
        }
        if ((got < 0 && n) || n == EMBED_BATCH) {
            s = embed_batch(enc, lines, lens, n, out);
            n = 0;
        }
        if (got < 0) {
            /* a closed stdin or a line too long to hold is not end of input */
            if (!s && ferror(stdin)) s = rtr_fail(RTR_ERR_IO, "stdin: read error (closed, or a line too long for memory)");
            break;
        }
    }
    if (s) cli_error("embed");
    for (size_t i = 0; i < EMBED_BATCH; i++) free(lines[i]);
    free(out);
    rtr_encoder_free(enc);
    return s ? 1 : 0;
}
