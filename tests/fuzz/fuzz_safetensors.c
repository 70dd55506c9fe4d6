/* libFuzzer harness: the safetensors header parser and the F32/F16/BF16
 * conversion on arbitrary bytes (tools/run-fuzz builds and runs it). */
#include "rtr/safetensors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rtr_safetensors *st = NULL;
    if (rtr_safetensors_open_memory(&st, data, size, "fuzz") != RTR_OK) return 0;
    for (size_t i = 0; i < rtr_safetensors_count(st); i++) {
        const rtr_st_tensor *t = rtr_safetensors_tensor(st, i);
        if (t->numel > (1 << 20)) continue;
        float *dst = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        if (dst) rtr_safetensors_read_f32(st, dst, t->name, t->ndim, t->shape);
        free(dst);
    }
    (void)rtr_safetensors_metadata(st, "format");
    rtr_safetensors_close(st);
    return 0;
}
