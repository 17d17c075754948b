/* evaluate.c - running a trained network: predictions for raw samples, and loss, accuracy and the confusion
 * matrix over a labelled data set. Both work in batches, so a data set of any size needs one batch of memory. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>

enum { PREDICT_CHUNK = 256 };

void nr_net_set_head(nr_net *net, nr_loss loss)
{
    if (net && loss >= NR_LOSS_SSE && loss <= NR_LOSS_XENT)
        net->head = loss;
}

nr_loss nr_net_head(const nr_net *net) { return net ? net->head : NR_LOSS_SSE; }

/* The buffer for scaled inputs, grown to `floats` once and kept for the next call. */
static nr_status reserve_predict_buffer(nr_net *net, size_t floats)
{
    if (net->predict_cap >= floats)
        return NR_OK;
    nr__free(net->predict_buf);
    net->predict_cap = 0;
    if (!(net->predict_buf = nr__floats(floats)))
        return NR_ENOMEM;
    net->predict_cap = floats;
    return NR_OK;
}

static nr_status predict(nr_net *net, const float *x, size_t n, float *out, bool head);

nr_status nr_net_predict(nr_net *net, const float *x, size_t n, float *out) { return predict(net, x, n, out, true); }

nr_status nr_net_logits(nr_net *net, const float *x, size_t n, float *out) { return predict(net, x, n, out, false); }

/* Raw samples: scaled, run in chunks, and (with `head`) made probabilities or targets in their units. */
static nr_status predict(nr_net *net, const float *x, size_t n, float *out, bool head)
{
    nr_status st = nr__net_check_batch(net, x, n);
    if (st)
        return st;
    if (!out)
        return nr__fail(NR_EINVAL, "nr_net_predict: NULL output");
    size_t in = net->in_size, d = nr_net_output_size(net);
    size_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    if (net->scaling.kind && (st = reserve_predict_buffer(net, chunk * in)))
        return st;
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
        if (!head)
            memcpy(out + i * d, y, m * d * sizeof(float));
        else if (net->head == NR_LOSS_XENT)
            nr__softmax_rows(y, out + i * d, m, d);
        else if (net->n_targets == d)  /* a regression: back to the targets' own units */
            for (size_t k = 0; k < m * d; k++)
                out[i * d + k] = y[k] / net->target_scale[k % d] + net->target_mean[k % d];
        else
            memcpy(out + i * d, y, m * d * sizeof(float));
    }
    return NR_OK;
}

/* ---- batches ---- */

void nr__batches_free(nr__batches *b)
{
    free(b->order);
    nr__free(b->x);
    free(b->labels);
    nr__free(b->targets);
    memset(b, 0, sizeof *b);
}

nr_status nr__batches_new(nr__batches *b, size_t cap, size_t samples, size_t features, size_t outputs)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->order = malloc((samples ? samples : 1) * sizeof *b->order);
    b->labels = malloc(cap * sizeof *b->labels);
    b->x = nr__floats(cap * features);
    b->targets = nr__floats(cap * outputs);
    if (!b->order || !b->labels || !b->x || !b->targets) {
        nr__batches_free(b);
        return nr__fail(NR_ENOMEM, "out of memory for batches of %zu", cap);
    }
    return NR_OK;
}

/* ---- evaluation ---- */

/* Loss and score over the samples [lo, hi) of a data set. */
static nr_status evaluate_range(nr_net *net, const nr__task *task, const nr_dataset *d, nr__batches *b, size_t lo,
                                size_t hi, nr__tally *tally, size_t *confusion, size_t classes)
{
    size_t out = nr_net_output_size(net);
    memset(tally, 0, sizeof *tally);
    for (size_t i = lo; i < hi; i++)
        b->order[i] = (uint32_t)i;
    for (size_t i = lo; i < hi; i += b->cap) {
        size_t m = hi - i < b->cap ? hi - i : b->cap;
        nr__data_gather(d, b->order + i, m, &net->scaling, b->x, b->labels, NULL, 0, NULL);
        const float *y;
        double loss;
        nr__batch_view view = {net, d, b->order + i, m, out};
        nr_status st = nr_net_forward(net, b->x, m, 0, &y);
        if (!st)
            task->targets(&view, b, net->head);
        if (!st)
            st = nr_net_loss(net, net->head, b->targets, b->labels, &loss);
        if (st)
            return st;
        nr__tally_loss(tally, net->head, loss, m);
        task->score(&view, y, b, tally, confusion, classes);
    }
    return NR_OK;
}

/* Adds up the processes' tallies (and confusion matrices, through `scratch`: classes^2 doubles). */
static nr_status sum_tallies(const nr_comm *comm, nr__tally *tally, size_t *confusion, size_t classes,
                             double *scratch)
{
    double v[3] = {tally->loss_sum, (double)tally->correct, (double)tally->seen};
    nr_status st = comm->sum_f64(comm->ctx, v, 3);
    if (st)
        return st;
    *tally = (nr__tally){v[0], (uint64_t)v[1], (uint64_t)v[2]};
    if (!confusion)
        return NR_OK;
    for (size_t i = 0; i < classes * classes; i++)
        scratch[i] = (double)confusion[i];
    if ((st = comm->sum_f64(comm->ctx, scratch, classes * classes)))
        return st;
    for (size_t i = 0; i < classes * classes; i++)
        confusion[i] = (size_t)scratch[i];
    return NR_OK;
}

nr_status nr__evaluate_into(nr_net *net, const nr__task *task, const nr_dataset *d, nr__batches *b,
                            const nr_comm *comm, nr__tally *tally, size_t *confusion, size_t classes,
                            double *scratch)
{
    if (!comm || comm->size < 2)
        return evaluate_range(net, task, d, b, 0, d->n, tally, confusion, classes);
    size_t k = (size_t)comm->size, r = (size_t)comm->rank;
    nr_status st = evaluate_range(net, task, d, b, r * d->n / k, (r + 1) * d->n / k, tally, confusion, classes);
    return st ? st : sum_tallies(comm, tally, confusion, classes, scratch);
}

nr_status nr__check_data(const nr_net *net, const nr_dataset *d, const char *what)
{
    if (d->features != net->in_size)
        return nr__fail(NR_ESHAPE, "the %s data has %zu features per sample, the network takes %zu", what,
                        d->features, net->in_size);
    size_t out = nr_net_output_size(net);
    if (d->n_targets && d->n_targets != net->n_targets)
        return nr__fail(NR_ESHAPE, "the %s data has %zu regression targets, the network knows %zu (fit its scaling "
                                   "on the training data first: nr_net_fit_scaling)", what, d->n_targets,
                        net->n_targets);
    if (d->n_targets && d->n_targets != out)
        return nr__fail(NR_ESHAPE, "the %s data has %zu regression targets, the network has %zu outputs", what,
                        d->n_targets, out);
    if (!d->n_targets && net->n_targets)
        return nr__fail(NR_ESHAPE, "the %s data has classes, the network is a regression of %zu targets", what,
                        net->n_targets);
    if (d->classes > out)
        return nr__fail(NR_ESHAPE, "the %s data has %zu classes, the network has only %zu outputs", what,
                        d->classes, out);
    if (d->n == 0)
        return nr__fail(NR_EINVAL, "the %s data is empty", what);
    return NR_OK;
}

nr_status nr_evaluate(nr_net *net, const nr_dataset *data, nr_eval *out)
{
    return nr_evaluate_shared(net, data, NULL, out);
}

nr_status nr_evaluate_shared(nr_net *net, const nr_dataset *data, const nr_comm *comm, nr_eval *out)
{
    if (!net || !data || !out)
        return nr__fail(NR_EINVAL, "nr_evaluate: NULL argument");
    memset(out, 0, sizeof *out);
    nr_status st = nr__check_data(net, data, "evaluation");
    if (st)
        return st;
    size_t classes = nr_net_output_size(net), cap = data->n < PREDICT_CHUNK ? data->n : PREDICT_CHUNK;
    nr__batches b;
    if ((st = nr__batches_new(&b, cap, data->n, net->in_size, classes)))
        return st;
    out->confusion = calloc(classes * classes, sizeof *out->confusion);
    double *scratch = comm ? calloc(classes * classes, sizeof *scratch) : NULL;
    if (!out->confusion || (comm && !scratch)) {
        nr__batches_free(&b);
        free(scratch);
        nr_eval_free(out);
        return nr__fail(NR_ENOMEM, "out of memory");
    }
    out->count = data->n;
    out->classes = classes;
    nr__tally tally;
    st = nr__evaluate_into(net, nr__task_of(data), data, &b, comm, &tally, out->confusion, classes, scratch);
    out->loss = nr__tally_mean_loss(&tally);
    out->accuracy = data->n_targets ? NAN : nr__tally_accuracy(&tally);
    if (!st && data->n_targets)
        st = nr__regression_metrics(net, data, comm, out);
    nr__batches_free(&b);
    free(scratch);
    if (st)
        nr_eval_free(out);
    return st;
}

void nr_eval_free(nr_eval *e)
{
    if (e) {
        free(e->confusion);
        free(e->mae);
        free(e->rmse);
        free(e->r2);
        e->confusion = NULL;
        e->mae = e->rmse = e->r2 = NULL;
    }
}
