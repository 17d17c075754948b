/* gradcheck.h - central-difference gradient checks through the public API, shared by the layer tests.
 *
 * The scalar checked is the network's loss on a random batch. Analytic gradients come from one
 * forward/loss/backward; numeric ones from (L(p + eps) - L(p - eps)) / 2eps for a sample of parameters and
 * inputs. Inputs are kept at least 0.1 away from 0 so a finite difference never straddles a ReLU's kink. */
#ifndef NR_GRADCHECK_H
#define NR_GRADCHECK_H

#include "check.h"
#include "neurite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct gradcheck_opts {
    nr_loss loss;
    double eps;       /* step for the differences */
    double rtol, atol;
    size_t max_checks;  /* parameters and inputs sampled, each */
} gradcheck_opts;

static inline double gc_loss(nr_net *net, const float *x, size_t n, nr_loss loss, const float *t,
                             const int32_t *labels, uint64_t dropout_seed)
{
    double v = NAN;
    nr_rng_seed(nr_net_rng(net), dropout_seed);  /* the same dropout mask for every evaluation */
    if (nr_net_forward(net, x, n, 1, NULL) || nr_net_loss(net, loss, t, labels, &v))
        return NAN;
    return v;
}

/* Returns the worst ratio |analytic - numeric| / (atol + rtol |numeric|); <= 1 passes. */
static inline double gradcheck(const char *name, nr_net *net, size_t n, gradcheck_opts o, uint64_t seed)
{
    nr_rng rng;
    nr_rng_seed(&rng, seed);
    size_t in = nr_net_input_size(net), out = nr_net_output_size(net), np = nr_net_param_count(net);
    float *x = malloc(n * in * sizeof *x), *t = malloc(n * out * sizeof *t);
    int32_t *labels = malloc(n * sizeof *labels);
    float *ga = malloc((np + 1) * sizeof *ga), *gx = malloc(n * in * sizeof *gx);
    for (size_t i = 0; i < n * in; i++) {
        double u = 2 * nr_rng_uniform(&rng) - 1;
        x[i] = (float)(u < 0 ? u * 0.9 - 0.1 : u * 0.9 + 0.1);
    }
    for (size_t i = 0; i < n * out; i++)
        t[i] = (float)(2 * nr_rng_uniform(&rng) - 1);
    for (size_t i = 0; i < n; i++)
        labels[i] = (int32_t)nr_rng_below(&rng, out);
    nr_net_init(net, NR_INIT_XAVIER_NORMAL, &rng);
    /* Random biases too, so that they matter. */
    for (size_t i = 0; i < nr_net_tensor_count(net); i++) {
        nr_tensor_info ti;
        nr_net_tensor(net, i, &ti);
        if (!(ti.flags & NR_TENSOR_DECAY) && strstr(ti.name, ".b"))
            for (size_t j = 0; j < ti.size; j++)
                nr_net_params(net)[ti.offset + j] = (float)(0.5 * nr_rng_normal(&rng));
    }
    uint64_t dseed = nr_rng_next(&rng);
    nr_net_want_input_grad(net, 1);
    double l0 = gc_loss(net, x, n, o.loss, t, labels, dseed);
    nr_net_zero_grad(net);
    nr_status st = nr_net_backward(net);
    CHECK(st == NR_OK && isfinite(l0), "%s: backward failed: %s", name, nr_error_message());
    if (np)
        memcpy(ga, nr_net_grads(net), np * sizeof *ga);
    const float *ix = nr_net_input_grad(net);
    if (ix)
        memcpy(gx, ix, n * in * sizeof *gx);
    double worst = 0;
    /* Parameters: a strided sample, so big layers stay quick. */
    float *p = nr_net_params(net);
    size_t stride = np > o.max_checks ? np / o.max_checks : 1;
    for (size_t i = 0; i < np; i += stride) {
        float keep = p[i];
        p[i] = keep + (float)o.eps;
        double lp = gc_loss(net, x, n, o.loss, t, labels, dseed);
        p[i] = keep - (float)o.eps;
        double lm = gc_loss(net, x, n, o.loss, t, labels, dseed);
        p[i] = keep;
        double num = (lp - lm) / (2 * o.eps), err = fabs(ga[i] - num) / (o.atol + o.rtol * fabs(num));
        if (err > worst)
            worst = err;
        if (err > 1)
            fprintf(stderr, "  %s: param %zu analytic %.6g numeric %.6g\n", name, i, ga[i], num);
    }
    stride = n * in > o.max_checks ? n * in / o.max_checks : 1;
    for (size_t i = 0; ix && i < n * in; i += stride) {
        float keep = x[i];
        x[i] = keep + (float)o.eps;
        double lp = gc_loss(net, x, n, o.loss, t, labels, dseed);
        x[i] = keep - (float)o.eps;
        double lm = gc_loss(net, x, n, o.loss, t, labels, dseed);
        x[i] = keep;
        double num = (lp - lm) / (2 * o.eps), err = fabs(gx[i] - num) / (o.atol + o.rtol * fabs(num));
        if (err > worst)
            worst = err;
        if (err > 1)
            fprintf(stderr, "  %s: input %zu analytic %.6g numeric %.6g\n", name, i, gx[i], num);
    }
    CHECK(ix != NULL, "%s: no input gradient", name);
    CHECK(worst <= 1.0, "%s: gradient check failed, worst error ratio %.3g", name, worst);
    free(x);
    free(t);
    free(labels);
    free(ga);
    free(gx);
    return worst;
}

#endif
