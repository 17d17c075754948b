/* task.c - the learning problems the trainer knows, each a small table (trainer.h): where the loss's targets
 * come from and how outputs are scored. Classification learns labels; regression learns a data set's numeric
 * targets, standardised with the network's target scaling. */
#include "train/trainer.h"

#include <math.h>

void nr__tally_loss(nr__tally *tally, nr_loss loss, double value, size_t m)
{
    /* SSE sums over the batch, MSE and XENT average: weigh each batch by its share. */
    tally->loss_sum += loss == NR_LOSS_SSE ? value : value * (double)m;
}

double nr__tally_mean_loss(const nr__tally *tally)
{
    return tally->seen ? tally->loss_sum / (double)tally->seen : NAN;
}

double nr__tally_accuracy(const nr__tally *tally)
{
    return tally->seen ? (double)tally->correct / (double)tally->seen : NAN;
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* SSE and MSE on a classifier compare the outputs with the one-hot code of the label. */
static void one_hot_targets(const nr__batch_view *v, nr__batches *b, nr_loss loss)
{
    if (loss == NR_LOSS_XENT)
        return;
    memset(b->targets, 0, v->m * v->outputs * sizeof(float));
    for (size_t i = 0; i < v->m; i++)
        b->targets[i * v->outputs + (size_t)b->labels[i]] = 1.0f;
}

static void count_correct(const nr__batch_view *v, const float *y, const nr__batches *b, nr__tally *tally,
                          size_t *confusion, size_t classes)
{
    for (size_t k = 0; k < v->m; k++) {
        size_t guess = argmax(y + k * v->outputs, v->outputs);
        tally->correct += guess == (size_t)b->labels[k];
        if (confusion && guess < classes)
            confusion[(size_t)b->labels[k] * classes + guess]++;
    }
    tally->seen += v->m;
}

const nr__task nr__classification = {"classification", one_hot_targets, count_correct};

/* The batch's targets, standardised as the network learns them: (t - mean) * scale. */
static void scaled_targets(const nr__batch_view *v, nr__batches *b, nr_loss loss)
{
    (void)loss;
    const nr_net *net = v->net;
    size_t t = v->outputs;
    for (size_t i = 0; i < v->m; i++)
        for (size_t k = 0; k < t; k++)
            b->targets[i * t + k] =
                (v->data->targets[(size_t)v->idx[i] * t + k] - net->target_mean[k]) * net->target_scale[k];
}

/* A regression has no accuracy: only the samples are counted (the loss is the measure). */
static void count_samples(const nr__batch_view *v, const float *y, const nr__batches *b, nr__tally *tally,
                          size_t *confusion, size_t classes)
{
    (void)y;
    (void)b;
    (void)confusion;
    (void)classes;
    tally->seen += v->m;
}

const nr__task nr__regression = {"regression", scaled_targets, count_samples};

const nr__task *nr__task_of(const nr_dataset *d) { return d->n_targets ? &nr__regression : &nr__classification; }
