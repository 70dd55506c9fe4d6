/* Tokenizer: rules on a tiny hand-made vocabulary (no weights needed), bad
 * tokenizer files, and the golden token ids of the Hugging Face tokenizer for
 * both real models (skipped when their folders are absent; the questions of
 * the shared data set reported as a skipped part when it is absent). */
#include "rtr/encoder.h"
#include "encoder_fixture.h"
#include "test.h"

#include <dirent.h>

static char tiny_dir[256];

static void remove_dir(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void remove_tiny_dir(void) { remove_dir(tiny_dir); }

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* vocab.txt ids: [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4 the5 cafe6 un7 ##able8
 * ##s9 ,10 !11 我12 a13 ##b14 */
static rtr_tokenizer *tiny_tokenizer(int max_len) {
    if (!tiny_dir[0]) {
        snprintf(tiny_dir, sizeof tiny_dir, "/tmp/rtr_test_tok_XXXXXX");
        if (!mkdtemp(tiny_dir)) abort();
        atexit(remove_tiny_dir);
        write_file(tiny_dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncafe\nun\n##able\n##s\n,\n!\n我\na\n##b\n");
        write_file(tiny_dir, "tokenizer_config.json",
                   "{\"do_lower_case\": true, \"cls_token\": \"[CLS]\", \"sep_token\": \"[SEP]\","
                   " \"pad_token\": \"[PAD]\", \"unk_token\": \"[UNK]\", \"mask_token\": \"[MASK]\"}");
    }
    char cfg[64];
    snprintf(cfg, sizeof cfg, "{\"max_seq_length\": %d}", max_len);
    write_file(tiny_dir, "sentence_bert_config.json", cfg);
    rtr_tokenizer *tok = NULL;
    CHECK(rtr_tokenizer_load(&tok, tiny_dir) == RTR_OK);
    return tok;
}

/* Tokenize s and compare with the expected ids (terminated by -1). */
static void expect_ids(const rtr_tokenizer *tok, const char *s, size_t len, const int32_t *want) {
    int32_t ids[64];
    int n = 0, k = 0;
    CHECK(rtr_tokenizer_encode(tok, ids, &n, s, len, 0) == RTR_OK);
    while (want[k] >= 0) k++;
    int same = n == k;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK_MSG(same, "'%s': got %d ids", s, n);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__, -1})

static void test_rules(void) {
    rtr_tokenizer *tok = tiny_tokenizer(64);
    if (!tok) return;
    CHECK(rtr_tokenizer_pad_id(tok) == 0 && rtr_tokenizer_vocab_size(tok) == 15 && rtr_tokenizer_max_length(tok) == 64);
    expect_ids(tok, "", 0, IDS(2, 3));
    expect_ids(tok, "The CAFÉ", 9, IDS(2, 5, 6, 3));          /* lower case, accent stripped */
    expect_ids(tok, "Cafe\xcc\x81s", 7, IDS(2, 6, 9, 3));     /* combining mark dropped, ## piece */
    expect_ids(tok, "unable,the!", 11, IDS(2, 7, 8, 10, 5, 11, 3)); /* punctuation split */
    expect_ids(tok, "unablex", 7, IDS(2, 1, 3));              /* no full cover: one [UNK] */
    expect_ids(tok, "a\xe6\x88\x91" "ab", 6, IDS(2, 13, 12, 13, 14, 3)); /* CJK spaced out */
    expect_ids(tok, "the\xff\xfe" "the", 8, IDS(2, 1, 3));    /* invalid bytes dropped: "thethe" */
    expect_ids(tok, "t\x00he\x07 \t\xe2\x80\x8b the", 14, IDS(2, 5, 5, 3)); /* NUL, BEL, ZWSP dropped */
    expect_ids(tok, "the [MASK] [mask]", 17, IDS(2, 5, 4, 1, 1, 1, 3)); /* added token matched on raw text only */
    char word[120];
    memset(word, 'a', sizeof word - 1);
    word[sizeof word - 1] = 0;
    expect_ids(tok, word, strlen(word), IDS(2, 1, 3));        /* over 100 chars: [UNK] */
    expect_ids(tok, "a\xe9\xbf\xbf" "a", 5, IDS(2, 13, 1, 13, 3)); /* U+9FFF, the last of the CJK block, spaced */
    rtr_tokenizer_free(tok);
    /* a word of exactly 100 characters is still split into pieces */
    tok = tiny_tokenizer(128);
    if (!tok) return;
    char hundred[101];
    hundred[0] = 'a';
    memset(hundred + 1, 'b', 99);
    hundred[100] = 0;
    int32_t ids[128];
    int n = 0;
    CHECK(rtr_tokenizer_encode(tok, ids, &n, hundred, 100, 0) == RTR_OK);
    CHECK_MSG(n == 102 && ids[1] == 13 && ids[2] == 14 && ids[100] == 14 && ids[101] == 3, "%d ids", n);
    rtr_tokenizer_free(tok);
}

static void test_truncation(void) {
    rtr_tokenizer *tok = tiny_tokenizer(5);
    if (!tok) return;
    int32_t ids[8];
    int n = 0;
    CHECK(rtr_tokenizer_encode(tok, ids, &n, "the the the the the", 19, 0) == RTR_OK);
    CHECK(n == 5 && ids[0] == 2 && ids[3] == 5 && ids[4] == 3);
    CHECK(rtr_tokenizer_encode(tok, ids, &n, "the the", 7, 3) == RTR_OK && n == 3 && ids[2] == 3);
    CHECK(rtr_tokenizer_encode(tok, ids, &n, "the", 3, 1) == RTR_ERR_INVALID);
    rtr_tokenizer_free(tok);
}

/* Every byte string is handled: no crash, always [CLS] … [SEP]. */
static void test_random_bytes(void) {
    rtr_tokenizer *tok = tiny_tokenizer(64);
    if (!tok) return;
    uint32_t seed = 7;
    char buf[256];
    int ok = 1;
    for (int iter = 0; iter < 2000 && ok; iter++) {
        size_t len = (size_t)(iter % 200);
        for (size_t i = 0; i < len; i++) buf[i] = (char)((seed = seed * 1103515245u + 12345u) >> 16);
        int32_t ids[64];
        int n = 0;
        ok = rtr_tokenizer_encode(tok, ids, &n, buf, len, 0) == RTR_OK && n >= 2 && ids[0] == 2 && ids[n - 1] == 3;
    }
    CHECK(ok);
    rtr_tokenizer_free(tok);
}

/* Fuzz seeds and past crash inputs (tools/run-fuzz): no failure, ids in range. */
static void test_fuzz_inputs(void) {
    rtr_tokenizer *tok = tiny_tokenizer(64);
    const char *dirs[] = {RTR_SOURCE_DIR "/tests/fuzz/corpus/tokenizer", RTR_SOURCE_DIR "/tests/fuzz/regress/tokenizer"};
    int seen = 0;
    for (int d = 0; tok && d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            if (e->d_name[0] == '.') continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            size_t len = 0;
            char *text = fixture_slurp(path, &len);
            int32_t ids[64];
            int n = 0;
            CHECK(text && rtr_tokenizer_encode(tok, ids, &n, text, len, 0) == RTR_OK && n >= 2);
            for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < rtr_tokenizer_vocab_size(tok));
            free(text);
            seen++;
        }
        if (dir) closedir(dir);
    }
    CHECK(seen >= 1);
    rtr_tokenizer_free(tok);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/rtr_test_badtok_XXXXXX";
    if (!mkdtemp(dir)) return;
    rtr_tokenizer *tok = NULL;
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_IO && !tok);
    write_file(dir, "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": ");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "tokenizer.json") != NULL);
    write_file(dir, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_UNSUPPORTED);
    CHECK(strstr(rtr_last_error(), "model.type") != NULL);
    write_file(dir, "tokenizer.json",
               "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"a\": 0}},"
               " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT);
    CHECK(strstr(rtr_last_error(), "model.unk_token") && strstr(rtr_last_error(), "[UNK]"));
    write_file(dir, "tokenizer.json",
               "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}},"
               " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"post_processor\": null}");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_UNSUPPORTED);
    CHECK(strstr(rtr_last_error(), "post_processor") != NULL);
    CHECK(tok == NULL);
    /* a valid file but for one field: ids that are not integers, a word
     * limit other than WordPiece's (refused, never silently changed) */
    const char *tmpl = "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", %s"
                       " \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"a\": %s, \"b\": 4, \"a\": 5}},"
                       " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
                       " \"post_processor\": {\"type\": \"BertProcessing\", \"cls\": [\"[CLS]\", 1], \"sep\": [\"[SEP]\", 2]}}";
    char text[1024];
    snprintf(text, sizeof text, tmpl, "", "3.5");
    write_file(dir, "tokenizer.json", text);
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT && strstr(rtr_last_error(), "model.vocab['a']"));
    snprintf(text, sizeof text, tmpl, "", "1e300");
    write_file(dir, "tokenizer.json", text);
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT && strstr(rtr_last_error(), "model.vocab['a']"));
    snprintf(text, sizeof text, tmpl, "\"max_input_chars_per_word\": 200,", "3");
    write_file(dir, "tokenizer.json", text);
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_UNSUPPORTED && strstr(rtr_last_error(), "max_input_chars_per_word"));
    /* a token listed twice takes its last id (Hugging Face's map insert) */
    snprintf(text, sizeof text, tmpl, "\"max_input_chars_per_word\": 3,", "3");
    write_file(dir, "tokenizer.json", text);
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_OK);
    if (tok) {
        expect_ids(tok, "a b", 3, IDS(1, 5, 4, 2));
        expect_ids(tok, "bbbb ab", 7, IDS(1, 0, 0, 2)); /* 4 > 3 characters: [UNK]; "ab": no ##b piece */
        rtr_tokenizer_free(tok);
        tok = NULL;
    }
    remove_dir(dir);
}

/* vocab.txt without tokenizer_config.json (refused before, "cannot open"):
 * BERT's defaults as transformers takes them, the special tokens from
 * special_tokens_map.json when there; refused naming what is missing when
 * a default does not fit (a special token not in the vocabulary, cased
 * pieces where the default lower-cases). */
static void test_vocab_without_config(void) {
    char dir[] = "/tmp/rtr_test_vocab_XXXXXX";
    if (!mkdtemp(dir)) return;
    rtr_tokenizer *tok = NULL;
    write_file(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncafe\nun\n##able\n##s\n,\n!\n");
    CHECK_MSG(rtr_tokenizer_load(&tok, dir) == RTR_OK, "%s", rtr_last_error());
    if (tok) {
        expect_ids(tok, "The CAFÉ", 9, IDS(2, 5, 6, 3)); /* lower case, accent stripped: as tiny_tokenizer's config */
        expect_ids(tok, "the [MASK]", 10, IDS(2, 5, 4, 3));
        CHECK(rtr_tokenizer_pad_id(tok) == 0 && rtr_tokenizer_max_length(tok) == 512);
        rtr_tokenizer_free(tok);
        tok = NULL;
    }
    /* no [MASK]: optional, as with a config that names none */
    write_file(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n");
    CHECK_MSG(rtr_tokenizer_load(&tok, dir) == RTR_OK, "%s", rtr_last_error());
    rtr_tokenizer_free(tok);
    tok = NULL;
    write_file(dir, "vocab.txt", "<pad>\n<unk>\n<s>\n</s>\nthe\n");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT && !tok);
    CHECK_MSG(strstr(rtr_last_error(), "no tokenizer_config.json") && strstr(rtr_last_error(), "'[CLS]'"), "%s",
              rtr_last_error());
    write_file(dir, "special_tokens_map.json",
               "{\"cls_token\": \"<s>\", \"sep_token\": \"</s>\", \"pad_token\": \"<pad>\", \"unk_token\": \"<unk>\"}");
    CHECK_MSG(rtr_tokenizer_load(&tok, dir) == RTR_OK, "%s", rtr_last_error());
    if (tok) {
        expect_ids(tok, "The x", 5, IDS(2, 4, 1, 3));
        CHECK(rtr_tokenizer_pad_id(tok) == 0);
        rtr_tokenizer_free(tok);
        tok = NULL;
    }
    write_file(dir, "vocab.txt", "<pad>\n<unk>\n<s>\n</s>\nthe\nThe\n");
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_ERR_FORMAT && !tok);
    CHECK_MSG(strstr(rtr_last_error(), "no tokenizer_config.json") && strstr(rtr_last_error(), "line 6: 'The'") &&
              strstr(rtr_last_error(), "do_lower_case"), "%s", rtr_last_error());
    /* with the config, a cased vocabulary is what it says */
    write_file(dir, "tokenizer_config.json",
               "{\"do_lower_case\": false, \"cls_token\": \"<s>\", \"sep_token\": \"</s>\", \"pad_token\": \"<pad>\","
               " \"unk_token\": \"<unk>\"}");
    CHECK_MSG(rtr_tokenizer_load(&tok, dir) == RTR_OK, "%s", rtr_last_error());
    if (tok) expect_ids(tok, "The the", 7, IDS(2, 5, 4, 3));
    rtr_tokenizer_free(tok);
    remove_dir(dir);
}

static void golden(const char *name) {
    const char *dir = fixture_model_dir(name);
    if (!dir) TEST_SKIP("model folder absent (tools/fetch-encoder)");
    fixture fx;
    if (fixture_load(name, &fx) != 0) {
        CHECK_MSG(0, "fixture of %s missing", name);
        return;
    }
    rtr_tokenizer *tok = NULL;
    CHECK(rtr_tokenizer_load(&tok, dir) == RTR_OK);
    CHECK(tok && rtr_tokenizer_max_length(tok) == fx.max_len);
    int checked = 0, mismatched = 0, absent = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)fx.max_len);
    for (int i = 0; tok && i < fx.n; i++) {
        fixture_item *x = &fx.items[i];
        if (!x->text) { absent++; continue; } /* a question of the shared data, absent here */
        int n = 0;
        CHECK(rtr_tokenizer_encode(tok, ids, &n, x->text, x->len, 0) == RTR_OK);
        int same = n == x->n_ids;
        for (int k = 0; same && k < n; k++) same = ids[k] == x->ids[k];
        if (!same && mismatched++ < 5) {
            fprintf(stderr, "%s %s: %d ids, want %d; first diff:", name, x->label, n, x->n_ids);
            for (int k = 0; k < n && k < x->n_ids; k++)
                if (ids[k] != x->ids[k]) { fprintf(stderr, " at %d got %d want %d", k, ids[k], x->ids[k]); break; }
            fputc('\n', stderr);
        }
        checked++;
    }
    fprintf(stderr, "%s: %d of %d texts checked, %d mismatched\n", name, checked, fx.n, mismatched);
    CHECK(mismatched == 0);
    CHECK(checked >= 15);
    if (absent) TEST_SKIP_PART("the fixture's shared-data questions (RTR_SHARED_DATA/rtr_questions absent)");
    free(ids);
    rtr_tokenizer_free(tok);
    fixture_free(&fx);
}

static void test_golden_minilm(void) { golden("all-MiniLM-L6-v2"); }
static void test_golden_mpnet(void) { golden("all-mpnet-base-v2"); }

TEST_MAIN(T(test_rules), T(test_truncation), T(test_random_bytes), T(test_fuzz_inputs), T(test_bad_files), T(test_vocab_without_config),
          T(test_golden_minilm),
          T(test_golden_mpnet))
