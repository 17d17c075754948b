/* task.c - the learning problems the trainer knows, each a small table (trainer.h): where the loss's targets
 * come from and how outputs are scored. Classification is the one there is; regression plugs in beside it. */
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
static void one_hot_targets(nr__batches *b, size_t m, size_t outputs, nr_loss loss)
{
    if (loss == NR_LOSS_XENT)
        return;
    memset(b->targets, 0, m * outputs * sizeof(float));
    for (size_t i = 0; i < m; i++)
        b->targets[i * outputs + (size_t)b->labels[i]] = 1.0f;
}

static void count_correct(const float *y, const nr__batches *b, size_t m, size_t outputs, nr__tally *tally,
                          size_t *confusion, size_t classes)
{
    for (size_t k = 0; k < m; k++) {
        size_t guess = argmax(y + k * outputs, outputs);
        tally->correct += guess == (size_t)b->labels[k];
        if (confusion && guess < classes)
            confusion[(size_t)b->labels[k] * classes + guess]++;
    }
    tally->seen += m;
}

const nr__task nr__classification = {"classification", one_hot_targets, count_correct};
