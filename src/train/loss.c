/* loss.c - losses and their gradients with respect to the network's output.
 *
 * Softmax cross-entropy is fused: its gradient is simply softmax(z) - onehot(label), which is exact and
 * cannot overflow, where differentiating log(softmax) separately would divide by tiny probabilities. */
#include "core/internal.h"

#include <math.h>

nr_status nr__loss(nr_loss loss, const float *y, const float *targets, const int32_t *labels, size_t n, size_t d,
                   double *value, float *grad)
{
    double total = 0.0;
    switch (loss) {
    case NR_LOSS_SSE:
    case NR_LOSS_MSE: {
        if (!targets)
            return nr__fail(NR_EINVAL, "%s loss needs targets", loss == NR_LOSS_SSE ? "SSE" : "MSE");
        float scale = loss == NR_LOSS_SSE ? 2.0f : (float)(2.0 / ((double)n * (double)d));
        for (size_t i = 0; i < n * d; i++) {
            float diff = y[i] - targets[i];
            total += (double)diff * (double)diff;
            grad[i] = scale * diff;
        }
        if (loss == NR_LOSS_MSE)
            total /= (double)n * (double)d;
        break;
    }
    case NR_LOSS_XENT: {
        if (!labels)
            return nr__fail(NR_EINVAL, "cross-entropy loss needs class labels");
        if (d < 2)
            return nr__fail(NR_ESHAPE, "cross-entropy needs at least 2 outputs (classes), the network has %zu", d);
        for (size_t i = 0; i < n; i++)
            if (labels[i] < 0 || (size_t)labels[i] >= d)
                return nr__fail(NR_EINVAL, "label %ld of sample %zu is out of range for %zu classes",
                                (long)labels[i], i, d);
        float inv_n = 1.0f / (float)n;
        for (size_t i = 0; i < n; i++) {
            const float *z = y + i * d;
            float *g = grad + i * d;
            float mx = z[0];
            for (size_t j = 1; j < d; j++)
                mx = z[j] > mx ? z[j] : mx;
            double sum = 0.0;
            for (size_t j = 0; j < d; j++) {
                g[j] = expf(z[j] - mx);
                sum += g[j];
            }
            /* -log softmax(z)[label] = log sum exp(z - max) - (z[label] - max) */
            total += log(sum) - (double)(z[labels[i]] - mx);
            float inv = (float)(1.0 / sum) * inv_n;
            for (size_t j = 0; j < d; j++)
                g[j] *= inv;
            g[labels[i]] -= inv_n;
        }
        total /= (double)n;
        break;
    }
    default:
        return nr__fail(NR_EINVAL, "unknown loss %d", (int)loss);
    }
    *value = total;
    return NR_OK;
}
