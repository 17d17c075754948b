/* data_idx.c - IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
 *
 * An IDX file is a magic number (two zero bytes, a type code, the number of dimensions), one big-endian
 * 32-bit size per dimension, then the values in C order. neurite reads unsigned bytes (type 0x08): images
 * of 3 or 4 dimensions (count, height, width[, channels]) and labels of 1 (count). Compression is told by
 * the gzip magic bytes, not the name. Every size in a header is checked against the file before memory is
 * allocated for it. */
#include "data/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NR_HAVE_ZLIB
#include <zlib.h>
#endif

#define IDX_UBYTE 0x08

/* Deflate cannot shrink data by more than about 1032 to 1, so a gzip file of B bytes cannot hold more than
 * this many times B: a header that promises more is refused before anything is allocated. */
#define GZIP_MAX_RATIO 1100

/* Uncompressed bytes asked of zlib at a time. */
#define GZIP_STEP ((size_t)1 << 20)

/* A file read from its start, through zlib if compressed. `pos` counts bytes of the uncompressed stream. */
typedef struct reader {
    const char *path;
    FILE *file;
#ifdef NR_HAVE_ZLIB
    gzFile gz;
#endif
    bool compressed;
    bool cut;           /* gzip: the compressed data ended before its stream did (zlib's Z_BUF_ERROR) */
    size_t file_bytes;  /* length on disk */
    size_t pos;
} reader;

static void reader_close(reader *r)
{
    if (r->file)
        fclose(r->file);
    r->file = NULL;
#ifdef NR_HAVE_ZLIB
    if (r->gz)
        gzclose(r->gz);
    r->gz = NULL;
#endif
}

static nr_status reader_open(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->file = fopen(path, "rb");
    if (!r->file)
        return nr__fail(NR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(r->file), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        reader_close(r);
        return nr__fail(NR_EIO, "%s: not a regular file", path);
    }
    r->file_bytes = (size_t)sb.st_size;
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, r->file);
    if (got < 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
        rewind(r->file);
        return NR_OK;
    }
    r->compressed = true;
#ifdef NR_HAVE_ZLIB
    fclose(r->file);
    r->file = NULL;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return nr__fail(NR_EIO, "%s: cannot open for decompressing: %s", path, strerror(errno));
    gzbuffer(r->gz, 1 << 17);
    return NR_OK;
#else
    reader_close(r);
    return nr__fail(NR_EFORMAT, "%s: the file is gzip-compressed, but this build of neurite has no zlib "
                                "(rebuild with zlib1g-dev installed, or gunzip the file)", path);
#endif
}

/* Reads up to `len` bytes; *got < len means the stream ended. Fails on read errors and corrupt gzip data. */
static nr_status reader_read(reader *r, void *buf, size_t len, size_t *got)
{
    *got = 0;
    unsigned char *dst = buf;
#ifdef NR_HAVE_ZLIB
    if (r->gz) {
        /* Small steps, so that a failure's position is known to within one step. */
        while (*got < len) {
            size_t want = len - *got < GZIP_STEP ? len - *got : GZIP_STEP;
            int n = gzread(r->gz, dst + *got, (unsigned)want);
            int code;
            const char *why = gzerror(r->gz, &code);
            if (n > 0)
                *got += (size_t)n;
            /* A cut stream (Z_BUF_ERROR) still hands over what it holds: read_header or read_body finds the data
             * short and says where it ends, or (cut in the gzip trailer) that the stream's end is missing. zlib
             * reads ahead, so a corruption is only known to lie after the bytes delivered so far. */
            if (code == Z_BUF_ERROR) {
                r->cut = true;
                if (n <= 0)
                    break;
                continue;
            }
            if (n < 0 || code != Z_OK) {
                /* zlib puts the path in front of its message; ours already names the file. */
                size_t plen = strlen(r->path);
                if (strncmp(why, r->path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
                    why += plen + 2;
                size_t at = r->pos + *got;
                if (at == 0)
                    return nr__fail(NR_EFORMAT, "%s: corrupt gzip data: %s", r->path, why);
                return nr__fail(NR_EFORMAT, "%s: corrupt gzip data after uncompressed byte %zu: %s", r->path, at,
                                why);
            }
            if (n == 0)
                break;
        }
        r->pos += *got;
        return NR_OK;
    }
#endif
    *got = fread(dst, 1, len, r->file);
    r->pos += *got;
    if (*got < len && ferror(r->file))
        return nr__fail(NR_EIO, "%s: read error at byte %zu: %s", r->path, r->pos, strerror(errno));
    return NR_OK;
}

typedef struct idx_header {
    int ndim;
    size_t dims[4];
    size_t header_bytes;  /* 4 + 4 * ndim */
    size_t data_bytes;    /* the product of dims */
} idx_header;

static uint32_t get_u32be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *type_name(int code)
{
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return "unknown";
}

/* Reads and checks a header: `min_dims` to `max_dims` dimensions of unsigned bytes, every size non-zero, the
 * first at most NR__MAX_SAMPLES and the total at most NR_MAX_FLOATS, and the whole as long as the file (or, for
 * gzip, no longer than it can hold). `what` ("images" or "labels"), `magic` (0x803 or 0x801) and `dims_text`
 * ("3 or 4 dimensions") are for the messages. */
static nr_status read_header(reader *r, const char *what, uint32_t magic, int min_dims, int max_dims,
                             const char *dims_text, idx_header *h)
{
    unsigned char buf[4 + 4 * 4];
    size_t got;
    nr_status st = reader_read(r, buf, 4, &got);
    if (st)
        return st;
    if (got < 4)
        return nr__fail(NR_EFORMAT, "%s: truncated: %zu bytes, shorter than an IDX header", r->path, got);
    uint32_t found = get_u32be(buf);
    if (buf[0] != 0 || buf[1] != 0)
        return nr__fail(NR_EFORMAT, "%s: not an IDX file: magic 0x%08x at byte 0 (IDX %s start 0x%08x)", r->path,
                        (unsigned)found, what, (unsigned)magic);
    if (buf[2] != IDX_UBYTE)
        return nr__fail(NR_EFORMAT, "%s: IDX values of type 0x%02x (%s) at byte 2 are not supported; neurite "
                                    "reads unsigned bytes (0x08)", r->path, buf[2], type_name(buf[2]));
    h->ndim = buf[3];
    if (h->ndim < min_dims || h->ndim > max_dims) {
        if (found == 0x801 || found == 0x803)
            return nr__fail(NR_EFORMAT, "%s: this is an IDX %s file (magic 0x%08x), not %s (0x%08x)", r->path,
                            found == 0x801 ? "labels" : "images", (unsigned)found, what, (unsigned)magic);
        return nr__fail(NR_EFORMAT, "%s: IDX %s have %s, but the header says %d (byte 3)", r->path, what,
                        dims_text, h->ndim);
    }
    h->header_bytes = 4 + 4 * (size_t)h->ndim;
    if ((st = reader_read(r, buf + 4, h->header_bytes - 4, &got)))
        return st;
    if (got < h->header_bytes - 4)
        return nr__fail(NR_EFORMAT, "%s: truncated IDX header: %zu bytes, %zu expected for %d dimensions",
                        r->path, 4 + got, h->header_bytes, h->ndim);
    size_t total = 1;
    for (int i = 0; i < h->ndim; i++) {
        h->dims[i] = get_u32be(buf + 4 + 4 * i);
        if (h->dims[i] == 0)
            return nr__fail(NR_EFORMAT, "%s: dimension %d (at byte %d) is 0", r->path, i, 4 + 4 * i);
        if (!nr__mul(total, h->dims[i], &total) || total > NR_MAX_FLOATS)
            return nr__fail(NR_EFORMAT, "%s: the sizes in the header (dimension %d at byte %d is %zu) come to more "
                                        "than the limit of %zu values", r->path, i, 4 + 4 * i, h->dims[i],
                            (size_t)NR_MAX_FLOATS);
    }
    if (h->dims[0] > NR__MAX_SAMPLES)
        return nr__fail(NR_EFORMAT, "%s: %zu %s (at byte 4) is more than the limit of %zu", r->path, h->dims[0],
                        what, NR__MAX_SAMPLES);
    h->data_bytes = total;
    /* The file's real length against the header's promise, before anything is allocated. */
    if (!r->compressed) {
        size_t have = r->file_bytes - h->header_bytes;
        if (have < total)
            return nr__fail(NR_EFORMAT, "%s: truncated: the header promises %zu bytes of %s after byte %zu, but "
                                        "the file ends at byte %zu", r->path, total, what, h->header_bytes,
                            r->file_bytes);
        if (have > total)
            return nr__fail(NR_EFORMAT, "%s: %zu unexpected bytes after the %s, from byte %zu", r->path,
                            have - total, what, h->header_bytes + total);
    } else if (total / GZIP_MAX_RATIO > r->file_bytes) {
        return nr__fail(NR_EFORMAT, "%s: the header promises %zu bytes of %s, more than a gzip file of %zu bytes "
                                    "can hold", r->path, total, what, r->file_bytes);
    }
    return NR_OK;
}

/* Reads the data that follows a checked header, then makes sure nothing follows it. */
static nr_status read_body(reader *r, const char *what, const idx_header *h, void *dst)
{
    size_t got;
    nr_status st = reader_read(r, dst, h->data_bytes, &got);
    if (st)
        return st;
    if (got < h->data_bytes)
        return nr__fail(NR_EFORMAT, "%s: truncated: the header promises %zu bytes of %s after byte %zu, but the "
                                    "data ends at byte %zu%s", r->path, h->data_bytes, what, h->header_bytes,
                        r->pos, r->cut ? " (uncompressed; the gzip file is cut short)"
                                       : r->compressed ? " (uncompressed)" : "");
    unsigned char extra;
    if ((st = reader_read(r, &extra, 1, &got)))
        return st;
    if (got)
        return nr__fail(NR_EFORMAT, "%s: unexpected bytes after the %s, from byte %zu%s", r->path, what,
                        h->header_bytes + h->data_bytes, r->compressed ? " (uncompressed)" : "");
    if (r->cut)
        return nr__fail(NR_EFORMAT, "%s: truncated gzip file: the %s are all there, but the end of the gzip "
                                    "stream (its checksum) is missing", r->path, what);
    return NR_OK;
}

nr_status nr_data_load_idx(const char *images_path, const char *labels_path, nr_dataset **out)
{
    if (!out)
        return nr__fail(NR_EINVAL, "nr_data_load_idx: NULL output");
    *out = NULL;
    if (!images_path)
        return nr__fail(NR_EINVAL, "nr_data_load_idx: NULL path");
    reader images, labels = {0};
    idx_header ih, lh;
    nr_dataset *d = NULL;
    nr_status st = reader_open(&images, images_path);
    if (st)
        return st;
    if ((st = read_header(&images, "images", 0x803, 3, 4, "3 or 4 dimensions", &ih))) {
        reader_close(&images);
        return st;
    }
    if (labels_path && (st = reader_open(&labels, labels_path))) {
        reader_close(&images);
        return st;
    }
    if (labels_path && (st = read_header(&labels, "labels", 0x801, 1, 1, "1 dimension", &lh)))
        goto done;
    if (labels_path && ih.dims[0] != lh.dims[0]) {
        st = nr__fail(NR_EFORMAT, "%s has %zu images but %s has %zu labels", images_path, ih.dims[0], labels_path,
                      lh.dims[0]);
        goto done;
    }
    size_t shape[3] = {ih.dims[1], ih.dims[2], ih.ndim == 4 ? ih.dims[3] : 1};
    if ((st = nr__data_new(ih.dims[0], shape, true, &d))) {
        st = nr__prefix(st, "%s", images_path);
        goto done;
    }
    if ((st = read_body(&images, "images", &ih, d->u8)))
        goto done;
    /* The label bytes land in the first quarter of the int32 array and are widened from the back, so that
     * no second buffer is needed. */
    uint8_t *bytes = (uint8_t *)d->labels;
    if (labels_path && (st = read_body(&labels, "labels", &lh, bytes)))
        goto done;
    for (size_t i = d->n; i-- > 0;)
        d->labels[i] = labels_path ? bytes[i] : 0;
    nr__data_count_classes(d);
    *out = d;
    d = NULL;
done:
    nr_data_free(d);
    reader_close(&images);
    if (labels_path)
        reader_close(&labels);
    return st;
}

/* The labels file that goes with an images file: the last "images-idx3" (or "images.idx3") in the name
 * becomes "labels-idx1"; if that file is missing but the same name with ".gz" added or removed exists, that
 * one. Returns false if the name has no such part. */
static bool labels_path_for(const char *images, char *out, size_t cap)
{
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    const char *hit = NULL;
    for (const char *p = base; (p = strstr(p, "images")) != NULL; p++)
        if ((p[6] == '-' || p[6] == '.') && strncmp(p + 7, "idx3", 4) == 0)
            hit = p;
    if (!hit)
        return false;
    int n = snprintf(out, cap, "%.*slabels%cidx1%s", (int)(hit - images), images, hit[6], hit + 11);
    if (n < 0 || (size_t)n + 4 >= cap)
        return false;
    if (access(out, F_OK) == 0)
        return true;
    /* There is room for ".gz" (checked above). */
    size_t len = (size_t)n;
    if (len > 3 && strcmp(out + len - 3, ".gz") == 0) {
        out[len - 3] = 0;
        if (access(out, F_OK) != 0)
            out[len - 3] = '.';
    } else {
        memcpy(out + len, ".gz", 4);
        if (access(out, F_OK) != 0)
            out[len] = 0;
    }
    return true;
}

nr_status nr__data_load_idx_images(const char *images_path, bool unlabeled, nr_dataset **out)
{
    char labels[4096];
    if (unlabeled)
        return nr_data_load_idx(images_path, NULL, out);
    if (labels_path_for(images_path, labels, sizeof labels))
        return nr_data_load_idx(images_path, labels, out);
    /* Not named like an IDX images file: say what the file seems to be. */
    reader r;
    nr_status st = reader_open(&r, images_path);
    if (st)
        return st;
    unsigned char magic[4];
    size_t got = 0;
    st = reader_read(&r, magic, 4, &got);
    reader_close(&r);
    if (st)
        return st;
    bool idx = got == 4 && magic[0] == 0 && magic[1] == 0 && magic[2] == IDX_UBYTE;
    if (idx && magic[3] == 1)
        return nr__fail(NR_EFORMAT, "%s: an IDX labels file; give the images file (named like "
                                    "train-images-idx3-ubyte), and its labels file is found beside it", images_path);
    if (idx && magic[3] >= 3 && magic[3] <= 4)
        return nr__fail(NR_EFORMAT, "%s: an IDX images file, but its labels file cannot be found by name (the "
                                    "name has no 'images-idx3' to change into 'labels-idx1')", images_path);
    return nr__fail(NR_EFORMAT, "%s: unknown kind of data file: neurite reads .csv, .npy and IDX files named like "
                                "train-images-idx3-ubyte or train-images-idx3-ubyte.gz", images_path);
}
