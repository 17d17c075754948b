/* fuzz_npy.c - the .npy reader: nr_npy_load, and the table reader built on it (nr_data_load of a .npy).
 *
 * The input is the file. A tensor that loads is saved and loaded again and must come back identical; the same
 * file is then read as a data set three ways (label last, label column 0, unlabeled), and a set that loads is
 * used as training uses it (fz_use_data). */
#include "fuzz_common.h"

static void fz_npy_round_trip(const nr_tensor *t)
{
    const char *p = fz_path("round.npy");
    if (nr_npy_save(p, t) != NR_OK)
        return;
    nr_tensor *back = NULL;
    if (nr_npy_load(p, &back) != NR_OK) {
        fprintf(stderr, "fuzz: an array neurite saved does not load: %s\n", nr_error_message());
        abort();
    }
    if (back->ndim != t->ndim || back->size != t->size || memcmp(back->shape, t->shape, sizeof t->shape) != 0 ||
        memcmp(back->data, t->data, t->size * sizeof(float)) != 0) {
        fprintf(stderr, "fuzz: save -> load changed an array\n");
        abort();
    }
    nr_tensor_free(back);
}

static int fz_npy(const uint8_t *data, size_t size)
{
    const char *path = fz_write("array.npy", data, size);
    nr_tensor *t = NULL;
    nr_status st = nr_npy_load(path, &t);
    if (st != NR_OK && t) {
        fprintf(stderr, "fuzz: a failed load returned a tensor\n");
        abort();
    }
    if (st != NR_OK)
        return 0;
    size_t count = 1;
    for (int i = 0; i < t->ndim; i++)
        count *= t->shape[i];
    if (t->ndim < 1 || t->ndim > NR_MAX_DIMS || count != t->size || count == 0) {
        fprintf(stderr, "fuzz: a loaded array is inconsistent\n");
        abort();
    }
    fz_npy_round_trip(t);
    nr_tensor_free(t);
    static const nr_data_options ways[3] = {{.label = NULL}, {.label = "0"}, {.unlabeled = 1}};
    for (int w = 0; w < 3; w++) {
        nr_dataset *d = NULL;
        st = nr_data_load(path, &ways[w], &d);
        if (st != NR_OK && d) {
            fprintf(stderr, "fuzz: a failed load returned a data set\n");
            abort();
        }
        if (st == NR_OK)
            fz_use_data(d, (unsigned)size + (unsigned)w);
        nr_data_free(d);
    }
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_npy(data, size); }
#endif
