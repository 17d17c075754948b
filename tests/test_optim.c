/* test_optim.c - each optimizer's update against the formulas of PyTorch's documentation, recomputed here
 * in double precision, over several steps with changing gradients, weight decay and clipping. */
#include "check.h"
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

int main(void)
{
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
