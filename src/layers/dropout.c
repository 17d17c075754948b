/* layer_dropout.c - inverted dropout.
 *
 * In training each value is kept with probability 1 - rate and scaled by 1 / (1 - rate), so the expected
 * output equals the input and inference is a plain copy. The mask (0 or the scale, per value) goes to the
 * layer's scratch for backward: dx = dy * mask. It is drawn from the pass's generator one value after
 * another in order, so a seed gives the same mask at any thread count; with rate 0 nothing is drawn.
 *
 * Config: floats[0] = rate, 0 <= rate < 1. */
#include "core/internal.h"

#include <stdio.h>

/* The element loops run on blocks of BLOCK (and once on the rest): GCC at -O2 vectorises only loops whose trip
 * count it knows. */
enum { GRAIN = 16384, BLOCK = 16 };

static nr_status dropout_setup(nr_layer *l)
{
    const float rate = l->floats[0];
    if (!(rate >= 0.0f && rate < 1.0f))
        return nr__fail(NR_EINVAL, "dropout layer: rate %g is not in [0, 1)", (double)rate);
    memcpy(l->out_shape, l->in_shape, sizeof l->out_shape);
    return NR_OK;
}

static size_t dropout_scratch(const nr_layer *l, size_t n)
{
    size_t total;
    return nr__mul(n, l->in_size, &total) ? total : NR_MAX_FLOATS + 1;
}

typedef struct dropout_job {
    const float *x, *mask;
    float *y;
} dropout_job;

static void copy_range(void *ctx, size_t b, size_t e)
{
    const dropout_job *j = ctx;
    memcpy(j->y + b, j->x + b, (e - b) * sizeof(float));
}

/* y = x * mask (forward, and backward with x being dy). */
static inline void mul_block(float *restrict y, const float *restrict x, const float *restrict m, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        y[i] = x[i] * m[i];
}

static void mul_range(void *ctx, size_t b, size_t e)
{
    const dropout_job *j = ctx;
    size_t i = b;
    for (; i + BLOCK <= e; i += BLOCK)
        mul_block(j->y + i, j->x + i, j->mask + i, BLOCK);
    mul_block(j->y + i, j->x + i, j->mask + i, e - i);
}

static void dropout_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    const size_t count = n * l->in_size;
    const float rate = l->floats[0];
    if (!p->training || rate == 0.0f) {
        dropout_job j = {x, NULL, y};
        nr__parallel_for(count, GRAIN, copy_range, &j);
        return;
    }
    /* Sequential on purpose: the mask must not depend on how work is split. */
    const float scale = 1.0f / (1.0f - rate);
    float *mask = l->scratch;
    for (size_t i = 0; i < count; i++)
        mask[i] = nr_rng_uniform(p->rng) < (double)rate ? 0.0f : scale;
    dropout_job j = {x, mask, y};
    nr__parallel_for(count, GRAIN, mul_range, &j);
}

static void dropout_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                             float *dx, size_t n)
{
    (void)p;
    (void)x;
    (void)y;
    if (!dx)
        return;
    /* Backward follows a training forward, which drew a mask unless the rate is 0. */
    dropout_job j = {dy, l->scratch, dx};
    nr__parallel_for(n * l->in_size, GRAIN, l->floats[0] == 0.0f ? copy_range : mul_range, &j);
}

static void dropout_describe(const nr_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "dropout %g", (double)l->floats[0]);
}

const nr_layer_ops nr__dropout_ops = {
    .tag = "dropout",
    .setup = dropout_setup,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .scratch = dropout_scratch,
    .describe = dropout_describe,
    .writes_dx = true,
};

nr_status nr_net_dropout(nr_net *net, float rate)
{
    if (!(rate >= 0.0f && rate < 1.0f))
        return nr__fail(NR_EINVAL, "dropout layer: rate %g is not in [0, 1)", (double)rate);
    nr_layer l = {.ops = &nr__dropout_ops, .floats = {rate}};
    return nr__net_append(net, &l);
}
