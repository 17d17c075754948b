/* layer_conv.c - 2-D convolution over channels-last (HWC) images, as im2col and one matrix product.
 *
 * im2col copies every k x k x cin window of the input into one row of a matrix `col`, in the order
 * (kernel row, kernel column, channel) that the weight (k, k, cin, cout) is stored in. With channels last, the
 * rows of a whole batch stack into one (n*oh*ow) x (k*k*cin) matrix, and a single product
 * col . W gives the output (n*oh*ow) x cout, which is already the batch in HWC: the same product as a dense
 * layer. Backward is the dense layer's too: dW += col^T . dY, dcol = dY . W^T, and col2im adds each window of
 * dcol back onto the pixels it was copied from. A window row of cin-channel pixels is contiguous in HWC, so
 * both copies move runs of kernel * cin floats.
 *
 * col lives in the layer's scratch; forward leaves it there for backward's dW, and backward then reuses the
 * same memory for dcol. A 1x1 kernel with stride 1 and no padding needs no col at all: it is x itself.
 *
 * Config: ints[0] = filters, ints[1] = kernel, ints[2] = stride, ints[3] = pad, ints[4] = has bias.
 * Padding must be smaller than the kernel (a window wholly in the border would only see zeros). A vector is a
 * 1x1xC image: a 1x1 kernel on it is allowed (a dense layer by another name), a wider kernel is refused,
 * because all but its centre would multiply padding (the usual cause is a network built with nr_net_new
 * instead of nr_net_new_image). */
#include "core/internal.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

enum { GRAIN = 16384, BLOCK = 8 };  /* GRAIN: floats moved per parallel chunk at least */

/* Row blocks for the products: the BLAS backend takes int dimensions. */
#define GEMM_ROWS ((size_t)1 << 30)

/* Bounds for numbers that may come from a model file; far above any real network, low enough that no
 * product of them overflows before the size checks. */
#define MAX_KERNEL ((int64_t)1 << 16)
#define MAX_STRIDE ((int64_t)1 << 16)

typedef struct conv_geom {
    size_t h, w, cin;    /* input image */
    size_t oh, ow, cout; /* output image */
    size_t k, s, pad;
    size_t row;          /* k * k * cin: one window, one column of W */
    size_t ld;           /* the row stride of col: row, or row + 1 with the bias column */
} conv_geom;

static conv_geom geom(const nr_layer *l)
{
    conv_geom g;
    g.h = l->in_shape[0];
    g.w = l->in_shape[1];
    g.cin = l->in_shape[2];
    g.oh = l->out_shape[0];
    g.ow = l->out_shape[1];
    g.cout = l->out_shape[2];
    g.k = (size_t)l->ints[1];
    g.s = (size_t)l->ints[2];
    g.pad = (size_t)l->ints[3];
    g.row = g.k * g.k * g.cin;
    g.ld = g.row;
    return g;
}

/* Whether x is used as col directly. */
static bool pointwise(const conv_geom *g) { return g->k == 1 && g->s == 1 && g->pad == 0; }

/* Whether the bias rides in the product: col gets a last column of ones and W a last row b, which is where
 * b already lies (the network places a layer's tensors one after another). Then forward needs no pass to
 * add the bias and backward gets db = ones^T . dY from the same product as dW. */
static bool fused_bias(const nr_layer *l, const conv_geom *g)
{
    return l->ints[4] && !pointwise(g) && l->tensor_offset[1] == l->tensor_offset[0] + g->row * g->cout;
}

/* ---- the choice of algorithm ----
 * Derived from the geometry alone (never stored: a model file holds only the configuration), so the same
 * layer always takes the same path and plans the same scratch. */

typedef enum conv_algo { ALGO_IM2COL = 0, ALGO_WINOGRAD } conv_algo;

/* Winograd needs enough input channels to make its products worth their transforms: a 28x28 image to 32
 * channels ran faster with im2col up to 6 input channels and slower from 8 (docs/conv.md). */
enum { WINO_MIN_CIN = 8 };

/* NEURITE_CONV, read once: "im2col" forces the reference path everywhere, "winograd", "winograd2" or
 * "winograd4" force Winograd (and its tile) wherever it applies, anything else (or nothing) is the default
 * choice. For checking one path against another; it never changes between planning and running. */
enum { FORCE_UNSET = -1, FORCE_NONE, FORCE_IM2COL, FORCE_WINO, FORCE_WINO2, FORCE_WINO4 };
static _Atomic int forced = FORCE_UNSET;

static int force(void)
{
    int f = atomic_load_explicit(&forced, memory_order_relaxed);
    if (f == FORCE_UNSET) {
        const char *e = getenv("NEURITE_CONV");
        f = !e ? FORCE_NONE
            : strcmp(e, "im2col") == 0    ? FORCE_IM2COL
            : strcmp(e, "winograd") == 0  ? FORCE_WINO
            : strcmp(e, "winograd2") == 0 ? FORCE_WINO2
            : strcmp(e, "winograd4") == 0 ? FORCE_WINO4
                                          : FORCE_NONE;
        atomic_store_explicit(&forced, f, memory_order_relaxed);
    }
    return f;
}

static conv_algo algo(const conv_geom *g)
{
    const int f = force();
    const bool wino_ok = g->k == 3 && g->s == 1;
    if (f == FORCE_IM2COL || !wino_ok)
        return ALGO_IM2COL;
    if (f >= FORCE_WINO || g->cin >= WINO_MIN_CIN)
        return ALGO_WINOGRAD;
    return ALGO_IM2COL;
}

static nr__wino_shape wino_shape(const conv_geom *g)
{
    const int f = force();
    return (nr__wino_shape){g->h, g->w, g->cin, g->oh, g->ow, g->cout, g->pad,
                            f == FORCE_WINO2 ? 2 : f == FORCE_WINO4 ? 4 : 0};
}

/* The geometry with col's row stride as forward and backward use it. */
static conv_geom geom_for_pass(const nr_layer *l)
{
    conv_geom g = geom(l);
    g.ld = g.row + (fused_bias(l, &g) ? 1 : 0);
    return g;
}

static nr_status conv_setup(nr_layer *l)
{
    const int64_t filters = l->ints[0], kernel = l->ints[1], stride = l->ints[2], pad = l->ints[3];
    if (filters <= 0 || (uint64_t)filters > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "conv2d layer: %lld filters is not a positive count", (long long)filters);
    if (kernel <= 0 || kernel > MAX_KERNEL)
        return nr__fail(NR_EINVAL, "conv2d layer: kernel %lld is out of range (1 to %lld)", (long long)kernel,
                        (long long)MAX_KERNEL);
    if (stride <= 0 || stride > MAX_STRIDE)
        return nr__fail(NR_EINVAL, "conv2d layer: stride %lld is out of range (1 to %lld)", (long long)stride,
                        (long long)MAX_STRIDE);
    if (pad < 0 || pad >= kernel)
        return nr__fail(NR_EINVAL, "conv2d layer: padding %lld must be from 0 to kernel - 1 = %lld", (long long)pad,
                        (long long)kernel - 1);
    if (l->ints[4] != 0 && l->ints[4] != 1)
        return nr__fail(NR_EINVAL, "conv2d layer: bias flag %lld is not 0 or 1", (long long)l->ints[4]);
    const size_t h = l->in_shape[0], w = l->in_shape[1], cin = l->in_shape[2];
    const size_t k = (size_t)kernel, s = (size_t)stride, p = (size_t)pad;
    if (h == 1 && w == 1 && k > 1)
        return nr__fail(NR_ESHAPE, "conv2d layer: a %zux%zu kernel on a 1x1x%zu input (a vector) would see only "
                        "padding around one pixel; use kernel 1, or start from nr_net_new_image", k, k, cin);
    /* h, w <= NR_MAX_FLOATS and p < 2^16, so these sums cannot overflow. */
    if (h + 2 * p < k || w + 2 * p < k)
        return nr__fail(NR_ESHAPE, "conv2d layer: a %zux%zu kernel does not fit the %zux%zu input padded by %zu",
                        k, k, h, w, p);
    const size_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1, cout = (size_t)filters;
    size_t row, weights, pixels, col;
    if (!nr__mul(k * k, cin, &row) || !nr__mul(row, cout, &weights) || weights > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "conv2d layer: %zu x %zu x %zu x %zu weights is too many", k, k, cin, cout);
    /* col for one image, with room for the bias column; scratch and the products rely on this bound. */
    if (!nr__mul(oh, ow, &pixels) || !nr__mul(pixels, row + 1, &col) || col > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "conv2d layer: the unfolded input of one image (%zux%zu windows of %zu) is too "
                        "large", oh, ow, row);
    l->out_shape[0] = oh;
    l->out_shape[1] = ow;
    l->out_shape[2] = cout;
    l->tensors[0] = (nr_layer_tensor){"w", 4, {k, k, cin, cout}, NR_TENSOR_DECAY};
    l->n_tensors = 1;
    if (l->ints[4])
        l->tensors[l->n_tensors++] = (nr_layer_tensor){"b", 1, {cout}, 0};
    return NR_OK;
}

static size_t conv_scratch(const nr_layer *l, size_t n)
{
    conv_geom g = geom(l);
    if (algo(&g) == ALGO_WINOGRAD) {
        const nr__wino_shape ws = wino_shape(&g);
        return nr__wino_scratch(&ws, n);
    }
    if (pointwise(&g))
        return 0;
    /* Room for the bias column whenever there is a bias; per <= NR_MAX_FLOATS: checked in setup. */
    size_t per = g.oh * g.ow * (g.row + (l->ints[4] ? 1 : 0)), total;
    /* An overflow asks for more than the network may have, which the planner refuses. */
    return nr__mul(n, per, &total) ? total : NR_MAX_FLOATS + 1;
}

/* ---- im2col and col2im ---- */

typedef struct conv_job {
    conv_geom g;
    const float *x;
    float *col;
    float *dx;
    const float *dy;
    float *db;
    size_t rows;      /* n * oh * ow */
    bool overwrite;   /* write db instead of adding to it */
} conv_job;

/* The kernel columns [*kj0, *kj1) of a window starting at input column `start` that fall inside the
 * image. */
static inline void visible(ptrdiff_t start, size_t k, size_t w, size_t *kj0, size_t *kj1)
{
    *kj0 = start < 0 ? (size_t)-start : 0;
    ptrdiff_t room = (ptrdiff_t)w - start;  /* columns from start to the right border */
    *kj1 = room < (ptrdiff_t)k ? (room > 0 ? (size_t)room : 0) : k;
    if (*kj1 < *kj0)
        *kj1 = *kj0;
}

/* Short runs (the few channels of a first layer) are copied inline: a library call per run would cost more
 * than the copy. In fixed-size pieces, because compilers turn a plain element loop back into a call. */
static inline void copy_run(float *restrict d, const float *restrict s, size_t len)
{
    if (len > 16) {
        memcpy(d, s, len * sizeof(float));
        return;
    }
    for (; len >= 4; len -= 4, d += 4, s += 4)
        memcpy(d, s, 4 * sizeof(float));
    if (len & 2) {
        memcpy(d, s, 2 * sizeof(float));
        d += 2;
        s += 2;
    }
    if (len & 1)
        *d = *s;
}

static inline void zero_run(float *d, size_t len)
{
    static const float zeros[16];
    if (len > 16)
        memset(d, 0, len * sizeof(float));
    else
        copy_run(d, zeros, len);
}

/* Items are output rows (image, oy): each writes its own ow rows of col, one kernel row at a time. Windows
 * wholly inside the image (most of them) are one straight copy per kernel row; only those that cross the
 * left or right border are cut into zeros and pixels. */
static void im2col_range(void *ctx, size_t b, size_t e)
{
    const conv_job *j = ctx;
    const conv_geom g = j->g;
    const size_t run = g.k * g.cin;  /* one kernel row of a window */
    /* The output columns [inner0, inner1) have windows inside the image horizontally. */
    const size_t inner0 = g.pad ? (g.pad + g.s - 1) / g.s : 0;
    const size_t inner1 = g.w + g.pad >= g.k ? (g.w + g.pad - g.k) / g.s + 1 : 0;
    for (size_t item = b; item < e; item++) {
        const size_t img = item / g.oh, oy = item % g.oh;
        const float *src = j->x + img * g.h * g.w * g.cin;
        float *rows = j->col + item * g.ow * g.ld;
        if (g.ld > g.row)
            for (size_t ox = 0; ox < g.ow; ox++)
                rows[ox * g.ld + g.row] = 1.0f;  /* the bias column */
        for (size_t ki = 0; ki < g.k; ki++) {
            float *dst = rows + ki * run;
            const ptrdiff_t iy = (ptrdiff_t)(oy * g.s + ki) - (ptrdiff_t)g.pad;
            if (iy < 0 || iy >= (ptrdiff_t)g.h) {
                for (size_t ox = 0; ox < g.ow; ox++)
                    zero_run(dst + ox * g.ld, run);
                continue;
            }
            const float *srow = src + (size_t)iy * g.w * g.cin;
            for (size_t ox = 0; ox < g.ow; ox++) {
                float *d = dst + ox * g.ld;
                const ptrdiff_t x0 = (ptrdiff_t)(ox * g.s) - (ptrdiff_t)g.pad;
                if (ox >= inner0 && ox < inner1) {
                    copy_run(d, srow + (size_t)x0 * g.cin, run);
                    continue;
                }
                size_t kj0, kj1;
                visible(x0, g.k, g.w, &kj0, &kj1);
                zero_run(d, kj0 * g.cin);
                copy_run(d + kj0 * g.cin, srow + (size_t)(x0 + (ptrdiff_t)kj0) * g.cin, (kj1 - kj0) * g.cin);
                zero_run(d + kj1 * g.cin, (g.k - kj1) * g.cin);
            }
        }
    }
}

/* d += s. In blocks of BLOCK, because GCC at -O2 vectorises only loops whose trip count it knows. */
static inline void add_run(float *restrict d, const float *restrict s, size_t len)
{
    size_t i = 0;
    for (; i + BLOCK <= len; i += BLOCK)
        for (size_t t = 0; t < BLOCK; t++)
            d[i + t] += s[i + t];
    for (; i < len; i++)
        d[i] += s[i];
}

/* Items are images: windows overlap within an image, so one thread owns all of an image's dx and adds its
 * windows in a fixed order. */
static void col2im_range(void *ctx, size_t b, size_t e)
{
    const conv_job *j = ctx;
    const conv_geom g = j->g;
    for (size_t img = b; img < e; img++) {
        float *dimg = j->dx + img * g.h * g.w * g.cin;
        const float *src = j->col + img * g.oh * g.ow * g.ld;
        for (size_t oy = 0; oy < g.oh; oy++)
            for (size_t ox = 0; ox < g.ow; ox++, src += g.ld) {
                const ptrdiff_t x0 = (ptrdiff_t)(ox * g.s) - (ptrdiff_t)g.pad;
                size_t kj0, kj1;
                visible(x0, g.k, g.w, &kj0, &kj1);
                const size_t len = (kj1 - kj0) * g.cin;
                for (size_t ki = 0; ki < g.k; ki++) {
                    const ptrdiff_t iy = (ptrdiff_t)(oy * g.s + ki) - (ptrdiff_t)g.pad;
                    if (iy < 0 || iy >= (ptrdiff_t)g.h)
                        continue;
                    add_run(dimg + ((size_t)iy * g.w + (size_t)(x0 + (ptrdiff_t)kj0)) * g.cin,
                            src + (ki * g.k + kj0) * g.cin, len);
                }
            }
    }
}

static inline void sum_block(double *restrict acc, const float *restrict x, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        acc[i] += x[i];
}

/* Items are output channels: each sums its column of dY over all rows, in row order. */
static void bias_grad_range(void *ctx, size_t b, size_t e)
{
    enum { TILE = 64 };
    const conv_job *j = ctx;
    const size_t cout = j->g.cout;
    for (size_t c0 = b; c0 < e; c0 += TILE) {
        const size_t c1 = c0 + TILE < e ? c0 + TILE : e;
        double acc[TILE] = {0};
        for (size_t r = 0; r < j->rows; r++) {
            const float *dyr = j->dy + r * cout + c0;
            size_t i = 0;
            for (; i + BLOCK <= c1 - c0; i += BLOCK)
                sum_block(acc + i, dyr + i, BLOCK);
            sum_block(acc + i, dyr + i, c1 - c0 - i);
        }
        for (size_t c = c0; c < c1; c++)
            j->db[c] = (float)acc[c - c0] + (j->overwrite ? 0.0f : j->db[c]);
    }
}

static size_t grain_for(size_t work_per_item)
{
    return work_per_item >= GRAIN ? 1 : GRAIN / (work_per_item ? work_per_item : 1);
}

/* ---- forward and backward ---- */

static void conv_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    const conv_geom g = geom_for_pass(l);
    const size_t rows = n * g.oh * g.ow;
    const float *w = p->params + l->tensor_offset[0];
    if (algo(&g) == ALGO_WINOGRAD) {
        const nr__wino_shape ws = wino_shape(&g);
        nr__wino_forward(&ws, w, l->ints[4] ? p->params + l->tensor_offset[1] : NULL, x, y, n, l->scratch);
        return;
    }
    const float *col = x;
    if (!pointwise(&g)) {
        conv_job j = {.g = g, .x = x, .col = l->scratch};
        nr__parallel_for(n * g.oh, grain_for(g.ow * g.ld), im2col_range, &j);
        col = l->scratch;
    }
    float beta = 0.0f;
    if (l->ints[4] && g.ld == g.row) {
        /* No bias column: start every output pixel at the bias, then accumulate col . W onto it. */
        const float *bias = p->params + l->tensor_offset[1];
        for (size_t r = 0; r < rows; r++)
            memcpy(y + r * g.cout, bias, g.cout * sizeof(float));
        beta = 1.0f;
    }
    for (size_t r0 = 0; r0 < rows; r0 += GEMM_ROWS) {
        const size_t m = rows - r0 < GEMM_ROWS ? rows - r0 : GEMM_ROWS;
        nr__gemm(NR_NO_TRANS, NR_NO_TRANS, m, g.cout, g.ld, 1.0f, col + r0 * g.ld, g.ld, w, g.cout, beta,
                 y + r0 * g.cout, g.cout);
    }
}

static void conv_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                          float *dx, size_t n)
{
    (void)y;
    const conv_geom g = geom_for_pass(l);
    const size_t rows = n * g.oh * g.ow;
    const float *w = p->params + l->tensor_offset[0];
    float *dw = p->grads + l->tensor_offset[0];
    if (algo(&g) == ALGO_WINOGRAD) {
        const nr__wino_shape ws = wino_shape(&g);
        nr__wino_backward(&ws, w, x, dy, dx, dw, l->ints[4] ? p->grads + l->tensor_offset[1] : NULL, p->overwrite,
                          n, l->scratch);
        return;
    }
    const bool direct = pointwise(&g);
    /* The forward pass left col in scratch (or col is x). */
    float *col = direct ? NULL : l->scratch;
    const float *colr = direct ? x : col;
    if (l->ints[4] && g.ld == g.row) {
        conv_job j = {.g = g, .dy = dy, .db = p->grads + l->tensor_offset[1], .rows = rows,
                      .overwrite = p->overwrite};
        nr__parallel_for(g.cout, grain_for(rows), bias_grad_range, &j);
    }
    /* dW (ld x cout, with db as its last row when fused) += col^T . dY, reducing over the rows block after
     * block. */
    float wbeta = p->overwrite ? 0.0f : 1.0f;  /* the first block writes when the buffer is stale */
    for (size_t r0 = 0; r0 < rows; r0 += GEMM_ROWS) {
        const size_t m = rows - r0 < GEMM_ROWS ? rows - r0 : GEMM_ROWS;
        nr__gemm(NR_TRANS, NR_NO_TRANS, g.ld, g.cout, m, 1.0f, colr + r0 * g.ld, g.ld, dy + r0 * g.cout, g.cout,
                 wbeta, dw, g.cout);
        wbeta = 1.0f;
    }
    if (!dx)
        return;  /* the first layer: nobody needs dcol */
    /* dcol = dY . W^T; straight into dx when col is x, else over col (its last use was dW) and then back onto
     * the pixels. */
    float *dst = direct ? dx : col;
    const float beta = direct ? 1.0f : 0.0f;
    for (size_t r0 = 0; r0 < rows; r0 += GEMM_ROWS) {
        const size_t m = rows - r0 < GEMM_ROWS ? rows - r0 : GEMM_ROWS;
        nr__gemm(NR_NO_TRANS, NR_TRANS, m, g.row, g.cout, 1.0f, dy + r0 * g.cout, g.cout, w, g.cout, beta,
                 dst + r0 * g.ld, g.ld);
    }
    if (!direct) {
        conv_job j = {.g = g, .col = col, .dx = dx};
        nr__parallel_for(n, grain_for(g.oh * g.ow * g.row), col2im_range, &j);
    }
}

static void conv_init(nr_layer *l, float *params, nr_init init, nr_act next, nr_rng *rng)
{
    const conv_geom g = geom(l);
    /* Fans as PyTorch counts them: each output sees k*k*cin inputs, each input feeds k*k*cout outputs. */
    nr__init_weights(params + l->tensor_offset[0], g.row * g.cout, g.row, g.k * g.k * g.cout, init, next, rng);
}

static void conv_describe(const nr_layer *l, char *buf, size_t cap)
{
    const conv_geom g = geom(l);
    snprintf(buf, cap, "conv2d %zux%zu %zu->%zu s%zu p%zu%s", g.k, g.k, g.cin, g.cout, g.s, g.pad,
             l->ints[4] ? "" : " (no bias)");
}

const nr_layer_ops nr__conv2d_ops = {
    .tag = "conv2d",
    .setup = conv_setup,
    .forward = conv_forward,
    .backward = conv_backward,
    .init = conv_init,
    .scratch = conv_scratch,
    .describe = conv_describe,
};

nr_status nr_net_conv2d(nr_net *net, size_t filters, size_t kernel, size_t stride, size_t pad, int bias)
{
    if (filters == 0 || filters > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "conv2d layer: %zu filters is not a positive count", filters);
    if (kernel == 0 || kernel > (size_t)MAX_KERNEL)
        return nr__fail(NR_EINVAL, "conv2d layer: kernel %zu is out of range (1 to %lld)", kernel,
                        (long long)MAX_KERNEL);
    if (stride == 0 || stride > (size_t)MAX_STRIDE)
        return nr__fail(NR_EINVAL, "conv2d layer: stride %zu is out of range (1 to %lld)", stride,
                        (long long)MAX_STRIDE);
    if (pad >= kernel)
        return nr__fail(NR_EINVAL, "conv2d layer: padding %zu must be from 0 to kernel - 1 = %zu", pad, kernel - 1);
    nr_layer l = {.ops = &nr__conv2d_ops,
                  .ints = {(int64_t)filters, (int64_t)kernel, (int64_t)stride, (int64_t)pad, bias ? 1 : 0}};
    return nr__net_append(net, &l);
}
