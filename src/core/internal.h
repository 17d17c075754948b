/* internal.h - what the library's source files share and users do not see. */
#ifndef NR_INTERNAL_H
#define NR_INTERNAL_H

#include "neurite.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define NR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NR_UNUSED __attribute__((unused))
#else
#define NR_PRINTF(f, a)
#define NR_UNUSED
#endif

#define NR_ALIGN 64

/* Element-wise loops are compiled for AVX-512, AVX2 and baseline x86-64 and the best is picked when the
 * library loads (GCC/clang function multi-versioning, ifunc), so one binary is fast everywhere. The
 * versions compute the same numbers: element-wise, no reassociation, no contraction. */
#if defined(__x86_64__) && defined(__gnu_linux__) && !defined(__SANITIZE_ADDRESS__) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 6))
#define NR_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NR_SIMD_CLONES
#endif

/* Tensor flag: state kept with the parameters but not trained (batch-norm running statistics). */
#define NR__TENSOR_STATE 0x100

/* ---- errors (error.c) ---- */

/* Records a message for nr_error_message and returns `code`, so a failure is `return nr__fail(...)`. */
nr_status nr__fail(nr_status code, const char *fmt, ...) NR_PRINTF(2, 3);

/* Puts "prefix: " in front of the current message (e.g. a file name) and returns `code`. */
nr_status nr__prefix(nr_status code, const char *fmt, ...) NR_PRINTF(2, 3);

/* ---- checked sizes and aligned memory (alloc.c) ---- */

static inline bool nr__mul(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool nr__add(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* The most floats one buffer may hold: 2^34 (64 GiB), so that a size read from a file or a flag is refused
 * before it can exhaust memory or overflow arithmetic downstream. */
#define NR_MAX_FLOATS ((size_t)1 << 34)

/* `count` zeroed floats, 64-byte aligned; NULL with the message set on overflow or no memory. */
float *nr__floats(size_t count);
/* Zeroed, 64-byte aligned memory for count * size bytes; NULL with the message set on failure. */
void *nr__alloc(size_t count, size_t size);
void nr__free(void *ptr);

/* ---- threads (threads.c) ---- */

/* Calls fn(ctx, begin, end) over [0, n) split into contiguous chunks of at least `grain` items, on the pool.
 * Chunk boundaries may depend on the thread count, so fn must compute each item the same way whatever
 * range it is given. Runs inline when the pool is busy (a second user thread) or n is small. */
typedef void (*nr__range_fn)(void *ctx, size_t begin, size_t end);
void nr__parallel_for(size_t n, size_t grain, nr__range_fn fn, void *ctx);

/* Asks for the lines of [p, p + bytes) in the state a write needs (x86's prefetchw; elsewhere a plain hint), all
 * at once: a pass that overwrites a buffer which another core read since (the lecture's ReLU backward writes the
 * g_h that the other thread's weight-gradient product read in the step before) then waits for the lines'
 * ownership together instead of one line after another. */
static inline void nr__prefetch_for_write(void *p, size_t bytes)
{
    for (char *c = (char *)p, *e = c + bytes; c < e; c += 64) {
#if defined(__x86_64__) && defined(__GNUC__)
        __asm__ volatile("prefetchw %0" ::"m"(*c));
#else
        __builtin_prefetch(c, 1, 3);
#endif
    }
}

/* Which part of a pool job the calling thread is running (0 .. threads-1), or -1 outside one. A part runs on
 * one thread at a time, whichever claims it, so state kept per part does not depend on the timing. */
int nr__pool_part(void);

/* ---- matrix products (gemm.c) ---- */

/* The unchecked form of nr_sgemm that layers use once shapes are known to be right. */
void nr__gemm(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* How threads divide a product. AUTO: by the data each thread reads. The others keep a weight matrix's
 * rows on the thread that updates them in the optimizer step (which splits each tensor by rows the same
 * way), so that a training step hands only activations between cores (docs/gemm.md, "Two cores"):
 * K when the weights are op(B) (a dense layer's forward pass: thread t multiplies by its k blocks and the
 * partial products are added in k order, bit for bit what one thread computes), M when they are C (the
 * weight gradient), N when their rows are C's columns (the input gradient through W^T). A split that does
 * not fit the shape falls back to AUTO; the values never depend on the split. */
typedef enum nr__split { NR__SPLIT_AUTO, NR__SPLIT_M, NR__SPLIT_N, NR__SPLIT_K } nr__split;
void nr__gemm_split(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                    const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* A plain SGD step folded into the product that computes a weight gradient G = op(A) op(B) (m x n, laid out
 * like the weights w): w = w - lr (G + decay w), applied to each tile as it is final, with the roundings of
 * the optimizer's step, and G itself never stored (nr_net_backward_step). False, having done nothing, where
 * the product cannot fold: a k of KSPLIT_MIN_K or more (more than one k block), or a backend without
 * tiles; the caller then computes G and steps as usual. */
bool nr__gemm_sgd_step(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, const float *a,
                       size_t lda, const float *b, size_t ldb, float *w, size_t ldw, float lr, float decay);
/* How many products have run split along k so far (for tests: the split must not be silently skipped). */
size_t nr__gemm_ksplits(void);

/* Weights laid out for one-row products (batch-1 inference, nr_net_prepack). A row of C that is wider than
 * one register tile is computed tile by tile, each pass reading a stretch of every row of B; with B stored
 * row-major those stretches are scattered (MLP-512's first layer: 1 KB of every 2 KB row per pass) and the
 * hardware prefetchers lose a fifth of the rate they reach on contiguous memory. Packed, each pass reads one
 * contiguous panel of k x width floats.
 * nr__gemm_panel_width: the panel width (floats) for rows of n columns under the active backend and thread
 * count: its one-row tile's, or a thread's share of a row that fits one tile; 0 when packing gains nothing
 * (the backend has no tiles, or one thread and n fits one tile).
 * nr__gemm_pack_panels: B (k x n, row stride ldb) into dst, ceil(n / width) panels of k x width floats, each
 * row's unused tail zero.
 * nr__gemm_row_packed: c (1 x n) = a (1 x k) B + bias (NULL: no bias) from the packed B, the same bits as
 * nr__gemm with c set to the bias and beta 1 (each thread sets its own columns); false (nothing done) if
 * `width` is not nr__gemm_panel_width(n) now (the backend or thread count changed since packing), and the
 * caller then multiplies by B in place. */
size_t nr__gemm_panel_width(size_t n);
void nr__gemm_pack_panels(size_t k, size_t n, const float *b, size_t ldb, size_t width, float *dst);
bool nr__gemm_row_packed(size_t n, size_t k, const float *a, const float *packed, size_t width, const float *bias,
                         float *c);
/* y (1 x n2) = act(h) W2 + b2 where h (1 x n1) = x (1 x k1) W1 + b1: one sample through dense, element-wise,
 * dense, in one pool job. Thread t computes its panels of h (W1 packed, panel width width1), applies act to
 * them (into hact) and multiplies them by the rows of W2 they meet, which are exactly k block t of the second
 * product; the caller adds the blocks' partial rows in k order. W2 is packed (width2) or in place (width2 0,
 * row stride n2). h and hact are filled as the two layers would fill them, and every value has the bits of the
 * three steps run one after the other. false (nothing done) unless there are two threads or more, each
 * thread's columns are whole panels and one k block of the second product, and the widths are current. */
typedef void (*nr__elementwise_fn)(const void *ctx, const float *x, float *y, size_t count);
bool nr__gemm_row_pair(size_t k1, size_t n1, const float *x, const float *w1, size_t width1, const float *b1,
                       nr__elementwise_fn act, const void *act_ctx, float *h, float *hact, size_t n2,
                       const float *w2, size_t width2, const float *b2, float *y);
/* How many one-sample pairs nr__gemm_row_pair has run (for tests: the fused pass must really run). */
size_t nr__gemm_row_pairs(void);

/* ---- checksums (crc32.c) ---- */

/* Continues a CRC-32 (start with 0) over len bytes; crc32("123456789") = 0xcbf43926. */
uint32_t nr__crc32(uint32_t crc, const void *data, size_t len);

/* ---- random numbers (rng.c) ---- */

/* Natural logarithm of x > 0 computed the same way everywhere (no libm), for the normal distribution. */
double nr__log(double x);

/* ---- layers (layer_*.c) ---- */

typedef struct nr_layer nr_layer;

/* What a pass hands each layer: where the flat buffers are, whether this is training, and a generator. */
typedef struct nr_pass {
    float *params;
    float *grads;
    int training;
    nr_rng *rng;
    /* Backward: the gradient buffer holds stale values; write each parameter gradient (beta 0) instead of
     * adding to it. Every layer with parameters must honour this for all of its trainable tensors. */
    bool overwrite;
    /* Backward with the optimizer step fused in (nr_net_backward_step), else NULL: see nr__pass_sgd_target. */
    nr_optimizer *fused_step;
} nr_pass;

#define NR_LAYER_INTS 8
#define NR_LAYER_FLOATS 4
#define NR_LAYER_TENSORS 4

/* A tensor a layer declares during setup; the network places it in the flat buffers. */
typedef struct nr_layer_tensor {
    char suffix[8];                 /* "w", "b", ... appended to the layer's name */
    int ndim;
    size_t shape[NR_MAX_DIMS];
    unsigned flags;
} nr_layer_tensor;

/* The interface every layer kind implements (one file per kind). */
typedef struct nr_layer_ops {
    const char *tag;  /* stable text tag, written into model files */
    /* Checks the configuration against in_shape, sets out_shape and declares tensors. Must not allocate. */
    nr_status (*setup)(nr_layer *l);
    /* y = f(x) for n samples. */
    void (*forward)(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n);
    /* Adds dL/dx to dx (writes it, if writes_dx; dx may be NULL when nobody needs it) and dL/dparams to the
     * gradient buffer. */
    void (*backward)(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy, float *dx,
                     size_t n);
    /* Fills the layer's tensors for training from scratch (NULL: nothing to fill). `next` is the activation
     * that follows the layer, for NR_INIT_AUTO. */
    void (*init)(nr_layer *l, float *params, nr_init init, nr_act next, nr_rng *rng);
    /* Floats of scratch memory the layer needs for a batch of n (NULL: none). */
    size_t (*scratch)(const nr_layer *l, size_t n);
    /* A short description for summaries. */
    void (*describe)(const nr_layer *l, char *buf, size_t cap);
    /* Backward writes every element of dx rather than adding to it, so the network need not zero dx first:
     * a pass over the largest buffers of a CNN saved, and the writes land in each thread's own cache. */
    bool writes_dx;
} nr_layer_ops;

struct nr_layer {
    const nr_layer_ops *ops;
    /* The configuration, which with the tag is all a model file needs to rebuild the layer. */
    int64_t ints[NR_LAYER_INTS];
    float floats[NR_LAYER_FLOATS];
    size_t in_shape[3], out_shape[3];  /* height, width, channels */
    size_t in_size, out_size;
    /* Filled by setup; placed by the network. */
    nr_layer_tensor tensors[NR_LAYER_TENSORS];
    int n_tensors;
    size_t tensor_offset[NR_LAYER_TENSORS];  /* into the flat buffers */
    size_t param_count;
    float *scratch;  /* planned by the network for its batch capacity */
    const float *packed;  /* nr_net_prepack: W in column panels of packed_width floats, or NULL */
    size_t packed_width;
};

/* The layer kinds. */
extern const nr_layer_ops nr__dense_ops;
extern const nr_layer_ops nr__identity_ops, nr__relu_ops, nr__leaky_relu_ops, nr__sigmoid_ops, nr__tanh_ops,
    nr__softmax_ops;
extern const nr_layer_ops nr__conv2d_ops, nr__maxpool_ops, nr__avgpool_ops, nr__flatten_ops, nr__batchnorm_ops,
    nr__dropout_ops;

/* The layer kind of an activation; NULL for a value outside nr_act. */
const nr_layer_ops *nr__act_ops_for(nr_act act);
/* For nr__gemm_row_pair: y = f(x) over `count` elements as activation layer `ctx` (a const nr_layer *, not
 * softmax) computes them in its forward pass, on the calling thread. */
void nr__act_elementwise(const void *ctx, const float *x, float *y, size_t count);

/* Finds a layer kind by tag; NULL if unknown. */
const nr_layer_ops *nr__layer_ops_by_tag(const char *tag);

/* Shared by initialisers: fills `count` floats for a weight of the given fans. */
void nr__init_weights(float *w, size_t count, size_t fan_in, size_t fan_out, nr_init init, nr_act next,
                      nr_rng *rng);

/* Runs a layer's setup for an input shape and fills in_size, out_size and param_count, allocating nothing:
 * what a model loader checks against the file's length before it builds anything. */
nr_status nr__layer_prepare(const size_t in_shape[3], nr_layer *l);

/* Appends a configured layer (ints/floats set, ops chosen) to the network: runs setup, places tensors. */
nr_status nr__net_append(nr_net *net, const nr_layer *layer);
/* Grows the parameter and gradient buffers to hold `total` floats, keeping their values, so that appending
 * many layers copies them once instead of once per layer. Leaves the network as it was on failure. */
nr_status nr__net_reserve(nr_net *net, size_t total);

/* ==== Winograd convolutions (conv_winograd.c), for layer_conv.c ==== */

/* A 3x3, stride-1 convolution: input h x w x cin, `pad` (0 to 2) zeros around it, output oh x ow x cout. m: the
 * tile side, 2 for F(2x2, 3x3) or 4 for F(4x4, 3x3); 0 lets nr__wino_tile choose. */
typedef struct nr__wino_shape {
    size_t h, w, cin, oh, ow, cout, pad, m;
} nr__wino_shape;

/* The tile side a shape runs with: its m if set, else the one with fewer products (4 but on tiny images). */
size_t nr__wino_tile(const nr__wino_shape *s);
/* Floats of scratch for batches of up to n (more than NR_MAX_FLOATS on overflow). */
size_t nr__wino_scratch(const nr__wino_shape *s, size_t n);
/* y = conv(x, w) + bias (bias may be NULL); w is (3, 3, cin, cout). */
void nr__wino_forward(const nr__wino_shape *s, const float *w, const float *bias, const float *x, float *y,
                      size_t n, float *scratch);
/* From x, w and dy alone (scratch is only workspace): dw and db (NULL: no bias) written (overwrite) or added to, and
 * dx (NULL: not wanted) added to. */
void nr__wino_backward(const nr__wino_shape *s, const float *w, const float *x, const float *dy, float *dx,
                       float *dw, float *db, bool overwrite, size_t n, float *scratch);

/* ==== end of Winograd convolutions ==== */

/* ---- element-wise helpers (layer_act.c) ---- */
void nr__softmax_rows(const float *x, float *y, size_t n, size_t d);

/* ---- optimizers (optim.c) ---- */

/* The L2 norm of a gradient laid out like the optimizer's network, summed in fixed blocks. */
double nr__grad_norm(nr_optimizer *opt, const float *grads);
/* The two halves of nr_opt_step, for the trainer that puts its own steps between them. nr__opt_clip: the factor
 * (1 unless clipping is on and needed) that brings the gradient's norm down to the clipping norm, and the norm
 * (if grad_norm is not NULL); NR_ENUMERIC if the norm is not finite. nr__opt_update: one update at learning
 * rate lr with the gradient scaled by gscale (the factor rides along the update: no extra pass). */
nr_status nr__opt_clip(nr_optimizer *opt, nr_net *net, float *gscale, double *grad_norm);
nr_status nr__opt_update(nr_optimizer *opt, nr_net *net, float lr, float gscale);
/* In a backward pass with the step fused in (nr_net_backward_step), for the trainable tensor at `offset`
 * (`rows` rows) whose gradient one product writes whole: with plain SGD, its weights, learning rate and
 * decay for nr__gemm_sgd_step, else NULL (the tensor is updated after the pass). A layer whose product
 * folded the step calls nr__pass_sgd_taken, after everything else that reads the old weights. */
float *nr__pass_sgd_target(const nr_pass *pass, size_t offset, size_t rows, float *lr, float *decay);
void nr__pass_sgd_taken(const nr_pass *pass, size_t offset);
/* The fused pass itself: the backward pass of nr_net_backward with `fused_step` set in its nr_pass. */
nr_status nr__net_backward(nr_net *net, nr_optimizer *fused_step);
/* Restores the step counter (Adam's bias correction depends on it) when resuming. */
void nr__opt_set_steps(nr_optimizer *opt, uint64_t steps);

/* ---- losses (loss.c) ---- */

/* The loss of outputs y (n x d) and its gradient dL/dy into grad (n x d). */
nr_status nr__loss(nr_loss loss, const float *y, const float *targets, const int32_t *labels, size_t n, size_t d,
                   double *value, float *grad);

#endif
