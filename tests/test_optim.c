/* test_optim.c - each optimizer's update against the formulas of PyTorch's documentation, recomputed here
 * in double precision, over several steps with changing gradients, weight decay and clipping; and
 * nr_net_backward_step against the three calls it stands for. */
#include "check.h"
#include "core/net.h"
#include "neurite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 3, OUT = 2, NP = IN * OUT + OUT, STEPS = 6 };

typedef struct ref_state {
    double w[NP], m[NP], v[NP];
} ref_state;

/* One reference update of every parameter; `decay` says which ones weight decay touches. */
static void ref_step(const nr_opt_config *c, ref_state *s, const double *g_in, const bool *decay, int t)
{
    double g[NP], norm = 0;
    for (int i = 0; i < NP; i++)
        norm += g_in[i] * g_in[i];
    norm = sqrt(norm);
    double scale = c->clip_norm > 0 && norm > c->clip_norm ? c->clip_norm / norm : 1.0;
    for (int i = 0; i < NP; i++) {
        double wd = decay[i] ? c->weight_decay : 0.0, lr = c->lr;
        g[i] = g_in[i] * scale;
        switch (c->kind) {
        case NR_OPT_SGD:
            s->w[i] -= lr * (g[i] + wd * s->w[i]);
            break;
        case NR_OPT_MOMENTUM:  /* v = mu v + g; w -= lr v */
            s->m[i] = c->momentum * s->m[i] + g[i] + wd * s->w[i];
            s->w[i] -= lr * s->m[i];
            break;
        case NR_OPT_NESTEROV:  /* v = mu v + g; w -= lr (g + mu v) */
            g[i] += wd * s->w[i];
            s->m[i] = c->momentum * s->m[i] + g[i];
            s->w[i] -= lr * (g[i] + c->momentum * s->m[i]);
            break;
        case NR_OPT_ADAM:
        case NR_OPT_ADAMW:
            if (c->kind == NR_OPT_ADAMW)
                s->w[i] -= lr * wd * s->w[i];
            else
                g[i] += wd * s->w[i];
            s->m[i] = c->beta1 * s->m[i] + (1 - c->beta1) * g[i];
            s->v[i] = c->beta2 * s->v[i] + (1 - c->beta2) * g[i] * g[i];
            double mh = s->m[i] / (1 - pow(c->beta1, t)), vh = s->v[i] / (1 - pow(c->beta2, t));
            s->w[i] -= lr * mh / (sqrt(vh) + c->eps);
            break;
        }
    }
}

static void compare(const char *name, nr_opt_config cfg)
{
    nr_net *net = nr_net_new(IN);
    nr_net_dense(net, OUT, 1);
    nr_optimizer *opt = nr_opt_new(net, &cfg);
    CHECK(opt != NULL, "%s: %s", name, nr_error_message());
    if (!opt)
        return;
    const nr_opt_config *full = nr_opt_get_config(opt);  /* with the defaults filled in */
    nr_rng r;
    nr_rng_seed(&r, 11);
    ref_state s = {{0}, {0}, {0}};
    bool decay[NP];
    float *w = nr_net_params(net), *g = nr_net_grads(net);
    for (int i = 0; i < NP; i++) {
        w[i] = (float)nr_rng_normal(&r);
        s.w[i] = w[i];
        decay[i] = i < IN * OUT;  /* the weight matrix, not the bias */
    }
    double worst = 0;
    for (int t = 1; t <= STEPS; t++) {
        double gd[NP];
        for (int i = 0; i < NP; i++)
            gd[i] = g[i] = (float)(nr_rng_normal(&r) * (t % 2 ? 3.0 : 0.5));
        double norm = 0;
        CHECK_OK(nr_opt_step(opt, net, full->lr, &norm));
        ref_step(full, &s, gd, decay, t);
        for (int i = 0; i < NP; i++)
            worst = fmax(worst, fabs(w[i] - s.w[i]) / (1e-6 + 1e-5 * fabs(s.w[i])));
    }
    CHECK(worst <= 1.0, "%s: weights differ from the reference by %.3g x tolerance", name, worst);
    CHECK(nr_opt_steps(opt) == STEPS, "%s: step counter", name);
    nr_opt_free(opt);
    nr_net_free(net);
}

#if defined(__x86_64__)
#include <xmmintrin.h>

/* The update flushes denormals on its own threads (see optim.c) and hands the caller its mode back, keeping
 * the exception flags the update raised. `inputs` large enough makes the pool's workers take part. */
static void denormals(size_t inputs, int threads)
{
    const unsigned ftz_daz = 0x8040, invalid = 0x01;
    const size_t np = inputs * OUT + OUT;
    float *w[2] = {malloc(np * sizeof(float)), malloc(np * sizeof(float))};
    CHECK_OK(nr_set_threads(threads));
    for (int caller_flushes = 0; caller_flushes <= 1 && w[0] && w[1]; caller_flushes++) {
        unsigned saved = _mm_getcsr();
        unsigned mode = (caller_flushes ? saved | ftz_daz : saved & ~ftz_daz) & ~0x3fu;  /* no flags raised */
        unsigned after = mode;
        for (int run = 0; run < 2; run++) {  /* run 0: gradients of 1e-40 (denormal), run 1: zeros */
            nr_net *net = nr_net_new(inputs);
            nr_net_dense(net, OUT, 1);
            nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f});
            float *p = nr_net_params(net), *g = nr_net_grads(net);
            for (size_t i = 0; i < np; i++)
                p[i] = i % 2 ? 0.5f : 0.0f;  /* at 0 even an update of 1e-34 shows */
            for (int t = 0; t < 3; t++) {
                for (size_t i = 0; i < np; i++)
                    g[i] = run == 0 ? 1e-40f : 0.0f;
                _mm_setcsr(mode);
                nr_status st = nr_opt_step(opt, net, 0.01f, NULL);
                after = _mm_getcsr();
                _mm_setcsr(saved);
                CHECK_OK(st);
            }
            memcpy(w[run], p, np * sizeof(float));
            nr_opt_free(opt);
            nr_net_free(net);
        }
        CHECK((after & ftz_daz) == (mode & ftz_daz), "%zu inputs, %d threads: the caller's denormal mode %#x came "
              "back as %#x", inputs, threads, mode & ftz_daz, after & ftz_daz);
        /* IEEE arithmetic would move the weights at 0 to about -1e-34 (v underflows to 0, so the step is
         * lr m / eps); flushed, a 1e-40 gradient is a zero one and moves nothing. */
        CHECK(memcmp(w[0], w[1], np * sizeof(float)) == 0, "%zu inputs, %d threads: a denormal gradient (caller "
              "mode %#x) is not treated as 0", inputs, threads, mode & ftz_daz);
    }
    /* An infinite gradient makes Adam compute inf / inf: the update raises the invalid flag on the caller's
     * thread (the first element is the caller's), and it must still be raised when the call returns. */
    nr_net *net = nr_net_new(inputs);
    nr_net_dense(net, OUT, 1);
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM});
    float *g = nr_net_grads(net);
    memset(g, 0, np * sizeof(float));
    g[0] = INFINITY;
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved & ~0x3fu);
    nr_status st = nr_opt_step(opt, net, 0.01f, NULL);
    unsigned after = _mm_getcsr();
    _mm_setcsr(saved);
    CHECK(st == NR_ENUMERIC, "%zu inputs: an infinite gradient gave %s", inputs, nr_status_string(st));
    CHECK(after & invalid, "%zu inputs, %d threads: the invalid flag the update raised was wiped", inputs, threads);
    nr_opt_free(opt);
    nr_net_free(net);
    free(w[0]);
    free(w[1]);
    CHECK_OK(nr_set_threads(0));
}
#endif

/* A network of dense layers (with and without biases) around a ReLU, its weights from `seed`. */
static nr_net *small_net(uint64_t seed)
{
    nr_net *net = nr_net_new(37);
    CHECK_OK(nr_net_dense(net, 50, 1));
    CHECK_OK(nr_net_act(net, NR_ACT_RELU));
    CHECK_OK(nr_net_dense(net, 24, 0));
    CHECK_OK(nr_net_act(net, NR_ACT_TANH));
    CHECK_OK(nr_net_dense(net, 12, 1));
    nr_rng r;
    nr_rng_seed(&r, seed);
    nr_net_init(net, NR_INIT_AUTO, &r);
    return net;
}

/* nr_net_backward_step against nr_net_zero_grad + nr_net_backward + nr_opt_step over a few steps: the same
 * weights bit for bit. With plain SGD on batches under 128 and a kernel with tiles, the dense layers' steps
 * must have been folded into their products: their gradients are then never written (a NaN planted there
 * stays), while the biases' are. */
static void fused(const char *kernel, nr_opt_config cfg, size_t batch, int threads)
{
    if (nr_set_gemm_backend(kernel) != NR_OK)
        return;
    CHECK_OK(nr_set_threads(threads));
    nr_net *nets[2] = {small_net(3), small_net(3)};
    nr_optimizer *opts[2] = {nr_opt_new(nets[0], &cfg), nr_opt_new(nets[1], &cfg)};
    float *x = malloc(batch * 37 * sizeof *x);
    int32_t *labels = malloc(batch * sizeof *labels);
    nr_rng r;
    nr_rng_seed(&r, 5);
    for (size_t i = 0; i < batch * 37; i++)
        x[i] = (float)nr_rng_normal(&r);
    for (size_t i = 0; i < batch; i++)
        labels[i] = (int32_t)(i * 7 % 12);
    nr_net *f = nets[1];
    for (size_t i = 0; i < f->n_params; i++)
        f->grads[i] = NAN;
    f->grads_stale = false;  /* as if a gradient had been computed: the raw buffer is what is checked */
    for (int step = 0; step < 4; step++) {
        float lr = 0.05f / (float)(step + 1);
        for (int i = 0; i < 2; i++) {
            CHECK_OK(nr_net_forward(nets[i], x, batch, 1, NULL));
            CHECK_OK(nr_net_loss(nets[i], NR_LOSS_XENT, NULL, labels, NULL));
        }
        nr_net_zero_grad(nets[0]);
        CHECK_OK(nr_net_backward(nets[0]));
        CHECK_OK(nr_opt_step(opts[0], nets[0], lr, NULL));
        CHECK_OK(nr_net_backward_step(nets[1], opts[1], lr));
    }
    CHECK(memcmp(nr_net_params(nets[0]), nr_net_params(nets[1]), f->n_params * sizeof(float)) == 0,
          "%s, %s%s, batch %zu, %d threads: nr_net_backward_step differs from backward then step", kernel,
          cfg.kind == NR_OPT_SGD ? "sgd" : "another optimizer", cfg.weight_decay > 0 ? "+decay" : "", batch, threads);
    CHECK(nr_opt_steps(opts[1]) == 4, "the fused steps were counted");
    bool fold = cfg.kind == NR_OPT_SGD && cfg.clip_norm == 0.0f && batch < 128 && strcmp(kernel, "portable") != 0;
    const char *weights[] = {"dense0.w", "dense2.w", "dense4.w", "dense0.b", "dense4.b"};
    for (int i = 0; i < 5; i++) {
        nr_tensor_info ti;
        CHECK_OK(nr_net_find_tensor(f, weights[i], &ti));
        bool untouched = isnan(f->grads[ti.offset]);
        CHECK(untouched == (fold && i < 3), "%s, batch %zu: the gradient of %s was %s", kernel, batch, weights[i],
              untouched ? "never written" : "written");
    }
    const float *g = nr_net_grads(f);
    CHECK(g && g[0] == 0.0f, "no gradient is kept after nr_net_backward_step");
    /* Its errors: no loss yet, a bad learning rate, another network's optimizer, NULL. */
    CHECK_ERR(nr_net_backward_step(f, opts[1], 0.1f), NR_EINVAL);
    CHECK_OK(nr_net_forward(f, x, batch, 1, NULL));
    CHECK_OK(nr_net_loss(f, NR_LOSS_XENT, NULL, labels, NULL));
    CHECK_ERR(nr_net_backward_step(f, opts[1], 0.0f), NR_EINVAL);
    CHECK_ERR(nr_net_backward_step(f, opts[1], NAN), NR_EINVAL);
    nr_net *other = nr_net_new(3);
    nr_net_dense(other, 2, 1);
    nr_optimizer *wrong = nr_opt_new(other, &cfg);
    CHECK_ERR(nr_net_backward_step(f, wrong, 0.1f), NR_ESHAPE);
    CHECK_ERR(nr_net_backward_step(NULL, opts[1], 0.1f), NR_EINVAL);
    CHECK_ERR(nr_net_backward_step(f, NULL, 0.1f), NR_EINVAL);
    nr_opt_free(wrong);
    nr_net_free(other);
    for (int i = 0; i < 2; i++) {
        nr_opt_free(opts[i]);
        nr_net_free(nets[i]);
    }
    free(x);
    free(labels);
    CHECK_OK(nr_set_gemm_backend("auto"));
    CHECK_OK(nr_set_threads(0));
}

int main(void)
{
    const char *kernels[] = {"avx512", "avx2", "portable"};
    for (int k = 0; k < 3; k++)
        for (int threads = 1; threads <= 2; threads++) {
            fused(kernels[k], (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f}, 64, threads);
            fused(kernels[k], (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f, .weight_decay = 0.01f}, 17, threads);
            fused(kernels[k], (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f}, 200, threads);
        }
    fused("avx512", (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f, .clip_norm = 0.5f}, 64, 2);
    fused("avx512", (nr_opt_config){.kind = NR_OPT_MOMENTUM, .lr = 0.05f, .weight_decay = 0.01f}, 64, 2);
    fused("avx512", (nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f}, 64, 2);

#if defined(__x86_64__)
    denormals(IN, 1);
    denormals(40000, 2);  /* 80 002 parameters: several chunks, on the workers too */
#endif
    compare("sgd", (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f});
    compare("sgd+decay", (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f, .weight_decay = 0.01f});
    compare("momentum", (nr_opt_config){.kind = NR_OPT_MOMENTUM, .lr = 0.05f});
    compare("momentum+decay", (nr_opt_config){.kind = NR_OPT_MOMENTUM, .lr = 0.05f, .momentum = 0.8f,
                                              .weight_decay = 0.05f});
    compare("nesterov", (nr_opt_config){.kind = NR_OPT_NESTEROV, .lr = 0.05f, .weight_decay = 0.02f});
    compare("adam", (nr_opt_config){.kind = NR_OPT_ADAM});
    compare("adam+l2", (nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f, .weight_decay = 0.1f});
    compare("adamw", (nr_opt_config){.kind = NR_OPT_ADAMW, .lr = 0.01f, .weight_decay = 0.1f, .beta2 = 0.99f});
    compare("sgd+clip", (nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.1f, .clip_norm = 1.0f});
    compare("adam+clip", (nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f, .clip_norm = 0.5f});
    return check_report("test_optim");
}
