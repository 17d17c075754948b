/* layer_dense.c - the fully connected layer, y = x W + b.
 *
 * W is stored inputs x units, so the forward pass is the lecture's h = x.dot(w1) and the backward pass its
 * grad_w1 = x.T.dot(grad_h) and grad_x = grad_h.dot(w1.T): the transposes appear because each gradient must
 * have the shape of the thing it is the gradient of. Config: ints[0] = units, ints[1] = has bias. */
#include "core/internal.h"

#include <stdio.h>

static nr_status dense_setup(nr_layer *l)
{
    int64_t units = l->ints[0];
    if (units <= 0)
        return nr__fail(NR_EINVAL, "dense layer: %lld units is not a positive size", (long long)units);
    if ((uint64_t)units > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "dense layer: %lld units is more than the limit of %zu", (long long)units,
                        (size_t)NR_MAX_FLOATS);
    size_t count;
    if (!nr__mul(l->in_size, (size_t)units, &count) || count > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "dense layer: %zu x %lld weights is too many", l->in_size, (long long)units);
    l->out_shape[0] = 1;
    l->out_shape[1] = 1;
    l->out_shape[2] = (size_t)units;
    l->tensors[0] = (nr_layer_tensor){"w", 2, {l->in_size, (size_t)units}, NR_TENSOR_DECAY};
    l->n_tensors = 1;
    if (l->ints[1])
        l->tensors[l->n_tensors++] = (nr_layer_tensor){"b", 1, {(size_t)units}, 0};
    return NR_OK;
}

/* Threads divide each product so that thread t always touches the same rows of W (and of its gradient and
 * optimizer state, which the step splits by rows alike): in training W then stays in the cache of the core
 * that updates it, and only activations cross between cores. Inference reads W only and lets the product
 * choose. */
static void dense_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    const size_t in = l->in_size, out = l->out_size;
    const float *w = p->params + l->tensor_offset[0];
    const nr__split split = p->training ? NR__SPLIT_K : NR__SPLIT_AUTO;
    const float *b = l->ints[1] ? p->params + l->tensor_offset[1] : NULL;
    if (n == 1 && !p->training && l->packed && nr__gemm_row_packed(out, in, x, l->packed, l->packed_width, b, y))
        return;
    /* Start every row at the bias, then accumulate x W onto it. */
    for (size_t i = 0; b && i < n; i++)
        memcpy(y + i * out, b, out * sizeof(float));
    nr__gemm_split(split, NR_NO_TRANS, NR_NO_TRANS, n, out, in, 1.0f, x, in, w, out, b ? 1.0f : 0.0f, y, out);
}

static void dense_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                           float *dx, size_t n)
{
    (void)y;
    const size_t in = l->in_size, out = l->out_size;
    const float *w = p->params + l->tensor_offset[0];
    float *dw = p->grads + l->tensor_offset[0];
    /* dx (n x in) = dy (n x out) . W^T (out x in): first, because a fused optimizer step changes W as soon
     * as its gradient is known (and this leaves W's rows warm in each thread's cache for that step). */
    if (dx)
        nr__gemm_split(NR__SPLIT_N, NR_NO_TRANS, NR_TRANS, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
    if (l->ints[1]) {
        /* db += the column sums of dy, row by row in a fixed order. */
        float *db = p->grads + l->tensor_offset[1];
        if (p->overwrite)
            memset(db, 0, out * sizeof(float));
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < out; j++)
                db[j] += dy[i * out + j];
    }
    /* dW (in x out) += x^T (in x n) . dy (n x out), or, in a backward pass with a plain SGD step fused in,
     * straight into W as W -= lr (dW + decay W) */
    float lr, decay;
    float *target = nr__pass_sgd_target(p, l->tensor_offset[0], in, &lr, &decay);
    if (target && nr__gemm_sgd_step(NR__SPLIT_M, NR_TRANS, NR_NO_TRANS, in, out, n, x, in, dy, out, target, out, lr,
                                    decay)) {
        nr__pass_sgd_taken(p, l->tensor_offset[0]);
        return;
    }
    nr__gemm_split(NR__SPLIT_M, NR_TRANS, NR_NO_TRANS, in, out, n, 1.0f, x, in, dy, out, p->overwrite ? 0.0f : 1.0f,
                   dw, out);
}

static void dense_init(nr_layer *l, float *params, nr_init init, nr_act next, nr_rng *rng)
{
    nr__init_weights(params + l->tensor_offset[0], l->in_size * l->out_size, l->in_size, l->out_size, init,
                     next, rng);
}

static void dense_describe(const nr_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "dense %zu->%zu%s", l->in_size, l->out_size, l->ints[1] ? "" : " (no bias)");
}

const nr_layer_ops nr__dense_ops = {
    .tag = "dense",
    .setup = dense_setup,
    .forward = dense_forward,
    .backward = dense_backward,
    .init = dense_init,
    .describe = dense_describe,
    .writes_dx = true,
};
