/* layer_batchnorm.c - batch normalisation per channel (per feature for vectors, which are 1x1xC).
 *
 * Training: each channel is normalised over the batch's n*h*w values with their mean and biased variance,
 * x_hat = (x - mean) / sqrt(var + eps), y = gamma x_hat + beta, and the running estimates move towards the
 * batch's: mean with momentum, variance with its unbiased estimate (var * count / (count - 1)), as PyTorch
 * does. Inference uses the running estimates instead. Backward is the closed form
 *     dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
 *     dgamma += sum(dy * x_hat), dbeta += sum(dy).
 *
 * One value per channel (a batch of 1 vector, or of one 1x1 image) has variance 0: x_hat is 0, so y = beta
 * and no gradient reaches x or gamma, as the formulas say. PyTorch refuses this case in training; a layer
 * cannot fail here, so it is well defined instead: the running mean still updates, the running variance
 * (whose unbiased estimate would divide by 0) is left as it was.
 *
 * Sums per channel run over the values in order, in double, with threads splitting the channels, so results
 * do not depend on the thread count. Scratch holds per-channel numbers only (5 per channel); x_hat is
 * recomputed from x in backward rather than stored, which costs a subtraction and a product per value and
 * saves a batch-sized buffer and its traffic.
 *
 * Tensors: gamma, beta (trained, not decayed), mean, var (running estimates, flagged NR__TENSOR_STATE: saved
 * with the model, never touched by optimizers). Config: floats[0] = momentum in (0, 1], floats[1] = eps > 0
 * (resolved: the public call turns 0 into 0.1 and 1e-5). */
#include "core/internal.h"

#include <math.h>
#include <stdio.h>

/* TILE: channels whose sums one pass over the rows keeps. BLOCK: the inner loops run on blocks of this many
 * channels (and once on the rest), because GCC at -O2 vectorises only loops whose trip count it knows. */
enum { GRAIN = 16384, TILE = 64, BLOCK = 8 };

enum { GAMMA = 0, BETA, MEAN, VAR };                    /* tensor slots */
enum { S_MEAN = 0, S_INVSTD, S_SCALE, S_DYMEAN, S_DXMEAN, S_COUNT };  /* scratch arrays of c floats each */

static nr_status bn_setup(nr_layer *l)
{
    const float momentum = l->floats[0], eps = l->floats[1];
    if (!(momentum > 0.0f && momentum <= 1.0f))
        return nr__fail(NR_EINVAL, "batchnorm layer: momentum %g is not in (0, 1]", (double)momentum);
    if (!(eps > 0.0f && isfinite(eps)))
        return nr__fail(NR_EINVAL, "batchnorm layer: eps %g is not a positive number", (double)eps);
    const size_t c = l->in_shape[2];
    memcpy(l->out_shape, l->in_shape, sizeof l->out_shape);
    l->tensors[GAMMA] = (nr_layer_tensor){"gamma", 1, {c}, 0};
    l->tensors[BETA] = (nr_layer_tensor){"beta", 1, {c}, 0};
    l->tensors[MEAN] = (nr_layer_tensor){"mean", 1, {c}, NR__TENSOR_STATE};
    l->tensors[VAR] = (nr_layer_tensor){"var", 1, {c}, NR__TENSOR_STATE};
    l->n_tensors = 4;
    return NR_OK;
}

static size_t bn_scratch(const nr_layer *l, size_t n)
{
    (void)n;
    return S_COUNT * l->in_shape[2];  /* c <= NR_MAX_FLOATS */
}

static void bn_init(nr_layer *l, float *params, nr_init init, nr_act next, nr_rng *rng)
{
    (void)init;
    (void)next;
    (void)rng;
    /* The network zeroed everything: beta and the running mean stay 0. */
    const size_t c = l->in_shape[2];
    for (size_t i = 0; i < c; i++) {
        params[l->tensor_offset[GAMMA] + i] = 1.0f;
        params[l->tensor_offset[VAR] + i] = 1.0f;
    }
}

typedef struct bn_job {
    size_t rows, c;   /* rows = n*h*w values per channel, c channels */
    float momentum, eps;
    const float *x, *dy;
    float *y, *dx;
    float *params, *grads;
    bool overwrite;  /* backward: write the parameter gradients instead of adding to them */
    const nr_layer *l;
    float *s;         /* scratch: S_COUNT arrays of c */
} bn_job;

static const float *tensor(const bn_job *j, int t) { return j->params + j->l->tensor_offset[t]; }

static inline void sum_block(double *restrict acc, const float *restrict x, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        acc[i] += x[i];
}

static inline void sq_block(double *restrict acc, const float *restrict x, const double *restrict mean, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        double d = x[i] - mean[i];
        acc[i] += d * d;
    }
}

static inline void norm_block(float *restrict y, const float *restrict x, const float *restrict mean,
                              const float *restrict scale, const float *restrict beta, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        y[i] = (x[i] - mean[i]) * scale[i] + beta[i];
}

static inline void grad_block(double *restrict sdy, double *restrict sdyx, const float *restrict x,
                              const float *restrict dy, const float *restrict mean, const float *restrict invstd,
                              size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        float xhat = (x[i] - mean[i]) * invstd[i];
        sdy[i] += dy[i];
        sdyx[i] += (double)dy[i] * xhat;
    }
}

static inline void dx_block(float *restrict dx, const float *restrict x, const float *restrict dy,
                            const float *restrict mean, const float *restrict invstd, const float *restrict scale,
                            const float *restrict mdy, const float *restrict mdyx, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        float xhat = (x[i] - mean[i]) * invstd[i];
        dx[i] += scale[i] * (dy[i] - mdy[i] - xhat * mdyx[i]);
    }
}

/* Items are channels: batch statistics, running estimates, then what normalising needs. */
static void stats_range(void *ctx, size_t b, size_t e)
{
    const bn_job *j = ctx;
    const size_t c = j->c;
    float *rmean = j->params + j->l->tensor_offset[MEAN], *rvar = j->params + j->l->tensor_offset[VAR];
    const float *gamma = tensor(j, GAMMA);
    for (size_t c0 = b; c0 < e; c0 += TILE) {
        const size_t w = c0 + TILE < e ? TILE : e - c0;
        double sum[TILE] = {0}, sq[TILE] = {0}, mean[TILE];
        for (size_t r = 0; r < j->rows; r++) {
            const float *xr = j->x + r * c + c0;
            size_t i = 0;
            for (; i + BLOCK <= w; i += BLOCK)
                sum_block(sum + i, xr + i, BLOCK);
            sum_block(sum + i, xr + i, w - i);
        }
        for (size_t i = 0; i < w; i++)
            mean[i] = sum[i] / (double)j->rows;
        /* Two passes: the variance from deviations, not from E[x^2] - E[x]^2, which cancels badly. */
        for (size_t r = 0; r < j->rows; r++) {
            const float *xr = j->x + r * c + c0;
            size_t i = 0;
            for (; i + BLOCK <= w; i += BLOCK)
                sq_block(sq + i, xr + i, mean + i, BLOCK);
            sq_block(sq + i, xr + i, mean + i, w - i);
        }
        for (size_t i = 0; i < w; i++) {
            const size_t ch = c0 + i;
            double var = sq[i] / (double)j->rows, invstd = 1.0 / sqrt(var + (double)j->eps);
            j->s[S_MEAN * c + ch] = (float)mean[i];
            j->s[S_INVSTD * c + ch] = (float)invstd;
            j->s[S_SCALE * c + ch] = (float)(invstd * gamma[ch]);
            double m = j->momentum;
            rmean[ch] = (float)((1.0 - m) * rmean[ch] + m * mean[i]);
            if (j->rows > 1)
                rvar[ch] = (float)((1.0 - m) * rvar[ch] + m * var * (double)j->rows / (double)(j->rows - 1));
        }
    }
}

/* Items are rows (pixels): y = (x - mean) * invstd * gamma + beta, with mean and invstd batch or running. */
static void normalize_range(void *ctx, size_t b, size_t e)
{
    const bn_job *j = ctx;
    const size_t c = j->c;
    const float *mean = j->s + S_MEAN * c, *scale = j->s + S_SCALE * c, *beta = tensor(j, BETA);
    for (size_t r = b; r < e; r++) {
        const float *xr = j->x + r * c;
        float *yr = j->y + r * c;
        size_t i = 0;
        for (; i + BLOCK <= c; i += BLOCK)
            norm_block(yr + i, xr + i, mean + i, scale + i, beta + i, BLOCK);
        norm_block(yr + i, xr + i, mean + i, scale + i, beta + i, c - i);
    }
}

static void bn_forward(nr_layer *l, const nr_pass *p, const float *x, float *y, size_t n)
{
    const size_t c = l->in_shape[2];
    bn_job j = {.rows = n * l->in_shape[0] * l->in_shape[1], .c = c, .momentum = l->floats[0],
                .eps = l->floats[1], .x = x, .y = y, .params = p->params, .l = l, .s = l->scratch};
    if (p->training) {
        nr__parallel_for(c, GRAIN / j.rows + 1, stats_range, &j);
    } else {
        /* The running estimates stand in for the batch's. */
        const float *gamma = tensor(&j, GAMMA), *rmean = tensor(&j, MEAN), *rvar = tensor(&j, VAR);
        for (size_t i = 0; i < c; i++) {
            j.s[S_MEAN * c + i] = rmean[i];
            j.s[S_SCALE * c + i] = (float)((double)gamma[i] / sqrt((double)rvar[i] + (double)j.eps));
        }
    }
    nr__parallel_for(j.rows, GRAIN / c + 1, normalize_range, &j);
}

/* Items are channels: the parameter gradients and the two means backward needs. */
static void grad_stats_range(void *ctx, size_t b, size_t e)
{
    const bn_job *j = ctx;
    const size_t c = j->c;
    const float *mean = j->s + S_MEAN * c, *invstd = j->s + S_INVSTD * c;
    float *dgamma = j->grads + j->l->tensor_offset[GAMMA], *dbeta = j->grads + j->l->tensor_offset[BETA];
    for (size_t c0 = b; c0 < e; c0 += TILE) {
        const size_t w = c0 + TILE < e ? TILE : e - c0;
        double sdy[TILE] = {0}, sdyx[TILE] = {0};
        for (size_t r = 0; r < j->rows; r++) {
            const float *xr = j->x + r * c + c0, *dyr = j->dy + r * c + c0;
            size_t i = 0;
            for (; i + BLOCK <= w; i += BLOCK)
                grad_block(sdy + i, sdyx + i, xr + i, dyr + i, mean + c0 + i, invstd + c0 + i, BLOCK);
            grad_block(sdy + i, sdyx + i, xr + i, dyr + i, mean + c0 + i, invstd + c0 + i, w - i);
        }
        for (size_t i = 0; i < w; i++) {
            const size_t ch = c0 + i;
            dbeta[ch] = (float)sdy[i] + (j->overwrite ? 0.0f : dbeta[ch]);
            dgamma[ch] = (float)sdyx[i] + (j->overwrite ? 0.0f : dgamma[ch]);
            j->s[S_DYMEAN * c + ch] = (float)(sdy[i] / (double)j->rows);
            j->s[S_DXMEAN * c + ch] = (float)(sdyx[i] / (double)j->rows);
        }
    }
}

/* Items are rows: dx += gamma invstd (dy - mean(dy) - x_hat mean(dy x_hat)). */
static void dx_range(void *ctx, size_t b, size_t e)
{
    const bn_job *j = ctx;
    const size_t c = j->c;
    const float *mean = j->s + S_MEAN * c, *invstd = j->s + S_INVSTD * c, *scale = j->s + S_SCALE * c,
                *mdy = j->s + S_DYMEAN * c, *mdyx = j->s + S_DXMEAN * c;
    for (size_t r = b; r < e; r++) {
        const float *xr = j->x + r * c, *dyr = j->dy + r * c;
        float *dxr = j->dx + r * c;
        size_t i = 0;
        for (; i + BLOCK <= c; i += BLOCK)
            dx_block(dxr + i, xr + i, dyr + i, mean + i, invstd + i, scale + i, mdy + i, mdyx + i, BLOCK);
        dx_block(dxr + i, xr + i, dyr + i, mean + i, invstd + i, scale + i, mdy + i, mdyx + i, c - i);
    }
}

static void bn_backward(nr_layer *l, const nr_pass *p, const float *x, const float *y, const float *dy,
                        float *dx, size_t n)
{
    (void)y;
    const size_t c = l->in_shape[2];
    /* The training forward left mean, invstd and gamma * invstd in scratch. */
    bn_job j = {.rows = n * l->in_shape[0] * l->in_shape[1], .c = c, .x = x, .dy = dy, .dx = dx,
                .params = p->params, .grads = p->grads, .l = l, .s = l->scratch, .overwrite = p->overwrite};
    nr__parallel_for(c, GRAIN / j.rows + 1, grad_stats_range, &j);
    if (dx)
        nr__parallel_for(j.rows, GRAIN / c + 1, dx_range, &j);
}

static void bn_describe(const nr_layer *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "batchnorm %zu", l->in_shape[2]);
}

const nr_layer_ops nr__batchnorm_ops = {
    .tag = "batchnorm",
    .setup = bn_setup,
    .forward = bn_forward,
    .backward = bn_backward,
    .init = bn_init,
    .scratch = bn_scratch,
    .describe = bn_describe,
};

nr_status nr_net_batchnorm(nr_net *net, float momentum, float eps)
{
    if (momentum == 0.0f)
        momentum = 0.1f;
    if (eps == 0.0f)
        eps = 1e-5f;
    if (!(momentum > 0.0f && momentum <= 1.0f))
        return nr__fail(NR_EINVAL, "batchnorm layer: momentum %g is not in (0, 1]", (double)momentum);
    if (!(eps > 0.0f && isfinite(eps)))
        return nr__fail(NR_EINVAL, "batchnorm layer: eps %g is not a positive number", (double)eps);
    nr_layer l = {.ops = &nr__batchnorm_ops, .floats = {momentum, eps}};
    return nr__net_append(net, &l);
}
