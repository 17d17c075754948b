/* layer_flatten.c - an image (h, w, c) becomes a vector of h*w*c features, in HWC order.
 *
 * HWC is already the order a vector is read in, so the numbers do not change; the layer only relabels the
 * shape. It still copies, because every layer owns its output buffer. No config. */
#include "core/internal.h"

enum { GRAIN = 16384 };  /* floats copied per parallel chunk at least */

static nr_status flatten_setup(nr_layer *l)
{
    l->out_shape[0] = 1;
    l->out_shape[1] = 1;
    l->out_shape[2] = l->in_size;
    return NR_OK;
}

typedef struct flatten_job {
    const float *src;
    float *dst;
} flatten_job;

static void copy_range(void *ctx, size_t b, size_t e)
{
    const flatten_job *j = ctx;
    memcpy(j->dst + b, j->src + b, (e - b) * sizeof(float));
}

static void flatten_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    (void)p;
    flatten_job j = {x, y};
    nr__parallel_for(n * l->in_size, GRAIN, copy_range, &j);
}

static void flatten_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                             float *dx, size_t n)
{
    (void)p;
    (void)x;
    (void)y;
    if (!dx)
        return;
    flatten_job j = {dy, dx};
    nr__parallel_for(n * l->in_size, GRAIN, copy_range, &j);
}

const nr_layer_ops nr__flatten_ops = {
    .tag = "flatten",
    .setup = flatten_setup,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .writes_dx = true,
};

nr_status nr_net_flatten(nr_net *net)
{
    nr_layer l = {.ops = &nr__flatten_ops};
    return nr__net_append(net, &l);
}
