/* train.c - the training loop. nr_train reads like the textbook: for every epoch, for every batch, gather the
 * batch, forward, loss, backward, reduce the gradients, clip, step, observe. Each of those is a function below;
 * the task (task.c) says what targets and scores mean, checkpoint.c saves and restores the run, numerics.c
 * finds where a NaN started.
 *
 * Reproducibility: every random choice of a run is drawn from a generator seeded from (seed, epoch, batch,
 * purpose), never from a generator that runs on through the whole run. So the shuffle of epoch 7 or the
 * dropout mask of batch 300 do not depend on what came before, and a resumed run needs only its position
 * (epoch, batch), its weights and the optimizer's state to continue bit for bit.
 *
 * Memory: everything the loop needs (sample order, one batch of inputs, labels, targets, the best weights)
 * is allocated before the first step; the steps themselves allocate nothing. */
#include "train/trainer.h"

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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- setting up ---- */

static void fill_defaults(nr_train_config *c)
{
    if (c->epochs == 0)
        c->epochs = 10;
    if (c->batch == 0)
        c->batch = 64;
    if (c->gamma == 0.0f)
        c->gamma = 0.1f;
    if (c->step_epochs == 0)
        c->step_epochs = 1;
}

static nr_status check_config(const nr_net *net, const nr_train_config *c, const nr_dataset *train)
{
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
    if (c->loss == NR_LOSS_XENT && train->n_targets)
        return nr__fail(NR_EINVAL, "cross-entropy learns classes; a regression learns with mse or sse");
    if (c->loss == NR_LOSS_XENT && nr_net_output_size(net) < 2)
        return nr__fail(NR_ESHAPE, "cross-entropy needs at least 2 outputs, the network has %zu",
                        nr_net_output_size(net));
    if (train->n > UINT32_MAX)
        return nr__fail(NR_EINVAL, "more than 2^32 samples");
    return NR_OK;
}

static nr_status check_inputs(nr__trainer *t)
{
    nr_status st;
    if ((st = check_config(t->net, &t->cfg, t->train)) || (st = nr__check_data(t->net, t->train, "training")) ||
        (t->val && (st = nr__check_data(t->net, t->val, "validation"))))
        return st;
    if (t->cfg.patience && !t->val)
        return nr__fail(NR_EINVAL, "early stopping (patience %zu) needs a validation set", t->cfg.patience);
    return NR_OK;
}

/* Plans the run and allocates everything it needs, then resumes from the checkpoint if there is one. */
static nr_status open_trainer(nr__trainer *t)
{
    t->task = nr__task_of(t->train);
    t->outputs = nr_net_output_size(t->net);
    t->n = t->train->n;
    t->batch = t->cfg.batch < t->n ? t->cfg.batch : t->n;
    t->batches = (t->n + t->batch - 1) / t->batch;
    t->total_steps = (uint64_t)t->cfg.epochs * t->batches;
    t->warmup = (uint64_t)((double)t->cfg.warmup_epochs * (double)t->batches);
    t->run = (nr__run){.seed = t->cfg.seed, .samples = t->n, .batch_size = t->batch, .best_val = INFINITY};
    t->result = (nr_train_result){.best_val_loss = NAN, .train_loss = NAN, .train_accuracy = NAN,
                                  .val_loss = NAN, .val_accuracy = NAN};
    t->progress = (nr_progress){.epochs = t->cfg.epochs, .batches = t->batches, .val_loss = NAN,
                                .val_accuracy = NAN};
    t->best_train_loss = t->best_train_acc = NAN;
    if (!(t->opt = nr_opt_new(t->net, &t->cfg.opt)))
        return NR_EINVAL;
    size_t largest = t->val && t->val->n > t->n ? t->val->n : t->n;
    nr_status st = nr__batches_new(&t->buf, t->batch, largest, t->net->in_size, t->outputs);
    if (st)
        return st;
    if (t->cfg.patience && !(t->run.best = nr__floats(t->net->n_params)))
        return NR_ENOMEM;
    if (t->cfg.resume && (st = nr__checkpoint_load(t->cfg.resume, t->net, t->opt, &t->run)))
        return st;
    t->net->head = t->cfg.loss;
    return nr__shared_open(t);
}

static void close_trainer(nr__trainer *t)
{
    nr__free(t->run.best);
    nr__batches_free(&t->buf);
    nr_opt_free(t->opt);
    nr__shared_close(t);
}

/* ---- one step ---- */

/* A stop request (Ctrl-C) ends the run at a batch boundary, saving the state to resume from first. */
static nr_status honour_stop_request(nr__trainer *t)
{
    /* Several processes stop together, at the batch after any of them was asked (nr__shared_agree). */
    if (t->comm ? !t->stop_all : !t->cfg.stop || !*t->cfg.stop)
        return NR_OK;
    const char *save = t->cfg.stop_checkpoint ? t->cfg.stop_checkpoint : t->cfg.checkpoint;
    nr_status st = save && t->writer ? nr__checkpoint_save(save, t->net, t->opt, &t->run, t->cfg.note) : NR_OK;
    if (t->comm && save)
        st = nr__shared_agree_write(t, st);
    if (st)
        return st;
    if (save)
        return nr__fail(NR_ESTOPPED, "stopped at epoch %zu, batch %zu; the state is in %s", t->epoch + 1, t->index,
                        save);
    return nr__fail(NR_ESTOPPED, "stopped at epoch %zu, batch %zu (no checkpoint)", t->epoch + 1, t->index);
}

/* The share's samples (shifted if augmenting), scaled as the network was, their labels and targets; and the
 * dropout generator for this share. A sample is shifted as it would be in the whole batch, so augmentation
 * does not depend on the shares; dropout draws from a generator per share (share 0: the batch's own). */
static void gather_share(nr__trainer *t, size_t shard)
{
    size_t first = t->index * t->batch + t->shard_first;
    uint64_t tag = (uint64_t)shard << 8;
    nr_rng aug;
    nr_rng_seed(&aug, derive_seed(t->cfg.seed, t->epoch, t->index, PURPOSE_AUGMENT));
    if (t->train->u8)
        nr__data_skip_shifts(&aug, t->shard_first, t->cfg.augment_shift);
    /* The next batch of this share, to prefetch; and runs of features when a dense layer reads the batch. */
    size_t next = first + t->batch, n_next = next < t->n ? t->n - next : 0;
    nr__gather_hints hints = {t->net->n_layers > 0 && t->net->layers[0].ops == &nr__dense_ops,
                              n_next ? t->buf.order + next : NULL, n_next < t->shard_m ? n_next : t->shard_m};
    nr__data_gather(t->train, t->buf.order + first, t->shard_m, &t->net->scaling, t->buf.x, t->buf.labels, &aug,
                    t->cfg.augment_shift, &hints);
    nr_rng_seed(&t->net->rng, derive_seed(t->cfg.seed, t->epoch, t->index, PURPOSE_DROPOUT + tag));
    nr__batch_view view = {t->net, t->train, t->buf.order + first, t->shard_m, t->outputs};
    t->task->targets(&view, &t->buf, t->cfg.loss);
}

/* One line that says where a NaN or an infinity first appeared, and what is left to resume from. */
static nr_status numeric_failure(const nr__trainer *t, const char *where)
{
    const char *ck = t->last_checkpoint;
    return nr__fail(NR_ENUMERIC, "a NaN or infinity first appeared in %s at epoch %zu, batch %zu (step %llu); %s%s",
                    where, t->epoch + 1, t->index + 1,
                    (unsigned long long)((uint64_t)t->epoch * t->batches + t->index + 1),
                    ck[0] ? "last good checkpoint: " : "no checkpoint was saved", ck);
}

static nr_status forward_and_loss(nr__trainer *t)
{
    nr_status st = nr_net_forward(t->net, t->buf.x, t->shard_m, 1, &t->y);
    if (!st)
        st = nr_net_loss(t->net, t->cfg.loss, t->buf.targets, t->buf.labels, &t->loss);
    if (st || t->shards == 1 || t->cfg.loss == NR_LOSS_SSE)
        return st;
    /* A mean over the share becomes its part of the mean over the batch: the shares' gradients then add up. */
    size_t last = t->net->n_layers - 1, count = t->shard_m * t->outputs;
    float weight = (float)((double)t->shard_m / (double)t->m), *g = t->net->dout[last];
    for (size_t i = 0; i < count; i++)
        g[i] *= weight;
    return NR_OK;
}

/* The schedule's learning rate for this step. */
static void set_lr(nr__trainer *t)
{
    uint64_t step = (uint64_t)t->epoch * t->batches + t->index;
    float base = t->cfg.opt.lr > 0 ? t->cfg.opt.lr : nr_opt_get_config(t->opt)->lr;
    t->lr = nr_lr_at(t->cfg.schedule, base, step, t->total_steps, t->warmup,
                     (uint64_t)t->cfg.step_epochs * t->batches, t->cfg.gamma);
}

/* Whether the update can ride along the backward pass (nr_net_backward_step): one pass computes the whole
 * gradient, nothing sums gradients across shares or processes first, nothing clips them, and no check looks
 * at the gradient between backward and update. */
static bool fused_update(const nr__trainer *t)
{
    return t->shards == 1 && !t->comm && !t->cfg.check_numerics && nr_opt_get_config(t->opt)->clip_norm <= 0.0f;
}

/* Backward, unless the forward pass already went non-finite: then no update may happen. With a fused update
 * this also takes the optimizer step. */
static nr_status backward(nr__trainer *t)
{
    char where[200];
    bool bad = !isfinite(t->loss) || (t->cfg.check_numerics && nr__locate_nonfinite(t->net, false, where,
                                                                                      sizeof where));
    if (!bad && fused_update(t)) {
        nr_status st = nr_net_backward_step(t->net, t->opt, t->lr);
        if (st == NR_ENUMERIC && nr__locate_nonfinite(t->net, true, where, sizeof where))
            st = numeric_failure(t, where);
        return st;
    }
    nr_net_zero_grad(t->net);
    if (!bad) {
        nr_net_backward(t->net);
        bad = t->cfg.check_numerics && nr__locate_nonfinite(t->net, true, where, sizeof where);
    }
    if (!bad)
        return NR_OK;
    if (!isfinite(t->loss) && !nr__locate_nonfinite(t->net, false, where, sizeof where))
        snprintf(where, sizeof where, "the loss (%g)", t->loss);
    return numeric_failure(t, where);
}

/* Clipping and the update, at the schedule's learning rate for this step. */
static nr_status clip_and_step(nr__trainer *t)
{
    if (fused_update(t))
        return NR_OK;  /* taken in backward */
    float gscale;
    nr_status st = nr__opt_clip(t->opt, t->net, &gscale, NULL);
    if (!st)
        st = nr__opt_update(t->opt, t->net, t->lr, gscale);
    char where[200];
    if (st == NR_ENUMERIC && nr__locate_nonfinite(t->net, true, where, sizeof where))
        st = numeric_failure(t, where);
    return st;
}

/* ---- observing: the progress, the caller's callbacks, checkpoints, the numerics log ---- */

/* Rank 0 (or the lone process) writes; with several processes all learn how it went. */
static nr_status save_checkpoint(nr__trainer *t, const char *when)
{
    nr_status st = t->writer ? nr__checkpoint_save(t->cfg.checkpoint, t->net, t->opt, &t->run, t->cfg.note) : NR_OK;
    if ((st = nr__shared_agree_write(t, st)))
        return st;
    snprintf(t->last_checkpoint, sizeof t->last_checkpoint, "%s (%s)", t->cfg.checkpoint, when);
    return NR_OK;
}

static nr_status observe_batch(nr__trainer *t)
{
    nr__tally *tally = &t->run.tally;
    t->run.batch = t->index + 1;
    nr_progress *p = &t->progress;
    p->batch = t->index + 1;
    p->samples = (size_t)tally->seen;
    p->loss = nr__tally_mean_loss(tally);
    p->accuracy = t->task == &nr__regression ? NAN : nr__tally_accuracy(tally);
    p->lr = t->lr;
    p->seconds = now() - t->epoch_start;
    if (t->cfg.on_batch)
        t->cfg.on_batch(p, t->cfg.user);
    if (t->cfg.checkpoint && t->cfg.checkpoint_every && t->run.batch % t->cfg.checkpoint_every == 0 &&
        t->run.batch < t->batches) {
        char when[64];
        snprintf(when, sizeof when, "epoch %zu, batch %zu", t->epoch + 1, t->index + 1);
        return save_checkpoint(t, when);
    }
    return NR_OK;
}

/* One share of the batch: its gradient (kept apart if the sum goes in share order) and its tally. */
static nr_status train_share(nr__trainer *t, size_t shard)
{
    t->shard_first = shard * t->m / t->shards;
    t->shard_m = (shard + 1) * t->m / t->shards - t->shard_first;
    if (t->shard_m == 0) {  /* more shares than samples in a last, short batch */
        nr_net_zero_grad(t->net);
        nr__shared_keep_gradient(t, shard, true);
        return NR_OK;
    }
    gather_share(t, shard);
    nr_status st = forward_and_loss(t);
    if (!st)
        st = backward(t);
    if (st)
        return st;
    nr__shared_keep_gradient(t, shard, false);
    nr__tally_loss(&t->step, t->cfg.loss, t->loss, t->shard_m);
    nr__batch_view view = {t->net, t->train, t->buf.order + t->index * t->batch + t->shard_first, t->shard_m,
                           t->outputs};
    t->task->score(&view, t->y, &t->buf, &t->step, NULL, 0);
    return NR_OK;
}

static nr_status train_step(nr__trainer *t)
{
    nr_status st;
    if ((st = honour_stop_request(t)))
        return st;
    size_t first = t->index * t->batch;
    t->m = t->n - first < t->batch ? t->n - first : t->batch;
    t->step = (nr__tally){0};
    set_lr(t);
    for (size_t s = t->first_shard; s < t->first_shard + t->my_shards && !st; s++)
        st = train_share(t, s);
    nr__shared_finish_buckets(t);
    if ((st = nr__shared_agree(t, st))) {
        nr__shared_drain(t);
        return st;
    }
    if ((st = nr__shared_reduce_gradients(t)) || (st = clip_and_step(t)) || (st = nr__shared_sync_state(t)))
        return st;
    return observe_batch(t);
}

/* ---- epochs ---- */

static void begin_epoch(nr__trainer *t, size_t epoch)
{
    nr_rng rng;
    nr_rng_seed(&rng, derive_seed(t->cfg.seed, epoch, 0, PURPOSE_SHUFFLE));
    for (size_t i = 0; i < t->n; i++)
        t->buf.order[i] = (uint32_t)i;
    nr_rng_shuffle(&rng, t->buf.order, t->n);
    if (t->run.epoch != epoch) {  /* a fresh epoch, not one resumed in the middle */
        t->run.epoch = epoch;
        t->run.batch = 0;
        t->run.tally = (nr__tally){0};
    }
    t->epoch = epoch;
    t->progress.epoch = epoch + 1;
    t->progress.val_loss = t->progress.val_accuracy = NAN;
    t->progress.improved = 0;
    t->epoch_start = now();
}

/* Validation loss and accuracy, and whether they are the best so far (early stopping keeps those weights). */
static nr_status validate(nr__trainer *t)
{
    nr_progress *p = &t->progress;
    nr__tally tally;
    nr_status st = nr__evaluate_into(t->net, t->task, t->val, &t->buf, t->comm, &tally, NULL, 0, NULL);
    if (st)
        return st;
    p->val_loss = nr__tally_mean_loss(&tally);
    p->val_accuracy = t->task == &nr__regression ? NAN : nr__tally_accuracy(&tally);
    t->result.val_loss = p->val_loss;
    t->result.val_accuracy = p->val_accuracy;
    if (!(p->val_loss < t->run.best_val)) {
        t->run.since_best++;
        return NR_OK;
    }
    t->run.best_val = p->val_loss;
    t->run.best_epoch = t->epoch + 1;
    t->run.since_best = 0;
    p->improved = 1;
    if (t->run.best) {
        memcpy(t->run.best, t->net->params, t->net->n_params * sizeof(float));
        t->run.has_best = true;
        t->best_train_loss = p->loss;
        t->best_train_acc = p->accuracy;
    }
    return NR_OK;
}

static nr_status end_epoch(nr__trainer *t)
{
    nr_status st;
    if (t->cfg.check_numerics && t->cfg.numerics_log)
        nr__log_numerics(t->net, t->cfg.numerics_log, t->epoch + 1);
    t->result.epochs_run = t->epoch + 1;
    t->result.train_loss = t->progress.loss;
    t->result.train_accuracy = t->progress.accuracy;
    if (t->val && (st = validate(t)))
        return st;
    if (t->cfg.on_epoch)
        t->cfg.on_epoch(&t->progress, t->cfg.user);
    if (t->cfg.patience && t->run.since_best >= t->cfg.patience) {
        t->stop_early = true;
        t->result.stopped = 1;
    }
    /* The position after this epoch: the next one, from its first batch. */
    t->run.epoch = t->epoch + 1;
    t->run.batch = 0;
    t->run.tally = (nr__tally){0};
    if (!t->cfg.checkpoint)
        return NR_OK;
    char when[64];
    snprintf(when, sizeof when, "end of epoch %zu", t->epoch + 1);
    return save_checkpoint(t, when);
}

/* The result: with early stopping, the best validation epoch's weights and what they score. */
static nr_status finish(nr__trainer *t)
{
    nr_train_result *res = &t->result;
    res->best_epoch = res->epochs_run;
    if (!t->run.has_best) {
        if (t->val)
            res->best_val_loss = t->run.best_val;
        return NR_OK;
    }
    nr__net_weights_changed(t->net);
    memcpy(t->net->params, t->run.best, t->net->n_params * sizeof(float));
    res->best_epoch = (size_t)t->run.best_epoch;
    res->best_val_loss = t->run.best_val;
    nr__tally tally;
    nr_status st = nr__evaluate_into(t->net, t->task, t->val, &t->buf, t->comm, &tally, NULL, 0, NULL);
    res->val_loss = nr__tally_mean_loss(&tally);
    res->val_accuracy = t->task == &nr__regression ? NAN : nr__tally_accuracy(&tally);
    res->train_loss = t->best_train_loss;
    res->train_accuracy = t->best_train_acc;
    return st;
}

nr_status nr_train(nr_net *net, const nr_dataset *train, const nr_dataset *val, const nr_train_config *config,
                   nr_train_result *result)
{
    if (!net || !train || !config)
        return nr__fail(NR_EINVAL, "nr_train: NULL argument");
    nr__trainer t = {.net = net, .train = train, .val = val, .cfg = *config};
    fill_defaults(&t.cfg);
    nr_status st = check_inputs(&t);
    if (st)
        return st;
    st = open_trainer(&t);
    for (size_t epoch = (size_t)t.run.epoch; !st && epoch < t.cfg.epochs && !t.stop_early; epoch++) {
        begin_epoch(&t, epoch);
        for (t.index = (size_t)t.run.batch; !st && t.index < t.batches; t.index++)
            st = train_step(&t);
        if (!st)
            st = end_epoch(&t);
    }
    if (!st)
        st = finish(&t);
    if (!st && result)
        *result = t.result;
    close_trainer(&t);
    return st;
}
