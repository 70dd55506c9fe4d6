/* Backend selection and the calls every backend answers the same way
 * (include/rtr/backend.h). The backends themselves: src/backend/cpu.c (the
 * CPU and the plain-C reference backends) and kernels/backend_cuda.cu. */
#include "rtr/backend.h"
#include "rtr/dist.h"

#include <string.h>

#include "common/util.h"

static const char *const op_names[RTR_OP_COUNT] = {
    "sgemm",
    "gemm_bf16",
#define OP_NAME(E, name, ret, params, args) #name,
    RTR_BACKEND_OPS(OP_NAME)
#undef OP_NAME
};

const char *rtr_op_name(rtr_op op) { return op >= 0 && op < RTR_OP_COUNT ? op_names[op] : "?"; }

/* ----------------------------------------------------------- selection */

rtr_status rtr_backend_init(rtr_backend *b, const char *name) {
    memset(b, 0, sizeof *b);
    if (!strcmp(name, "cpu")) return rtr_backend_cpu_open(b);
    if (strcmp(name, "cuda") && strcmp(name, "auto"))
        return rtr_fail(RTR_ERR_INVALID, "device '%s': expected cpu, cuda or auto", name);
#ifdef RTR_WITH_CUDA
    rtr_status st = rtr_backend_cuda_open(b, -1); /* the local rank's GPU: one per rank on a node */
#else
    rtr_status st = rtr_fail(RTR_ERR_DEVICE, "this rtr was built without CUDA (configure with nvcc present)");
#endif
    if (st == RTR_OK || !strcmp(name, "cuda")) return st;
    /* --quiet silences it; under mpirun every rank opens a backend: one note for the job, from rank 0 */
    if (rtr_dist_rank() == 0) rtr_note("%s; computing on the CPU", rtr_last_error());
    return rtr_backend_cpu_open(b);
}

void rtr_backend_free(rtr_backend *b) {
    if (b->iface) b->iface->destroy(b->ctx);
    memset(b, 0, sizeof *b);
}

bool rtr_backend_supports(const rtr_backend *b, rtr_op op) {
    const rtr_backend_iface *f = b->iface;
    switch (op) {
    case RTR_OP_SGEMM: return f->sgemm != NULL;
    case RTR_OP_GEMM_BF16: return f->gemm_bf16 != NULL;
#define SLOT_SET(E, name, ret, params, args) \
    case RTR_OP_##E: return f->name != NULL;
        RTR_BACKEND_OPS(SLOT_SET)
#undef SLOT_SET
    default: return false;
    }
}

rtr_status rtr_backend_alloc(rtr_backend *b, void **ptr, size_t bytes) {
    *ptr = NULL;
    return b->iface->alloc(b->ctx, ptr, bytes);
}

void rtr_backend_free_mem(rtr_backend *b, void *ptr) {
    if (ptr) b->iface->free_mem(b->ctx, ptr);
}

rtr_status rtr_backend_upload(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->upload(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_download(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->download(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_zero(rtr_backend *b, void *ptr, size_t bytes) { return b->iface->zero(b->ctx, ptr, bytes); }

rtr_status rtr_backend_synchronize(rtr_backend *b) { return b->iface->synchronize(b->ctx); }

rtr_status rtr_backend_host_alloc(rtr_backend *b, void **ptr, size_t bytes) {
    *ptr = NULL;
    return b->iface->host_alloc(b->ctx, ptr, bytes);
}

void rtr_backend_host_free(rtr_backend *b, void *ptr) {
    if (ptr) b->iface->host_free(b->ctx, ptr);
}

rtr_status rtr_backend_upload_async(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->upload_async(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_download_async(rtr_backend *b, void *dst, const void *src, size_t bytes) {
    return b->iface->download_async(b->ctx, dst, src, bytes);
}

rtr_status rtr_backend_set_gemm_precision(rtr_backend *b, rtr_gemm_precision p) {
    return b->iface->set_gemm_precision(b->ctx, p);
}

rtr_status rtr_backend_hold_weights(rtr_backend *b, const void *ptr, size_t bytes) {
    return b->iface->hold_weights ? b->iface->hold_weights(b->ctx, ptr, bytes) : RTR_OK;
}

void rtr_backend_forget_weights(rtr_backend *b, const void *ptr, size_t bytes) {
    if (b->iface->forget_weights) b->iface->forget_weights(b->ctx, ptr, bytes);
}

bool rtr_backend_has_graphs(const rtr_backend *b) {
    const rtr_backend_iface *f = b->iface;
    return f->capture_begin && f->capture_end && f->graph_launch && f->graph_free;
}

static rtr_status no_graphs(const rtr_backend *b) {
    return rtr_fail(RTR_ERR_UNSUPPORTED, "backend %s has no graphs", b->iface->name);
}

rtr_status rtr_backend_capture_begin(rtr_backend *b) {
    return rtr_backend_has_graphs(b) ? b->iface->capture_begin(b->ctx) : no_graphs(b);
}

rtr_status rtr_backend_capture_end(rtr_backend *b, void **graph) {
    *graph = NULL;
    return rtr_backend_has_graphs(b) ? b->iface->capture_end(b->ctx, graph) : no_graphs(b);
}

rtr_status rtr_backend_graph_launch(rtr_backend *b, void *graph) {
    return rtr_backend_has_graphs(b) ? b->iface->graph_launch(b->ctx, graph) : no_graphs(b);
}

void rtr_backend_graph_free(rtr_backend *b, void *graph) {
    if (graph && rtr_backend_has_graphs(b)) b->iface->graph_free(b->ctx, graph);
}
