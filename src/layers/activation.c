/* layer_act.c - element-wise activations: identity, ReLU, leaky ReLU, sigmoid, tanh, and softmax.
 *
 * The non-linearity is the point of a hidden layer: without one, layers of matrices multiply out to a single
 * matrix (see `neurite xor`). Each activation is its own layer kind with its own tag; ints[0] holds the
 * nr_act and floats[0] the leaky slope. Backward needs only the layer's input x or output y, whichever makes
 * the derivative cheapest: ReLU looks at x, sigmoid and tanh at y (s' = s(1 - s), tanh' = 1 - tanh^2). */
#include "core/internal.h"

#include <math.h>
#include <stdio.h>

enum { GRAIN = 16384 };  /* elements per parallel chunk: small loops are not worth a thread */

typedef struct act_job {
    nr_act act;
    float slope;
    size_t d;  /* features per sample, for softmax */
    const float *x, *y, *dy;
    float *out;
} act_job;

static inline float sigmoid(float v)
{
    /* Two forms so that exp never overflows. */
    if (v >= 0.0f)
        return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

void nr__softmax_rows(const float *x, float *y, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        float mx = xi[0];
        for (size_t j = 1; j < d; j++)
            mx = xi[j] > mx ? xi[j] : mx;
        float sum = 0.0f;
        for (size_t j = 0; j < d; j++) {
            yi[j] = expf(xi[j] - mx);  /* subtracting the max keeps exp in range */
            sum += yi[j];
        }
        float inv = 1.0f / sum;
        for (size_t j = 0; j < d; j++)
            yi[j] *= inv;
    }
}

NR_SIMD_CLONES static void forward_range(void *ctx, size_t b, size_t e)
{
    const act_job *j = ctx;
    const float *restrict x = j->x;
    float *restrict y = j->out;
    switch (j->act) {
    case NR_ACT_IDENTITY:
        memcpy(y + b, x + b, (e - b) * sizeof(float));
        break;
    case NR_ACT_RELU:
        for (size_t i = b; i < e; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case NR_ACT_LEAKY_RELU:
        for (size_t i = b; i < e; i++)
            y[i] = x[i] > 0.0f ? x[i] : j->slope * x[i];
        break;
    case NR_ACT_SIGMOID:
        for (size_t i = b; i < e; i++)
            y[i] = sigmoid(x[i]);
        break;
    case NR_ACT_TANH:
        for (size_t i = b; i < e; i++)
            y[i] = tanhf(x[i]);
        break;
    case NR_ACT_SOFTMAX:  /* b and e count rows */
        nr__softmax_rows(x + b * j->d, y + b * j->d, e - b, j->d);
        break;
    }
}

NR_SIMD_CLONES static void backward_range(void *ctx, size_t b, size_t e)
{
    const act_job *j = ctx;
    const float *restrict x = j->x, *restrict y = j->y, *restrict dy = j->dy;
    float *restrict dx = j->out;
    switch (j->act) {
    case NR_ACT_IDENTITY:
        for (size_t i = b; i < e; i++)
            dx[i] = dy[i];
        break;
    case NR_ACT_RELU:
        /* The gradient passes where the unit was active; the lecture's grad_h[h < 0] = 0. */
        for (size_t i = b; i < e; i++) {
            const float g = dy[i];  /* loaded unconditionally, so the loop vectorises */
            dx[i] = x[i] > 0.0f ? g : 0.0f;
        }
        break;
    case NR_ACT_LEAKY_RELU:
        for (size_t i = b; i < e; i++) {
            const float g = dy[i];
            dx[i] = x[i] > 0.0f ? g : j->slope * g;
        }
        break;
    case NR_ACT_SIGMOID:
        for (size_t i = b; i < e; i++)
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case NR_ACT_TANH:
        for (size_t i = b; i < e; i++)
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case NR_ACT_SOFTMAX:
        /* The Jacobian-vector product: dx_k = y_k (dy_k - sum_j dy_j y_j). */
        for (size_t r = b; r < e; r++) {
            const float *yr = y + r * j->d, *gr = dy + r * j->d;
            float *dr = dx + r * j->d;
            float dot = 0.0f;
            for (size_t k = 0; k < j->d; k++)
                dot += gr[k] * yr[k];
            for (size_t k = 0; k < j->d; k++)
                dr[k] = yr[k] * (gr[k] - dot);
        }
        break;
    }
}

/* backward_range with dx's lines asked for first (nr__prefetch_for_write): in a training step at two threads
 * the lecture's ReLU backward writes the g_h that the other core read in the step before, and took 3 us
 * against 0.8 at one thread; the step ran ~2 % faster so. The forward pass's output gained nothing. Only the
 * first PREFETCH_BYTES: past L1's size the lines would push each other out before the pass wrote them, a
 * second pass over a large buffer for nothing. */
enum { PREFETCH_BYTES = 32 * 1024 };

static void backward_chunk(void *ctx, size_t b, size_t e)
{
    const act_job *j = ctx;
    size_t per = j->act == NR_ACT_SOFTMAX ? j->d : 1, bytes = (e - b) * per * sizeof(float);
    nr__prefetch_for_write(j->out + b * per, bytes < PREFETCH_BYTES ? bytes : PREFETCH_BYTES);
    backward_range(ctx, b, e);
}

static nr_status act_setup(nr_layer *l)
{
    if (l->ints[0] < NR_ACT_IDENTITY || l->ints[0] > NR_ACT_SOFTMAX)
        return nr__fail(NR_EINVAL, "unknown activation %lld", (long long)l->ints[0]);
    if (nr__act_ops_for((nr_act)l->ints[0]) != l->ops)
        return nr__fail(NR_EINVAL, "activation %lld does not match layer '%s'", (long long)l->ints[0], l->ops->tag);
    if (l->ints[0] == NR_ACT_LEAKY_RELU && !(l->floats[0] >= 0.0f && l->floats[0] < 1.0f))
        return nr__fail(NR_EINVAL, "leaky ReLU slope %g is not in [0, 1)", (double)l->floats[0]);
    memcpy(l->out_shape, l->in_shape, sizeof l->out_shape);
    return NR_OK;
}

static void act_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    (void)p;
    act_job j = {(nr_act)l->ints[0], l->floats[0], l->in_size, x, NULL, NULL, y};
    if (j.act == NR_ACT_SOFTMAX)
        nr__parallel_for(n, GRAIN / j.d + 1, forward_range, &j);
    else
        nr__parallel_for(n * l->in_size, GRAIN, forward_range, &j);
}

void nr__act_elementwise(const void *ctx, const float *x, float *y, size_t count)
{
    const nr_layer *l = ctx;
    act_job j = {(nr_act)l->ints[0], l->floats[0], l->in_size, x, NULL, NULL, y};
    forward_range(&j, 0, count); /* the forward pass's own function: the same bits */
}

static void act_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                         float *dx, size_t n)
{
    (void)p;
    if (!dx)
        return;
    act_job j = {(nr_act)l->ints[0], l->floats[0], l->in_size, x, y, dy, dx};
    if (j.act == NR_ACT_SOFTMAX)
        nr__parallel_for(n, GRAIN / j.d + 1, backward_chunk, &j);
    else
        nr__parallel_for(n * l->in_size, GRAIN, backward_chunk, &j);
}

static void act_describe(const nr_layer *l, char *buf, size_t cap)
{
    if (l->ints[0] == NR_ACT_LEAKY_RELU)
        snprintf(buf, cap, "leaky_relu %g", (double)l->floats[0]);
    else
        snprintf(buf, cap, "%s", l->ops->tag);
}

#define ACT_OPS(name, tag_text)                                                                               \
    const nr_layer_ops name = {                                                                               \
        .tag = tag_text,                                                                                      \
        .setup = act_setup,                                                                                   \
        .forward = act_forward,                                                                               \
        .backward = act_backward,                                                                             \
        .describe = act_describe,                                                                             \
        .writes_dx = true,                                                                                    \
    }

ACT_OPS(nr__identity_ops, "identity");
ACT_OPS(nr__relu_ops, "relu");
ACT_OPS(nr__leaky_relu_ops, "leaky_relu");
ACT_OPS(nr__sigmoid_ops, "sigmoid");
ACT_OPS(nr__tanh_ops, "tanh");
ACT_OPS(nr__softmax_ops, "softmax");

const nr_layer_ops *nr__act_ops_for(nr_act act)
{
    switch (act) {
    case NR_ACT_IDENTITY: return &nr__identity_ops;
    case NR_ACT_RELU: return &nr__relu_ops;
    case NR_ACT_LEAKY_RELU: return &nr__leaky_relu_ops;
    case NR_ACT_SIGMOID: return &nr__sigmoid_ops;
    case NR_ACT_TANH: return &nr__tanh_ops;
    case NR_ACT_SOFTMAX: return &nr__softmax_ops;
    }
    return NULL;
}
