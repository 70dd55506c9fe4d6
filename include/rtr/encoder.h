/* The frozen sentence encoder: a WordPiece tokenizer and a BERT / MPNet
 * forward pass that reproduce sentence-transformers (all-MiniLM-L6-v2,
 * all-mpnet-base-v2) from a local Hugging Face model folder.
 *
 * A model folder holds config.json, model.safetensors, tokenizer.json (or
 * vocab.txt + tokenizer_config.json) and optionally sentence-transformers'
 * sentence_bert_config.json (max_seq_length) and 1_Pooling/config.json (only
 * mean pooling is supported). The forward pass runs on a compute backend
 * (include/rtr/backend.h: the CPU or a CUDA GPU). docs/ENCODER.md describes
 * loading, the tokenizer rules, devices and batching. */
#ifndef RTR_ENCODER_H
#define RTR_ENCODER_H

#include "rtr/backend.h"
#include "rtr/rtr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tokenizer ---------------------------------------------------------- */

typedef struct rtr_tokenizer rtr_tokenizer;

/* Load the tokenizer of model_dir (tokenizer.json, else vocab.txt +
 * tokenizer_config.json; max length from sentence_bert_config.json's
 * max_seq_length, a whole number in [2, 512], else the tokenizer's
 * model_max_length, a whole number >= 2 capped at 512, else 512; a folder
 * whose max length is outside those ranges loads with max length 0, and
 * encoding without a max_len of the caller's then fails naming the file and
 * key: rtr_tokenizer_max_length_error).
 * *out is owned by the caller (rtr_tokenizer_free). Errors name the file and
 * field: RTR_ERR_IO (no tokenizer file), RTR_ERR_FORMAT (does not parse,
 * special token missing from the vocabulary). */
RTR_API rtr_status rtr_tokenizer_load(rtr_tokenizer **out, const char *model_dir);
RTR_API void rtr_tokenizer_free(rtr_tokenizer *tok);

/* Tokenize one text of len bytes (any bytes: invalid UTF-8 sequences become
 * U+FFFD, which the normaliser then drops, like Python's errors="replace"
 * followed by the Hugging Face tokenizer) into ids, special tokens included,
 * truncated to max_len tokens (max_len <= 0: the tokenizer's max length;
 * max_len >= 2). ids must hold max_len entries; *n_ids receives the count
 * (always >= 2). Thread-safe on one tokenizer. */
RTR_API rtr_status rtr_tokenizer_encode(const rtr_tokenizer *tok, int32_t *ids, int *n_ids,
                                const char *text, size_t len, int max_len);

RTR_API int rtr_tokenizer_max_length(const rtr_tokenizer *tok);
/* Why the folder's max length cannot be used (file, key, value), or NULL. */
RTR_API const char *rtr_tokenizer_max_length_error(const rtr_tokenizer *tok);
RTR_API int32_t rtr_tokenizer_pad_id(const rtr_tokenizer *tok);
RTR_API int32_t rtr_tokenizer_vocab_size(const rtr_tokenizer *tok);

/* ---- encoder ------------------------------------------------------------ */

typedef struct rtr_encoder rtr_encoder;

typedef struct {
    int n_threads;      /* OpenMP threads (tokenizing, CPU ops); 0: leave the runtime's default */
    int max_seq_length; /* 0: the folder's max_seq_length */
    int batch_tokens;   /* padded tokens per forward batch (bounds activation memory); 0: the
                           device's default, 4096 on the CPU, 65536 on CUDA (fills an H100) */
    const char *device; /* "cpu" (the default; also NULL), "cuda" or "auto" (CUDA when a GPU
                           answers, else the CPU with one line on stderr): rtr_backend_init */
    const char *precision; /* GEMM inputs: "fp32" (the default; also NULL); "bf16" (CUDA, or
                              the CPU where it has bf16 GEMMs: oneDNN and AVX-512 BF16;
                              RTR_ERR_INVALID elsewhere); "fp16" (CUDA only); fp32 accumulation;
                              "auto": bf16 where it runs, else fp32 (docs/ENCODER.md) */
} rtr_encoder_params;

RTR_API rtr_encoder_params rtr_encoder_default_params(void);

/* Load model_dir: config.json (architecture BertModel or MPNet*), weights
 * memory-mapped from model.safetensors and checked tensor by tensor against
 * the config, the tokenizer, the pooling settings; open params->device and
 * put the weights there (a GPU gets one copy, uploaded here) with scratch for
 * batch_tokens padded tokens. *out is owned by the caller (rtr_encoder_free,
 * which also closes the device). Errors: RTR_ERR_IO, RTR_ERR_FORMAT (naming
 * the file and the field or tensor), RTR_ERR_UNSUPPORTED (architecture,
 * activation, pooling mode), RTR_ERR_INVALID (device or precision name, a
 * low precision on the CPU), RTR_ERR_DEVICE ("cuda" without a usable GPU,
 * device memory). */
RTR_API rtr_status rtr_encoder_load(rtr_encoder **out, const char *model_dir,
                            const rtr_encoder_params *params);

/* rtr_encoder_load on backend b, which the caller opened and keeps: it must
 * outlive the encoder, and is not freed by rtr_encoder_free. For tests that
 * compare backends and callers that share one device between stages;
 * params->device is not used. */
RTR_API rtr_status rtr_encoder_load_on(rtr_backend *b, rtr_encoder **out, const char *model_dir,
                               const rtr_encoder_params *params);
RTR_API void rtr_encoder_free(rtr_encoder *enc);

/* Embed n texts: texts[i] has lens[i] bytes (lens NULL: NUL-terminated).
 * out: [n x rtr_encoder_dim] floats (host memory), each row L2-normalised, in
 * input order. Texts are sorted by token count and batched by length
 * internally, so padding is not computed. Sets the backend's GEMM precision
 * to the encoder's; backend errors come back as the failing op reports them
 * (RTR_ERR_DEVICE naming the op and sizes). Not thread-safe on one encoder
 * (scratch buffers). */
RTR_API rtr_status rtr_encoder_encode(rtr_encoder *enc, float *out, const char *const *texts,
                              const size_t *lens, size_t n);

RTR_API int rtr_encoder_dim(const rtr_encoder *enc);
/* Folder base name, e.g. "all-MiniLM-L6-v2". Valid until free. */
RTR_API const char *rtr_encoder_name(const rtr_encoder *enc);
/* 16 hex digits identifying what an embedding depends on: FNV-1a 64 over
 * the safetensors data buffer (all weight bytes), extended by the pooling,
 * normalisation and prompt when they are not the default (mean, normalised,
 * none) and by the max length when it is not the model folder's. Valid until
 * free. */
RTR_API const char *rtr_encoder_hash(const rtr_encoder *enc);
RTR_API const rtr_tokenizer *rtr_encoder_tokenizer(const rtr_encoder *enc);
/* What computes: the backend's device, e.g. "CPU, 16 threads" or "NVIDIA
 * H100 80GB HBM3 (sm_90, 79 GiB)". Valid until free. */
RTR_API const char *rtr_encoder_device(const rtr_encoder *enc);
/* The GEMM input precision in use: "fp32", "bf16" or "fp16". */
RTR_API const char *rtr_encoder_precision(const rtr_encoder *enc);
/* Padded tokens per forward batch (params->batch_tokens or the device's default). */
RTR_API int rtr_encoder_batch_tokens(const rtr_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
