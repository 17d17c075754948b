/* fuzz_idx.c - the IDX reader (MNIST's format), plain and gzip-compressed, and the naming rules that find a
 * labels file beside an images file.
 *
 * The first byte of the input chooses what the rest is:
 *   bits 0-1  0: the images file, with a labels file made to match its count
 *             1: the labels file, with an images file made to match its count
 *             2: both: bytes 1-2 (little-endian) give the images file's length, the labels file follows it
 *             3: the images file alone (no labels)
 *   bit 2     the images file is gzip-compressed by the harness (the input may also be gzip data itself)
 *   bit 3     the labels file is gzip-compressed by the harness
 *   bit 4     load through nr_data_load, which finds the labels file by name, instead of nr_data_load_idx
 *   bit 5     ... the images file's name ends in ".gz"
 *   bit 6     ... the labels file's name ends in ".gz" (so a name that disagrees with the other is tried too)
 *   bit 7     ... the images file has a name that is not an IDX images name
 * A data set that loads is used as training uses it (fz_use_data). */
#include "fuzz_common.h"

#ifdef NR_HAVE_ZLIB
#include <zlib.h>
#endif

static const char *const fz_idx_names[] = {"x-images-idx3-ubyte", "x-images-idx3-ubyte.gz", "x-labels-idx1-ubyte",
                                           "x-labels-idx1-ubyte.gz", "x-data", "images", "labels"};

/* Writes a file, through gzip when asked (and zlib is there), and returns its path. */
static const char *fz_idx_write(const char *name, const uint8_t *data, size_t len, bool compress)
{
#ifdef NR_HAVE_ZLIB
    if (compress) {
        const char *p = fz_path(name);
        gzFile g = gzopen(p, "wb1");
        if (!g || (len && gzwrite(g, data, (unsigned)len) != (int)len) || gzclose(g) != Z_OK) {
            fprintf(stderr, "fuzz: cannot write %s\n", p);
            abort();
        }
        return p;
    }
#else
    (void)compress;
#endif
    return fz_write(name, data, len);
}

/* The count a plain IDX header states, or `fallback` if the bytes are not one (or state more than 1024). */
static size_t fz_idx_count(const uint8_t *data, size_t len, size_t fallback)
{
    if (len < 8 || data[0] || data[1] || data[2] != 0x08)
        return fallback;
    size_t count = (size_t)data[4] << 24 | (size_t)data[5] << 16 | (size_t)data[6] << 8 | data[7];
    return count >= 1 && count <= 1024 ? count : fallback;
}

/* A valid file of `count` labels (kind 1) or `count` 2x2 images (kind 3); its length goes to *len. */
static uint8_t *fz_idx_make(int kind, size_t count, size_t *len)
{
    size_t head = kind == 1 ? 8 : 16, per = kind == 1 ? 1 : 4;
    *len = head + count * per;
    uint8_t *b = malloc(*len);
    if (!b)
        abort();
    const uint8_t start[16] = {0, 0, 8, (uint8_t)kind, (uint8_t)(count >> 24), (uint8_t)(count >> 16),
                               (uint8_t)(count >> 8), (uint8_t)count, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(b, start, head);
    for (size_t i = 0; i < count * per; i++)
        b[head + i] = (uint8_t)(kind == 1 ? i % 10 : i * 37);
    return b;
}

static int fz_idx(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned mode = data[0];
    const int layout = mode & 3;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    for (size_t i = 0; i < sizeof fz_idx_names / sizeof fz_idx_names[0]; i++)
        remove(fz_path(fz_idx_names[i]));

    const uint8_t *images = rest, *labels = NULL;
    size_t images_len = rest_len, labels_len = 0;
    uint8_t *made = NULL;
    if (layout == 0) {
        made = fz_idx_make(1, fz_idx_count(rest, rest_len, 1), &labels_len);
        labels = made;
    } else if (layout == 1) {
        made = fz_idx_make(3, fz_idx_count(rest, rest_len, 1), &images_len);
        images = made;
        labels = rest;
        labels_len = rest_len;
    } else if (layout == 2) {
        if (rest_len < 2)
            return 0;
        size_t k = (size_t)rest[0] | (size_t)rest[1] << 8;
        images = rest + 2;
        images_len = k < rest_len - 2 ? k : rest_len - 2;
        labels = images + images_len;
        labels_len = rest_len - 2 - images_len;
    }

    bool by_name = mode & 16;
    const char *images_name = !by_name ? "images" : (mode & 128) ? "x-data" : (mode & 32) ? fz_idx_names[1]
                                                                                             : fz_idx_names[0];
    const char *labels_name = !by_name ? "labels" : (mode & 64) ? fz_idx_names[3] : fz_idx_names[2];
    const char *images_path = fz_idx_write(images_name, images, images_len, mode & 4);
    const char *labels_path = labels ? fz_idx_write(labels_name, labels, labels_len, mode & 8) : NULL;
    free(made);

    nr_dataset *d = NULL;
    nr_status st;
    if (by_name) {
        nr_data_options opts = {.unlabeled = labels == NULL};
        st = nr_data_load(images_path, &opts, &d);
    } else {
        st = nr_data_load_idx(images_path, labels_path, &d);
    }
    return fz_loaded(st, d, true, "an IDX", mode);
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_idx(data, size); }
#endif
