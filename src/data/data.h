/* data.h - the data set's private structure and the batch gatherer the trainer uses. */
#ifndef NR_DATA_H
#define NR_DATA_H

#include "core/net.h"

struct nr_dataset {
    size_t n;            /* samples */
    size_t features;     /* numbers per sample = shape[0] * shape[1] * shape[2] */
    size_t shape[3];     /* height, width, channels (1, 1, features for tables) */
    uint8_t *u8;         /* images: n * features bytes (IDX), or NULL */
    float *f32;          /* tables: n * features floats, or NULL */
    int32_t *labels;     /* n labels, each in [0, classes) */
    size_t classes;      /* 1 + the largest label */
    char **class_names;  /* `classes` names when the labels were text (or folders), else NULL */
    float *targets;      /* regression: n * n_targets raw values, or NULL */
    size_t n_targets;
    char **target_names; /* n_targets names (NULL entries without a header), or NULL */
    nr__encoding *encoding;  /* a table read with text columns or a missing-value rule, else NULL */
};

/* How a training loop wants a batch gathered (all optional). */
typedef struct nr__gather_hints {
    bool by_features;      /* threads take runs of features of every sample rather than samples (no shift):
                            * the columns a dense first layer's threads read in training (nr__split) */
    const uint32_t *next;  /* the next batch's samples: each thread prefetches its part of them */
    size_t n_next;
} nr__gather_hints;

/* Builds one batch: the samples idx[0..n) scaled by `scaling` (NULL or kind 0: raw values) into x
 * (n * features floats, row after row) and their labels into `labels` (may be NULL). With shift > 0 and an
 * image set, each image is moved by a random offset in [-shift, shift] in each direction drawn from `rng`
 * (pixels moved in from outside are 0). `hints` may be NULL. Allocates nothing. */
void nr__data_gather(const nr_dataset *d, const uint32_t *idx, size_t n, const nr__scaling *scaling, float *x,
                     int32_t *labels, nr_rng *rng, int shift, const nr__gather_hints *hints);

/* Moves `rng` past the shifts nr__data_gather would draw for `count` samples, so that a batch gathered in
 * parts shifts each sample as the whole batch would. */
void nr__data_skip_shifts(nr_rng *rng, size_t count, int shift);

/* Applies a network's input scaling to n raw rows of `features` floats: out = (raw - shift) * scale. `out` may
 * be `raw`. */
void nr__scale_rows(const nr__scaling *scaling, const float *raw, float *out, size_t n, size_t features);

/* ---- shared by the readers (dataset.c, idx.c, csv_table.c, npy_table.c) ---- */

/* The most samples a data set may hold, so that sample indices fit the trainer's uint32_t. */
#define NR__MAX_SAMPLES ((size_t)1 << 31)

/* A new set of n samples of the given shape, its values and labels not yet filled in, stored as bytes
 * (`bytes`) or floats. Refuses absurd sizes (NR_EINVAL) before allocating. */
nr_status nr__data_new(size_t n, const size_t shape[3], bool bytes, nr_dataset **out);

/* Makes the network keep what the data says of itself: the encoding, the class and target names, and the
 * targets' means and deviations (encoding.c). All or nothing. */
nr_status nr__net_adopt_data(nr_net *net, const nr_dataset *d);

/* Gives `to` (a part of `from`) the same classes, class and target names and encoding. */
nr_status nr__data_copy_names(const nr_dataset *from, nr_dataset *to);

/* Sets `classes` from the labels (1 + the largest). */
void nr__data_count_classes(nr_dataset *d);

/* Why `value` cannot be a class label ("is not a whole number", ...), or NULL if it can (0 to 65535). */
const char *nr__label_problem(double value);

/* Readers for the forms nr_data_load tells apart by name. */
nr_status nr__data_load_csv(const char *path, const nr_data_options *options, nr_dataset **out);
/* A 2-D .npy array, one sample per row and the label in one column (options->label: its 0-based index). */
nr_status nr__data_load_npy(const char *path, const nr_data_options *options, nr_dataset **out);
/* A folder with one sub-folder of images per class (folder.c). */
nr_status nr__data_load_folder(const char *path, nr_dataset **out);
/* An IDX images file whose labels file is found by name ("images-idx3" -> "labels-idx1"). */
nr_status nr__data_load_idx_images(const char *images_path, bool unlabeled, nr_dataset **out);

/* ---- images (image.c) ---- */

/* A decoded image: h x w x c bytes (c is 1 for grey or 3 for colour; transparency is composited over white). */
typedef struct nr__image {
    uint8_t *pixels;
    size_t h, w, c;
} nr__image;

/* Reads PGM/PPM always, PNG and JPEG when built with their decoders; the file's size and the image's pixels
 * are checked before decoding. */
nr_status nr__image_read(const char *path, nr__image *img);
/* PNG (libpng) and JPEG (libjpeg-turbo) decoders, in builds that have them (image_codecs.c): `data` is the
 * whole file; an image of more than max_pixels is refused before its pixels are decoded. */
nr_status nr__png_read(const char *path, const unsigned char *data, size_t len, size_t max_pixels, nr__image *img);
nr_status nr__jpeg_read(const char *path, const unsigned char *data, size_t len, size_t max_pixels, nr__image *img);
void nr__image_free(nr__image *img);
/* Converts an image to h x w x c values 0..255 (channels, inversion, size, centring as options say). */
nr_status nr__image_convert(const nr__image *img, size_t h, size_t w, size_t c, const nr_image_options *opt,
                            float *out);

#endif
