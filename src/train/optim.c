/* optim.c - optimizers. Their state (momentum, Adam's moments) has the layout of the parameter buffer, so
 * every update is a plain loop over flat arrays, element by element (deterministic at any thread count).
 * Threads split each tensor by rows into as many equal runs as the matrix products split it (a dense
 * layer's weight gradient by rows of W, its forward pass by the same rows: nr__split), so a thread updates
 * the rows its core just computed the gradient of and will read next. Conventions follow PyTorch's SGD,
 * Adam and AdamW. */
#include "core/net.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__)  /* every x86-64 CPU has both bits; some 32-bit ones lack denormals-are-zero */
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

enum { GRAIN = 16384, NORM_BLOCK = 4096, STEP_BLOCK = 1024 };

typedef struct opt_span {
    size_t offset, size;
    size_t rows;  /* the tensor's first dimension: threads take whole rows */
    bool decay;
} opt_span;

/* One update of one tensor, run by threads over runs of its rows. */
typedef struct step_job {
    const nr_optimizer *o;
    size_t row;            /* floats per row of the current tensor */
    atomic_int nonfinite;  /* set when a gradient value is NaN or infinite */
    float *w;
    const float *g;
    float *s0, *s1;
    float lr, decay, gscale;
    float bc1, bc2;  /* Adam's bias corrections 1 - beta^t */
    bool taken;      /* a product has already taken this step (nr__pass_sgd_taken) */
} step_job;

struct nr_optimizer {
    nr_opt_config cfg;
    size_t n_params;
    float *state[2];
    size_t n_state;
    uint64_t steps;
    opt_span *spans;     /* the trainable tensors */
    size_t n_spans;
    double *partials;    /* per-block sums of squares for the gradient norm, in a fixed order */
    size_t n_blocks;
    step_job *jobs;         /* the current update of each span */
};

static nr_status check_config(nr_opt_config *c)
{
    if (c->kind < NR_OPT_SGD || c->kind > NR_OPT_ADAMW)
        return nr__fail(NR_EINVAL, "unknown optimizer %d", (int)c->kind);
    bool adam = c->kind == NR_OPT_ADAM || c->kind == NR_OPT_ADAMW;
    if (c->lr == 0.0f)
        c->lr = adam ? 0.001f : 0.01f;
    if (c->momentum == 0.0f && (c->kind == NR_OPT_MOMENTUM || c->kind == NR_OPT_NESTEROV))
        c->momentum = 0.9f;
    if (c->beta1 == 0.0f)
        c->beta1 = 0.9f;
    if (c->beta2 == 0.0f)
        c->beta2 = 0.999f;
    if (c->eps == 0.0f)
        c->eps = 1e-8f;
    if (!(c->lr > 0.0f && c->lr <= 1e3f))
        return nr__fail(NR_EINVAL, "learning rate %g is out of range (0, 1000]", (double)c->lr);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return nr__fail(NR_EINVAL, "momentum %g is out of range [0, 1)", (double)c->momentum);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return nr__fail(NR_EINVAL, "Adam betas (%g, %g) must be in [0, 1)", (double)c->beta1, (double)c->beta2);
    if (!(c->eps > 0.0f && c->eps < 1.0f))
        return nr__fail(NR_EINVAL, "epsilon %g is out of range (0, 1)", (double)c->eps);
    if (!(c->weight_decay >= 0.0f && c->weight_decay < 1.0f))
        return nr__fail(NR_EINVAL, "weight decay %g is out of range [0, 1)", (double)c->weight_decay);
    if (!(c->clip_norm >= 0.0f && isfinite(c->clip_norm)))
        return nr__fail(NR_EINVAL, "gradient clipping norm %g must be 0 (off) or positive", (double)c->clip_norm);
    return NR_OK;
}

nr_optimizer *nr_opt_new(const nr_net *net, const nr_opt_config *config)
{
    if (!net || !config)
        return nr__fail(NR_EINVAL, "nr_opt_new: NULL argument"), NULL;
    nr_opt_config cfg = *config;
    if (check_config(&cfg))
        return NULL;
    nr_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    o->cfg = cfg;
    o->n_params = net->n_params;
    o->n_state = cfg.kind == NR_OPT_SGD ? 0 : (cfg.kind == NR_OPT_ADAM || cfg.kind == NR_OPT_ADAMW) ? 2 : 1;
    o->spans = calloc(net->n_tensors + 1, sizeof *o->spans);
    o->n_blocks = (net->n_params + NORM_BLOCK - 1) / NORM_BLOCK;
    o->partials = calloc(o->n_blocks + 1, sizeof *o->partials);
    o->jobs = calloc(net->n_tensors + 1, sizeof *o->jobs);
    bool ok = o->spans && o->partials && o->jobs;
    for (size_t i = 0; ok && i < o->n_state; i++)
        ok = (o->state[i] = nr__floats(net->n_params)) != NULL;
    if (!ok) {
        nr_opt_free(o);
        return nr__fail(NR_ENOMEM, "out of memory for the optimizer's state"), NULL;
    }
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *t = &net->tensors[i];
        if (t->flags & NR__TENSOR_STATE)
            continue;
        size_t rows = t->ndim > 0 && t->shape[0] > 0 && t->size % t->shape[0] == 0 ? t->shape[0] : t->size;
        o->spans[o->n_spans++] = (opt_span){t->offset, t->size, rows, (t->flags & NR_TENSOR_DECAY) != 0};
    }
    return o;
}

void nr_opt_free(nr_optimizer *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < 2; i++)
        nr__free(o->state[i]);
    free(o->spans);
    free(o->partials);
    free(o->jobs);
    free(o);
}

float **nr_opt_state(nr_optimizer *o, size_t *count)
{
    if (count)
        *count = o ? o->n_state : 0;
    return o ? o->state : NULL;
}

uint64_t nr_opt_steps(const nr_optimizer *o) { return o ? o->steps : 0; }
void nr__opt_set_steps(nr_optimizer *o, uint64_t steps) { o->steps = steps; }
const nr_opt_config *nr_opt_get_config(const nr_optimizer *o) { return o ? &o->cfg : NULL; }

/* ---- the update ---- */

/* One block of the update. Small enough (a few KB of each stream) that the finite check's pass over g
 * leaves it in L1 for the update: one trip to memory per stream, where a check over the whole range first
 * read g twice. */
NR_SIMD_CLONES static void step_block(step_job *j, size_t b, size_t e)
{
    const nr_opt_config *c = &j->o->cfg;
    float *restrict w = j->w;
    const float *restrict g = j->g;
    float *restrict s0 = j->s0, *restrict s1 = j->s1;
    const float lr = j->lr, wd = j->decay, gs = j->gscale, mu = c->momentum;
    /* A value is NaN or infinite when its exponent bits are all ones: an integer test that vectorises. */
    uint32_t bad = 0;
    for (size_t i = b; i < e; i++) {
        uint32_t u;
        memcpy(&u, &g[i], 4);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    if (bad)
        atomic_store(&j->nonfinite, 1);
    switch (c->kind) {
    case NR_OPT_SGD:
        for (size_t i = b; i < e; i++)
            w[i] -= lr * (gs * g[i] + wd * w[i]);
        break;
    case NR_OPT_MOMENTUM:
        for (size_t i = b; i < e; i++) {
            s0[i] = mu * s0[i] + gs * g[i] + wd * w[i];
            w[i] -= lr * s0[i];
        }
        break;
    case NR_OPT_NESTEROV:
        for (size_t i = b; i < e; i++) {
            float gi = gs * g[i] + wd * w[i];
            s0[i] = mu * s0[i] + gi;
            w[i] -= lr * (gi + mu * s0[i]);
        }
        break;
    case NR_OPT_ADAM:
    case NR_OPT_ADAMW: {
        const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
        const float step = lr / j->bc1, inv_bc2 = 1.0f / j->bc2;
        if (c->kind == NR_OPT_ADAMW) {
            for (size_t i = b; i < e; i++) {
                float gi = gs * g[i];
                w[i] -= lr * wd * w[i];
                s0[i] = b1 * s0[i] + (1.0f - b1) * gi;
                s1[i] = b2 * s1[i] + (1.0f - b2) * gi * gi;
                w[i] -= step * s0[i] / (sqrtf(s1[i] * inv_bc2) + eps);
            }
        } else {
            for (size_t i = b; i < e; i++) {
                float gi = gs * g[i] + wd * w[i];
                s0[i] = b1 * s0[i] + (1.0f - b1) * gi;
                s1[i] = b2 * s1[i] + (1.0f - b2) * gi * gi;
                w[i] -= step * s0[i] / (sqrtf(s1[i] * inv_bc2) + eps);
            }
        }
        break;
    }
    }
}

/* Denormals. The moment (or momentum) of a rarely used weight decays by beta1 every step and after a few
 * hundred steps falls below FLT_MIN, where every x86 operation on it takes a microcode assist: in an
 * MLP-512 epoch on Fashion-MNIST they were 40% of the update's time (0.29 s against 0.18 s an epoch). The
 * update therefore runs with flush-to-zero and denormals-are-zero set on its own thread, and gives the
 * thread those two bits back after (the exception flags the update raised stay raised). A value under
 * 1.2e-38 then counts as 0; for Adam that moves an update by less than lr * 1.2e-38 / eps, which no weight
 * of normal size can show. Elsewhere than x86-64 the update runs as IEEE arithmetic says. */
#ifdef HAVE_MXCSR
enum { MXCSR_FTZ_DAZ = 0x8040 };  /* flush-to-zero (bit 15) and denormals-are-zero (bit 6) */
static unsigned flush_denormals(void)
{
    unsigned mode = _mm_getcsr();
    _mm_setcsr(mode | MXCSR_FTZ_DAZ);
    return mode;
}
static void restore_fp_mode(unsigned mode)
{
    _mm_setcsr((_mm_getcsr() & ~(unsigned)MXCSR_FTZ_DAZ) | (mode & MXCSR_FTZ_DAZ));
}
#else
static unsigned flush_denormals(void) { return 0; }
static void restore_fp_mode(unsigned mode) { (void)mode; }
#endif

static void step_range(void *ctx, size_t row0, size_t row1)
{
    const size_t row = ((step_job *)ctx)->row, b = row0 * row, e = row1 * row;
    unsigned mode = flush_denormals();
    for (size_t i = b; i < e; i += STEP_BLOCK)
        step_block(ctx, i, e - i < STEP_BLOCK ? e : i + STEP_BLOCK);
    restore_fp_mode(mode);
}

typedef struct norm_job {
    const float *g;
    size_t n;
    double *partials;
} norm_job;

static void norm_range(void *ctx, size_t b, size_t e)
{
    const norm_job *j = ctx;
    for (size_t blk = b; blk < e; blk++) {
        size_t lo = blk * NORM_BLOCK, hi = lo + NORM_BLOCK < j->n ? lo + NORM_BLOCK : j->n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++)
            s += (double)j->g[i] * (double)j->g[i];
        j->partials[blk] = s;
    }
}

double nr__grad_norm(nr_optimizer *o, const float *g)
{
    /* Fixed blocks summed in order: the same result at any thread count. */
    norm_job nj = {g, o->n_params, o->partials};
    nr__parallel_for(o->n_blocks, 4, norm_range, &nj);
    double total = 0.0;
    for (size_t i = 0; i < o->n_blocks; i++)
        total += o->partials[i];
    return sqrt(total);
}

static nr_status check_lr(float lr)
{
    if (!(lr > 0.0f) || !isfinite(lr))
        return nr__fail(NR_EINVAL, "learning rate %g is not positive", (double)lr);
    return NR_OK;
}

nr_status nr__opt_clip(nr_optimizer *o, nr_net *net, float *gscale, double *grad_norm)
{
    nr__net_settle_grads(net);
    *gscale = 1.0f;
    if (o->cfg.clip_norm <= 0.0f && !grad_norm)
        return NR_OK;
    double norm = nr__grad_norm(o, net->grads);
    if (grad_norm)
        *grad_norm = norm;
    if (!isfinite(norm))
        return nr__fail(NR_ENUMERIC, "the gradient norm is %g", norm);
    if (o->cfg.clip_norm > 0.0f && norm > o->cfg.clip_norm)
        *gscale = (float)(o->cfg.clip_norm / norm);
    return NR_OK;
}

/* Equal runs of rows, as many as threads when each gets GRAIN floats or more. */
static size_t span_grain(const opt_span *sp)
{
    size_t parts = sp->size / GRAIN, threads = (size_t)nr_threads();
    parts = parts < 1 ? 1 : parts > threads ? threads : parts;
    return (sp->rows + parts - 1) / parts;
}

/* Sets up one update at learning rate lr of every span (Adam's bias corrections for the step it takes). */
static void prepare_update(nr_optimizer *o, nr_net *net, float lr, float gscale)
{
    o->steps++;
    float bc1 = 0.0f, bc2 = 0.0f;
    if (o->cfg.kind == NR_OPT_ADAM || o->cfg.kind == NR_OPT_ADAMW) {
        bc1 = (float)(1.0 - pow(o->cfg.beta1, (double)o->steps));
        bc2 = (float)(1.0 - pow(o->cfg.beta2, (double)o->steps));
    }
    for (size_t s = 0; s < o->n_spans; s++) {
        const opt_span *sp = &o->spans[s];
        step_job *j = &o->jobs[s];
        j->o = o;
        j->row = sp->size / sp->rows;
        atomic_store(&j->nonfinite, 0);
        j->w = net->params + sp->offset;
        j->g = net->grads + sp->offset;
        j->s0 = o->state[0] ? o->state[0] + sp->offset : NULL;
        j->s1 = o->state[1] ? o->state[1] + sp->offset : NULL;
        j->lr = lr;
        j->decay = sp->decay ? o->cfg.weight_decay : 0.0f;
        j->gscale = gscale;
        j->bc1 = bc1;
        j->bc2 = bc2;
        j->taken = false;
    }
}

/* The spans that no product has stepped, then the verdict on the gradient. */
static nr_status finish_update(nr_optimizer *o)
{
    bool nonfinite = false;
    for (size_t s = 0; s < o->n_spans; s++) {
        if (!o->jobs[s].taken)
            nr__parallel_for(o->spans[s].rows, span_grain(&o->spans[s]), step_range, &o->jobs[s]);
        nonfinite |= atomic_load(&o->jobs[s].nonfinite) != 0;
    }
    if (nonfinite)
        return nr__fail(NR_ENUMERIC, "the gradient holds a NaN or an infinity");
    return NR_OK;
}

nr_status nr__opt_update(nr_optimizer *o, nr_net *net, float lr, float gscale)
{
    nr_status st = check_lr(lr);
    if (st)
        return st;
    nr__net_weights_changed(net);
    prepare_update(o, net, lr, gscale);
    return finish_update(o);
}

/* The span of the tensor at `offset` if the pass is fused and may take its step in a product. */
static step_job *fused_span(const nr_pass *pass, size_t offset, size_t *index)
{
    nr_optimizer *o = pass->fused_step;
    if (!o || !pass->overwrite)
        return NULL;
    for (size_t s = 0; s < o->n_spans; s++)
        if (o->spans[s].offset == offset && !o->jobs[s].taken) {
            *index = s;
            return &o->jobs[s];
        }
    return NULL;
}

float *nr__pass_sgd_target(const nr_pass *pass, size_t offset, size_t rows, float *lr, float *decay)
{
    size_t s;
    const step_job *j = fused_span(pass, offset, &s);
    if (!j || j->o->cfg.kind != NR_OPT_SGD || j->o->spans[s].rows != rows)
        return NULL;
    *lr = j->lr;
    *decay = j->decay;
    return j->w;
}

void nr__pass_sgd_taken(const nr_pass *pass, size_t offset)
{
    size_t s;
    step_job *j = fused_span(pass, offset, &s);
    if (j)
        j->taken = true;
}

/* Checks shared by nr_opt_step and nr_net_backward_step. */
static nr_status check_pair(const nr_optimizer *o, const nr_net *net, const char *who)
{
    if (!o || !net)
        return nr__fail(NR_EINVAL, "%s: NULL argument", who);
    if (net->n_params != o->n_params)
        return nr__fail(NR_ESHAPE, "optimizer made for %zu parameters used on a network of %zu", o->n_params,
                        net->n_params);
    return NR_OK;
}

nr_status nr_net_backward_step(nr_net *net, nr_optimizer *o, float lr)
{
    nr_status st = check_pair(o, net, "nr_net_backward_step");
    if (!st)
        st = check_lr(lr);
    if (!st && net->state != NR__NET_LOSS_READY)
        st = nr__fail(NR_EINVAL, "nr_net_backward_step: needs a training forward pass and nr_net_loss first");
    if (st)
        return st;
    nr_net_zero_grad(net);
    /* Only plain SGD folds into the products (an update that reads state per weight would need it in the
     * kernels). Clipping needs the whole gradient's norm before any update, and a network whose gradients
     * are summed across processes as they become ready (nr_train over MPI) must not change before the sum. */
    if (o->cfg.kind != NR_OPT_SGD || o->cfg.clip_norm > 0.0f || net->grads_ready) {
        if (!(st = nr_net_backward(net)))
            st = nr_opt_step(o, net, lr, NULL);
    } else {
        prepare_update(o, net, lr, 1.0f);
        if (!(st = nr__net_backward(net, o)))
            st = finish_update(o);
    }
    /* A folded step never stores its gradient: none is kept, as after nr_net_zero_grad. */
    nr_net_zero_grad(net);
    return st;
}

nr_status nr_opt_step(nr_optimizer *o, nr_net *net, float lr, double *grad_norm)
{
    nr_status st = check_pair(o, net, "nr_opt_step");
    if (!st)
        st = check_lr(lr);
    float gscale;
    if (!st)
        st = nr__opt_clip(o, net, &gscale, grad_norm);
    return st ? st : nr__opt_update(o, net, lr, gscale);
}

float nr_lr_at(nr_schedule schedule, float base, uint64_t step, uint64_t total, uint64_t warmup,
               uint64_t step_size, float gamma)
{
    if (warmup > 0 && step < warmup)
        return base * (float)(step + 1) / (float)warmup;
    switch (schedule) {
    case NR_SCHED_STEP:
        return base * powf(gamma, (float)(step / (step_size ? step_size : 1)));
    case NR_SCHED_COSINE: {
        uint64_t span = total > warmup ? total - warmup : 1;
        double t = (double)(step - warmup) / (double)span;
        if (t > 1)
            t = 1;
        return (float)(0.5 * base * (1.0 + cos(3.14159265358979323846 * t)));
    }
    case NR_SCHED_CONSTANT:
        break;
    }
    return base;
}

nr_status nr_net_train_batch(nr_net *net, nr_optimizer *opt, nr_loss loss, const float *x, const float *targets,
                             const int32_t *labels, size_t n, double *loss_value)
{
    if (!opt)
        return nr__fail(NR_EINVAL, "nr_net_train_batch: NULL optimizer");
    double v;
    nr_status st = nr_net_forward(net, x, n, 1, NULL);
    if (!st)
        st = nr_net_loss(net, loss, targets, labels, &v);
    if (st)
        return st;
    if (!isfinite(v))
        return nr__fail(NR_ENUMERIC, "the loss is %g", v);
    if ((st = nr_net_backward_step(net, opt, opt->cfg.lr)))
        return st;
    if (loss_value)
        *loss_value = v;
    return NR_OK;
}
