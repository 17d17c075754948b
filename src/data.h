/* data.h - the data set's private structure and the batch gatherer the trainer uses. */
#ifndef NR_DATA_H
#define NR_DATA_H

#include "net.h"

struct nr_dataset {
    size_t n;            /* samples */
    size_t features;     /* numbers per sample = shape[0] * shape[1] * shape[2] */
    size_t shape[3];     /* height, width, channels (1, 1, features for tables) */
    uint8_t *u8;         /* images: n * features bytes (IDX), or NULL */
    float *f32;          /* tables: n * features floats, or NULL */
    int32_t *labels;     /* n labels, each in [0, classes) */
    size_t classes;      /* 1 + the largest label */
};

/* Builds one batch: the samples idx[0..n) scaled by `scaling` (NULL or kind 0: raw values) into x
 * (n * features floats, row after row) and their labels into `labels` (may be NULL). With shift > 0 and an
 * image set, each image is moved by a random offset in [-shift, shift] in each direction drawn from `rng`
 * (pixels moved in from outside are 0). Allocates nothing. */
void nr__data_gather(const nr_dataset *d, const uint32_t *idx, size_t n, const nr__scaling *scaling, float *x,
                     int32_t *labels, nr_rng *rng, int shift);

/* Applies a network's input scaling to n raw rows of `features` floats: out = (raw - shift) * scale. `out` may
 * be `raw`. */
void nr__scale_rows(const nr__scaling *scaling, const float *raw, float *out, size_t n, size_t features);

#endif
