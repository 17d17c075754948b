/* layer_pool.c - max and average pooling over size x size windows, per channel, on HWC images.
 *
 * Two tags ("maxpool", "avgpool") share the geometry and the loops. Windows that do not fit are dropped:
 * the output side is (side - size) / stride + 1, as PyTorch's default (no padding, floor). In HWC one pixel's
 * channels are contiguous, so every window step works on a whole run of channels at once.
 *
 * Max pooling remembers in its scratch which input element won each output (its offset within the image),
 * and backward routes the gradient there; ties go to the first element in row-major window order, and a NaN
 * wins (it propagates, as in PyTorch). Average pooling spreads each gradient evenly over its window.
 * Backward works image by image, because windows overlap when stride < size.
 *
 * Config: ints[0] = size, ints[1] = stride (resolved: the public call turns 0 into size). */
#include "core/internal.h"

#include <stdio.h>

enum { GRAIN = 16384, BLOCK = 8 };

#define MAX_STRIDE ((int64_t)1 << 16)

typedef struct pool_geom {
    size_t h, w, c, oh, ow, k, s;
} pool_geom;

static pool_geom geom(const nr_layer *l)
{
    return (pool_geom){l->in_shape[0], l->in_shape[1], l->in_shape[2], l->out_shape[0], l->out_shape[1],
                       (size_t)l->ints[0], (size_t)l->ints[1]};
}

static bool is_max(const nr_layer *l) { return l->ops == &nr__maxpool_ops; }

static nr_status pool_setup(nr_layer *l)
{
    const char *tag = l->ops->tag;
    const int64_t size = l->ints[0], stride = l->ints[1];
    const size_t h = l->in_shape[0], w = l->in_shape[1];
    if (size <= 0)
        return nr__fail(NR_EINVAL, "%s layer: window size %lld is not positive", tag, (long long)size);
    if (stride <= 0 || stride > MAX_STRIDE)
        return nr__fail(NR_EINVAL, "%s layer: stride %lld is out of range (1 to %lld)", tag, (long long)stride,
                        (long long)MAX_STRIDE);
    if ((uint64_t)size > h || (uint64_t)size > w)
        return nr__fail(NR_ESHAPE, "%s layer: a %lldx%lld window does not fit the %zux%zu input", tag,
                        (long long)size, (long long)size, h, w);
    /* The winners' offsets are stored as 32-bit numbers. */
    if (is_max(l) && l->in_size > UINT32_MAX)
        return nr__fail(NR_EINVAL, "%s layer: an input of %zu floats per image is too large", tag, l->in_size);
    l->out_shape[0] = (h - (size_t)size) / (size_t)stride + 1;
    l->out_shape[1] = (w - (size_t)size) / (size_t)stride + 1;
    l->out_shape[2] = l->in_shape[2];
    return NR_OK;
}

static size_t maxpool_scratch(const nr_layer *l, size_t n)
{
    /* One uint32 per output element, in float-sized slots. */
    size_t total;
    return nr__mul(n, l->out_size, &total) ? total : NR_MAX_FLOATS + 1;
}

typedef struct pool_job {
    pool_geom g;
    const float *x, *dy;
    float *y, *dx;
    uint32_t *arg;
} pool_job;

/* One output pixel: the max over its window for all channels at once. In HWC a pixel's channels are
 * contiguous, so the channel loop is the vector loop (restrict and branch-free selects let it vectorise);
 * a NaN wins and then stays, ties keep the first. */
static inline void max_window(const pool_geom *g, const float *restrict src, size_t first, float *restrict out,
                              uint32_t *restrict arg)
{
    const size_t C = g->c;
    for (size_t c = 0; c < C; c++) {
        out[c] = src[first + c];
        arg[c] = (uint32_t)(first + c);
    }
    for (size_t ki = 0; ki < g->k; ki++)
        for (size_t kj = ki ? 0 : 1; kj < g->k; kj++) {
            const size_t at = first + (ki * g->w + kj) * C;
            const float *restrict v = src + at;
            for (size_t c = 0; c < C; c++) {
                const float cand = v[c], cur = out[c];
                const bool take = (cand > cur) | ((cand != cand) & (cur == cur));
                out[c] = take ? cand : cur;
                arg[c] = take ? (uint32_t)(at + c) : arg[c];
            }
        }
}

static inline void sum_window(const pool_geom *g, const float *restrict src, size_t first, float inv,
                              float *restrict out)
{
    const size_t C = g->c;
    for (size_t c = 0; c < C; c++)
        out[c] = 0.0f;
    for (size_t ki = 0; ki < g->k; ki++)
        for (size_t kj = 0; kj < g->k; kj++) {
            const float *restrict v = src + first + (ki * g->w + kj) * C;
            for (size_t c = 0; c < C; c++)
                out[c] += v[c];
        }
    for (size_t c = 0; c < C; c++)
        out[c] *= inv;
}

/* Items are output rows (image, oy). */
NR_SIMD_CLONES static void pool_forward_range(void *ctx, size_t b, size_t e)
{
    const pool_job *j = ctx;
    const pool_geom g = j->g;
    const float inv = 1.0f / (float)(g.k * g.k);
    for (size_t item = b; item < e; item++) {
        const size_t img = item / g.oh, oy = item % g.oh;
        const float *src = j->x + img * g.h * g.w * g.c;
        for (size_t ox = 0; ox < g.ow; ox++) {
            const size_t first = (oy * g.s * g.w + ox * g.s) * g.c, o = (item * g.ow + ox) * g.c;
            if (j->arg)
                max_window(&g, src, first, j->y + o, j->arg + o);
            else
                sum_window(&g, src, first, inv, j->y + o);
        }
    }
}

/* Items are images. */
static void maxpool_backward_range(void *ctx, size_t b, size_t e)
{
    const pool_job *j = ctx;
    const pool_geom g = j->g;
    const size_t in = g.h * g.w * g.c, out = g.oh * g.ow * g.c;
    for (size_t img = b; img < e; img++) {
        float *dimg = j->dx + img * in;
        const float *d = j->dy + img * out;
        const uint32_t *arg = j->arg + img * out;
        memset(dimg, 0, in * sizeof(float));  /* writes_dx: zeroed here, while the image is in this core's cache */
        for (size_t i = 0; i < out; i++)
            dimg[arg[i]] += d[i];
    }
}

static inline void spread(float *restrict t, const float *restrict d, float inv, size_t cnt)
{
    for (size_t c = 0; c < cnt; c++)
        t[c] += d[c] * inv;
}

static void avgpool_backward_range(void *ctx, size_t b, size_t e)
{
    const pool_job *j = ctx;
    const pool_geom g = j->g;
    const float inv = 1.0f / (float)(g.k * g.k);
    for (size_t img = b; img < e; img++) {
        float *dimg = j->dx + img * g.h * g.w * g.c;
        const float *d = j->dy + img * g.oh * g.ow * g.c;
        memset(dimg, 0, g.h * g.w * g.c * sizeof(float));
        for (size_t oy = 0; oy < g.oh; oy++)
            for (size_t ox = 0; ox < g.ow; ox++, d += g.c)
                for (size_t ki = 0; ki < g.k; ki++) {
                    float *t = dimg + ((oy * g.s + ki) * g.w + ox * g.s) * g.c;
                    for (size_t kj = 0; kj < g.k; kj++, t += g.c) {
                        size_t c0 = 0;
                        for (; c0 + BLOCK <= g.c; c0 += BLOCK)
                            spread(t + c0, d + c0, inv, BLOCK);
                        spread(t + c0, d + c0, inv, g.c - c0);
                    }
                }
    }
}

static size_t grain_for(size_t work_per_item)
{
    return work_per_item >= GRAIN ? 1 : GRAIN / (work_per_item ? work_per_item : 1);
}

static void pool_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    (void)p;
    const pool_geom g = geom(l);
    /* Max pooling records its winners; average pooling has no scratch. */
    pool_job j = {.g = g, .x = x, .y = y, .arg = is_max(l) ? (uint32_t *)l->scratch : NULL};
    nr__parallel_for(n * g.oh, grain_for(g.ow * g.c * g.k * g.k), pool_forward_range, &j);
}

static void pool_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                          float *dx, size_t n)
{
    (void)p;
    (void)x;
    (void)y;
    if (!dx)
        return;
    const pool_geom g = geom(l);
    pool_job j = {.g = g, .dy = dy, .dx = dx, .arg = (uint32_t *)l->scratch};
    nr__parallel_for(n, grain_for(g.oh * g.ow * g.c * (is_max(l) ? 1 : g.k * g.k)),
                     is_max(l) ? maxpool_backward_range : avgpool_backward_range, &j);
}

static void pool_describe(const nr_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %lldx%lld s%lld", l->ops->tag, (long long)l->ints[0], (long long)l->ints[0],
             (long long)l->ints[1]);
}

const nr_layer_ops nr__maxpool_ops = {
    .tag = "maxpool",
    .setup = pool_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .scratch = maxpool_scratch,
    .describe = pool_describe,
    .writes_dx = true,
};

const nr_layer_ops nr__avgpool_ops = {
    .tag = "avgpool",
    .setup = pool_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .writes_dx = true,
};

static nr_status pool_add(nr_net *net, const nr_layer_ops *ops, size_t size, size_t stride)
{
    if (size == 0 || size > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "%s layer: window size %zu is not a positive size", ops->tag, size);
    if (stride == 0)
        stride = size;
    if (stride > (size_t)MAX_STRIDE)
        return nr__fail(NR_EINVAL, "%s layer: stride %zu is out of range (1 to %lld)", ops->tag, stride,
                        (long long)MAX_STRIDE);
    nr_layer l = {.ops = ops, .ints = {(int64_t)size, (int64_t)stride}};
    return nr__net_append(net, &l);
}

nr_status nr_net_maxpool(nr_net *net, size_t size, size_t stride)
{
    return pool_add(net, &nr__maxpool_ops, size, stride);
}

nr_status nr_net_avgpool(nr_net *net, size_t size, size_t stride)
{
    return pool_add(net, &nr__avgpool_ops, size, stride);
}
