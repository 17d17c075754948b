/* test_grad_image.c - the image layers (convolution, pooling, flatten, batch norm, dropout): gradients against
 * central differences, forward passes against direct loops written here, batch norm's running statistics,
 * dropout's mask, the layer-list tokens, and every way of building one wrongly. */
#include "gradcheck.h"

#include <malloc.h>

static const gradcheck_opts smooth = {NR_LOSS_SSE, 1e-2, 1e-3, 1e-4, 200};
/* Convolutions sum many products into each output, so the loss carries more float rounding; an indexing
 * mistake still shows as an error the size of the gradient itself. */
static const gradcheck_opts conv_opts = {NR_LOSS_SSE, 1e-2, 3e-3, 1e-3, 200};
/* Max pooling is piecewise linear: a smaller step keeps a perturbed input from overtaking a window's max. */
static const gradcheck_opts kinked = {NR_LOSS_SSE, 1e-3, 1e-2, 1e-3, 200};

static nr_net *image(size_t h, size_t w, size_t c)
{
    nr_net *net = nr_net_new_image(h, w, c);
    CHECK(net != NULL, "nr_net_new_image(%zu, %zu, %zu): %s", h, w, c, nr_error_message());
    return net;
}

static void fill(float *x, size_t count, uint64_t seed)
{
    nr_rng r;
    nr_rng_seed(&r, seed);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(2 * nr_rng_uniform(&r) - 1);
}

static float param(nr_net *net, const char *name, size_t i)
{
    nr_tensor_info ti;
    if (nr_net_find_tensor(net, name, &ti) != NR_OK || i >= ti.size)
        return NAN;
    return nr_net_params(net)[ti.offset + i];
}

/* ---- gradients ---- */

typedef struct conv_case {
    size_t h, w, cin, filters, kernel, stride, pad;
    int bias;
    size_t n;
} conv_case;

static void conv_grads(void)
{
    static const conv_case cases[] = {
        {5, 7, 1, 2, 1, 1, 0, 1, 1},  /* 1x1 kernel: col is x itself */
        {5, 7, 3, 2, 1, 2, 0, 0, 3},  /* 1x1 kernel, stride 2: skips every other pixel */
        {6, 6, 1, 3, 2, 1, 0, 1, 2},  /* even kernel */
        {6, 5, 3, 2, 2, 2, 1, 1, 1},  /* even kernel, padded, stride 2, odd side */
        {5, 7, 3, 4, 3, 1, 1, 1, 3},  /* "same" */
        {7, 5, 2, 3, 3, 2, 1, 0, 2},  /* stride 2 on odd sides, no bias */
        {8, 7, 1, 2, 3, 3, 2, 1, 1},  /* stride 3 pad 2: 7 + 4 - 3 = 8 is not a multiple of 3 */
        {9, 9, 3, 2, 5, 1, 2, 1, 2},  /* 5x5 "same" */
        {6, 8, 1, 2, 5, 2, 0, 1, 3},  /* 5x5 valid, stride 2, borders dropped */
        {5, 5, 3, 2, 5, 3, 1, 0, 1},  /* one output pixel */
        {1, 6, 2, 2, 3, 1, 1, 1, 2},  /* a 1-pixel-high image */
        {4, 9, 1, 1, 3, 3, 0, 1, 3},  /* one filter, stride = kernel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        char name[96];
        snprintf(name, sizeof name, "conv %zux%zux%zu f%zu k%zu s%zu p%zu bias=%d n=%zu", c->h, c->w, c->cin,
                 c->filters, c->kernel, c->stride, c->pad, c->bias, c->n);
        nr_net *net = image(c->h, c->w, c->cin);
        CHECK_OK(nr_net_conv2d(net, c->filters, c->kernel, c->stride, c->pad, c->bias));
        gradcheck(name, net, c->n, conv_opts, 1000 + i);
        nr_net_free(net);
    }
    /* A vector is a 1x1xC image: a 1x1 convolution on it is a dense layer. */
    nr_net *net = nr_net_new(6);
    CHECK_OK(nr_net_conv2d(net, 4, 1, 1, 0, 1));
    gradcheck("conv k1 on a vector", net, 3, conv_opts, 1100);
    nr_net_free(net);
    /* Two convolutions: the second one back-propagates through col2im into the first's output. */
    net = image(7, 6, 2);
    CHECK_OK(nr_net_conv2d(net, 3, 3, 1, 1, 1));
    CHECK_OK(nr_net_conv2d(net, 2, 3, 2, 0, 1));
    gradcheck("conv k3p1 then conv k3s2", net, 2, conv_opts, 1101);
    nr_net_free(net);
}

/* 3x3 stride-1 convolutions with at least 8 input channels run through Winograd (src/kernels/conv_winograd.c): 4x4
 * tiles, or 2x2 on tiny outputs (6 x 6 or less, or one row) and past 128 channels. Every padding it takes, odd
 * sides (tiles hanging over the edge), batch 1, channel counts that are not multiples of its 16-channel
 * vectors, and batches whose tiles fill several chunks and groups (its unit of work and of partial sums)
 * with chunks that end inside an image. A convolution is linear and SSE quadratic, so central differences
 * are exact but for rounding at any step: a wide one keeps 4x4 tiles' rounding (about ten times 2x2's) out of
 * the differences. */
static void winograd_grads(void)
{
    static const conv_case cases[] = {
        {5, 7, 8, 4, 3, 1, 0, 1, 2},    /* 4x4, no padding, odd sides */
        {5, 7, 9, 4, 3, 1, 2, 1, 1},    /* 4x4, padding 2: dx reads dy unpadded; batch 1 */
        {6, 6, 8, 3, 3, 1, 1, 0, 1},    /* 2x2 (6 x 6 output), no bias, batch 1 */
        {2, 1, 10, 2, 3, 1, 1, 1, 2},   /* 2x2, one pixel wide */
        {4, 3, 37, 21, 3, 1, 1, 1, 2},  /* 37 and 21 channels: two vectors and a remainder, one and a remainder */
        {3, 9, 20, 18, 3, 1, 1, 0, 3},
        {4, 5, 130, 3, 3, 1, 1, 1, 1},  /* 2x2: 130 channels */
        {40, 40, 8, 3, 3, 1, 1, 1, 5},  /* 4x4, 500 tiles: chunks of 420, the first ending inside the fifth image */
        {23, 21, 8, 3, 3, 1, 0, 1, 5},  /* 5 images of 30 tiles, padding 0 */
        {9, 10, 16, 16, 3, 1, 1, 1, 40}, /* 40 images of 9 tiles, chunks of 144: three chunks and groups */
    };
    const gradcheck_opts wide = {NR_LOSS_SSE, 5e-2, 3e-3, 1e-3, 200};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        char name[96];
        snprintf(name, sizeof name, "winograd %zux%zux%zu f%zu p%zu bias=%d n=%zu", c->h, c->w, c->cin, c->filters,
                 c->pad, c->bias, c->n);
        nr_net *net = image(c->h, c->w, c->cin);
        CHECK_OK(nr_net_conv2d(net, c->filters, c->kernel, c->stride, c->pad, c->bias));
        gradcheck(name, net, c->n, wide, 1200 + i);
        nr_net_free(net);
    }
    /* Winograd into Winograd: the second layer's dx is the first one's dy. tanh is curved, so the step stays
     * small, and the tolerance is a little wider for the 4x4 tiles' rounding in the differences. */
    nr_net *net = image(9, 8, 8);
    CHECK_OK(nr_net_add_spec(net, "conv9k3-tanh-conv4k3p0", NR_ACT_IDENTITY));
    const gradcheck_opts curved = {NR_LOSS_SSE, 1e-2, 5e-3, 1e-3, 200};
    gradcheck("winograd k3p1 then tanh then winograd k3p0", net, 2, curved, 1250);
    nr_net_free(net);
}

typedef struct pool_case {
    size_t h, w, c, size, stride, n;
} pool_case;

static void pool_grads(void)
{
    static const pool_case cases[] = {
        {4, 4, 1, 2, 2, 1}, {5, 7, 3, 2, 2, 3},  /* odd sides: the last row and column are dropped */
        {7, 6, 2, 3, 2, 2},                      /* overlapping windows */
        {6, 8, 2, 2, 3, 3},                      /* gaps between windows */
        {5, 5, 1, 3, 3, 1}, {3, 5, 4, 3, 1, 2},  /* the window fills the height */
    };
    for (int avg = 0; avg < 2; avg++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const pool_case *c = &cases[i];
            char name[96];
            snprintf(name, sizeof name, "%s %zux%zux%zu size %zu stride %zu n=%zu", avg ? "avgpool" : "maxpool",
                     c->h, c->w, c->c, c->size, c->stride, c->n);
            nr_net *net = image(c->h, c->w, c->c);
            CHECK_OK((avg ? nr_net_avgpool : nr_net_maxpool)(net, c->size, c->stride));
            gradcheck(name, net, c->n, avg ? smooth : kinked, 2000 + 10 * (uint64_t)avg + i);
            nr_net_free(net);
        }
}

static void flatten_grads(void)
{
    nr_net *net = image(3, 4, 2);
    CHECK_OK(nr_net_flatten(net));
    gradcheck("flatten", net, 2, smooth, 3000);
    CHECK_OK(nr_net_dense(net, 3, 1));
    gradcheck("flatten then dense", net, 3, smooth, 3001);
    nr_net_free(net);
}

static void batchnorm_grads(void)
{
    /* A step of 1e-2: the per-channel mean and deviation are rounded to float once for a whole channel, and
     * with a smaller step that correlated rounding shows in the differences. */
    const gradcheck_opts o = {NR_LOSS_SSE, 1e-2, 1e-2, 1e-3, 200};
    nr_net *net = image(4, 5, 3);
    CHECK_OK(nr_net_batchnorm(net, 0, 0));
    gradcheck("batchnorm 4x5x3 n=2", net, 2, o, 4000);
    nr_net_free(net);
    net = image(3, 3, 2);
    CHECK_OK(nr_net_batchnorm(net, 0.2f, 1e-3f));
    gradcheck("batchnorm 3x3x2 n=1", net, 1, o, 4001);
    nr_net_free(net);
    net = nr_net_new(6);
    CHECK_OK(nr_net_batchnorm(net, 0, 0));
    gradcheck("batchnorm vectors n=4", net, 4, o, 4002);
    /* One value per channel: y = beta, nothing reaches x; the check must still hold (all zeros). */
    gradcheck("batchnorm vectors n=1", net, 1, o, 4003);
    CHECK_OK(nr_net_dense(net, 3, 1));
    gradcheck("batchnorm then dense, n=5", net, 5, o, 4004);
    nr_net_free(net);
}

static void dropout_grads(void)
{
    nr_net *net = nr_net_new(20);
    CHECK_OK(nr_net_dropout(net, 0.3f));
    gradcheck("dropout 0.3 vectors", net, 3, smooth, 5000);
    nr_net_free(net);
    net = image(4, 3, 2);
    CHECK_OK(nr_net_dropout(net, 0.5f));
    CHECK_OK(nr_net_dense(net, 3, 1));
    gradcheck("dropout 0.5 image then dense", net, 2, smooth, 5001);
    nr_net_free(net);
    net = nr_net_new(5);
    CHECK_OK(nr_net_dropout(net, 0.0f));
    gradcheck("dropout 0", net, 2, smooth, 5002);
    nr_net_free(net);
}

static void small_cnn(void)
{
    nr_net *net = image(8, 7, 2);
    CHECK_OK(nr_net_add_spec(net, "conv4k3-relu-pool2-bn-fc5", NR_ACT_IDENTITY));
    CHECK(nr_net_layer_count(net) == 5, "conv-relu-pool-bn-fc is 5 layers, not %zu", nr_net_layer_count(net));
    gradcheck_opts o = {NR_LOSS_XENT, 1e-3, 1e-2, 1e-3, 200};
    gradcheck("conv-relu-pool-bn-fc xent", net, 3, o, 6000);
    nr_net_free(net);
    net = image(9, 9, 1);
    CHECK_OK(nr_net_add_spec(net, "conv3k3s2-tanh-avgpool2-flatten-drop0.25-fc4", NR_ACT_IDENTITY));
    o.eps = 1e-2;
    gradcheck("conv-tanh-avgpool-flatten-dropout-fc xent", net, 2, o, 6001);
    nr_net_free(net);
}

/* ---- forward passes against direct loops ---- */

/* The textbook convolution, straight from the definition, in double. */
static double direct_conv(const float *x, const float *w, const float *b, size_t h, size_t wd, size_t cin,
                          size_t cout, size_t k, size_t s, size_t p, size_t oy, size_t ox, size_t f)
{
    double acc = b ? b[f] : 0.0;
    for (size_t ki = 0; ki < k; ki++)
        for (size_t kj = 0; kj < k; kj++) {
            long iy = (long)(oy * s + ki) - (long)p, ix = (long)(ox * s + kj) - (long)p;
            if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)wd)
                continue;
            for (size_t c = 0; c < cin; c++)
                acc += (double)x[((size_t)iy * wd + (size_t)ix) * cin + c] * w[((ki * k + kj) * cin + c) * cout + f];
        }
    return acc;
}

static void conv_forward_reference(void)
{
    static const conv_case cases[] = {{6, 9, 3, 5, 3, 2, 1, 1, 2},   {7, 5, 2, 4, 2, 1, 1, 0, 3},
                                      {5, 5, 4, 3, 1, 2, 0, 1, 2},   {10, 8, 1, 6, 5, 3, 2, 1, 2},
                                      /* Winograd: each padding, odd sides, many channels, several chunks */
                                      {7, 9, 8, 5, 3, 1, 1, 1, 2},   {7, 9, 8, 5, 3, 1, 0, 0, 1},
                                      {6, 5, 8, 5, 3, 1, 2, 1, 2},   {5, 6, 33, 40, 3, 1, 1, 1, 2},
                                      {28, 28, 8, 8, 3, 1, 1, 1, 3}, {1, 1, 1, 1, 1, 1, 0, 1, 1},
                                      {6, 6, 8, 5, 3, 1, 1, 1, 2},   {4, 6, 140, 9, 3, 1, 1, 0, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        nr_net *net = image(c->h, c->w, c->cin);
        CHECK_OK(nr_net_conv2d(net, c->filters, c->kernel, c->stride, c->pad, c->bias));
        nr_rng r;
        nr_rng_seed(&r, 7000 + i);
        nr_net_init(net, NR_INIT_HE_NORMAL, &r);
        nr_tensor_info wi, bi;
        CHECK_OK(nr_net_find_tensor(net, "conv2d0.w", &wi));
        CHECK(wi.ndim == 4 && wi.shape[0] == c->kernel && wi.shape[1] == c->kernel && wi.shape[2] == c->cin &&
                  wi.shape[3] == c->filters && (wi.flags & NR_TENSOR_DECAY),
              "conv weight is (k, k, cin, cout) and decayed");
        float *params = nr_net_params(net);
        const float *b = NULL;
        if (c->bias) {
            CHECK_OK(nr_net_find_tensor(net, "conv2d0.b", &bi));
            CHECK(bi.ndim == 1 && bi.shape[0] == c->filters && bi.flags == 0, "conv bias is (cout), not decayed");
            for (size_t j = 0; j < bi.size; j++)
                params[bi.offset + j] = (float)nr_rng_normal(&r);
            b = params + bi.offset;
        } else {
            CHECK(nr_net_find_tensor(net, "conv2d0.b", &bi) == NR_EINVAL, "no bias tensor without a bias");
        }
        size_t in = nr_net_input_size(net), out = nr_net_output_size(net);
        nr_layer_info li;
        CHECK_OK(nr_net_layer_info(net, 0, &li));
        size_t oh = (c->h + 2 * c->pad - c->kernel) / c->stride + 1, ow = (c->w + 2 * c->pad - c->kernel) / c->stride + 1;
        CHECK(li.out_shape[0] == oh && li.out_shape[1] == ow && li.out_shape[2] == c->filters,
              "conv output shape %zux%zux%zu, want %zux%zux%zu", li.out_shape[0], li.out_shape[1], li.out_shape[2],
              oh, ow, c->filters);
        float *x = malloc(c->n * in * sizeof *x);
        fill(x, c->n * in, 7100 + i);
        const float *y;
        CHECK_OK(nr_net_forward(net, x, c->n, 0, &y));
        double worst = 0;
        for (size_t s = 0; s < c->n; s++)
            for (size_t oy = 0; oy < oh; oy++)
                for (size_t ox = 0; ox < ow; ox++)
                    for (size_t f = 0; f < c->filters; f++) {
                        double want = direct_conv(x + s * in, params + wi.offset, b, c->h, c->w, c->cin, c->filters,
                                                  c->kernel, c->stride, c->pad, oy, ox, f);
                        double got = y[s * out + (oy * ow + ox) * c->filters + f];
                        double err = fabs(got - want) / (1e-5 + 1e-5 * fabs(want));
                        worst = err > worst ? err : worst;
                    }
        CHECK(worst <= 1, "conv case %zu: forward differs from the direct loops (ratio %.3g)", i, worst);
        free(x);
        nr_net_free(net);
    }
}

/* The backward pass against direct loops in double: dx, dW and db for the dy the loss hands back, to 1e-5 of
 * each result's largest magnitude (float rounding of sums of a few hundred products is ~1e-6 of it). The 3x3
 * stride-1 cases take the Winograd path, the others im2col. */
static void conv_backward_reference(void)
{
    static const conv_case cases[] = {
        {6, 9, 8, 5, 3, 1, 1, 1, 2},    {7, 5, 20, 17, 3, 1, 0, 1, 3}, {5, 8, 9, 3, 3, 1, 2, 0, 1},
        {30, 30, 8, 3, 3, 1, 1, 1, 3},  {14, 14, 32, 64, 3, 1, 1, 1, 4}, /* the CNN's second layer, 4 images */
        {6, 6, 8, 5, 3, 1, 1, 1, 2},    {5, 4, 130, 7, 3, 1, 1, 1, 2},   /* 2x2 tiles: small, many channels */
        {6, 9, 3, 5, 3, 2, 1, 1, 2},    {7, 6, 2, 4, 2, 1, 0, 1, 2},   /* im2col */
        {6, 9, 3, 5, 3, 1, 1, 1, 2},    {28, 28, 1, 32, 3, 1, 1, 1, 2}, /* im2col: 3x3 with few channels */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        nr_net *net = image(c->h, c->w, c->cin);
        CHECK_OK(nr_net_conv2d(net, c->filters, c->kernel, c->stride, c->pad, c->bias));
        nr_rng r;
        nr_rng_seed(&r, 7400 + i);
        nr_net_init(net, NR_INIT_HE_NORMAL, &r);
        nr_tensor_info wi, bi;
        CHECK_OK(nr_net_find_tensor(net, "conv2d0.w", &wi));
        float *params = nr_net_params(net);
        if (c->bias) {
            CHECK_OK(nr_net_find_tensor(net, "conv2d0.b", &bi));
            for (size_t j = 0; j < bi.size; j++)
                params[bi.offset + j] = (float)nr_rng_normal(&r);
        }
        const size_t in = nr_net_input_size(net), out = nr_net_output_size(net), k = c->kernel;
        const size_t oh = (c->h + 2 * c->pad - k) / c->stride + 1, ow = (c->w + 2 * c->pad - k) / c->stride + 1;
        float *x = malloc(c->n * in * sizeof *x), *t = malloc(c->n * out * sizeof *t);
        double *dx = calloc(c->n * in, sizeof *dx), *dw = calloc(wi.size, sizeof *dw), *db = calloc(c->filters, sizeof *db);
        fill(x, c->n * in, 7500 + i);
        fill(t, c->n * out, 7600 + i);
        nr_net_want_input_grad(net, 1);
        CHECK_OK(nr_net_forward(net, x, c->n, 1, NULL));
        CHECK_OK(nr_net_loss(net, NR_LOSS_SSE, t, NULL, NULL));
        nr_net_zero_grad(net);
        CHECK_OK(nr_net_backward(net));
        const float *dy = nr_net_layer_grad(net, 0), *w = params + wi.offset;
        for (size_t s = 0; s < c->n; s++)
            for (size_t oy = 0; oy < oh; oy++)
                for (size_t ox = 0; ox < ow; ox++)
                    for (size_t ki = 0; ki < k; ki++)
                        for (size_t kj = 0; kj < k; kj++) {
                            long iy = (long)(oy * c->stride + ki) - (long)c->pad, ix = (long)(ox * c->stride + kj) - (long)c->pad;
                            if (iy < 0 || ix < 0 || iy >= (long)c->h || ix >= (long)c->w)
                                continue;
                            const float *g = dy + s * out + (oy * ow + ox) * c->filters;
                            const size_t px = s * in + ((size_t)iy * c->w + (size_t)ix) * c->cin;
                            for (size_t ci = 0; ci < c->cin; ci++)
                                for (size_t f = 0; f < c->filters; f++) {
                                    const size_t wix = ((ki * k + kj) * c->cin + ci) * c->filters + f;
                                    dx[px + ci] += (double)g[f] * w[wix];
                                    dw[wix] += (double)g[f] * x[px + ci];
                                }
                        }
        for (size_t j = 0; j < c->n * oh * ow; j++)
            for (size_t f = 0; f < c->filters; f++)
                db[f] += dy[j * c->filters + f];
        const float *gx = nr_net_input_grad(net), *grads = nr_net_grads(net);
        const struct {
            const char *what;
            const double *want;
            const float *got;
            size_t count;
        } parts[] = {{"dx", dx, gx, c->n * in}, {"dW", dw, grads + wi.offset, wi.size},
                     {"db", db, c->bias ? grads + bi.offset : NULL, c->filters}};
        for (size_t p = 0; p < 3; p++) {
            if (!parts[p].got)
                continue;
            double scale = 1e-3, worst = 0;
            for (size_t j = 0; j < parts[p].count; j++)
                scale = fmax(scale, fabs(parts[p].want[j]));
            for (size_t j = 0; j < parts[p].count; j++)
                worst = fmax(worst, fabs(parts[p].got[j] - parts[p].want[j]) / scale);
            CHECK(worst <= 1e-5, "conv backward case %zu (%zux%zux%zu f%zu k%zu s%zu p%zu n%zu): %s differs from the "
                  "direct loops by %.3g of its scale", i, c->h, c->w, c->cin, c->filters, k, c->stride, c->pad, c->n,
                  parts[p].what, worst);
        }
        free(x);
        free(t);
        free(dx);
        free(dw);
        free(db);
        nr_net_free(net);
    }
}

static void pool_forward_reference(void)
{
    static const pool_case cases[] = {{5, 7, 3, 2, 2, 2}, {7, 6, 2, 3, 2, 1}, {6, 8, 2, 2, 3, 2}};
    for (int avg = 0; avg < 2; avg++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const pool_case *c = &cases[i];
            nr_net *net = image(c->h, c->w, c->c);
            CHECK_OK((avg ? nr_net_avgpool : nr_net_maxpool)(net, c->size, 0));
            nr_layer_info li;
            CHECK_OK(nr_net_layer_info(net, 0, &li));
            size_t oh = (c->h - c->size) / c->size + 1, ow = (c->w - c->size) / c->size + 1;
            CHECK(li.out_shape[0] == oh && li.out_shape[1] == ow && li.out_shape[2] == c->c && li.param_count == 0,
                  "stride 0 means stride = size: %zux%zu, want %zux%zu", li.out_shape[0], li.out_shape[1], oh, ow);
            CHECK(strcmp(li.tag, avg ? "avgpool" : "maxpool") == 0, "pool tag %s", li.tag);
            nr_net_free(net);
            net = image(c->h, c->w, c->c);
            CHECK_OK((avg ? nr_net_avgpool : nr_net_maxpool)(net, c->size, c->stride));
            oh = (c->h - c->size) / c->stride + 1;
            ow = (c->w - c->size) / c->stride + 1;
            size_t in = nr_net_input_size(net);
            CHECK(nr_net_output_size(net) == oh * ow * c->c, "pool output size");
            float *x = malloc(c->n * in * sizeof *x);
            fill(x, c->n * in, 7200 + i);
            const float *y;
            CHECK_OK(nr_net_forward(net, x, c->n, 0, &y));
            double worst = 0;
            for (size_t s = 0; s < c->n; s++)
                for (size_t oy = 0; oy < oh; oy++)
                    for (size_t ox = 0; ox < ow; ox++)
                        for (size_t ch = 0; ch < c->c; ch++) {
                            double want = avg ? 0.0 : -INFINITY;
                            for (size_t ki = 0; ki < c->size; ki++)
                                for (size_t kj = 0; kj < c->size; kj++) {
                                    double v = x[s * in + ((oy * c->stride + ki) * c->w + ox * c->stride + kj) * c->c + ch];
                                    want = avg ? want + v / (double)(c->size * c->size) : (v > want ? v : want);
                                }
                            double got = y[s * oh * ow * c->c + (oy * ow + ox) * c->c + ch];
                            worst = fmax(worst, fabs(got - want));
                        }
            CHECK(worst < 1e-6, "%s case %zu: forward differs from the direct loops by %g", avg ? "avg" : "max", i,
                  worst);
            free(x);
            nr_net_free(net);
        }
}

/* A NaN in a max-pooling window wins, as in PyTorch, so it is not hidden from the numerics checks. */
static void maxpool_nan(void)
{
    nr_net *net = image(2, 2, 1);
    CHECK_OK(nr_net_maxpool(net, 2, 0));
    const float *y;
    float x1[4] = {1, NAN, 3, 2}, x2[4] = {NAN, 5, 1, 2}, x3[4] = {-1, 4, 4, 2};
    CHECK_OK(nr_net_forward(net, x1, 1, 0, &y));
    CHECK(isnan(y[0]), "a NaN in the window comes out (got %g)", (double)y[0]);
    CHECK_OK(nr_net_forward(net, x2, 1, 0, &y));
    CHECK(isnan(y[0]), "a leading NaN stays (got %g)", (double)y[0]);
    /* A tie sends the whole gradient to the first of the equal values. */
    CHECK_OK(nr_net_forward(net, x3, 1, 1, &y));
    float t = 0;
    CHECK_OK(nr_net_loss(net, NR_LOSS_SSE, &t, NULL, NULL));
    nr_net_want_input_grad(net, 1);
    CHECK_OK(nr_net_backward(net));
    const float *gx = nr_net_input_grad(net);
    CHECK(gx && gx[1] == 8.0f && gx[2] == 0.0f && gx[0] == 0.0f, "tie: gradient to the first max");
    nr_net_free(net);
}

static void flatten_forward(void)
{
    nr_net *net = image(3, 4, 5);
    CHECK_OK(nr_net_flatten(net));
    nr_layer_info li;
    CHECK_OK(nr_net_layer_info(net, 0, &li));
    CHECK(li.out_shape[0] == 1 && li.out_shape[1] == 1 && li.out_shape[2] == 60 && strcmp(li.tag, "flatten") == 0,
          "flatten gives 1x1x60, got %zux%zux%zu", li.out_shape[0], li.out_shape[1], li.out_shape[2]);
    float x[120];
    fill(x, 120, 1);
    const float *y;
    CHECK_OK(nr_net_forward(net, x, 2, 0, &y));
    CHECK(memcmp(x, y, sizeof x) == 0, "flatten keeps the numbers in HWC order");
    nr_net_free(net);
}

/* ---- batch norm: running statistics and inference ---- */

static void batchnorm_running(void)
{
    enum { N = 5, H = 3, W = 4, C = 2 };
    const float momentum = 0.3f, eps = 1e-3f;
    nr_net *net = image(H, W, C);
    CHECK_OK(nr_net_batchnorm(net, momentum, eps));
    CHECK_OK(nr_net_dense(net, 3, 1));
    nr_rng r;
    nr_rng_seed(&r, 8000);
    CHECK_OK(nr_net_init(net, NR_INIT_XAVIER_UNIFORM, &r));
    nr_tensor_info ti[4];
    const char *names[4] = {"batchnorm0.gamma", "batchnorm0.beta", "batchnorm0.mean", "batchnorm0.var"};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(nr_net_find_tensor(net, names[i], &ti[i]));
        CHECK(ti[i].ndim == 1 && ti[i].shape[0] == C, "%s has one number per channel", names[i]);
        CHECK(!(ti[i].flags & NR_TENSOR_DECAY), "%s is not decayed", names[i]);
    }
    CHECK(!(ti[0].flags & 0x100) && !(ti[1].flags & 0x100) && (ti[2].flags & 0x100) && (ti[3].flags & 0x100),
          "running mean and var are state, gamma and beta are trained");
    for (size_t c = 0; c < C; c++)
        CHECK(param(net, names[0], c) == 1.0f && param(net, names[1], c) == 0.0f && param(net, names[2], c) == 0.0f &&
                  param(net, names[3], c) == 1.0f,
              "initial gamma 1, beta 0, mean 0, var 1");
    float x[N * H * W * C], t[N * 3];
    fill(x, sizeof x / sizeof x[0], 8001);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = 3.0f * x[i] + (float)(i % C);  /* channels with different means and spreads */
    fill(t, N * 3, 8002);
    /* One training pass moves the running values by the formula. */
    CHECK_OK(nr_net_forward(net, x, N, 1, NULL));
    for (size_t c = 0; c < C; c++) {
        double sum = 0, sq = 0, cnt = N * H * W;
        for (size_t i = c; i < sizeof x / sizeof x[0]; i += C)
            sum += x[i];
        double mean = sum / cnt;
        for (size_t i = c; i < sizeof x / sizeof x[0]; i += C)
            sq += (x[i] - mean) * (x[i] - mean);
        double want_mean = momentum * mean, want_var = (1 - momentum) * 1.0 + momentum * sq / (cnt - 1);
        CHECK(fabs(param(net, names[2], c) - want_mean) < 1e-6 && fabs(param(net, names[3], c) - want_var) < 1e-5,
              "running mean %g var %g, want %g %g", (double)param(net, names[2], c), (double)param(net, names[3], c),
              want_mean, want_var);
        /* The training output is normalised with the batch's biased variance. */
        const float *y = nr_net_layer_output(net, 0);
        double worst = 0;
        for (size_t i = c; i < sizeof x / sizeof x[0]; i += C)
            worst = fmax(worst, fabs(y[i] - (x[i] - mean) / sqrt(sq / cnt + eps)));
        CHECK(worst < 1e-5, "training output normalised with batch statistics (error %g)", worst);
    }
    /* Some training, then inference uses the running values. */
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f});
    float before_mean = param(net, names[2], 0);
    for (int s = 0; s < 4; s++)
        CHECK_OK(nr_net_train_batch(net, opt, NR_LOSS_MSE, x, t, NULL, N, NULL));
    CHECK(param(net, names[0], 0) != 1.0f && param(net, names[1], 0) != 0.0f, "gamma and beta are trained");
    CHECK(param(net, names[2], 0) != before_mean, "the running mean keeps moving");
    const float *y;
    CHECK_OK(nr_net_forward(net, x, N, 0, &y));
    const float *bn = nr_net_layer_output(net, 0);
    double worst = 0;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        size_t c = i % C;
        double want = (x[i] - param(net, names[2], c)) / sqrt((double)param(net, names[3], c) + eps) *
                          param(net, names[0], c) + param(net, names[1], c);
        worst = fmax(worst, fabs(bn[i] - want));
    }
    CHECK(worst < 1e-5, "inference output = (x - running mean) / sqrt(running var + eps) gamma + beta (error %g)",
          worst);
    /* Inference changes nothing. */
    float keep = param(net, names[3], 1);
    CHECK_OK(nr_net_forward(net, x, N, 0, &y));
    CHECK(param(net, names[3], 1) == keep, "inference leaves the running values alone");
    nr_opt_free(opt);
    nr_net_free(net);
}

/* A batch of one vector: y = beta, no gradient to x or gamma, running mean updated, running var kept. */
static void batchnorm_single(void)
{
    nr_net *net = nr_net_new(3);
    CHECK_OK(nr_net_batchnorm(net, 0.5f, 0));
    nr_rng r;
    nr_rng_seed(&r, 1);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_tensor_info beta;
    CHECK_OK(nr_net_find_tensor(net, "batchnorm0.beta", &beta));
    for (size_t c = 0; c < 3; c++)
        nr_net_params(net)[beta.offset + c] = 0.25f * (float)c;
    float x[3] = {2.0f, -1.0f, 0.5f}, t[3] = {1, 1, 1};
    const float *y;
    nr_net_want_input_grad(net, 1);
    CHECK_OK(nr_net_forward(net, x, 1, 1, &y));
    CHECK(y[0] == 0.0f && y[1] == 0.25f && y[2] == 0.5f, "batch of 1: the output is beta (%g %g %g)", (double)y[0],
          (double)y[1], (double)y[2]);
    CHECK_OK(nr_net_loss(net, NR_LOSS_SSE, t, NULL, NULL));
    nr_net_zero_grad(net);
    CHECK_OK(nr_net_backward(net));
    const float *gx = nr_net_input_grad(net);
    CHECK(gx && gx[0] == 0.0f && gx[1] == 0.0f && gx[2] == 0.0f, "batch of 1: no gradient reaches x");
    CHECK(param(net, "batchnorm0.mean", 0) == 1.0f && param(net, "batchnorm0.mean", 1) == -0.5f,
          "batch of 1: the running mean moves");
    CHECK(param(net, "batchnorm0.var", 0) == 1.0f, "batch of 1: the running variance stays");
    for (size_t i = 0; i < nr_net_param_count(net); i++)
        CHECK(isfinite(nr_net_grads(net)[i]), "batch of 1: finite gradients");
    nr_net_free(net);
}

/* ---- dropout ---- */

static void dropout_mask(void)
{
    enum { N = 4, D = 1000 };
    const float rate = 0.3f;
    nr_net *net = nr_net_new(D);
    CHECK_OK(nr_net_dropout(net, rate));
    float *x = malloc(N * D * sizeof *x), *first = malloc(N * D * sizeof *first);
    fill(x, N * D, 9000);
    const float *y;
    CHECK_OK(nr_net_forward(net, x, N, 0, &y));
    CHECK(memcmp(x, y, N * D * sizeof *x) == 0, "inference passes values through");
    nr_rng_seed(nr_net_rng(net), 77);
    CHECK_OK(nr_net_forward(net, x, N, 1, &y));
    size_t zeros = 0, scaled = 0;
    for (size_t i = 0; i < N * D; i++) {
        if (y[i] == 0.0f)
            zeros++;
        else if (y[i] == x[i] * (1.0f / (1.0f - rate)))
            scaled++;
    }
    CHECK(zeros + scaled == N * D, "each value is dropped or scaled by 1 / (1 - rate)");
    CHECK(fabs((double)zeros / (N * D) - rate) < 0.03, "about rate of the values dropped (%zu of %d)", zeros, N * D);
    memcpy(first, y, N * D * sizeof *y);
    CHECK_OK(nr_net_forward(net, x, N, 1, &y));
    CHECK(memcmp(first, y, N * D * sizeof *y) != 0, "the next pass draws a new mask");
    nr_rng_seed(nr_net_rng(net), 77);
    nr_set_threads(3);
    CHECK_OK(nr_net_forward(net, x, N, 1, &y));
    nr_set_threads(1);
    CHECK(memcmp(first, y, N * D * sizeof *y) == 0, "the same seed gives the same mask at any thread count");
    /* Backward passes the gradient through the same mask. */
    float *t = calloc(N * D, sizeof *t);
    nr_net_want_input_grad(net, 1);
    CHECK_OK(nr_net_loss(net, NR_LOSS_SSE, t, NULL, NULL));
    CHECK_OK(nr_net_backward(net));
    const float *gx = nr_net_input_grad(net);
    size_t bad = 0;
    for (size_t i = 0; gx && i < N * D; i++)
        if (fabsf(gx[i] - 2 * y[i] * (y[i] == 0 ? 0 : 1 / (1 - rate))) > 1e-5f)
            bad++;
    CHECK(gx && bad == 0, "dx = dy * mask (%zu wrong)", bad);
    nr_net_free(net);
    /* Rate 0 copies in training too, and draws nothing. */
    net = nr_net_new(D);
    CHECK_OK(nr_net_dropout(net, 0));
    nr_rng_seed(nr_net_rng(net), 5);
    nr_rng before = *nr_net_rng(net);
    CHECK_OK(nr_net_forward(net, x, N, 1, &y));
    CHECK(memcmp(x, y, N * D * sizeof *x) == 0, "rate 0 copies");
    CHECK(memcmp(&before, nr_net_rng(net), sizeof before) == 0, "rate 0 draws nothing");
    nr_net_free(net);
    free(t);
    free(x);
    free(first);
}

/* ---- determinism, allocation ---- */

/* One forward and backward pass of a network on a fixed batch, at a thread count: the parameter gradients
 * followed by the input gradient, in a buffer the caller frees. */
typedef struct grad_case {
    size_t h, w, c;
    const char *spec;
    uint64_t init_seed, data_seed;
    int n, classes;
} grad_case;

static float *grads_at(const grad_case *gc, int threads, size_t *count)
{
    nr_set_threads(threads);
    nr_net *net = image(gc->h, gc->w, gc->c);
    nr_net_add_spec(net, gc->spec, NR_ACT_IDENTITY);
    nr_rng r;
    nr_rng_seed(&r, gc->init_seed);
    nr_net_init(net, NR_INIT_AUTO, &r);
    size_t n = (size_t)gc->n, in = nr_net_input_size(net);
    float *x = malloc(n * in * sizeof *x);
    int32_t *labels = malloc(n * sizeof *labels);
    fill(x, n * in, gc->data_seed);
    for (size_t i = 0; i < n; i++)
        labels[i] = (int32_t)(i % (size_t)gc->classes);
    nr_net_want_input_grad(net, 1);
    nr_rng_seed(nr_net_rng(net), 3);  /* dropout's masks */
    nr_net_forward(net, x, n, 1, NULL);
    nr_net_loss(net, NR_LOSS_XENT, NULL, labels, NULL);
    nr_net_zero_grad(net);
    nr_net_backward(net);
    *count = nr_net_param_count(net) + n * in;
    float *copy = malloc(*count * sizeof *copy);
    memcpy(copy, nr_net_grads(net), nr_net_param_count(net) * sizeof *copy);
    memcpy(copy + nr_net_param_count(net), nr_net_input_grad(net), n * in * sizeof *copy);
    free(x);
    free(labels);
    nr_net_free(net);
    return copy;
}

/* Every image layer, im2col convolutions (a stride, no padding), batch norm and dropout. */
static const grad_case cnn_case = {12, 10, 3, "conv8k3-relu-maxpool2-bn-conv6k3s2p0-relu-avgpool2-flatten-drop0.2-fc5",
                                   11, 12, 9, 5};
/* Winograd with several groups of chunks (its partial sums): conv12k3 on 30x30x8 has 64 tiles of 4x4 per
 * image, and 5 images fill 2 chunks of 228; conv20k3 on 12 channels 3 chunks of 144. */
static const grad_case winograd_case = {30, 30, 8, "conv12k3-relu-conv20k3-relu-avgpool3-fc4", 21, 22, 5, 4};

static void determinism(void)
{
    const char *kernels[] = {"portable", "avx2", "avx512"};
    for (size_t k = 0; k < 3; k++) {
        if (nr_set_gemm_backend(kernels[k]) != NR_OK)
            continue;
        size_t n1, n2, n3;
        float *one = grads_at(&cnn_case, 1, &n1), *two = grads_at(&cnn_case, 2, &n2),
              *three = grads_at(&cnn_case, 3, &n3);
        CHECK(n1 == n2 && n1 == n3 && memcmp(one, two, n1 * sizeof *one) == 0 &&
                  memcmp(one, three, n1 * sizeof *one) == 0,
              "%s kernel: 1, 2 and 3 threads give bit-identical image-layer gradients", kernels[k]);
        free(one);
        free(two);
        free(three);
        one = grads_at(&winograd_case, 1, &n1);
        two = grads_at(&winograd_case, 2, &n2);
        three = grads_at(&winograd_case, 3, &n3);
        float *four = grads_at(&winograd_case, 4, &n3);
        CHECK(n1 == n2 && n1 == n3 && memcmp(one, two, n1 * sizeof *one) == 0 &&
                  memcmp(one, three, n1 * sizeof *one) == 0 && memcmp(one, four, n1 * sizeof *one) == 0,
              "%s kernel: Winograd over several groups gives bit-identical gradients at 1 to 4 threads", kernels[k]);
        free(one);
        free(two);
        free(three);
        free(four);
    }
    nr_set_gemm_backend("auto");
    nr_set_threads(1);
}

static void no_allocation_in_step(void)
{
    nr_set_threads(2);
    /* The first convolution runs Winograd (8 channels in), the others im2col. */
    nr_net *net = image(10, 10, 8);
    CHECK_OK(nr_net_add_spec(net, "conv6k3-bn-relu-pool2-conv4k3s2p1-relu-avgpool2-drop0.3-fc4", NR_ACT_IDENTITY));
    nr_rng r;
    nr_rng_seed(&r, 3);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM});
    static float x[16 * 800];
    int32_t labels[16];
    fill(x, 16 * 800, 4);
    for (int i = 0; i < 16; i++)
        labels[i] = i % 4;
    CHECK_OK(nr_net_train_batch(net, opt, NR_LOSS_XENT, x, NULL, labels, 16, NULL));
    struct mallinfo2 before = mallinfo2();
    for (int s = 0; s < 6; s++)
        nr_net_train_batch(net, opt, NR_LOSS_XENT, x, NULL, labels, s % 2 ? 16 : 7, NULL);
    struct mallinfo2 after = mallinfo2();
    CHECK(before.uordblks == after.uordblks && before.hblkhd == after.hblkhd,
          "image-layer training steps allocate nothing (heap in use %zu -> %zu bytes)", before.uordblks,
          after.uordblks);
    nr_opt_free(opt);
    nr_net_free(net);
    nr_set_threads(1);
}

/* ---- building: the API's error paths and the layer-list tokens ---- */

/* A call that must fail with `code` and leave the network as it was. */
#define CHECK_REFUSED(net, call, code)                                                                        \
    do {                                                                                                      \
        size_t layers_ = nr_net_layer_count(net), params_ = nr_net_param_count(net);                          \
        CHECK_ERR(call, code);                                                                                \
        CHECK(nr_net_layer_count(net) == layers_ && nr_net_param_count(net) == params_,                       \
              "%s changed the network", #call);                                                               \
    } while (0)

static void errors(void)
{
    nr_net *net = image(6, 5, 2);
    CHECK_REFUSED(net, nr_net_conv2d(net, 0, 3, 1, 1, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 0, 1, 0, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 3, 0, 1, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 3, 1, 3, 1), NR_EINVAL);  /* padding as wide as the kernel */
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 8, 1, 1, 1), NR_ESHAPE);  /* 8 > 5 + 2 */
    CHECK(strstr(nr_error_message(), "does not fit") != NULL, "message: %s", nr_error_message());
    CHECK_REFUSED(net, nr_net_conv2d(net, (size_t)1 << 40, 3, 1, 1, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, (size_t)1 << 40, 1, 1, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 3, (size_t)1 << 40, 1, 1), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_conv2d(net, (size_t)1 << 30, 5, 1, 2, 1), NR_EINVAL);  /* 5e10 weights */
    CHECK_REFUSED(net, nr_net_maxpool(net, 0, 0), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_maxpool(net, 6, 1), NR_ESHAPE);  /* wider than 5 */
    CHECK_REFUSED(net, nr_net_avgpool(net, 7, 0), NR_ESHAPE);
    CHECK_REFUSED(net, nr_net_avgpool(net, 2, (size_t)1 << 40), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_dropout(net, 1.0f), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_dropout(net, -0.1f), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_dropout(net, NAN), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_batchnorm(net, 1.5f, 0), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_batchnorm(net, -0.1f, 0), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_batchnorm(net, 0, -1e-5f), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_batchnorm(net, NAN, 0), NR_EINVAL);
    CHECK_REFUSED(net, nr_net_batchnorm(net, 0, INFINITY), NR_EINVAL);
    CHECK_ERR(nr_net_conv2d(NULL, 4, 3, 1, 1, 1), NR_EINVAL);
    CHECK_ERR(nr_net_maxpool(NULL, 2, 0), NR_EINVAL);
    CHECK_ERR(nr_net_flatten(NULL), NR_EINVAL);
    CHECK_ERR(nr_net_batchnorm(NULL, 0, 0), NR_EINVAL);
    CHECK_ERR(nr_net_dropout(NULL, 0.5f), NR_EINVAL);
    /* The edges that are allowed: a kernel as wide as the padded image, a window as wide as the image. */
    CHECK_OK(nr_net_conv2d(net, 3, 7, 1, 1, 0));
    nr_layer_info li;
    CHECK_OK(nr_net_layer_info(net, 0, &li));
    CHECK(li.out_shape[0] == 2 && li.out_shape[1] == 1 && li.out_shape[2] == 3, "conv k7 p1 on 6x5 gives 2x1x3");
    CHECK_OK(nr_net_maxpool(net, 1, 0));
    CHECK_REFUSED(net, nr_net_maxpool(net, 2, 0), NR_ESHAPE);  /* 2x1 input */
    CHECK_OK(nr_net_flatten(net));
    CHECK_OK(nr_net_flatten(net));  /* flattening a vector is a copy */
    nr_net_free(net);
    /* A vector is a 1x1xC image: a 1x1 kernel is allowed, a wider one is refused. */
    net = nr_net_new(10);
    CHECK_REFUSED(net, nr_net_conv2d(net, 4, 3, 1, 1, 1), NR_ESHAPE);
    CHECK(strstr(nr_error_message(), "nr_net_new_image") != NULL, "vector message: %s", nr_error_message());
    CHECK_REFUSED(net, nr_net_maxpool(net, 2, 0), NR_ESHAPE);
    CHECK_OK(nr_net_conv2d(net, 4, 1, 1, 0, 1));
    CHECK_OK(nr_net_maxpool(net, 1, 1));
    CHECK_OK(nr_net_batchnorm(net, 0, 0));
    CHECK(nr_net_output_size(net) == 4, "1x1 conv on a vector of 10 gives 4");
    nr_net_free(net);
}

static void spec_tokens(void)
{
    nr_net *net = image(28, 28, 1);
    CHECK_OK(nr_net_add_spec(net, "conv32k3-relu-pool2-conv64k3-relu-pool2-fc128-relu-fc10", NR_ACT_IDENTITY));
    CHECK(nr_net_layer_count(net) == 9, "the Fashion-MNIST CNN is 9 layers, not %zu", nr_net_layer_count(net));
    CHECK(nr_net_param_count(net) == 320 + 18496 + 401536 + 1290, "its parameter count is %zu",
          nr_net_param_count(net));
    const size_t shapes[][3] = {{28, 28, 32}, {28, 28, 32}, {14, 14, 32}, {14, 14, 64}, {14, 14, 64},
                                {7, 7, 64},   {1, 1, 128},  {1, 1, 128},  {1, 1, 10}};
    for (size_t i = 0; i < 9; i++) {
        nr_layer_info li;
        nr_net_layer_info(net, i, &li);
        CHECK(memcmp(li.out_shape, shapes[i], sizeof shapes[i]) == 0, "layer %zu (%s) is %zux%zux%zu", i, li.desc,
              li.out_shape[0], li.out_shape[1], li.out_shape[2]);
    }
    nr_net_free(net);

    net = image(16, 12, 3);
    CHECK_OK(nr_net_add_spec(net, "CONV8K5S2P1 maxpool3, avgpool1 conv4k2 flatten BN drop0.5 dropout0.25 fc3 "
                                  "# comment\n conv1k1-tanh",
                             NR_ACT_IDENTITY));
    const char *tags[] = {"conv2d", "maxpool", "avgpool", "conv2d", "flatten", "batchnorm", "dropout", "dropout",
                          "dense", "conv2d", "tanh"};
    CHECK(nr_net_layer_count(net) == 11, "11 layers, not %zu", nr_net_layer_count(net));
    for (size_t i = 0; i < 11 && i < nr_net_layer_count(net); i++) {
        nr_layer_info li;
        nr_net_layer_info(net, i, &li);
        CHECK(strcmp(li.tag, tags[i]) == 0, "layer %zu is %s, not %s", i, li.tag, tags[i]);
    }
    nr_layer_info li;
    nr_net_layer_info(net, 0, &li);  /* (16 + 2 - 5) / 2 + 1 = 7, (12 + 2 - 5) / 2 + 1 = 5 */
    CHECK(li.out_shape[0] == 7 && li.out_shape[1] == 5 && li.out_shape[2] == 8, "conv8k5s2p1: 7x5x8");
    nr_net_layer_info(net, 3, &li);  /* conv4k2 on 2x1: pad 1 -> 3x2 */
    CHECK(li.out_shape[0] == 3 && li.out_shape[1] == 2 && li.out_shape[2] == 4, "conv4k2 (pad 1): %zux%zux%zu",
          li.out_shape[0], li.out_shape[1], li.out_shape[2]);
    nr_net_free(net);

    net = image(8, 8, 2);
    CHECK_OK(nr_net_conv2d(net, 3, 3, 1, 1, 1));
    const char *bad[] = {"conv0k3", "conv32k0",  "conv32",    "conv32k",  "conv32k3s0", "conv32k3p3",
                         "convk3",  "conv32k3x", "conv32k3p1s2", "pool0",  "pool",       "maxpool2x",
                         "avgpool", "drop1.5",   "drop",      "drop-0.5", "dropx",      "drop1",
                         "bn2",     "flatten3",  "conv32k9p0", "pool9",    "relu conv4k3 pool2 pool9",
                         "8-relu-conv4k3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t layers = nr_net_layer_count(net), params = nr_net_param_count(net);
        nr_status st = nr_net_add_spec(net, bad[i], NR_ACT_IDENTITY);
        CHECK(st == NR_EINVAL || st == NR_ESHAPE, "'%s' is refused (%s)", bad[i], nr_status_string(st));
        CHECK(nr_net_layer_count(net) == layers && nr_net_param_count(net) == params, "'%s' left the net unchanged",
              bad[i]);
        CHECK(nr_error_message()[0] != 0, "'%s' has a message", bad[i]);
    }
    CHECK_ERR(nr_net_add_spec(net, "conv4k3 conv4k9p0", NR_ACT_IDENTITY), NR_ESHAPE);
    CHECK(strstr(nr_error_message(), "'conv4k9p0'") != NULL, "the message names the token: %s", nr_error_message());
    CHECK_ERR(nr_net_add_spec(net, "rleu", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK(strstr(nr_error_message(), "convNkK") != NULL && strstr(nr_error_message(), "dropP") != NULL,
          "the unknown-token message lists the image tokens: %s", nr_error_message());
    /* Existing tokens still work after images. */
    CHECK_OK(nr_net_add_spec(net, "bn-pool2-16-8-leaky0.1-4-softmax", NR_ACT_TANH));
    CHECK(nr_net_layer_count(net) == 9, "conv + bn pool 16 (tanh) 8 leaky 4 softmax: %zu layers",
          nr_net_layer_count(net));
    nr_net_free(net);
}

int main(void)
{
    nr_set_threads(1);
    conv_grads();
    winograd_grads();
    pool_grads();
    flatten_grads();
    batchnorm_grads();
    dropout_grads();
    small_cnn();
    conv_forward_reference();
    conv_backward_reference();
    pool_forward_reference();
    maxpool_nan();
    flatten_forward();
    batchnorm_running();
    batchnorm_single();
    dropout_mask();
    determinism();
    no_allocation_in_step();
    errors();
    spec_tokens();
    return check_report("test_grad_image");
}
