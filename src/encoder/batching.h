/* How the encoder (encoder.c) cuts length-sorted texts into batches; here
 * so tests/test_encoder_batching.c can check the rule without a model. */
#ifndef RTR_ENCODER_BATCHING_H
#define RTR_ENCODER_BATCHING_H

#include <stddef.h>
#include <stdint.h>

/* A tokenized text: its ids, count and place in the caller's input. */
typedef struct {
    int32_t *ids; /* [max_len] */
    int n;
    size_t index;
} tokenized;

/* How many of toks[0..m) (sorted by n, longest first) the next batch
 * takes: padded to toks[0].n, at most max_texts texts and batch_tokens
 * padded tokens; past batch_min padded tokens, only while the padding stays
 * within 5% of the real tokens. 0 when m is 0. */
int encoder_batch_texts(const tokenized *toks, size_t m, int max_texts, int batch_tokens, int batch_min);

#endif
