/* libFuzzer harness: a model folder's tokenizer.json (WordPiece model,
 * normalizer, pre-tokenizer, post-processor, added tokens) through
 * rtr_tokenizer_load. An accepted file must tokenize texts into ids inside
 * its vocabulary, framed by at least two special tokens. */
#include "fuzz_common.h"
#include "rtr/encoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char dir[512], path[600];
    fuzz_path(dir, "tok");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    fuzz_write(path, data, size);
    rtr_tokenizer *tok = NULL;
    rtr_status st = rtr_tokenizer_load(&tok, dir);
    if (st != RTR_OK) fuzz_refused("tokenizer.json");
    if (st == RTR_OK) {
        static const char *texts[] = {"", "What is 2+2? The CAFÉ, unable!", "\xff\xfe [MASK] 我 a\tb", "x"};
        int32_t ids[512];
        for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
            int n = 0;
            FUZZ_ASSERT(rtr_tokenizer_encode(tok, ids, &n, texts[t], strlen(texts[t]), 512) == RTR_OK,
                        "encode after a successful load: %s", rtr_last_error());
            FUZZ_ASSERT(n >= 2 && n <= 512, "%d ids", n);
            for (int i = 0; i < n; i++)
                FUZZ_ASSERT(ids[i] >= 0 && ids[i] < rtr_tokenizer_vocab_size(tok), "id %d outside the vocabulary of %d",
                            ids[i], rtr_tokenizer_vocab_size(tok));
        }
        rtr_tokenizer_free(tok);
    }
    return 0;
}
