/* metrics.c - a regression's quality per target, in the targets' own units: mean absolute error, root mean
 * squared error, and R^2 (1 - the squared error over the targets' own variance: 1 is perfect, 0 is no better
 * than predicting the mean). */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>

enum { CHUNK = 256 };

/* Per target: sums of |error|, error^2, target and target^2 over samples [lo, hi). */
static nr_status sum_errors(nr_net *net, const nr_dataset *d, size_t lo, size_t hi, double *sums, float *x,
                            float *y)
{
    size_t t = d->n_targets, in = d->features;
    for (size_t i = lo; i < hi; i += CHUNK) {
        size_t m = hi - i < CHUNK ? hi - i : CHUNK;
        for (size_t k = 0; k < m; k++)
            nr_data_sample(d, i + k, x + k * in);
        nr_status st = nr_net_predict(net, x, m, y);
        if (st)
            return st;
        for (size_t k = 0; k < m; k++)
            for (size_t j = 0; j < t; j++) {
                double truth = d->targets[(i + k) * t + j], e = y[k * t + j] - truth;
                sums[4 * j] += fabs(e);
                sums[4 * j + 1] += e * e;
                sums[4 * j + 2] += truth;
                sums[4 * j + 3] += truth * truth;
            }
    }
    return NR_OK;
}

nr_status nr__regression_metrics(nr_net *net, const nr_dataset *d, const nr_comm *comm, nr_eval *out)
{
    size_t t = d->n_targets, k = comm ? (size_t)comm->size : 1, r = comm ? (size_t)comm->rank : 0;
    double *sums = calloc(4 * t, sizeof *sums);
    float *x = malloc(CHUNK * d->features * sizeof *x), *y = malloc(CHUNK * t * sizeof *y);
    out->mae = malloc(t * sizeof *out->mae);
    out->rmse = malloc(t * sizeof *out->rmse);
    out->r2 = malloc(t * sizeof *out->r2);
    nr_status st = sums && x && y && out->mae && out->rmse && out->r2 ? NR_OK : nr__fail(NR_ENOMEM, "out of memory");
    if (!st)
        st = sum_errors(net, d, r * d->n / k, (r + 1) * d->n / k, sums, x, y);
    if (!st && comm && comm->size > 1)
        st = comm->sum_f64(comm->ctx, sums, 4 * t);
    for (size_t j = 0; !st && j < t; j++) {
        double n = (double)d->n, mean = sums[4 * j + 2] / n, var = sums[4 * j + 3] / n - mean * mean;
        out->mae[j] = sums[4 * j] / n;
        out->rmse[j] = sqrt(sums[4 * j + 1] / n);
        out->r2[j] = var > 0 ? 1.0 - sums[4 * j + 1] / n / var : NAN;
    }
    out->targets = st ? 0 : t;
    free(sums);
    free(x);
    free(y);
    return st;
}
