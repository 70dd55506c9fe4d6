/* libFuzzer harness: the tokenizer on arbitrary bytes (invalid UTF-8,
 * controls, huge words, added-token fragments). Uses the model folder in
 * $RTR_FUZZ_MODEL (tools/run-fuzz points it at all-mpnet-base-v2 or
 * all-MiniLM-L6-v2), else a built-in tiny vocabulary. */
#include "rtr/encoder.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rtr_tokenizer *tok;

static void load(void) {
    const char *dir = getenv("RTR_FUZZ_MODEL");
    char tmp[] = "/tmp/rtr_fuzz_tok_XXXXXX";
    if (!dir || !*dir) {
        if (!mkdtemp(tmp)) abort();
        char path[64];
        snprintf(path, sizeof path, "%s/vocab.txt", tmp);
        FILE *f = fopen(path, "w");
        fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\na\n##b\n<s>\n", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
        f = fopen(path, "w");
        fputs("{\"cls_token\":\"[CLS]\",\"sep_token\":\"[SEP]\",\"pad_token\":\"[PAD]\",\"unk_token\":\"[UNK]\","
              "\"mask_token\":\"[MASK]\"}", f);
        fclose(f);
        dir = tmp;
    }
    if (rtr_tokenizer_load(&tok, dir) != RTR_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", rtr_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) load();
    int32_t ids[512];
    int n = 0;
    if (rtr_tokenizer_encode(tok, ids, &n, (const char *)data, size, 512) != RTR_OK) abort();
    if (n < 2 || n > 512) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= rtr_tokenizer_vocab_size(tok)) abort();
    return 0;
}
