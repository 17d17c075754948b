/* checkpoint.c - the whole state of a training run in one file: a model file (so eval, predict and info take
 * it) with more sections a plain model reader skips: the optimizer's state ("optm"), the run's position and
 * history ("trng"), and the caller's note ("note": the command line keeps the run's options there). Resuming
 * from it continues bit for bit (train.c says why that suffices). */
#include "io/model.h"
#include "train/trainer.h"

#include <stdlib.h>

typedef struct checkpoint_io {
    const nr_net *net;
    nr_optimizer *opt;           /* NULL: read only the optimizer's step count (nr_checkpoint_read) */
    nr__run *run;
    const char *note;            /* written, if not NULL */
    char *note_read;             /* read (malloc'd) */
    uint64_t steps;
    bool got_opt, got_run;
} checkpoint_io;

/* The longest note kept: a command line's options fit many times over. */
enum { MAX_NOTE = 1 << 16 };

enum { RUN_FIELDS = 10 };

static void put_opt(nr__sink *s, const void *ctx)
{
    const checkpoint_io *io = ctx;
    const nr_opt_config *c = nr_opt_get_config(io->opt);
    nr__put_u32(s, (uint32_t)c->kind);
    const float settings[7] = {c->lr, c->momentum, c->beta1, c->beta2, c->eps, c->weight_decay, c->clip_norm};
    for (int i = 0; i < 7; i++)
        nr__put_f32(s, settings[i]);
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
    const nr__run *r = io->run;
    uint64_t fields[RUN_FIELDS] = {r->seed, r->epoch, r->batch, r->samples, r->batch_size, r->tally.correct,
                                   r->tally.seen, r->best_epoch, r->since_best, r->has_best};
    for (size_t i = 0; i < RUN_FIELDS; i++)
        nr__put_u64(s, fields[i]);
    nr__put_f64(s, r->tally.loss_sum);
    nr__put_f64(s, r->best_val);
    if (r->has_best) {
        nr__put_u64(s, io->net->n_params);
        nr__put_floats(s, r->best, io->net->n_params);
    }
}

static void put_note(nr__sink *s, const void *ctx)
{
    const char *note = ((const checkpoint_io *)ctx)->note;
    nr__put(s, note, strlen(note));
}

/* Lower-case tags: a plain model reader skips them, so a checkpoint is also a model file. */
static void put_checkpoint_sections(nr__sink *s, const void *ctx)
{
    nr__put_section(s, "optm", put_opt, ctx);
    nr__put_section(s, "trng", put_run, ctx);
    if (((const checkpoint_io *)ctx)->note)
        nr__put_section(s, "note", put_note, ctx);
}

nr_status nr__checkpoint_save(const char *path, const nr_net *net, nr_optimizer *opt, const nr__run *run,
                              const char *note)
{
    if (note && strlen(note) > MAX_NOTE)
        return nr__fail(NR_EINVAL, "%s: the checkpoint's note is longer than %d bytes", path, MAX_NOTE);
    checkpoint_io io = {.net = net, .opt = opt, .run = (nr__run *)run, .note = note};
    nr__extra extra = {put_checkpoint_sections, &io, NULL, NULL};
    return nr__model_write(net, path, &extra);
}

static bool read_opt(nr__reader *r, checkpoint_io *io)
{
    uint32_t kind, count;
    float settings[7];
    uint64_t steps, np;
    if (!nr__get_u32(r, &kind))
        return false;
    for (int i = 0; i < 7; i++)
        if (!nr__get_f32(r, &settings[i]))
            return false;
    if (!nr__get_u64(r, &steps) || !nr__get_u64(r, &np) || !nr__get_u32(r, &count))
        return false;
    io->steps = steps;
    if (!io->opt) {  /* the position only: the state is left unread */
        r->p = r->end;
        io->got_opt = true;
        return true;
    }
    const nr_opt_config *c = nr_opt_get_config(io->opt);
    size_t have, n_params = io->net->n_params;
    float **state = nr_opt_state(io->opt, &have);
    if (kind != (uint32_t)c->kind || count != have)
        return nr__reader_fail(r, "the checkpoint's optimizer differs from this run's (kind %u vs %d)", kind,
                               (int)c->kind);
    if (np != n_params)
        return nr__reader_fail(r, "optimizer state for %llu parameters, the network has %zu",
                               (unsigned long long)np, n_params);
    for (size_t i = 0; i < count; i++)
        if (!nr__get_floats(r, state[i], n_params))
            return false;
    nr__opt_set_steps(io->opt, steps);
    io->got_opt = true;
    return true;
}

/* The best weights of early stopping, present when the run has them. */
static bool read_best(nr__reader *r, checkpoint_io *io)
{
    uint64_t np;
    size_t n_params = io->net->n_params;
    if (!nr__get_u64(r, &np))
        return false;
    if (np != n_params || !io->run->best)
        return nr__reader_fail(r, "best weights for %llu parameters, the network has %zu", (unsigned long long)np,
                               n_params);
    return nr__get_floats(r, io->run->best, n_params);
}

static bool read_run(nr__reader *r, checkpoint_io *io)
{
    nr__run *s = io->run;
    uint64_t v[RUN_FIELDS];
    for (int i = 0; i < RUN_FIELDS; i++)
        if (!nr__get_u64(r, &v[i]))
            return false;
    if (!nr__get_f64(r, &s->tally.loss_sum) || !nr__get_f64(r, &s->best_val))
        return false;
    if (!io->opt) {  /* nr_checkpoint_read: the position as it is, nothing to compare it with */
        s->samples = v[3];
        s->batch_size = v[4];
    }
    if (v[3] != s->samples || v[4] != s->batch_size)
        return nr__reader_fail(r, "made with batch %llu on %llu samples; this run has batch %llu on %llu",
                               (unsigned long long)v[4], (unsigned long long)v[3],
                               (unsigned long long)s->batch_size, (unsigned long long)s->samples);
    s->seed = v[0];
    s->epoch = v[1];
    s->batch = v[2];
    s->tally.correct = v[5];
    s->tally.seen = v[6];
    s->best_epoch = v[7];
    s->since_best = v[8];
    s->has_best = v[9] != 0;
    if (s->batch * s->batch_size > s->samples || s->tally.seen > s->samples || s->tally.correct > s->tally.seen)
        return nr__reader_fail(r, "inconsistent position");
    if (s->has_best && !io->opt) {
        r->p = r->end;
    } else if (s->has_best && !read_best(r, io)) {
        return false;
    }
    io->got_run = true;
    return true;
}

static bool read_note(nr__reader *r, checkpoint_io *io)
{
    size_t len = (size_t)(r->end - r->p);
    if (len > MAX_NOTE)
        return nr__reader_fail(r, "a note of %zu bytes (at most %d)", len, MAX_NOTE);
    if (io->note_read || memchr(r->p, 0, len))
        return nr__reader_fail(r, io->note_read ? "appears twice" : "holds a zero byte");
    if (!(io->note_read = malloc(len + 1))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    memcpy(io->note_read, r->p, len);
    io->note_read[len] = 0;
    r->p = r->end;
    return true;
}

static bool read_checkpoint_section(nr__reader *r, const char tag[4], void *ctx)
{
    if (memcmp(tag, "optm", 4) == 0)
        return read_opt(r, ctx);
    if (memcmp(tag, "trng", 4) == 0)
        return read_run(r, ctx);
    if (memcmp(tag, "note", 4) == 0)
        return read_note(r, ctx);
    if (tag[0] >= 'a' && tag[0] <= 'z')
        return true;  /* optional, and unknown to this version: skipped as the model reader would */
    return nr__reader_fail(r, "unknown required section");
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

/* The weights, and the scaling and head they were trained with, from the checkpoint's network. */
static void take_model(nr_net *net, nr_net *saved)
{
    nr__net_weights_changed(net);
    memcpy(net->params, saved->params, net->n_params * sizeof(float));
    if (saved->scaling.kind) {
        nr__scaling tmp = net->scaling;
        net->scaling = saved->scaling;
        saved->scaling = tmp;
    }
    net->head = saved->head;
}

nr_status nr__checkpoint_load(const char *path, nr_net *net, nr_optimizer *opt, nr__run *run)
{
    checkpoint_io io = {.net = net, .opt = opt, .run = run};
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
    if (!st)
        take_model(net, saved);
    nr_net_free(saved);
    free(io.note_read);
    return st;
}

nr_status nr_checkpoint_read(const char *path, nr_checkpoint_info *info)
{
    if (!path || !info)
        return nr__fail(NR_EINVAL, "nr_checkpoint_read: NULL argument");
    memset(info, 0, sizeof *info);
    nr__run run = {0};
    checkpoint_io io = {.run = &run};
    nr__extra extra = {NULL, NULL, read_checkpoint_section, &io};
    nr_net *saved = NULL;
    uint32_t flags = 0;
    nr_status st = nr__model_read(path, &saved, &extra, &flags);
    nr_net_free(saved);
    if (!st && (!(flags & NR__FLAG_CHECKPOINT) || !io.got_opt || !io.got_run))
        st = nr__fail(NR_EFORMAT, "%s: a model, not a checkpoint (it has no training state)", path);
    if (st) {
        free(io.note_read);
        return st;
    }
    *info = (nr_checkpoint_info){.epoch = run.epoch, .batch = run.batch, .steps = io.steps, .samples = run.samples,
                                 .batch_size = run.batch_size, .seed = run.seed, .best_val_loss = run.best_val,
                                 .best_epoch = run.best_epoch, .note = io.note_read};
    return NR_OK;
}

void nr_checkpoint_info_free(nr_checkpoint_info *info)
{
    if (info) {
        free(info->note);
        info->note = NULL;
    }
}
