/* npy_table.c - a data set from a 2-D NumPy array: one sample per row, the label in one column (the last
 * unless options->label gives its 0-based index; .npy has no column names). The array is read by nr_npy_load
 * (io/npy.c), which checks its header and length; here its shape is checked, then every value. */
#include "data/data.h"

#include <ctype.h>
#include <math.h>

/* A 0-based column index written as plain digits; false for anything else (a name). */
static bool parse_index(const char *text, size_t *index)
{
    size_t v = 0;
    if (!*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || !nr__mul(v, 10, &v) || !nr__add(v, (size_t)(*p - '0'), &v))
            return false;
    }
    *index = v;
    return true;
}

/* A 2-D array with a label column (unless unlabeled) that options->label names, and not too many rows. */
static nr_status check_shape(const char *path, const nr_tensor *t, const nr_data_options *options, size_t *label)
{
    bool unlabeled = options && options->unlabeled;
    if (t->ndim != 2)
        return nr__fail(NR_EFORMAT, "%s: a data set must be a 2-D array (one sample per row, the label in one "
                                    "column), not %d-D", path, t->ndim);
    size_t rows = t->shape[0], cols = t->shape[1];
    *label = unlabeled ? cols : cols - 1;
    if (cols < 2 && !unlabeled)
        return nr__fail(NR_EFORMAT, "%s: %zu column: a data set needs a label column and at least one feature",
                        path, cols);
    if (options && options->label && !unlabeled) {
        if (!parse_index(options->label, label))
            return nr__fail(NR_EINVAL, "%s: .npy files have no column names; give the label column as a 0-based "
                                       "index, not '%s'", path, options->label);
        if (*label >= cols)
            return nr__fail(NR_EINVAL, "%s: label column %zu is out of range (the array has %zu columns, 0 to %zu)",
                            path, *label, cols, cols - 1);
    }
    if (rows > NR__MAX_SAMPLES)
        return nr__fail(NR_EFORMAT, "%s: %zu rows is more than the limit of %zu samples", path, rows,
                        NR__MAX_SAMPLES);
    return NR_OK;
}

/* Every value finite, every label a class; the features into d. */
static nr_status fill_rows(const char *path, const nr_tensor *t, size_t label, nr_dataset *d)
{
    size_t rows = t->shape[0], cols = t->shape[1];
    for (size_t r = 0; r < rows; r++) {
        const float *row = t->data + r * cols;
        float *dst = d->f32 + r * d->features;
        d->labels[r] = 0;  /* an unlabeled table has no label column: every label is 0 */
        for (size_t c = 0; c < cols; c++) {
            if (!isfinite(row[c]))
                return nr__fail(NR_ENUMERIC, "%s: element [%zu, %zu]: %g is not a finite number", path, r, c,
                                (double)row[c]);
            if (c != label) {
                *dst++ = row[c];
                continue;
            }
            const char *problem = nr__label_problem(row[c]);
            if (problem)
                return nr__fail(NR_EFORMAT, "%s: element [%zu, %zu]: label %g %s", path, r, c, (double)row[c],
                                problem);
            d->labels[r] = (int32_t)row[c];
        }
    }
    nr__data_count_classes(d);
    return NR_OK;
}

nr_status nr__data_load_npy(const char *path, const nr_data_options *options, nr_dataset **out)
{
    nr_tensor *t = NULL;
    nr_dataset *d = NULL;
    size_t label = 0;
    nr_status st = nr_npy_load(path, &t);
    if (!st)
        st = check_shape(path, t, options, &label);
    if (!st) {
        size_t features = label < t->shape[1] ? t->shape[1] - 1 : t->shape[1];
        if ((st = nr__data_new(t->shape[0], (size_t[3]){1, 1, features}, false, &d)))
            st = nr__prefix(st, "%s", path);
    }
    if (!st && !(st = fill_rows(path, t, label, d))) {
        *out = d;
        d = NULL;
    }
    nr_data_free(d);
    nr_tensor_free(t);
    return st;
}
