/* The encoder's batch cut (encoder_batch_texts, src/encoder/batching.h):
 * past batch_min padded tokens a batch of length-sorted texts stops where
 * the next text would pad it by more than 5%; texts of one length still
 * fill batch_tokens; with batch_min = batch_tokens (a GPU) every batch is
 * filled as before. Before, every batch was filled to batch_tokens, and 40
 * short questions were computed as 1.92x their real tokens. */
#include "encoder/batching.h"
#include "test.h"

/* n texts with these token counts, longest first */
static tokenized *texts(const int *lens, int n) {
    tokenized *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) t[i] = (tokenized){NULL, lens[i], (size_t)i};
    return t;
}

/* Every batch of the run follows the rule and is as large as it allows. */
static long cut_all(const tokenized *t, int m, int max_texts, int bt, int bmin, int *batches) {
    long padded = 0;
    *batches = 0;
    for (int i = 0; i < m;) {
        int B = encoder_batch_texts(t + i, (size_t)(m - i), max_texts, bt, bmin), T = t[i].n;
        CHECK(B >= 1 && B <= max_texts && (long)B * T <= bt);
        long real = 0;
        for (int j = 0; j < B; j++) real += t[i + j].n;
        CHECK_MSG((long)B * T <= bmin || (long)B * T <= 1.05 * real, "batch at %d: %d x %d padded, %ld real", i, B,
                  T, real);
        if (i + B < m && B < max_texts && (long)(B + 1) * T <= bt) /* it stopped early: the next text pads too much */
            CHECK((long)(B + 1) * T > bmin && (long)(B + 1) * T > 1.05 * (real + t[i + B].n));
        padded += (long)B * T;
        i += B;
        ++*batches;
    }
    return padded;
}

static void test_short_texts_pad_little(void) {
    /* 40 token counts shaped like the first 40 questions (105 the longest, 51 the median) */
    int lens[40];
    for (int i = 0; i < 40; i++) lens[i] = i < 4 ? 105 - 8 * i : 75 - (i * 30) / 40;
    tokenized *t = texts(lens, 40);
    long real = 0;
    for (int i = 0; i < 40; i++) real += lens[i];
    int batches;
    long padded = cut_all(t, 40, 2048, 4096, 1024, &batches);
    fprintf(stderr, "40 texts, %ld real tokens: %ld padded in %d batches\n", real, padded, batches);
    /* filled to 4096, the first batch would be all 40 texts at 105 tokens: 4200 > 4096, so 39 + 1 */
    CHECK(padded <= 1.25 * real);
    CHECK(encoder_batch_texts(t, 40, 2048, 4096, 1024) < 39);
    CHECK(encoder_batch_texts(t, 0, 2048, 4096, 1024) == 0);
    free(t);
}

static void test_equal_texts_fill(void) {
    int lens[25];
    for (int i = 0; i < 25; i++) lens[i] = 384;
    tokenized *t = texts(lens, 25);
    CHECK(encoder_batch_texts(t, 25, 2048, 4096, 1024) == 10); /* nothing padded: full batches */
    CHECK(encoder_batch_texts(t, 25, 4, 4096, 1024) == 4);     /* max_texts */
    free(t);
}

static void test_gpu_fills(void) {
    int lens[40];
    for (int i = 0; i < 40; i++) lens[i] = 100 - 2 * i;
    tokenized *t = texts(lens, 40);
    CHECK(encoder_batch_texts(t, 40, 2048, 4096, 4096) == 40); /* batch_min = batch_tokens: filled */
    CHECK(encoder_batch_texts(t, 40, 2048, 2000, 2000) == 20);
    int batches;
    cut_all(t, 40, 2048, 4096, 1024, &batches);
    free(t);
}

TEST_MAIN(T(test_short_texts_pad_little), T(test_equal_texts_fill), T(test_gpu_fills))
