/* data.c - labelled data sets: the structure and its accessors, sets from arrays and .npy tables, splitting,
 * the input scaling a network keeps, and the batch gatherer the trainer calls for every batch.
 *
 * Images stay bytes until a batch needs them: gathering converts, scales and (for augmentation) shifts them
 * in one pass, so the set costs a quarter of the memory floats would and a batch touches each pixel once. */
#include "data/data.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- the structure ---- */

nr_status nr__data_new(size_t n, const size_t shape[3], bool bytes, nr_dataset **out)
{
    size_t features, total;
    *out = NULL;
    if (n == 0 || shape[0] == 0 || shape[1] == 0 || shape[2] == 0)
        return nr__fail(NR_EINVAL, "a data set needs at least one sample of at least one feature");
    if (n > NR__MAX_SAMPLES)
        return nr__fail(NR_EINVAL, "%zu samples is more than the limit of %zu", n, NR__MAX_SAMPLES);
    if (!nr__mul(shape[0], shape[1], &features) || !nr__mul(features, shape[2], &features) ||
        !nr__mul(n, features, &total) || total > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "%zu samples of %zux%zux%zu values is more than the limit of %zu values", n,
                        shape[0], shape[1], shape[2], (size_t)NR_MAX_FLOATS);
    nr_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return nr__fail(NR_ENOMEM, "out of memory");
    d->n = n;
    d->features = features;
    memcpy(d->shape, shape, sizeof d->shape);
    d->labels = malloc(n * sizeof *d->labels);
    if (bytes)
        d->u8 = malloc(total);
    else
        d->f32 = malloc(total * sizeof(float));
    if (!d->labels || (!d->u8 && !d->f32)) {
        nr_data_free(d);
        return nr__fail(NR_ENOMEM, "out of memory for %zu samples of %zu values", n, features);
    }
    *out = d;
    return NR_OK;
}

void nr__data_count_classes(nr_dataset *d)
{
    int32_t top = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->labels[i] > top)
            top = d->labels[i];
    d->classes = (size_t)top + 1;
}

const char *nr__label_problem(double value)
{
    if (!isfinite(value))
        return "is not a finite number";
    if (value != floor(value))
        return "is not a whole number";
    if (value < 0)
        return "is negative";
    if (value > 65535)
        return "is above 65535";
    return NULL;
}

void nr_data_free(nr_dataset *data)
{
    if (!data)
        return;
    free(data->u8);
    free(data->f32);
    free(data->labels);
    free(data->targets);
    nr__free_strings(data->class_names, data->classes);
    nr__free_strings(data->target_names, data->n_targets);
    nr__encoding_free(data->encoding);
    free(data);
}

size_t nr_data_count(const nr_dataset *data) { return data ? data->n : 0; }
size_t nr_data_features(const nr_dataset *data) { return data ? data->features : 0; }
size_t nr_data_classes(const nr_dataset *data) { return data ? data->classes : 0; }
int nr_data_is_image(const nr_dataset *data) { return data && data->u8 != NULL; }
const int32_t *nr_data_labels(const nr_dataset *data) { return data ? data->labels : NULL; }
size_t nr_data_target_count(const nr_dataset *data) { return data ? data->n_targets : 0; }
const float *nr_data_targets(const nr_dataset *data) { return data ? data->targets : NULL; }

const char *nr_data_class_name(const nr_dataset *data, size_t i)
{
    return data && data->class_names && i < data->classes ? data->class_names[i] : NULL;
}

const char *nr_data_target_name(const nr_dataset *data, size_t i)
{
    return data && data->target_names && i < data->n_targets ? data->target_names[i] : NULL;
}

void nr_data_shape(const nr_dataset *data, size_t shape[3])
{
    if (!shape)
        return;
    for (int i = 0; i < 3; i++)
        shape[i] = data ? data->shape[i] : 0;
}

nr_status nr_data_sample(const nr_dataset *data, size_t i, float *x)
{
    if (!data || !x)
        return nr__fail(NR_EINVAL, "nr_data_sample: NULL argument");
    if (i >= data->n)
        return nr__fail(NR_EINVAL, "sample %zu is out of range (the set has %zu)", i, data->n);
    size_t f = data->features;
    if (data->u8) {
        const uint8_t *src = data->u8 + i * f;
        for (size_t j = 0; j < f; j++)
            x[j] = (float)src[j];
    } else {
        memcpy(x, data->f32 + i * f, f * sizeof(float));
    }
    return NR_OK;
}

nr_status nr_data_from_arrays(const float *x, const int32_t *labels, size_t n, size_t features,
                              nr_dataset **out)
{
    if (!out)
        return nr__fail(NR_EINVAL, "nr_data_from_arrays: NULL output");
    *out = NULL;
    if (!x || !labels)
        return nr__fail(NR_EINVAL, "nr_data_from_arrays: NULL array");
    /* The sizes are checked (by nr__data_new) before the arrays are read. */
    nr_dataset *d;
    nr_status st = nr__data_new(n, (size_t[3]){1, 1, features}, false, &d);
    if (st)
        return st;
    for (size_t i = 0; i < n; i++) {
        const char *problem = nr__label_problem((double)labels[i]);
        if (problem) {
            nr_data_free(d);
            return nr__fail(NR_EINVAL, "label %d of sample %zu %s", (int)labels[i], i, problem);
        }
    }
    for (size_t k = 0; k < n * features; k++)
        if (!isfinite(x[k])) {
            nr_data_free(d);
            return nr__fail(NR_ENUMERIC, "sample %zu, feature %zu: %g is not a finite number", k / features,
                            k % features, (double)x[k]);
        }
    memcpy(d->f32, x, n * features * sizeof(float));
    memcpy(d->labels, labels, n * sizeof *labels);
    nr__data_count_classes(d);
    *out = d;
    return NR_OK;
}

/* ---- .npy tables ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return false;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suffix[i])
            return false;
    return true;
}

nr_status nr_data_load(const char *path, const nr_data_options *options, nr_dataset **out)
{
    if (!out)
        return nr__fail(NR_EINVAL, "nr_data_load: NULL output");
    *out = NULL;
    if (!path)
        return nr__fail(NR_EINVAL, "nr_data_load: NULL path");
    if (options && (options->header < 0 || options->header > 2))
        return nr__fail(NR_EINVAL, "%s: header option %d is not 0 (guess), 1 (yes) or 2 (no)", path,
                        options->header);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return nr__data_load_folder(path, out);
    if (ends_with(path, ".csv"))
        return nr__data_load_csv(path, options, out);
    if (ends_with(path, ".npy"))
        return nr__data_load_npy(path, options, out);
    return nr__data_load_idx_images(path, options && options->unlabeled, out);
}

/* ---- split and truncate ---- */

nr_status nr_data_split(nr_dataset *data, size_t count, nr_rng *rng, nr_dataset **held)
{
    if (!held)
        return nr__fail(NR_EINVAL, "nr_data_split: NULL output");
    *held = NULL;
    if (!data || !rng)
        return nr__fail(NR_EINVAL, "nr_data_split: NULL argument");
    if (count == 0 || count >= data->n)
        return nr__fail(NR_EINVAL, "cannot hold out %zu of %zu samples (1 to %zu)", count, data->n,
                        data->n - 1);
    size_t n = data->n, f = data->features;
    /* Allocate everything first, so that a failure leaves `data` as it was. */
    nr_dataset *h;
    nr_status st = nr__data_new(count, data->shape, data->u8 != NULL, &h);
    if (st)
        return st;
    uint32_t *order = malloc(n * sizeof *order);
    bool *chosen = calloc(n, sizeof *chosen);
    if (data->targets && !(h->targets = malloc(count * data->n_targets * sizeof *h->targets)))
        st = NR_ENOMEM;
    if (!st)
        st = nr__data_copy_names(data, h);
    if (!order || !chosen || st) {
        nr_data_free(h);
        free(order);
        free(chosen);
        return nr__fail(NR_ENOMEM, "out of memory splitting %zu samples", n);
    }
    /* A partial Fisher-Yates: the first `count` places receive a uniform random choice without repeats. */
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (size_t i = 0; i < count; i++) {
        size_t j = i + (size_t)nr_rng_below(rng, n - i);
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
        chosen[order[i]] = true;
    }
    /* Both parts keep the original order; the kept part is compacted in place (it only moves down). */
    size_t bytes = data->u8 ? f : f * sizeof(float);
    unsigned char *src = data->u8 ? (unsigned char *)data->u8 : (unsigned char *)data->f32;
    unsigned char *dst_held = h->u8 ? (unsigned char *)h->u8 : (unsigned char *)h->f32;
    size_t kept = 0, moved = 0, t = data->n_targets;
    for (size_t i = 0; i < n; i++) {
        if (chosen[i]) {
            memcpy(dst_held + moved * bytes, src + i * bytes, bytes);
            if (t)
                memcpy(h->targets + moved * t, data->targets + i * t, t * sizeof(float));
            h->labels[moved++] = data->labels[i];
        } else {
            if (kept != i)
                memcpy(src + kept * bytes, src + i * bytes, bytes);
            if (t && kept != i)
                memmove(data->targets + kept * t, data->targets + i * t, t * sizeof(float));
            data->labels[kept++] = data->labels[i];
        }
    }
    free(order);
    free(chosen);
    /* Both parts keep the number of classes of the whole, which describes the problem rather than the sample:
     * a network's outputs and a confusion matrix must not shrink because a rare class missed one part. */
    h->classes = data->classes;
    nr_data_truncate(data, kept);
    *held = h;
    return NR_OK;
}

nr_status nr_data_truncate(nr_dataset *data, size_t count)
{
    if (!data)
        return nr__fail(NR_EINVAL, "nr_data_truncate: NULL data set");
    if (count == 0 || count > data->n)
        return nr__fail(NR_EINVAL, "cannot keep %zu of %zu samples (1 to %zu)", count, data->n, data->n);
    if (count == data->n)
        return NR_OK;
    data->n = count;
    /* Give the memory back; a failed shrink keeps the larger block, which is harmless. */
    size_t values = count * data->features;
    if (data->u8) {
        uint8_t *p = realloc(data->u8, values);
        if (p)
            data->u8 = p;
    } else {
        float *p = realloc(data->f32, values * sizeof(float));
        if (p)
            data->f32 = p;
    }
    int32_t *l = realloc(data->labels, count * sizeof *l);
    if (l)
        data->labels = l;
    float *t = data->targets ? realloc(data->targets, count * data->n_targets * sizeof *t) : NULL;
    if (t)
        data->targets = t;
    return NR_OK;
}

nr_status nr__data_copy_names(const nr_dataset *from, nr_dataset *to)
{
    to->classes = from->classes;
    to->n_targets = from->n_targets;
    if ((from->class_names && !(to->class_names = nr__copy_strings(from->class_names, from->classes))) ||
        (from->target_names && !(to->target_names = nr__copy_strings(from->target_names, from->n_targets))) ||
        (from->encoding && !(to->encoding = nr__encoding_copy(from->encoding))))
        return NR_ENOMEM;
    return NR_OK;
}

/* ---- input scaling ---- */

nr_scaling nr_net_scaling(const nr_net *net) { return net ? (nr_scaling)net->scaling.kind : NR_SCALE_NONE; }

static void set_scaling(nr_net *net, int kind, size_t count, float *shift, float *scale)
{
    free(net->scaling.shift);
    free(net->scaling.scale);
    net->scaling.kind = kind;
    net->scaling.count = count;
    net->scaling.shift = shift;
    net->scaling.scale = scale;
}

nr_status nr_net_set_scaling(nr_net *net, nr_scaling kind, float shift, float scale)
{
    if (!net)
        return nr__fail(NR_EINVAL, "nr_net_set_scaling: NULL network");
    if (kind != NR_SCALE_NONE && kind != NR_SCALE_UNIT && kind != NR_SCALE_STANDARD)
        return nr__fail(NR_EINVAL, "unknown scaling %d", (int)kind);
    if (kind == NR_SCALE_NONE) {
        set_scaling(net, 0, 0, NULL, NULL);
        return NR_OK;
    }
    if (!isfinite(shift) || !isfinite(scale) || scale == 0.0f)
        return nr__fail(NR_EINVAL, "a scaling of (x - %g) * %g is not usable", (double)shift, (double)scale);
    float *s = malloc(sizeof *s), *k = malloc(sizeof *k);
    if (!s || !k) {
        free(s);
        free(k);
        return nr__fail(NR_ENOMEM, "out of memory");
    }
    *s = shift;
    *k = scale;
    set_scaling(net, (int)kind, 1, s, k);
    return NR_OK;
}

/* 1 / spread, or 1 when the spread is zero or too small to invert in float (a constant column). */
static float inverse_or_one(double spread)
{
    if (!(spread > 0))
        return 1.0f;
    float inv = (float)(1.0 / spread);
    return isfinite(inv) ? inv : 1.0f;
}

/* Images: one shift and scale for all pixels, from a histogram of the bytes (exact, whatever the size). */
static void fit_image(const nr_dataset *d, nr_scaling kind, float *shift, float *scale)
{
    if (kind == NR_SCALE_UNIT) {
        *shift = 0.0f;
        *scale = 1.0f / 255.0f;
        return;
    }
    uint64_t hist[256] = {0};
    size_t total = d->n * d->features;
    for (size_t k = 0; k < total; k++)
        hist[d->u8[k]]++;
    double mean = 0, var = 0;
    for (int b = 0; b < 256; b++)
        mean += (double)hist[b] * b;
    mean /= (double)total;
    for (int b = 0; b < 256; b++)
        var += (double)hist[b] * (b - mean) * (b - mean);
    var /= (double)total;
    *shift = (float)mean;
    *scale = inverse_or_one(sqrt(var));
}

/* Tables: per column, by minimum and maximum or by mean and (population) standard deviation. */
static nr_status fit_table(const nr_dataset *d, nr_scaling kind, float *shift, float *scale)
{
    size_t n = d->n, f = d->features;
    double *a = calloc(f, sizeof *a), *b = calloc(f, sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return nr__fail(NR_ENOMEM, "out of memory fitting the scaling of %zu columns", f);
    }
    if (kind == NR_SCALE_UNIT) {
        for (size_t j = 0; j < f; j++)
            a[j] = b[j] = d->f32[j];
        for (size_t i = 1; i < n; i++) {
            const float *row = d->f32 + i * f;
            for (size_t j = 0; j < f; j++) {
                if (row[j] < a[j])
                    a[j] = row[j];
                if (row[j] > b[j])
                    b[j] = row[j];
            }
        }
        for (size_t j = 0; j < f; j++) {
            shift[j] = (float)a[j];
            scale[j] = inverse_or_one(b[j] - a[j]);
        }
    } else {
        /* Two passes in double: the mean, then the squared deviations from it (no cancellation). */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < f; j++)
                a[j] += d->f32[i * f + j];
        for (size_t j = 0; j < f; j++)
            a[j] /= (double)n;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < f; j++) {
                double dev = d->f32[i * f + j] - a[j];
                b[j] += dev * dev;
            }
        for (size_t j = 0; j < f; j++) {
            shift[j] = (float)a[j];
            scale[j] = inverse_or_one(sqrt(b[j] / (double)n));
        }
    }
    free(a);
    free(b);
    return NR_OK;
}

nr_status nr_net_fit_scaling(nr_net *net, const nr_dataset *train, nr_scaling kind)
{
    if (!net || !train)
        return nr__fail(NR_EINVAL, "nr_net_fit_scaling: NULL argument");
    if (kind != NR_SCALE_NONE && kind != NR_SCALE_UNIT && kind != NR_SCALE_STANDARD)
        return nr__fail(NR_EINVAL, "unknown scaling %d", (int)kind);
    if (net->in_size != train->features)
        return nr__fail(NR_ESHAPE, "the network takes %zu inputs but the data set's samples have %zu features",
                        net->in_size, train->features);
    nr_status st = nr__net_adopt_data(net, train);
    if (st)
        return st;
    if (kind == NR_SCALE_NONE) {
        set_scaling(net, 0, 0, NULL, NULL);
        return NR_OK;
    }
    size_t count = train->u8 ? 1 : train->features;
    float *shift = malloc(count * sizeof *shift), *scale = malloc(count * sizeof *scale);
    if (!shift || !scale) {
        free(shift);
        free(scale);
        return nr__fail(NR_ENOMEM, "out of memory for the scaling of %zu features", count);
    }
    if (train->u8)
        fit_image(train, kind, shift, scale);
    else
        st = fit_table(train, kind, shift, scale);
    if (st) {
        free(shift);
        free(scale);
        return st;
    }
    set_scaling(net, (int)kind, count, shift, scale);
    return NR_OK;
}

void nr__scale_rows(const nr__scaling *s, const float *raw, float *out, size_t n, size_t features)
{
    size_t total = n * features;
    if (!s || s->kind == 0) {
        if (out != raw)
            memmove(out, raw, total * sizeof(float));
        return;
    }
    if (s->count == 1) {
        const float shift = s->shift[0], scale = s->scale[0];
        for (size_t k = 0; k < total; k++)
            out[k] = (raw[k] - shift) * scale;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const float *r = raw + i * features;
        float *o = out + i * features;
        for (size_t j = 0; j < features; j++)
            o[j] = (r[j] - s->shift[j]) * s->scale[j];
    }
}

/* ---- gathering a batch ---- */

/* Offsets are drawn for this many samples at a time into a buffer on the stack, in order, before the
 * samples are converted in parallel: the draws then never depend on the thread count, and nothing is
 * allocated. */
#define GATHER_CHUNK 256

/* At least this many values per thread, so that small batches do not pay to wake the pool. */
#define GATHER_GRAIN_VALUES 65536
/* The same for runs of features: each thread then holds the columns that a dense first layer's k split
 * reads (nr__split), so it pays at smaller batches (batch 64 of 784 pixels: 25 K values each). */
#define FEATURE_RUN_VALUES 16384

typedef struct gather_job {
    const nr_dataset *d;
    const uint32_t *idx;
    float *x;
    const int *offsets;          /* (dy, dx) per sample of this chunk, or NULL */
    bool scaled;                 /* false: raw values */
    const float *shift, *scale;  /* per feature, or NULL for scaling as a whole */
    float shift1, scale1;        /* scaling as a whole (0 and 1 for raw values: the same bits) */
    float fill;                  /* what a pixel moved in from outside becomes (a raw 0, scaled) */
    size_t n;                    /* samples (for runs of features) */
    const uint32_t *next;        /* the next batch's samples, to prefetch (NULL: none) */
    size_t n_next;
} gather_job;

/* Converts `count` bytes that land at features [first, first + count) of a sample. */
static void convert_bytes(const gather_job *g, const uint8_t *restrict src, float *restrict dst, size_t first,
                          size_t count)
{
    if (g->scale) {
        const float *restrict shift = g->shift + first, *restrict scale = g->scale + first;
        for (size_t k = 0; k < count; k++)
            dst[k] = ((float)src[k] - shift[k]) * scale[k];
    } else {
        /* Arithmetic rather than a 256-entry table: the same bits (the formula of nr__scale_rows), and it
         * vectorises, where the table's gathers made this a tenth of a 1-thread epoch's non-GEMM time. The
         * constants are read once: with them read through g, a store to dst might change them as far as the
         * compiler knows, and the loop stayed scalar (40 us of a 64-image batch). */
        const float shift = g->shift1, scale = g->scale1;
        for (size_t k = 0; k < count; k++)
            dst[k] = ((float)src[k] - shift) * scale;
    }
}

static void fill_outside(const gather_job *g, float *dst, size_t first, size_t count)
{
    if (g->scale) {
        for (size_t k = 0; k < count; k++)
            dst[k] = (0.0f - g->shift[first + k]) * g->scale[first + k];
    } else {
        for (size_t k = 0; k < count; k++)
            dst[k] = g->fill;
    }
}

/* One image moved down by dy rows and right by dx columns: out(y, x) = in(y - dy, x - dx), HWC. */
static void gather_shifted(const gather_job *g, const uint8_t *src, float *dst, long dy, long dx)
{
    const long h = (long)g->d->shape[0], w = (long)g->d->shape[1];
    const size_t c = g->d->shape[2], row = (size_t)w * c;
    /* The output columns [x0, x1) read source columns [x0 - dx, x1 - dx), which lie inside the image. */
    long x0 = dx > 0 ? dx : 0, x1 = dx < 0 ? w + dx : w;
    if (x1 < x0)
        x1 = x0 = 0;
    for (long y = 0; y < h; y++) {
        float *out = dst + (size_t)y * row;
        size_t first = (size_t)y * row;
        long sy = y - dy;
        if (sy < 0 || sy >= h || x0 == x1) {
            fill_outside(g, out, first, row);
            continue;
        }
        size_t left = (size_t)x0 * c, middle = (size_t)(x1 - x0) * c;
        fill_outside(g, out, first, left);
        convert_bytes(g, src + (size_t)sy * row + (size_t)(x0 - dx) * c, out + left, first + left, middle);
        fill_outside(g, out + left + middle, first + left + middle, row - left - middle);
    }
}

/* Features [f0, f1) of sample i of the batch, unshifted. */
NR_SIMD_CLONES static void gather_features(const gather_job *g, size_t i, size_t f0, size_t f1)
{
    const nr_dataset *d = g->d;
    const size_t f = d->features, s = g->idx[i];
    float *dst = g->x + i * f;
    if (d->u8) {
        convert_bytes(g, d->u8 + s * f + f0, dst + f0, f0, f1 - f0);
        return;
    }
    const float *src = d->f32 + s * f;
    if (g->scale) {
        const float *shift = g->shift, *scale = g->scale;
        for (size_t j = f0; j < f1; j++)
            dst[j] = (src[j] - shift[j]) * scale[j];
    } else if (g->scaled) {
        const float shift = g->shift1, scale = g->scale1;  /* read once: see convert_bytes */
        for (size_t j = f0; j < f1; j++)
            dst[j] = (src[j] - shift) * scale;
    } else {
        memcpy(dst + f0, src + f0, (f1 - f0) * sizeof(float));
    }
}

/* Samples are picked at random from a set larger than the caches: ask for the bytes [f0, f1) of the
 * samples PREFETCH_AHEAD on while this one converts, or every line of it is a full wait on memory. */
enum { PREFETCH_AHEAD = 2 };
static void prefetch_sample(const nr_dataset *d, uint32_t sample, size_t f0, size_t f1)
{
    const size_t size = d->u8 ? 1 : sizeof(float);
    const char *base = d->u8 ? (const char *)d->u8 : (const char *)d->f32;
    const char *first = base + ((size_t)sample * d->features + f0) * size;
    for (size_t k = 0; k < (f1 - f0) * size; k += 64)
        __builtin_prefetch(first + k);
}

/* Once a thread's part of this batch is done, it asks for its part of the next one: those bytes then
 * arrive while the network computes, and the next gather finds them in the cache of the core that
 * converts them. */
static void prefetch_next(const gather_job *g, size_t begin, size_t end, size_t f0, size_t f1)
{
    for (size_t i = begin; i < end && i < g->n_next; i++)
        prefetch_sample(g->d, g->next[i], f0, f1);
}

static void gather_range(void *ctx, size_t begin, size_t end)
{
    const gather_job *g = ctx;
    const size_t f = g->d->features;
    for (size_t i = begin; i < begin + PREFETCH_AHEAD && i < end; i++)
        prefetch_sample(g->d, g->idx[i], 0, f);
    for (size_t i = begin; i < end; i++) {
        if (i + PREFETCH_AHEAD < end)
            prefetch_sample(g->d, g->idx[i + PREFETCH_AHEAD], 0, f);
        if (g->offsets && (g->offsets[2 * i] || g->offsets[2 * i + 1]))
            gather_shifted(g, g->d->u8 + (size_t)g->idx[i] * f, g->x + i * f, g->offsets[2 * i], g->offsets[2 * i + 1]);
        else
            gather_features(g, i, 0, f);
    }
    if (g->next)
        prefetch_next(g, begin, end, 0, f);
}

/* Threads take runs of features of every sample (units of 16, a cache line of floats) instead of samples. */
static void gather_feature_range(void *ctx, size_t u0, size_t u1)
{
    const gather_job *g = ctx;
    const size_t f = g->d->features, f0 = u0 * 16, f1 = u1 * 16 < f ? u1 * 16 : f;
    for (size_t i = 0; i < PREFETCH_AHEAD && i < g->n; i++)
        prefetch_sample(g->d, g->idx[i], f0, f1);
    for (size_t i = 0; i < g->n; i++) {
        if (i + PREFETCH_AHEAD < g->n)
            prefetch_sample(g->d, g->idx[i + PREFETCH_AHEAD], f0, f1);
        gather_features(g, i, f0, f1);
    }
    if (g->next)
        prefetch_next(g, 0, g->n_next, f0, f1);
}

void nr__data_gather(const nr_dataset *d, const uint32_t *idx, size_t n, const nr__scaling *scaling, float *x,
                     int32_t *labels, nr_rng *rng, int shift, const nr__gather_hints *hints)
{
    gather_job g = {.d = d, .idx = idx, .x = x, .scaled = scaling && scaling->kind != 0, .scale1 = 1.0f, .n = n};
    bool by_features = hints && hints->by_features;
    if (hints) {
        g.next = hints->next;
        g.n_next = hints->n_next;
    }
    if (g.scaled && scaling->count != 1) {
        g.shift = scaling->shift;
        g.scale = scaling->scale;
    } else if (g.scaled) {
        g.shift1 = scaling->shift[0];
        g.scale1 = scaling->scale[0];
    }
    /* Computed exactly as nr__scale_rows computes it, so that training and prediction see the same values
     * for the same pixels. */
    g.fill = (0.0f - g.shift1) * g.scale1;
    if (labels)
        for (size_t i = 0; i < n; i++)
            labels[i] = d->labels[idx[i]];
    size_t grain = GATHER_GRAIN_VALUES / d->features + 1;
    if (by_features && (!d->u8 || shift <= 0 || !rng)) {
        /* Equal runs, one per thread, each of at least FEATURE_RUN_VALUES. */
        size_t units = (d->features + 15) / 16, threads = (size_t)nr_threads();
        size_t parts = n * d->features / FEATURE_RUN_VALUES;
        parts = parts < 1 ? 1 : parts > threads ? threads : parts > units ? units : parts;
        nr__parallel_for(units, (units + parts - 1) / parts, gather_feature_range, &g);
        return;
    }
    if (!d->u8 || shift <= 0 || !rng) {
        nr__parallel_for(n, grain, gather_range, &g);
        return;
    }
    const uint64_t choices = 2 * (uint64_t)shift + 1;
    int offsets[2 * GATHER_CHUNK];
    for (size_t base = 0; base < n; base += GATHER_CHUNK) {
        size_t m = n - base < GATHER_CHUNK ? n - base : GATHER_CHUNK;
        for (size_t i = 0; i < 2 * m; i++)
            offsets[i] = (int)((int64_t)nr_rng_below(rng, choices) - shift);
        gather_job chunk = g;
        chunk.idx = idx + base;
        chunk.x = x + base * d->features;
        chunk.offsets = offsets;
        nr__parallel_for(m, grain, gather_range, &chunk);
    }
}

void nr__data_skip_shifts(nr_rng *rng, size_t count, int shift)
{
    const uint64_t choices = 2 * (uint64_t)shift + 1;  /* as nr__data_gather draws: two per sample */
    for (size_t i = 0; shift > 0 && i < 2 * count; i++)
        nr_rng_below(rng, choices);
}
