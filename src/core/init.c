/* init.c - weight initialisers. Xavier/Glorot keeps the variance of activations steady through layers
 * without a rectifier; He doubles it to make up for the half of a ReLU's inputs that it zeroes. */
#include "core/internal.h"

#include <math.h>

void nr__init_weights(float *w, size_t count, size_t fan_in, size_t fan_out, nr_init init, nr_act next,
                      nr_rng *rng)
{
    if (init == NR_INIT_AUTO)
        init = (next == NR_ACT_RELU || next == NR_ACT_LEAKY_RELU) ? NR_INIT_HE_UNIFORM : NR_INIT_XAVIER_UNIFORM;
    double fi = (double)fan_in, fo = (double)fan_out;
    double limit = 0.0, stddev = 1.0;
    bool uniform = false;
    switch (init) {
    case NR_INIT_AUTO:
    case NR_INIT_STD_NORMAL: stddev = 1.0; break;
    case NR_INIT_XAVIER_UNIFORM: uniform = true; limit = sqrt(6.0 / (fi + fo)); break;
    case NR_INIT_XAVIER_NORMAL: stddev = sqrt(2.0 / (fi + fo)); break;
    case NR_INIT_HE_UNIFORM: uniform = true; limit = sqrt(6.0 / fi); break;
    case NR_INIT_HE_NORMAL: stddev = sqrt(2.0 / fi); break;
    }
    for (size_t i = 0; i < count; i++)
        w[i] = uniform ? (float)((2.0 * nr_rng_uniform(rng) - 1.0) * limit)
                       : (float)(stddev * (double)nr_rng_normal(rng));
}
