/* train.c - the training loop, evaluation, prediction and checkpoints.
 *
 * Reproducibility: every random choice of a run is drawn from a generator seeded from (seed, epoch, batch,
 * purpose), never from a generator that runs on through the whole run. So the shuffle of epoch 7 or the
 * dropout mask of batch 300 do not depend on what came before, and a resumed run needs only its position
 * (epoch, batch), its weights and the optimizer's state to continue bit for bit.
 *
 * Memory: everything the loop needs (sample order, one batch of inputs, labels, targets, the best weights)
 * is allocated before the first step; the steps themselves allocate nothing. */
#include "data/data.h"
#include "io/model.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

enum { PURPOSE_SHUFFLE = 1, PURPOSE_AUGMENT = 2, PURPOSE_DROPOUT = 3 };

/* A seed for one (epoch, batch, purpose) of a run: splitmix64 finalisers over the fields. */
static uint64_t derive_seed(uint64_t seed, uint64_t epoch, uint64_t batch, uint64_t purpose)
{
    uint64_t h = seed;
    uint64_t parts[3] = {epoch, batch, purpose};
    for (int i = 0; i < 3; i++) {
        h ^= parts[i] + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    return h;
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

void nr_net_set_head(nr_net *net, nr_loss loss)
{
    if (net && loss >= NR_LOSS_SSE && loss <= NR_LOSS_XENT)
        net->head = loss;
}

nr_loss nr_net_head(const nr_net *net) { return net ? net->head : NR_LOSS_SSE; }

/* ---- prediction and evaluation ---- */

enum { PREDICT_CHUNK = 256 };

nr_status nr_net_predict(nr_net *net, const float *x, size_t n, float *out)
{
    nr_status st = nr__net_check_batch(net, x, n);
    if (st)
        return st;
    if (!out)
        return nr__fail(NR_EINVAL, "nr_net_predict: NULL output");
    size_t in = net->in_size, d = nr_net_output_size(net);
    size_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    if (net->scaling.kind && net->predict_cap < chunk * in) {
        nr__free(net->predict_buf);
        net->predict_cap = 0;
        if (!(net->predict_buf = nr__floats(chunk * in)))
            return NR_ENOMEM;
        net->predict_cap = chunk * in;
    }
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        const float *src = x + i * in;
        if (net->scaling.kind) {
            nr__scale_rows(&net->scaling, src, net->predict_buf, m, in);
            src = net->predict_buf;
        }
        const float *y;
        if ((st = nr_net_forward(net, src, m, 0, &y)))
            return st;
        if (net->head == NR_LOSS_XENT)
            nr__softmax_rows(y, out + i * d, m, d);
        else
            memcpy(out + i * d, y, m * d * sizeof(float));
    }
    return NR_OK;
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Buffers one pass over a data set needs, planned once. */
typedef struct batch_buffers {
    size_t cap;
    uint32_t *order;     /* sample indices */
    float *x;            /* cap * features */
    int32_t *labels;     /* cap */
    float *targets;      /* cap * outputs: one-hot targets for SSE/MSE */
} batch_buffers;

static void free_buffers(batch_buffers *b)
{
    free(b->order);
    nr__free(b->x);
    free(b->labels);
    nr__free(b->targets);
    memset(b, 0, sizeof *b);
}

static nr_status make_buffers(batch_buffers *b, size_t cap, size_t samples, size_t features, size_t outputs)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->order = malloc((samples ? samples : 1) * sizeof *b->order);
    b->labels = malloc(cap * sizeof *b->labels);
    b->x = nr__floats(cap * features);
    b->targets = nr__floats(cap * outputs);
    if (!b->order || !b->labels || !b->x || !b->targets) {
        free_buffers(b);
        return nr__fail(NR_ENOMEM, "out of memory for batches of %zu", cap);
    }
    return NR_OK;
}

static void one_hot(float *targets, const int32_t *labels, size_t n, size_t d)
{
    memset(targets, 0, n * d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        targets[i * d + (size_t)labels[i]] = 1.0f;
}

/* Loss, accuracy and (optionally) the confusion matrix of the network on a data set, in batches of b->cap. */
static nr_status evaluate_into(nr_net *net, const nr_dataset *d, batch_buffers *b, double *loss, double *acc,
                               size_t *confusion, size_t classes)
{
    size_t out = nr_net_output_size(net);
    double total = 0;
    size_t correct = 0;
    for (size_t i = 0; i < d->n; i++)
        b->order[i] = (uint32_t)i;
    for (size_t i = 0; i < d->n; i += b->cap) {
        size_t m = d->n - i < b->cap ? d->n - i : b->cap;
        nr__data_gather(d, b->order + i, m, &net->scaling, b->x, b->labels, NULL, 0);
        const float *y;
        double l;
        nr_status st = nr_net_forward(net, b->x, m, 0, &y);
        if (!st && net->head != NR_LOSS_XENT)
            one_hot(b->targets, b->labels, m, out);
        if (!st)
            st = nr_net_loss(net, net->head, b->targets, b->labels, &l);
        if (st)
            return st;
        /* SSE sums over the batch, MSE and XENT average: weigh each batch by its share. */
        total += net->head == NR_LOSS_SSE ? l : l * (double)m;
        for (size_t k = 0; k < m; k++) {
            size_t guess = argmax(y + k * out, out);
            correct += guess == (size_t)b->labels[k];
            if (confusion && guess < classes)
                confusion[(size_t)b->labels[k] * classes + guess]++;
        }
    }
    *loss = d->n ? total / (double)d->n : NAN;
    *acc = d->n ? (double)correct / (double)d->n : NAN;
    return NR_OK;
}

static nr_status check_data(const nr_net *net, const nr_dataset *d, const char *what)
{
    if (d->features != net->in_size)
        return nr__fail(NR_ESHAPE, "the %s data has %zu features per sample, the network takes %zu", what,
                        d->features, net->in_size);
    size_t out = nr_net_output_size(net);
    if (d->classes > out)
        return nr__fail(NR_ESHAPE, "the %s data has %zu classes, the network has only %zu outputs", what,
                        d->classes, out);
    if (d->n == 0)
        return nr__fail(NR_EINVAL, "the %s data is empty", what);
    return NR_OK;
}

nr_status nr_evaluate(nr_net *net, const nr_dataset *data, nr_eval *out)
{
    if (!net || !data || !out)
        return nr__fail(NR_EINVAL, "nr_evaluate: NULL argument");
    memset(out, 0, sizeof *out);
    nr_status st = check_data(net, data, "evaluation");
    if (st)
        return st;
    size_t classes = nr_net_output_size(net), cap = data->n < PREDICT_CHUNK ? data->n : PREDICT_CHUNK;
    batch_buffers b;
    if ((st = make_buffers(&b, cap, data->n, net->in_size, classes)))
        return st;
    out->confusion = calloc(classes * classes, sizeof *out->confusion);
    if (!out->confusion) {
        free_buffers(&b);
        return nr__fail(NR_ENOMEM, "out of memory");
    }
    out->count = data->n;
    out->classes = classes;
    st = evaluate_into(net, data, &b, &out->loss, &out->accuracy, out->confusion, classes);
    free_buffers(&b);
    if (st)
        nr_eval_free(out);
    return st;
}

void nr_eval_free(nr_eval *e)
{
    if (e) {
        free(e->confusion);
        e->confusion = NULL;
    }
}

/* ---- non-finite values: find where they start ---- */

static bool all_finite(const float *v, size_t n)
{
    /* Summing is cheaper than testing each value and a NaN or Inf anywhere makes the sum non-finite; the
     * rare finite overflow of the sum itself is told apart by testing each value. */
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += v[i] * 0.0f;
    if (s == 0.0f)
        return true;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static void layer_name(const nr_net *net, size_t i, char *buf, size_t cap)
{
    nr_layer_info info;
    nr_net_layer_info(net, i, &info);
    snprintf(buf, cap, "layer %zu (%s)", i, info.desc);
}

/* Looks for where a non-finite value first appeared. Before the update (`backward` false): in the weights,
 * then layer by layer through the forward pass. After backward: the loss gradient, then, from the output
 * down, the first layer whose backward pass turned a finite gradient into a non-finite one. Writes a
 * description into `where`; false if everything is finite. */
static bool locate_nonfinite(const nr_net *net, bool backward, char *where, size_t cap)
{
    char name[96];
    size_t n = net->batch, last = net->n_layers - 1;
    if (!backward) {
        for (size_t i = 0; i < net->n_tensors; i++) {
            const nr__net_tensor *t = &net->tensors[i];
            if (!all_finite(net->params + t->offset, t->size)) {
                layer_name(net, t->layer, name, sizeof name);
                snprintf(where, cap, "the weights %s of %s", t->name, name);
                return true;
            }
        }
        for (size_t i = 0; i < net->n_layers; i++)
            if (!all_finite(net->out[i], n * net->layers[i].out_size)) {
                layer_name(net, i, name, sizeof name);
                snprintf(where, cap, "the forward pass of %s (its output)", name);
                return true;
            }
        return false;
    }
    if (!all_finite(net->dout[last], n * net->layers[last].out_size)) {
        snprintf(where, cap, "the gradient of the loss");
        return true;
    }
    for (size_t i = net->n_layers; i-- > 0;) {
        bool bad = i > 0 && !all_finite(net->dout[i - 1], n * net->layers[i].in_size);
        for (size_t t = 0; t < net->n_tensors && !bad; t++)
            if (net->tensors[t].layer == i)
                bad = !all_finite(net->grads + net->tensors[t].offset, net->tensors[t].size);
        if (bad) {
            layer_name(net, i, name, sizeof name);
            snprintf(where, cap, "the backward pass of %s", name);
            return true;
        }
    }
    return false;
}

/* Per-layer health for --check-numerics: RMS of outputs and gradients, and for ReLUs the share of units
 * that gave 0 for every sample of the batch. */
static void log_numerics(const nr_net *net, FILE *f, size_t epoch)
{
    size_t n = net->batch;
    fprintf(f, "epoch %zu, last batch: per-layer health\n", epoch);
    fprintf(f, "  %-3s %-28s %12s %12s %10s\n", "#", "layer", "output rms", "grad rms", "dead relu");
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        double so = 0, sg = 0;
        size_t m = n * l->out_size;
        for (size_t k = 0; k < m; k++) {
            so += (double)net->out[i][k] * net->out[i][k];
            sg += (double)net->dout[i][k] * net->dout[i][k];
        }
        nr_layer_info info;
        nr_net_layer_info(net, i, &info);
        char dead[16] = "";
        if (l->ops == &nr__relu_ops) {
            size_t units = l->out_size, count = 0;
            for (size_t u = 0; u < units; u++) {
                bool alive = false;
                for (size_t s = 0; s < n && !alive; s++)
                    alive = net->out[i][s * units + u] != 0.0f;
                count += !alive;
            }
            snprintf(dead, sizeof dead, "%.1f%%", 100.0 * (double)count / (double)units);
        }
        fprintf(f, "  %-3zu %-28s %12.4g %12.4g %10s\n", i, info.desc, sqrt(so / (double)m), sqrt(sg / (double)m),
                dead);
    }
}

/* ---- checkpoints ---- */

/* The position and history of a run, saved with the weights and the optimizer's state. */
typedef struct run_state {
    uint64_t seed;
    uint64_t epoch;          /* the epoch in progress (0-based) */
    uint64_t batch;          /* batches of it done */
    uint64_t samples, batch_size;  /* to refuse resuming on other data or another batch size */
    double loss_sum;         /* running sums of the epoch in progress */
    uint64_t correct, seen;
    double best_val;
    uint64_t best_epoch, since_best;
    bool has_best;
    float *best;             /* the best weights (early stopping), n_params */
} run_state;

typedef struct checkpoint_io {
    const nr_net *net;
    nr_optimizer *opt;
    run_state *run;
    bool got_opt, got_run;
} checkpoint_io;

static void put_opt(nr__sink *s, const void *ctx)
{
    const checkpoint_io *io = ctx;
    const nr_opt_config *c = nr_opt_get_config(io->opt);
    nr__put_u32(s, (uint32_t)c->kind);
    nr__put_f32(s, c->lr);
    nr__put_f32(s, c->momentum);
    nr__put_f32(s, c->beta1);
    nr__put_f32(s, c->beta2);
    nr__put_f32(s, c->eps);
    nr__put_f32(s, c->weight_decay);
    nr__put_f32(s, c->clip_norm);
    nr__put_u64(s, nr_opt_steps(io->opt));
    size_t count;
    float **state = nr_opt_state(io->opt, &count);
    nr__put_u64(s, io->net->n_params);
    nr__put_u32(s, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        nr__put_floats(s, state[i], io->net->n_params);
}

static void put_run(nr__sink *s, const void *ctx)
{
    const checkpoint_io *io = ctx;
    const run_state *r = io->run;
    uint64_t fields[] = {r->seed, r->epoch, r->batch, r->samples, r->batch_size, r->correct, r->seen,
                         r->best_epoch, r->since_best, r->has_best};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        nr__put_u64(s, fields[i]);
    nr__put_f64(s, r->loss_sum);
    nr__put_f64(s, r->best_val);
    if (r->has_best) {
        nr__put_u64(s, io->net->n_params);
        nr__put_floats(s, r->best, io->net->n_params);
    }
}

/* Lower-case tags: a plain model reader skips them, so a checkpoint is also a model file. */
static void put_checkpoint_sections(nr__sink *s, const void *ctx)
{
    nr__put_section(s, "optm", put_opt, ctx);
    nr__put_section(s, "trng", put_run, ctx);
}

static bool read_checkpoint_section(nr__reader *r, const char tag[4], void *ctx)
{
    checkpoint_io *io = ctx;
    const nr_net *net = io->net;
    if (memcmp(tag, "optm", 4) == 0) {
        uint32_t kind, count;
        float f[7];
        uint64_t steps, np;
        if (!nr__get_u32(r, &kind))
            return false;
        for (int i = 0; i < 7; i++)
            if (!nr__get_f32(r, &f[i]))
                return false;
        if (!nr__get_u64(r, &steps) || !nr__get_u64(r, &np) || !nr__get_u32(r, &count))
            return false;
        const nr_opt_config *c = nr_opt_get_config(io->opt);
        size_t have;
        float **state = nr_opt_state(io->opt, &have);
        if (kind != (uint32_t)c->kind || count != have)
            return nr__reader_fail(r, "the checkpoint's optimizer differs from this run's (kind %u vs %d)", kind,
                                   (int)c->kind);
        if (np != net->n_params)
            return nr__reader_fail(r, "optimizer state for %llu parameters, the network has %zu",
                                   (unsigned long long)np, net->n_params);
        for (size_t i = 0; i < count; i++)
            if (!nr__get_floats(r, state[i], net->n_params))
                return false;
        nr__opt_set_steps(io->opt, steps);
        io->got_opt = true;
        return true;
    }
    if (memcmp(tag, "trng", 4) == 0) {
        run_state *s = io->run;
        uint64_t v[10];
        for (int i = 0; i < 10; i++)
            if (!nr__get_u64(r, &v[i]))
                return false;
        if (!nr__get_f64(r, &s->loss_sum) || !nr__get_f64(r, &s->best_val))
            return false;
        if (v[3] != s->samples || v[4] != s->batch_size)
            return nr__reader_fail(r, "made with batch %llu on %llu samples; this run has batch %llu on %llu",
                                   (unsigned long long)v[4], (unsigned long long)v[3],
                                   (unsigned long long)s->batch_size, (unsigned long long)s->samples);
        s->seed = v[0];
        s->epoch = v[1];
        s->batch = v[2];
        s->correct = v[5];
        s->seen = v[6];
        s->best_epoch = v[7];
        s->since_best = v[8];
        s->has_best = v[9] != 0;
        if (s->batch * s->batch_size > s->samples || s->seen > s->samples || s->correct > s->seen)
            return nr__reader_fail(r, "inconsistent position");
        if (s->has_best) {
            uint64_t np;
            if (!nr__get_u64(r, &np))
                return false;
            if (np != net->n_params || !s->best)
                return nr__reader_fail(r, "best weights for %llu parameters, the network has %zu",
                                       (unsigned long long)np, net->n_params);
            if (!nr__get_floats(r, s->best, net->n_params))
                return false;
        }
        io->got_run = true;
        return true;
    }
    return nr__reader_fail(r, "unknown required section");
}

static nr_status save_checkpoint(const char *path, const nr_net *net, nr_optimizer *opt, run_state *run)
{
    checkpoint_io io = {net, opt, run, false, false};
    nr__extra extra = {put_checkpoint_sections, &io, NULL, NULL};
    return nr__model_write(net, path, &extra);
}

/* Two networks are the same architecture if their layers and tensors match one for one. */
static bool same_architecture(const nr_net *a, const nr_net *b)
{
    if (a->n_layers != b->n_layers || a->n_tensors != b->n_tensors || a->n_params != b->n_params ||
        memcmp(a->in_shape, b->in_shape, sizeof a->in_shape) != 0)
        return false;
    for (size_t i = 0; i < a->n_layers; i++)
        if (a->layers[i].ops != b->layers[i].ops || memcmp(a->layers[i].ints, b->layers[i].ints,
                                                           sizeof a->layers[i].ints) != 0 ||
            memcmp(a->layers[i].floats, b->layers[i].floats, sizeof a->layers[i].floats) != 0)
            return false;
    return true;
}

static nr_status load_checkpoint(const char *path, nr_net *net, nr_optimizer *opt, run_state *run)
{
    checkpoint_io io = {net, opt, run, false, false};
    nr__extra extra = {NULL, NULL, read_checkpoint_section, &io};
    nr_net *saved = NULL;
    uint32_t flags = 0;
    /* The architecture first, so that a checkpoint of another network gets the message that says so. */
    nr_status st = nr_model_load(path, &saved);
    if (!st && !same_architecture(saved, net))
        st = nr__fail(NR_ESHAPE, "%s: the checkpoint's network differs from this run's", path);
    nr_net_free(saved);
    saved = NULL;
    if (!st)
        st = nr__model_read(path, &saved, &extra, &flags);
    if (st)
        return st;
    if (!(flags & NR__FLAG_CHECKPOINT) || !io.got_opt || !io.got_run)
        st = nr__fail(NR_EFORMAT, "%s: a model, not a checkpoint (it has no training state to resume)", path);
    if (!st) {
        memcpy(net->params, saved->params, net->n_params * sizeof(float));
        if (saved->scaling.kind) {
            /* The scaling travels with the weights it was trained with. */
            nr__scaling tmp = net->scaling;
            net->scaling = saved->scaling;
            saved->scaling = tmp;
        }
        net->head = saved->head;
    }
    nr_net_free(saved);
    return st;
}

/* ---- the loop ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static nr_status check_config(const nr_net *net, nr_train_config *c, const nr_dataset *train)
{
    if (c->epochs == 0)
        c->epochs = 10;
    if (c->batch == 0)
        c->batch = 64;
    if (c->gamma == 0.0f)
        c->gamma = 0.1f;
    if (c->step_epochs == 0)
        c->step_epochs = 1;
    if (c->loss < NR_LOSS_SSE || c->loss > NR_LOSS_XENT)
        return nr__fail(NR_EINVAL, "unknown loss %d", (int)c->loss);
    if (c->epochs > 1000000)
        return nr__fail(NR_EINVAL, "%zu epochs is absurd (at most 1000000)", c->epochs);
    if (c->batch > (1u << 20))
        return nr__fail(NR_EINVAL, "batch size %zu is absurd (at most %u)", c->batch, 1u << 20);
    if (c->schedule < NR_SCHED_CONSTANT || c->schedule > NR_SCHED_COSINE)
        return nr__fail(NR_EINVAL, "unknown learning-rate schedule %d", (int)c->schedule);
    if (!(c->warmup_epochs >= 0.0f && c->warmup_epochs <= (float)c->epochs))
        return nr__fail(NR_EINVAL, "warm-up of %g epochs does not fit in %zu epochs", (double)c->warmup_epochs,
                        c->epochs);
    if (!(c->gamma > 0.0f && c->gamma <= 1.0f))
        return nr__fail(NR_EINVAL, "step decay factor %g is not in (0, 1]", (double)c->gamma);
    if (c->augment_shift < 0 || c->augment_shift > 8)
        return nr__fail(NR_EINVAL, "augmentation shift %d is out of range (0 to 8 pixels)", c->augment_shift);
    if (c->loss == NR_LOSS_XENT && nr_net_output_size(net) < 2)
        return nr__fail(NR_ESHAPE, "cross-entropy needs at least 2 outputs, the network has %zu",
                        nr_net_output_size(net));
    if (train->n > UINT32_MAX)
        return nr__fail(NR_EINVAL, "more than 2^32 samples");
    return NR_OK;
}

nr_status nr_train(nr_net *net, const nr_dataset *train, const nr_dataset *val, const nr_train_config *config,
                   nr_train_result *result)
{
    if (!net || !train || !config)
        return nr__fail(NR_EINVAL, "nr_train: NULL argument");
    nr_train_config cfg = *config;
    nr_status st;
    if ((st = check_config(net, &cfg, train)) || (st = check_data(net, train, "training")) ||
        (val && (st = check_data(net, val, "validation"))))
        return st;
    if (cfg.patience && !val)
        return nr__fail(NR_EINVAL, "early stopping (patience %zu) needs a validation set", cfg.patience);
    const size_t out = nr_net_output_size(net), n = train->n;
    const size_t batch = cfg.batch < n ? cfg.batch : n;
    const size_t batches = (n + batch - 1) / batch;
    const uint64_t total_steps = (uint64_t)cfg.epochs * batches;
    const uint64_t warmup = (uint64_t)((double)cfg.warmup_epochs * (double)batches);

    nr_optimizer *opt = nr_opt_new(net, &cfg.opt);
    if (!opt)
        return NR_EINVAL;
    batch_buffers b;
    if ((st = make_buffers(&b, batch, n > (val ? val->n : 0) ? n : val->n, net->in_size, out))) {
        nr_opt_free(opt);
        return st;
    }
    run_state run = {.seed = cfg.seed, .samples = n, .batch_size = batch, .best_val = INFINITY};
    if (cfg.patience && !(run.best = nr__floats(net->n_params))) {
        st = NR_ENOMEM;
        goto done;
    }
    if (cfg.resume && (st = load_checkpoint(cfg.resume, net, opt, &run)))
        goto done;
    net->head = cfg.loss;
    char last_checkpoint[300] = "";
    nr_train_result res = {.best_val_loss = NAN, .train_loss = NAN, .train_accuracy = NAN, .val_loss = NAN,
                           .val_accuracy = NAN};
    nr_progress p = {.epochs = cfg.epochs, .batches = batches, .val_loss = NAN, .val_accuracy = NAN};
    bool stop_early = false;
    double best_train_loss = NAN, best_train_acc = NAN;
    for (size_t epoch = (size_t)run.epoch; epoch < cfg.epochs && !stop_early; epoch++) {
        nr_rng rng;
        nr_rng_seed(&rng, derive_seed(cfg.seed, epoch, 0, PURPOSE_SHUFFLE));
        for (size_t i = 0; i < n; i++)
            b.order[i] = (uint32_t)i;
        nr_rng_shuffle(&rng, b.order, n);
        if (run.epoch != epoch) {  /* a fresh epoch, not one resumed in the middle */
            run.epoch = epoch;
            run.batch = 0;
            run.loss_sum = 0;
            run.correct = run.seen = 0;
        }
        p.epoch = epoch + 1;
        p.val_loss = p.val_accuracy = NAN;
        p.improved = 0;
        double t0 = now();
        for (size_t bi = (size_t)run.batch; bi < batches; bi++) {
            if (cfg.stop && *cfg.stop) {
                const char *save = cfg.stop_checkpoint ? cfg.stop_checkpoint : cfg.checkpoint;
                if (save && (st = save_checkpoint(save, net, opt, &run)))
                    goto done;
                st = save ? nr__fail(NR_ESTOPPED, "stopped at epoch %zu, batch %zu; the state is in %s", epoch + 1,
                                     bi, save)
                          : nr__fail(NR_ESTOPPED, "stopped at epoch %zu, batch %zu (no checkpoint)", epoch + 1, bi);
                goto done;
            }
            size_t first = bi * batch, m = n - first < batch ? n - first : batch;
            nr_rng aug;
            nr_rng_seed(&aug, derive_seed(cfg.seed, epoch, bi, PURPOSE_AUGMENT));
            nr__data_gather(train, b.order + first, m, &net->scaling, b.x, b.labels, &aug, cfg.augment_shift);
            nr_rng_seed(&net->rng, derive_seed(cfg.seed, epoch, bi, PURPOSE_DROPOUT));
            if (cfg.loss != NR_LOSS_XENT)
                one_hot(b.targets, b.labels, m, out);
            const float *y;
            double loss;
            char where[200];
            if ((st = nr_net_forward(net, b.x, m, 1, &y)) ||
                (st = nr_net_loss(net, cfg.loss, b.targets, b.labels, &loss)))
                goto done;
            bool bad = !isfinite(loss) || (cfg.check_numerics && locate_nonfinite(net, false, where, sizeof where));
            nr_net_zero_grad(net);
            if (!bad) {
                nr_net_backward(net);
                bad = cfg.check_numerics && locate_nonfinite(net, true, where, sizeof where);
            }
            if (bad) {
                if (!isfinite(loss) && !locate_nonfinite(net, false, where, sizeof where))
                    snprintf(where, sizeof where, "the loss (%g)", loss);
                st = nr__fail(NR_ENUMERIC, "a NaN or infinity first appeared in %s at epoch %zu, batch %zu (step "
                                           "%llu); %s%s", where, epoch + 1, bi + 1,
                              (unsigned long long)(epoch * batches + bi + 1),
                              last_checkpoint[0] ? "last good checkpoint: " : "no checkpoint was saved",
                              last_checkpoint);
                goto done;
            }
            uint64_t step = (uint64_t)epoch * batches + bi;
            float lr = nr_lr_at(cfg.schedule, cfg.opt.lr > 0 ? cfg.opt.lr : nr_opt_get_config(opt)->lr, step,
                                total_steps, warmup, (uint64_t)cfg.step_epochs * batches, cfg.gamma);
            if ((st = nr_opt_step(opt, net, lr, NULL))) {
                if (st == NR_ENUMERIC && locate_nonfinite(net, true, where, sizeof where))
                    st = nr__fail(NR_ENUMERIC, "a NaN or infinity first appeared in %s at epoch %zu, batch %zu "
                                               "(step %llu); %s%s", where, epoch + 1, bi + 1,
                                  (unsigned long long)(step + 1),
                                  last_checkpoint[0] ? "last good checkpoint: " : "no checkpoint was saved",
                                  last_checkpoint);
                goto done;
            }
            run.loss_sum += cfg.loss == NR_LOSS_SSE ? loss : loss * (double)m;
            for (size_t k = 0; k < m; k++)
                run.correct += argmax(y + k * out, out) == (size_t)b.labels[k];
            run.seen += m;
            run.batch = bi + 1;
            p.batch = bi + 1;
            p.samples = (size_t)run.seen;
            p.loss = run.loss_sum / (double)run.seen;
            p.accuracy = (double)run.correct / (double)run.seen;
            p.lr = lr;
            p.seconds = now() - t0;
            if (cfg.on_batch)
                cfg.on_batch(&p, cfg.user);
            if (cfg.checkpoint && cfg.checkpoint_every && run.batch % cfg.checkpoint_every == 0 &&
                run.batch < batches) {
                if ((st = save_checkpoint(cfg.checkpoint, net, opt, &run)))
                    goto done;
                snprintf(last_checkpoint, sizeof last_checkpoint, "%s (epoch %zu, batch %zu)", cfg.checkpoint,
                         epoch + 1, bi + 1);
            }
        }
        if (cfg.check_numerics && cfg.numerics_log)
            log_numerics(net, cfg.numerics_log, epoch + 1);
        res.epochs_run = epoch + 1;
        res.train_loss = p.loss;
        res.train_accuracy = p.accuracy;
        if (val) {
            if ((st = evaluate_into(net, val, &b, &p.val_loss, &p.val_accuracy, NULL, 0)))
                goto done;
            if (p.val_loss < run.best_val) {
                run.best_val = p.val_loss;
                run.best_epoch = epoch + 1;
                run.since_best = 0;
                p.improved = 1;
                if (run.best) {
                    memcpy(run.best, net->params, net->n_params * sizeof(float));
                    run.has_best = true;
                    best_train_loss = p.loss;
                    best_train_acc = p.accuracy;
                }
            } else {
                run.since_best++;
            }
            res.val_loss = p.val_loss;
            res.val_accuracy = p.val_accuracy;
        }
        if (cfg.on_epoch)
            cfg.on_epoch(&p, cfg.user);
        if (cfg.patience && run.since_best >= cfg.patience) {
            stop_early = true;
            res.stopped = 1;
        }
        /* The position after this epoch: the next one, from its first batch. */
        run.epoch = epoch + 1;
        run.batch = 0;
        run.loss_sum = 0;
        run.correct = run.seen = 0;
        if (cfg.checkpoint) {
            if ((st = save_checkpoint(cfg.checkpoint, net, opt, &run)))
                goto done;
            snprintf(last_checkpoint, sizeof last_checkpoint, "%s (end of epoch %zu)", cfg.checkpoint, epoch + 1);
        }
    }
    res.best_epoch = res.epochs_run;
    if (run.has_best) {
        /* Early stopping keeps the weights of the best validation loss; report what they score. */
        memcpy(net->params, run.best, net->n_params * sizeof(float));
        res.best_epoch = (size_t)run.best_epoch;
        res.best_val_loss = run.best_val;
        if ((st = evaluate_into(net, val, &b, &res.val_loss, &res.val_accuracy, NULL, 0)))
            goto done;
        res.train_loss = best_train_loss;
        res.train_accuracy = best_train_acc;
    } else if (val) {
        res.best_val_loss = run.best_val;
    }
    if (result)
        *result = res;
done:
    nr__free(run.best);
    free_buffers(&b);
    nr_opt_free(opt);
    return st;
}
