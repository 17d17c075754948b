/* npy.c - NumPy .npy files: float32/float64, little-endian, C order, 1 to 4 dimensions.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
#include "io/io.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

typedef struct npy_header {
    char descr[16];
    int fortran_order;  /* -1 until seen */
    int ndim;           /* -1 until seen */
    size_t shape[NR_MAX_DIMS];
    bool huge;          /* a dimension does not fit a size_t */
} npy_header;

/* A tiny parser for the header, a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (64, 1000), } */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static bool take(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool take_string(cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool take_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
        c->p += n;
        return true;
    }
    return false;
}

static bool take_shape(cursor *c, npy_header *h)
{
    if (!take(c, '('))
        return false;
    h->ndim = 0;
    for (;;) {
        if (take(c, ')'))
            return true;
        skip_space(c);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return false;
        size_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (!nr__mul(v, 10, &v) || !nr__add(v, (size_t)(*c->p - '0'), &v)) {
                h->huge = true;
                return false;
            }
            c->p++;
        }
        /* Dimensions beyond the fourth are counted, not stored, and refused later. */
        if (h->ndim < NR_MAX_DIMS)
            h->shape[h->ndim] = v;
        if (h->ndim <= NR_MAX_DIMS)
            h->ndim++;
        if (!take(c, ',')) {
            if (!take(c, ')'))
                return false;
            return true;
        }
    }
}

static nr_status parse_header(const char *path, const char *text, size_t len, npy_header *h)
{
    cursor c = {text, text + len};
    h->descr[0] = 0;
    h->fortran_order = -1;
    h->ndim = -1;
    h->huge = false;
    if (!take(&c, '{'))
        return nr__fail(NR_EFORMAT, "%s: corrupt .npy header (no '{')", path);
    for (;;) {
        if (take(&c, '}'))
            break;
        char key[32];
        if (!take_string(&c, key, sizeof key) || !take(&c, ':'))
            return nr__fail(NR_EFORMAT, "%s: corrupt .npy header near offset %td", path, c.p - text + 10);
        if (strcmp(key, "descr") == 0) {
            if (!take_string(&c, h->descr, sizeof h->descr))
                return nr__fail(NR_EFORMAT, "%s: unsupported dtype in .npy header (neurite reads float32 "
                                            "or float64)", path);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (take_word(&c, "True"))
                h->fortran_order = 1;
            else if (take_word(&c, "False"))
                h->fortran_order = 0;
            else
                return nr__fail(NR_EFORMAT, "%s: corrupt .npy header (fortran_order)", path);
        } else if (strcmp(key, "shape") == 0) {
            if (!take_shape(&c, h))
                return h->huge ? nr__fail(NR_EFORMAT, "%s: a dimension in the .npy header's shape is too large "
                                                      "(more than %zu)", path, SIZE_MAX)
                               : nr__fail(NR_EFORMAT, "%s: corrupt .npy header (shape)", path);
        } else {
            return nr__fail(NR_EFORMAT, "%s: unexpected key '%s' in .npy header", path, key);
        }
        if (!take(&c, ',')) {
            if (!take(&c, '}'))
                return nr__fail(NR_EFORMAT, "%s: corrupt .npy header", path);
            break;
        }
    }
    if (!h->descr[0] || h->fortran_order < 0 || h->ndim < 0)
        return nr__fail(NR_EFORMAT, "%s: .npy header lacks descr, fortran_order or shape", path);
    return NR_OK;
}

/* The preamble: magic, version, and where the header dict starts and how long it is. */
static nr_status read_preamble(FILE *f, const char *path, size_t *hstart, size_t *hlen)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return nr__fail(NR_EFORMAT, "%s: not a .npy file (bad magic)", path);
    int major = pre[6];
    if (major == 1) {
        *hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        *hstart = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return nr__fail(NR_EFORMAT, "%s: truncated .npy header", path);
        *hlen = nr__get_u32le(pre + 8);
        *hstart = 12;
    } else {
        return nr__fail(NR_EFORMAT, "%s: unsupported .npy version %d.%d", path, major, pre[7]);
    }
    if (*hlen > (1u << 20))
        return nr__fail(NR_EFORMAT, "%s: .npy header of %zu bytes is implausibly long", path, *hlen);
    return NR_OK;
}

/* The header dict, read and parsed. */
static nr_status read_header(FILE *f, const char *path, size_t hlen, npy_header *h)
{
    char *header = malloc(hlen + 1);
    if (!header)
        return nr__fail(NR_ENOMEM, "%s: out of memory", path);
    nr_status st = fread(header, 1, hlen, f) == hlen ? NR_OK
                                                     : nr__fail(NR_EFORMAT, "%s: truncated .npy header", path);
    if (!st) {
        header[hlen] = 0;
        st = parse_header(path, header, hlen, h);
    }
    free(header);
    return st;
}

/* What neurite reads: little-endian float32 or float64, C order, 1 to 4 dimensions. Sets the item size. */
static nr_status check_kind(const char *path, const npy_header *h, size_t *item)
{
    if (strcmp(h->descr, "<f4") == 0 || strcmp(h->descr, "<f8") == 0)
        *item = h->descr[2] == '4' ? 4 : 8;
    else if (strcmp(h->descr, ">f4") == 0 || strcmp(h->descr, ">f8") == 0)
        return nr__fail(NR_EFORMAT, "%s: big-endian dtype '%s' is not supported; save with arr.astype('<f4')", path,
                        h->descr);
    else
        return nr__fail(NR_EFORMAT, "%s: unsupported dtype '%s' (neurite reads float32 '<f4' or float64 '<f8')",
                        path, h->descr);
    if (h->fortran_order)
        return nr__fail(NR_EFORMAT, "%s: Fortran-order arrays are not supported; save np.ascontiguousarray(arr)",
                        path);
    if (h->ndim < 1 || h->ndim > NR_MAX_DIMS)
        return nr__fail(NR_EFORMAT, "%s: arrays of %s dimensions are not supported (1 to %d)", path,
                        h->ndim < 1 ? "0" : "more than 4", NR_MAX_DIMS);
    return NR_OK;
}

/* The number of values, checked against the bytes the file holds after the header, before any allocation. */
static nr_status check_size(const char *path, const npy_header *h, size_t item, size_t file_size, size_t data_start,
                            size_t *count)
{
    *count = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0)
            return nr__fail(NR_EFORMAT, "%s: empty array (dimension %d is 0)", path, i);
        if (!nr__mul(*count, h->shape[i], count) || *count > NR_MAX_FLOATS)
            return nr__fail(NR_EFORMAT, "%s: the shape in the .npy header is too large (more than %zu values)", path,
                            (size_t)NR_MAX_FLOATS);
    }
    size_t bytes = *count * item, have = file_size > data_start ? file_size - data_start : 0;
    if (have < bytes)
        return nr__fail(NR_EFORMAT, "%s: truncated: the header promises %zu values (%zu bytes) but %zu bytes follow",
                        path, *count, bytes, have);
    if (have > bytes)
        return nr__fail(NR_EFORMAT, "%s: %zu unexpected bytes after the data", path, have - bytes);
    return NR_OK;
}

/* The values, converted to float32 in chunks. */
static nr_status read_body(FILE *f, const char *path, size_t item, size_t count, float *out)
{
    unsigned char chunk[8192];
    for (size_t i = 0; i < count;) {
        size_t m = count - i < sizeof chunk / item ? count - i : sizeof chunk / item;
        if (fread(chunk, item, m, f) != m)
            return nr__fail(NR_EFORMAT, "%s: truncated data after %zu of %zu values", path, i, count);
        if (item == 4) {
            nr__floats_from_le(out + i, chunk, m);
        } else {
            for (size_t j = 0; j < m; j++) {
                uint64_t u = nr__get_u64le(chunk + 8 * j);
                double d;
                memcpy(&d, &u, 8);
                out[i + j] = (float)d;
            }
        }
        i += m;
    }
    if (fgetc(f) != EOF)
        return nr__fail(NR_EFORMAT, "%s: unexpected bytes after the data", path);
    return NR_OK;
}

/* Header, size check and body of an open file. */
static nr_status load_open(FILE *f, const char *path, nr_tensor **out)
{
    /* The data's length is checked against the file's before memory is allocated for it. The length of a pipe
     * or a device cannot be known in advance, and trusting the header there would let it ask for any amount. */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return nr__fail(NR_EIO, "%s: not a regular file", path);
    size_t hstart = 0, hlen = 0, item = 0, count = 0;
    npy_header h;
    nr_status st;
    if ((st = read_preamble(f, path, &hstart, &hlen)) || (st = read_header(f, path, hlen, &h)) ||
        (st = check_kind(path, &h, &item)) ||
        (st = check_size(path, &h, item, (size_t)sb.st_size, hstart + hlen, &count)))
        return st;
    nr_tensor *t = nr_tensor_new(h.ndim, h.shape);
    if (!t)
        return nr__prefix(NR_ENOMEM, "%s", path);
    if ((st = read_body(f, path, item, count, t->data))) {
        nr_tensor_free(t);
        return st;
    }
    *out = t;
    return NR_OK;
}

nr_status nr_npy_load(const char *path, nr_tensor **out)
{
    if (!path || !out)
        return nr__fail(NR_EINVAL, "nr_npy_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nr__fail(NR_EIO, "%s: cannot open: %s", path, strerror(errno));
    nr_status st = load_open(f, path, out);
    fclose(f);
    return st;
}

nr_status nr_npy_save(const char *path, const nr_tensor *t)
{
    if (!path || !t || !t->data || t->ndim < 1 || t->ndim > NR_MAX_DIMS)
        return nr__fail(NR_EINVAL, "nr_npy_save: NULL or malformed tensor");
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < t->ndim; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%zu%s", t->shape[i],
                        t->ndim == 1 ? "," : (i + 1 < t->ndim ? ", " : ""));
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    /* Pad with spaces and a newline so the data starts on a 64-byte boundary, as NumPy does. */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char head[320];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    size_t hlen = padded - 10;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)len);
    memset(head + 10 + len, ' ', padded - 10 - (size_t)len - 1);
    head[padded - 1] = '\n';
    nr__atomic a;
    nr_status st = nr__atomic_open(&a, path);
    if (st)
        return st;
    nr__atomic_write(&a, head, padded);
    nr__atomic_write_f32le(&a, t->data, t->size);
    return nr__atomic_commit(&a);
}
