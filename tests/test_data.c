/* test_data.c - data sets: IDX (plain and gzip), CSV and .npy readers with every way a file can be wrong,
 * sets from arrays, split and truncate, the input scaling, and the batch gatherer (scaling, shift
 * augmentation checked against a shift computed another way, no allocation). If the real data sets are
 * present (scripts/fetch-data.sh), their counts and shapes are checked too. */
#include "../src/data/data.h"
#include "check.h"

#include <malloc.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/neurite-data-XXXXXX";

static const char *path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static void write_file(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(path(name), "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_text(const char *name, const char *text) { write_file(name, text, strlen(text)); }

/* An IDX file of unsigned bytes: the magic (type 0x08 unless `type` says otherwise), the sizes, then `len`
 * bytes of `data`. */
static void write_idx(const char *name, int type, int ndim, const uint32_t *dims, const void *data, size_t len)
{
    unsigned char head[4 + 4 * 8] = {0, 0, (unsigned char)type, (unsigned char)ndim};
    for (int i = 0; i < ndim; i++)
        for (int b = 0; b < 4; b++)
            head[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    FILE *f = fopen(path(name), "wb");
    fwrite(head, 1, 4 + 4 * (size_t)ndim, f);
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static void gzip_file(const char *name)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "gzip -kfn '%s'", path(name));
    CHECK(system(cmd) == 0, "gzip %s", name);
}

/* A load that must fail with `code`, leaving *out NULL, with a one-line message that names `file` and
 * contains `needle` (the position and the problem). */
static void expect_fail(nr_status got, nr_dataset *d, nr_status code, const char *file, const char *needle)
{
    const char *m = nr_error_message();
    CHECK(got == code && d == NULL, "%s: got %s, want %s (%s)", needle, nr_status_string(got),
          nr_status_string(code), m);
    CHECK(strstr(m, needle) != NULL, "message '%s' lacks '%s'", m, needle);
    CHECK(file == NULL || strstr(m, file) != NULL, "message '%s' does not name %s", m, file);
    CHECK(strchr(m, '\n') == NULL, "message '%s' is more than one line", m);
}

static void expect_load_fail(const char *name, const nr_data_options *o, nr_status code, const char *needle)
{
    nr_dataset *d = (nr_dataset *)1;
    nr_status st = nr_data_load(path(name), o, &d);
    expect_fail(st, d, code, name, needle);
    if (st == NR_OK)
        nr_data_free(d);
}

static void expect_idx_fail(const char *images, const char *labels, nr_status code, const char *file,
                            const char *needle)
{
    nr_dataset *d = (nr_dataset *)1;
    nr_status st = nr_data_load_idx(path(images), path(labels), &d);
    expect_fail(st, d, code, file, needle);
    if (st == NR_OK)
        nr_data_free(d);
}

/* ---- IDX ---- */

enum { IN = 5, IH = 4, IW = 3 };

static uint8_t pixel(size_t i, size_t k) { return (uint8_t)(i * 31 + k * 7 + 3); }

static void write_idx_pair(const char *images, const char *labels, size_t n, size_t h, size_t w, size_t c)
{
    size_t f = h * w * c;
    uint8_t *px = malloc(n * f), *lb = malloc(n);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < f; k++)
            px[i * f + k] = pixel(i, k);
        lb[i] = (uint8_t)((i * 3) % 7);
    }
    uint32_t dims[4] = {(uint32_t)n, (uint32_t)h, (uint32_t)w, (uint32_t)c};
    write_idx(images, 8, c == 1 ? 3 : 4, dims, px, n * f);
    write_idx(labels, 8, 1, dims, lb, n);
    free(px);
    free(lb);
}

static void check_idx_set(const nr_dataset *d, size_t n, size_t h, size_t w, size_t c, const char *what)
{
    size_t shape[3];
    nr_data_shape(d, shape);
    CHECK(d && nr_data_count(d) == n && nr_data_features(d) == h * w * c && shape[0] == h && shape[1] == w &&
              shape[2] == c && nr_data_is_image(d),
          "%s: count and shape", what);
    if (!d)
        return;
    size_t top = 0;
    bool labels_ok = true, pixels_ok = true;
    float x[64];
    for (size_t i = 0; i < n; i++) {
        labels_ok &= nr_data_labels(d)[i] == (int32_t)((i * 3) % 7);
        if ((size_t)nr_data_labels(d)[i] > top)
            top = (size_t)nr_data_labels(d)[i];
        nr_data_sample(d, i, x);
        for (size_t k = 0; k < h * w * c; k++)
            pixels_ok &= x[k] == (float)pixel(i, k);
    }
    CHECK(labels_ok && pixels_ok, "%s: labels and pixels read back", what);
    CHECK(nr_data_classes(d) == top + 1, "%s: classes %zu", what, nr_data_classes(d));
}

static void idx_files(void)
{
    write_idx_pair("a-images-idx3-ubyte", "a-labels-idx1-ubyte", IN, IH, IW, 1);
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_load_idx(path("a-images-idx3-ubyte"), path("a-labels-idx1-ubyte"), &d));
    check_idx_set(d, IN, IH, IW, 1, "plain IDX");
    nr_data_free(d);
    d = NULL;
    CHECK_OK(nr_data_load(path("a-images-idx3-ubyte"), NULL, &d));
    check_idx_set(d, IN, IH, IW, 1, "plain IDX, labels found by name");
    nr_data_free(d);
    /* Colour: 4 dimensions, channels last; the "images.idx3" spelling some copies use. */
    write_idx_pair("c-images.idx3-ubyte", "c-labels.idx1-ubyte", 3, 2, 2, 3);
    d = NULL;
    CHECK_OK(nr_data_load(path("c-images.idx3-ubyte"), NULL, &d));
    check_idx_set(d, 3, 2, 2, 3, "4-D IDX");
    nr_data_free(d);

    /* gzip: by name, by magic bytes whatever the name, and a plain file named .gz. */
    gzip_file("a-images-idx3-ubyte");
    gzip_file("a-labels-idx1-ubyte");
#ifdef NR_HAVE_ZLIB
    d = NULL;
    CHECK_OK(nr_data_load(path("a-images-idx3-ubyte.gz"), NULL, &d));
    check_idx_set(d, IN, IH, IW, 1, "gzip IDX");
    nr_data_free(d);
    rename(path("a-images-idx3-ubyte.gz"), path("b-images-idx3-ubyte"));
    rename(path("a-labels-idx1-ubyte"), path("b-labels-idx1-ubyte.gz"));
    d = NULL;
    CHECK_OK(nr_data_load(path("b-images-idx3-ubyte"), NULL, &d));
    check_idx_set(d, IN, IH, IW, 1, "gzip told by magic, plain file named .gz");
    nr_data_free(d);
    /* A cut gzip file, and a header promising more than any gzip file of that length can hold. */
    long size;
    FILE *f = fopen(path("b-images-idx3-ubyte"), "rb");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    unsigned char *gz = malloc((size_t)size);
    rewind(f);
    CHECK(fread(gz, 1, (size_t)size, f) == (size_t)size, "read gzip");
    fclose(f);
    write_file("cut-images-idx3-ubyte.gz", gz, (size_t)size - 12);
    free(gz);
    expect_idx_fail("cut-images-idx3-ubyte.gz", "a-labels-idx1-ubyte.gz", NR_EFORMAT, "cut-images-idx3-ubyte.gz",
                    "truncated");
    uint8_t few[8] = {0};
    write_idx("bomb-images-idx3-ubyte", 8, 3, (uint32_t[]){1000000, 100, 100}, few, sizeof few);
    gzip_file("bomb-images-idx3-ubyte");
    expect_idx_fail("bomb-images-idx3-ubyte.gz", "a-labels-idx1-ubyte.gz", NR_EFORMAT, "bomb-images-idx3-ubyte.gz",
                    "more than a gzip file of");
    write_idx("long-images-idx3-ubyte", 8, 3, (uint32_t[]){IN, IH, IW}, few, sizeof few);
    FILE *lf = fopen(path("long-images-idx3-ubyte"), "ab");
    for (int i = 0; i < IN * IH * IW; i++)
        fputc(1, lf);
    fclose(lf);
    gzip_file("long-images-idx3-ubyte");
    expect_idx_fail("long-images-idx3-ubyte.gz", "a-labels-idx1-ubyte.gz", NR_EFORMAT, "long-images-idx3-ubyte.gz",
                    "unexpected bytes after the images, from byte 76 (uncompressed)");
#else
    expect_load_fail("a-images-idx3-ubyte.gz", NULL, NR_EFORMAT, "no zlib");
#endif
}

static void idx_errors(void)
{
    uint8_t px[IN * IH * IW] = {0}, lb[IN] = {0};
    uint32_t dims[3] = {IN, IH, IW};
    write_idx("ok-labels-idx1-ubyte", 8, 1, dims, lb, IN);
    write_idx("ok-images-idx3-ubyte", 8, 3, dims, px, sizeof px);

    expect_idx_fail("none-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EIO, "none-images-idx3-ubyte",
                    "cannot open");
    expect_idx_fail("ok-images-idx3-ubyte", "none-labels-idx1-ubyte", NR_EIO, "none-labels-idx1-ubyte",
                    "cannot open");
    expect_load_fail("lonely-images-idx3-ubyte", NULL, NR_EIO, "cannot open");
    write_text("zip-images-idx3-ubyte", "PK\3\4 a zip file, not IDX at all");
    expect_idx_fail("zip-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "zip-images-idx3-ubyte",
                    "not an IDX file: magic 0x504b0304 at byte 0");
    write_idx("float-images-idx3-ubyte", 0x0D, 3, dims, px, sizeof px);
    expect_idx_fail("float-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "float-images-idx3-ubyte",
                    "type 0x0d (float) at byte 2");
    expect_idx_fail("ok-labels-idx1-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "ok-labels-idx1-ubyte",
                    "this is an IDX labels file");
    expect_idx_fail("ok-images-idx3-ubyte", "ok-images-idx3-ubyte", NR_EFORMAT, "ok-images-idx3-ubyte",
                    "this is an IDX images file (magic 0x00000803), not labels");
    write_idx("flat-images-idx3-ubyte", 8, 2, (uint32_t[]){IN, IH * IW}, px, sizeof px);
    expect_idx_fail("flat-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "flat-images-idx3-ubyte",
                    "3 or 4 dimensions, but the header says 2 (byte 3)");
    write_idx("zero-images-idx3-ubyte", 8, 3, (uint32_t[]){IN, 0, IW}, px, sizeof px);
    expect_idx_fail("zero-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "zero-images-idx3-ubyte",
                    "dimension 1 (at byte 8) is 0");
    write_idx("huge-images-idx3-ubyte", 8, 4, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 3}, px, 8);
    expect_idx_fail("huge-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "huge-images-idx3-ubyte",
                    "dimension 1 at byte 8 is 4294967295) come to more than the limit");
    write_idx("many-images-idx3-ubyte", 8, 3, (uint32_t[]){0x80000001u, 1, 1}, px, 8);
    expect_idx_fail("many-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "many-images-idx3-ubyte",
                    "2147483649 images (at byte 4) is more than the limit of 2147483648");
    write_idx("short-images-idx3-ubyte", 8, 3, dims, px, sizeof px - 5);
    expect_idx_fail("short-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "short-images-idx3-ubyte",
                    "truncated: the header promises 60 bytes of images after byte 16, but the file ends at byte 71");
    write_idx("big-images-idx3-ubyte", 8, 3, (uint32_t[]){60000, 28, 28}, px, sizeof px);
    expect_idx_fail("big-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "big-images-idx3-ubyte",
                    "47040000 bytes of images after byte 16, but the file ends at byte 76");
    write_file("head-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x05\0\0", 10);
    expect_idx_fail("head-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "head-images-idx3-ubyte",
                    "truncated IDX header: 10 bytes, 16 expected");
    write_file("tiny-images-idx3-ubyte", "\0\0", 2);
    expect_idx_fail("tiny-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "tiny-images-idx3-ubyte",
                    "truncated: 2 bytes");
    uint8_t more[IN * IH * IW + 3] = {0};
    write_idx("extra-images-idx3-ubyte", 8, 3, dims, more, sizeof more);
    expect_idx_fail("extra-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EFORMAT, "extra-images-idx3-ubyte",
                    "3 unexpected bytes after the images, from byte 76");
    write_idx("four-labels-idx1-ubyte", 8, 1, (uint32_t[]){IN - 1}, lb, IN - 1);
    expect_idx_fail("ok-images-idx3-ubyte", "four-labels-idx1-ubyte", NR_EFORMAT, "four-labels-idx1-ubyte",
                    "has 5 images but");
    write_idx("cut-labels-idx1-ubyte", 8, 1, dims, lb, IN - 2);
    expect_idx_fail("ok-images-idx3-ubyte", "cut-labels-idx1-ubyte", NR_EFORMAT, "cut-labels-idx1-ubyte",
                    "5 bytes of labels after byte 8, but the file ends at byte 11");
    CHECK(mkdir(path("dir-images-idx3-ubyte"), 0700) == 0, "mkdir");
    expect_idx_fail("dir-images-idx3-ubyte", "ok-labels-idx1-ubyte", NR_EIO, "dir-images-idx3-ubyte",
                    "not a regular file");
    /* Names nr_data_load cannot place. */
    write_idx("digits.bin", 8, 3, dims, px, sizeof px);
    expect_load_fail("digits.bin", NULL, NR_EFORMAT, "labels file cannot be found by name");
    expect_load_fail("ok-labels-idx1-ubyte", NULL, NR_EFORMAT, "an IDX labels file; give the images file");
    write_text("notes.txt", "hello\n");
    expect_load_fail("notes.txt", NULL, NR_EFORMAT, "unknown kind of data file");
#ifndef NR_HAVE_ZLIB
    gzip_file("ok-images-idx3-ubyte");
    expect_idx_fail("ok-images-idx3-ubyte.gz", "ok-labels-idx1-ubyte", NR_EFORMAT, "ok-images-idx3-ubyte.gz",
                    "gzip-compressed, but this build of neurite has no zlib");
#endif
    nr_dataset *d = NULL;
    CHECK_ERR(nr_data_load_idx(NULL, path("ok-labels-idx1-ubyte"), &d), NR_EINVAL);
    CHECK_ERR(nr_data_load_idx(path("ok-images-idx3-ubyte"), path("ok-labels-idx1-ubyte"), NULL), NR_EINVAL);
    CHECK_ERR(nr_data_load(NULL, NULL, &d), NR_EINVAL);
    CHECK_ERR(nr_data_load(path("x.csv"), &(nr_data_options){.header = 3}, &d), NR_EINVAL);
}

/* ---- CSV ---- */

static bool table_is(const nr_dataset *d, size_t n, size_t f, const float *x, const int32_t *labels)
{
    if (!d || nr_data_count(d) != n || nr_data_features(d) != f || nr_data_is_image(d))
        return false;
    float row[16];
    size_t shape[3];
    nr_data_shape(d, shape);
    if (shape[0] != 1 || shape[1] != 1 || shape[2] != f)
        return false;
    for (size_t i = 0; i < n; i++) {
        nr_data_sample(d, i, row);
        if (memcmp(row, x + i * f, f * sizeof(float)) != 0 || nr_data_labels(d)[i] != labels[i])
            return false;
    }
    return true;
}

static void csv_files(void)
{
    const float x3[] = {1.5f, -2, 0.25f, 1e-3f, 7, 8};
    const int32_t l3[] = {0, 2, 1};
    nr_dataset *d = NULL;
    /* A header (guessed), the label by name in the first column. */
    write_text("named.csv", "label,a,b\n0,1.5,-2\n2,0.25,1e-3\n1,7,8\n");
    CHECK_OK(nr_data_load(path("named.csv"), &(nr_data_options){.label = "label"}, &d));
    CHECK(table_is(d, 3, 2, x3, l3) && nr_data_classes(d) == 3, "CSV with header, label by name");
    nr_data_free(d);
    d = NULL;
    CHECK_OK(nr_data_load(path("named.csv"), &(nr_data_options){.label = "0"}, &d));
    CHECK(table_is(d, 3, 2, x3, l3), "CSV with header, label by index");
    nr_data_free(d);
    /* No header, CRLF, a byte order mark, spaces, quoted values, blank lines at the end; label last. */
    write_text("plain.CSV", "\xEF\xBB\xBF" "1.5, -2 ,0\r\n\"0.25\",1e-3,2\r\n7,8,\t1\r\n\r\n\n  \n");
    d = NULL;
    CHECK_OK(nr_data_load(path("plain.CSV"), NULL, &d));
    CHECK(table_is(d, 3, 2, x3, l3), "CSV without header, CRLF, label last");
    nr_data_free(d);
    d = NULL;
    CHECK_OK(nr_data_load(path("plain.CSV"), &(nr_data_options){.header = 2, .label = "2"}, &d));
    CHECK(table_is(d, 3, 2, x3, l3), "CSV told it has no header");
    nr_data_free(d);
    /* A numeric first line taken as a header when told so; quoted header names; label by name in the middle. */
    write_text("numhead.csv", "\"10\",\"y\",\"30\"\n1.5,0,-2\n0.25,2,1e-3\n7,1,8");
    d = NULL;
    CHECK_OK(nr_data_load(path("numhead.csv"), &(nr_data_options){.header = 1, .label = "y"}, &d));
    CHECK(table_is(d, 3, 2, x3, l3), "forced header, quoted names, label in the middle by name");
    nr_data_free(d);
    write_text("digitnames.csv", "2,a,b\n1,5,6\n0,7,8\n");
    d = NULL;
    CHECK_OK(nr_data_load(path("digitnames.csv"), &(nr_data_options){.header = 1, .label = "2"}, &d));
    CHECK(d && nr_data_labels(d)[0] == 1 && nr_data_labels(d)[1] == 0,
          "a header name that looks like a number is a name first");
    nr_data_free(d);
}

static void csv_errors(void)
{
    const nr_data_options by_name = {.label = "y"};
    expect_load_fail("missing.csv", NULL, NR_EIO, "cannot open");
    write_text("ragged.csv", "a,b,y\n1,2,0\n3,4,1\n5,6\n");
    expect_load_fail("ragged.csv", NULL, NR_EFORMAT, "line 4 has 2 columns, expected 3 (as on line 1)");
    write_text("long.csv", "1,2,0\n1,2,3,0\n");
    expect_load_fail("long.csv", NULL, NR_EFORMAT, "line 2 has 4 columns, expected 3");
    write_text("nan.csv", "a,b,y\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,nan,0\n");
    expect_load_fail("nan.csv", NULL, NR_ENUMERIC, "line 12, column 2: nan is not a finite number");
    write_text("inf.csv", "1,-inf,0\n");
    expect_load_fail("inf.csv", NULL, NR_ENUMERIC, "line 1, column 2: -inf is not a finite number");
    write_text("nanlabel.csv", "1,2,NaN\n");
    expect_load_fail("nanlabel.csv", NULL, NR_ENUMERIC, "line 1, column 3: NaN is not a finite number");
    write_text("big.csv", "1,2,0\n1e39,2,0\n");
    expect_load_fail("big.csv", NULL, NR_ENUMERIC, "line 2, column 1: 1e39 is too large for a float32");
    write_text("half.csv", "1,2,0\n1,2,3.5\n");
    expect_load_fail("half.csv", NULL, NR_EFORMAT, "line 2, column 3: label 3.5 is not a whole number");
    write_text("neg.csv", "a,y,b\n1,-1,2\n");
    expect_load_fail("neg.csv", &by_name, NR_EFORMAT, "line 2, column 2: label -1 is negative");
    write_text("huge.csv", "1,2,65535\n1,2,70000\n");
    expect_load_fail("huge.csv", NULL, NR_EFORMAT, "line 2, column 3: label 70000 is above 65535");
    write_text("empty.csv", "1,2,0\n1,,0\n");
    expect_load_fail("empty.csv", NULL, NR_EFORMAT, "line 2, column 2: empty field");
    write_text("unnamed.csv", ",a,b\n");
    expect_load_fail("unnamed.csv", NULL, NR_EFORMAT, "no data rows");  /* an empty name marks a header */
    write_text("quote.csv", "1,\"2,5\",0\n");
    expect_load_fail("quote.csv", NULL, NR_EFORMAT, "line 1, column 2: quoted fields with commas or quotes");
    write_text("open.csv", "1,\"2,0\n");
    expect_load_fail("open.csv", NULL, NR_EFORMAT, "line 1, column 2: a quote is not closed");
    write_text("gap.csv", "1,2,0\n\n1,2,0\n");
    expect_load_fail("gap.csv", NULL, NR_EFORMAT, "line 2 is blank, but data follows on line 3");
    write_text("head.csv", "a,b,y\n\n");
    expect_load_fail("head.csv", NULL, NR_EFORMAT, "no data rows");
    write_text("nothing.csv", "");
    expect_load_fail("nothing.csv", NULL, NR_EFORMAT, "no data rows");
    write_text("one.csv", "y\n1\n");
    expect_load_fail("one.csv", NULL, NR_EFORMAT, "line 1 has 1 column");
    write_text("binary.csv", "1,2,0\n1,2\x01\x02zz,0\n");
    expect_load_fail("binary.csv", NULL, NR_EFORMAT, "line 2, column 2: '2??zz' is neither a number nor plain text");
    write_text("y.csv", "a,b,c\n1,2,0\n");
    expect_load_fail("y.csv", &by_name, NR_EINVAL, "no column named 'y' in the header on line 1");
    write_text("twice.csv", "y,b,y\n1,2,0\n");
    expect_load_fail("twice.csv", &by_name, NR_EINVAL, "ambiguous: the header on line 1 has it in columns 1 and 3");
    write_text("nohead.csv", "1,2,0\n");
    expect_load_fail("nohead.csv", &by_name, NR_EINVAL, "given by name, but the file has no header");
    expect_load_fail("nohead.csv", &(nr_data_options){.label = "3"}, NR_EINVAL,
                     "label column 3 is out of range (the file has 3 columns, 0 to 2)");
    write_text("forced.csv", "1,2,0\n3,4,1\n");
    expect_load_fail("forced.csv", &(nr_data_options){.header = 2, .label = "x"}, NR_EINVAL, "no header");
}

/* ---- .npy tables ---- */

static void npy_tables(void)
{
    nr_tensor *t = nr_tensor_new(2, (size_t[]){3, 3});
    const float v[9] = {1.5f, 0, -2, 0.25f, 2, 1e-3f, 7, 1, 8};
    memcpy(t->data, v, sizeof v);
    CHECK_OK(nr_npy_save(path("t.npy"), t));
    const float x3[] = {1.5f, -2, 0.25f, 1e-3f, 7, 8};
    const int32_t l3[] = {0, 2, 1};
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_load(path("t.npy"), &(nr_data_options){.label = "1"}, &d));
    CHECK(table_is(d, 3, 2, x3, l3), ".npy table, label by index");
    nr_data_free(d);
    expect_load_fail("t.npy", NULL, NR_EFORMAT, "element [0, 2]: label -2 is negative");
    expect_load_fail("t.npy", &(nr_data_options){.label = "y"}, NR_EINVAL, "no column names");
    expect_load_fail("t.npy", &(nr_data_options){.label = "3"}, NR_EINVAL, "label column 3 is out of range");
    t->data[4] = 2.5f;
    CHECK_OK(nr_npy_save(path("half.npy"), t));
    expect_load_fail("half.npy", &(nr_data_options){.label = "1"}, NR_EFORMAT, "element [1, 1]: label 2.5 is not a whole");
    t->data[4] = 2.0f;
    t->data[5] = NAN;
    CHECK_OK(nr_npy_save(path("nan.npy"), t));
    expect_load_fail("nan.npy", &(nr_data_options){.label = "1"}, NR_ENUMERIC, "element [1, 2]: nan is not a finite");
    nr_tensor_free(t);
    t = nr_tensor_new(1, (size_t[]){4});
    CHECK_OK(nr_npy_save(path("flat.npy"), t));
    expect_load_fail("flat.npy", NULL, NR_EFORMAT, "must be a 2-D array");
    nr_tensor_free(t);
    t = nr_tensor_new(2, (size_t[]){4, 1});
    CHECK_OK(nr_npy_save(path("col.npy"), t));
    expect_load_fail("col.npy", NULL, NR_EFORMAT, "needs a label column and at least one feature");
    nr_tensor_free(t);
    expect_load_fail("gone.npy", NULL, NR_EIO, "cannot open");
}

/* ---- sets from arrays, split, truncate ---- */

static nr_dataset *counting_set(size_t n, size_t f)
{
    float *x = malloc(n * f * sizeof *x);
    int32_t *l = malloc(n * sizeof *l);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < f; j++)
            x[i * f + j] = (float)(i * 10 + j);
        l[i] = (int32_t)(i % 4);
    }
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_from_arrays(x, l, n, f, &d));
    free(x);
    free(l);
    return d;
}

/* Every sample i of a counting set is recognisable by its first value 10 i, and its label is i % 4. */
static bool part_is_ordered(const nr_dataset *d, bool *seen, size_t f)
{
    float row[8];
    long last = -1;
    for (size_t i = 0; i < nr_data_count(d); i++) {
        nr_data_sample(d, i, row);
        long id = (long)row[0] / 10;
        if (id <= last || seen[id] || nr_data_labels(d)[i] != id % 4 || row[f - 1] != (float)(id * 10 + (long)f - 1))
            return false;
        seen[id] = true;
        last = id;
    }
    return true;
}

static void arrays_split_truncate(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t l[3] = {0, 4, 1};
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_from_arrays(x, l, 3, 2, &d));
    CHECK(table_is(d, 3, 2, x, l) && nr_data_classes(d) == 5, "from arrays");
    nr_data_free(d);
    l[1] = -1;
    d = (nr_dataset *)1;
    nr_status st = nr_data_from_arrays(x, l, 3, 2, &d);
    expect_fail(st, d, NR_EINVAL, NULL, "label -1 of sample 1 is negative");
    l[1] = 70000;
    d = (nr_dataset *)1;
    st = nr_data_from_arrays(x, l, 3, 2, &d);
    expect_fail(st, d, NR_EINVAL, NULL, "is above 65535");
    l[1] = 1;
    x[3] = INFINITY;
    d = (nr_dataset *)1;
    st = nr_data_from_arrays(x, l, 3, 2, &d);
    expect_fail(st, d, NR_ENUMERIC, NULL, "sample 1, feature 1: inf");
    CHECK_ERR(nr_data_from_arrays(x, l, 0, 2, &d), NR_EINVAL);
    CHECK_ERR(nr_data_from_arrays(x, l, 3, 0, &d), NR_EINVAL);
    CHECK_ERR(nr_data_from_arrays(NULL, l, 3, 2, &d), NR_EINVAL);
    CHECK_ERR(nr_data_from_arrays(x, l, (size_t)1 << 32, 2, &d), NR_EINVAL);

    /* Split: 30 of 100 chosen at random, both parts in the original order, nothing lost or repeated. */
    nr_dataset *a = counting_set(100, 3), *b = counting_set(100, 3), *held = NULL, *held_b = NULL;
    nr_rng rng, rng_b;
    nr_rng_seed(&rng, 7);
    nr_rng_seed(&rng_b, 7);
    CHECK_OK(nr_data_split(a, 30, &rng, &held));
    CHECK_OK(nr_data_split(b, 30, &rng_b, &held_b));
    bool seen[100] = {false};
    CHECK(nr_data_count(a) == 70 && nr_data_count(held) == 30, "split sizes");
    CHECK(part_is_ordered(a, seen, 3) && part_is_ordered(held, seen, 3), "both parts keep the original order");
    bool all = true;
    for (int i = 0; i < 100; i++)
        all &= seen[i];
    CHECK(all, "every sample is in exactly one part");
    CHECK(nr_data_classes(held) == 4 && nr_data_classes(a) == 4, "both parts keep the classes");
    float r1[3], r2[3];
    bool same = true;
    for (size_t i = 0; i < 30; i++) {
        nr_data_sample(held, i, r1);
        nr_data_sample(held_b, i, r2);
        same &= memcmp(r1, r2, sizeof r1) == 0;
    }
    CHECK(same, "the same seed makes the same split");
    nr_data_sample(held, 0, r1);
    nr_data_sample(held, 29, r2);
    CHECK(!(r1[0] == 0 && r2[0] == 290) && !(r1[0] == 700 && r2[0] == 990), "the split is neither end");
    nr_data_free(held);
    nr_data_free(held_b);
    nr_dataset *none = (nr_dataset *)1;
    CHECK_ERR(nr_data_split(a, 0, &rng, &none), NR_EINVAL);
    CHECK_ERR(nr_data_split(a, 70, &rng, &none), NR_EINVAL);
    CHECK(nr_data_count(a) == 70 && none == NULL, "a refused split changes nothing");
    CHECK_ERR(nr_data_split(a, 10, NULL, &none), NR_EINVAL);
    /* Truncate keeps the first samples. */
    CHECK_OK(nr_data_truncate(a, 5));
    nr_data_sample(a, 4, r1);
    float r0[3];
    nr_data_sample(b, 4, r0);
    CHECK(nr_data_count(a) == 5 && memcmp(r0, r1, sizeof r0) == 0, "truncate keeps the first");
    CHECK_ERR(nr_data_truncate(a, 6), NR_EINVAL);
    CHECK_ERR(nr_data_truncate(a, 0), NR_EINVAL);
    CHECK_OK(nr_data_truncate(a, 5));
    CHECK_ERR(nr_data_sample(a, 5, r1), NR_EINVAL);
    nr_data_free(a);
    nr_data_free(b);
    /* An image set splits the same way. */
    write_idx_pair("s-images-idx3-ubyte", "s-labels-idx1-ubyte", 40, 2, 3, 1);
    CHECK_OK(nr_data_load(path("s-images-idx3-ubyte"), NULL, &a));
    CHECK_OK(nr_data_split(a, 10, &rng, &held));
    bool ok = nr_data_count(a) == 30 && nr_data_count(held) == 10 && nr_data_is_image(held);
    float px[6];
    for (size_t i = 0; ok && i < 10; i++) {
        nr_data_sample(held, i, px);
        /* pixel(k, 0) = 31 k + 3 mod 256 tells the 40 samples apart. */
        size_t id = 99;
        for (size_t k = 0; k < 40; k++)
            if ((float)pixel(k, 0) == px[0])
                id = k;
        ok &= nr_data_labels(held)[i] == (int32_t)((id * 3) % 7) && px[5] == (float)pixel(id, 5);
    }
    CHECK(ok, "image split keeps pixels and labels together");
    nr_data_free(a);
    nr_data_free(held);
    nr_data_free(NULL);
    CHECK(nr_data_count(NULL) == 0 && nr_data_labels(NULL) == NULL && !nr_data_is_image(NULL), "NULL queries");
}

/* ---- scaling and gathering ---- */

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void scaling_fit(void)
{
    /* A table: column 0 varies, column 1 is constant. */
    float x[8] = {1, 5, 3, 5, -2, 5, 6, 5};
    int32_t l[4] = {0, 1, 0, 1};
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_from_arrays(x, l, 4, 2, &d));
    nr_net *net = nr_net_new(2), *wrong = nr_net_new(3);
    CHECK(nr_net_scaling(net) == NR_SCALE_NONE, "no scaling at first");
    CHECK_OK(nr_net_fit_scaling(net, d, NR_SCALE_UNIT));
    const nr__scaling *s = &net->scaling;
    CHECK(nr_net_scaling(net) == NR_SCALE_UNIT && s->count == 2 && s->shift[0] == -2 && near(s->scale[0], 1 / 8.0, 1e-7) &&
              s->shift[1] == 5 && s->scale[1] == 1,
          "unit scaling of a table: per column min and max, constant column scale 1");
    CHECK_OK(nr_net_fit_scaling(net, d, NR_SCALE_STANDARD));
    double mean = (1 + 3 - 2 + 6) / 4.0, var = 0;
    for (int i = 0; i < 4; i++)
        var += (x[2 * i] - mean) * (x[2 * i] - mean) / 4;
    CHECK(nr_net_scaling(net) == NR_SCALE_STANDARD && near(s->shift[0], mean, 1e-7) &&
              near(s->scale[0], 1 / sqrt(var), 1e-6) && s->shift[1] == 5 && s->scale[1] == 1,
          "standard scaling of a table: per column mean and deviation");
    CHECK_ERR(nr_net_fit_scaling(wrong, d, NR_SCALE_UNIT), NR_ESHAPE);
    CHECK_ERR(nr_net_fit_scaling(net, d, (nr_scaling)7), NR_EINVAL);
    CHECK_ERR(nr_net_fit_scaling(NULL, d, NR_SCALE_UNIT), NR_EINVAL);
    /* nr__scale_rows applies it, in place too. */
    float out[8];
    nr__scale_rows(s, x, out, 4, 2);
    bool rows_ok = true;
    for (int i = 0; i < 4; i++)
        rows_ok &= out[2 * i] == (x[2 * i] - s->shift[0]) * s->scale[0] && out[2 * i + 1] == 0;
    float inplace[8];
    memcpy(inplace, x, sizeof x);
    nr__scale_rows(s, inplace, inplace, 4, 2);
    CHECK(rows_ok && memcmp(inplace, out, sizeof out) == 0, "scale_rows, also in place");
    CHECK_OK(nr_net_fit_scaling(net, d, NR_SCALE_NONE));
    CHECK(nr_net_scaling(net) == NR_SCALE_NONE && s->shift == NULL, "scaling removed");
    nr__scale_rows(s, x, out, 4, 2);
    CHECK(memcmp(out, x, sizeof x) == 0, "no scaling copies");
    nr_data_free(d);
    nr_net_free(wrong);

    /* Images: one value for all pixels. */
    write_idx_pair("f-images-idx3-ubyte", "f-labels-idx1-ubyte", 6, 3, 4, 1);
    CHECK_OK(nr_data_load(path("f-images-idx3-ubyte"), NULL, &d));
    nr_net *img = nr_net_new_image(3, 4, 1);
    CHECK_OK(nr_net_fit_scaling(img, d, NR_SCALE_UNIT));
    s = &img->scaling;
    CHECK(s->count == 1 && s->shift[0] == 0 && s->scale[0] == 1.0f / 255, "unit scaling of images: / 255");
    CHECK_OK(nr_net_fit_scaling(img, d, NR_SCALE_STANDARD));
    double sum = 0, sq = 0;
    for (size_t i = 0; i < 6; i++)
        for (size_t k = 0; k < 12; k++)
            sum += pixel(i, k);
    mean = sum / 72;
    for (size_t i = 0; i < 6; i++)
        for (size_t k = 0; k < 12; k++)
            sq += (pixel(i, k) - mean) * (pixel(i, k) - mean);
    CHECK(s->count == 1 && near(s->shift[0], mean, 1e-7) && near(s->scale[0], 1 / sqrt(sq / 72), 1e-6),
          "standard scaling of images: one mean and deviation (%g %g)", (double)s->shift[0], (double)s->scale[0]);
    CHECK_ERR(nr_net_fit_scaling(net, d, NR_SCALE_UNIT), NR_ESHAPE);
    nr_net_free(img);
    nr_net_free(net);
    nr_data_free(d);
}

/* The shifted, scaled image computed the plain way: every output pixel looks up its source. */
static void reference_shift(const nr_dataset *d, size_t s, const nr__scaling *sc, int dy, int dx, float *out)
{
    size_t h = d->shape[0], w = d->shape[1], c = d->shape[2];
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (size_t ch = 0; ch < c; ch++) {
                long sy = (long)y - dy, sx = (long)x - dx;
                size_t k = (y * w + x) * c + ch;
                float raw = sy < 0 || sy >= (long)h || sx < 0 || sx >= (long)w
                                ? 0.0f
                                : (float)d->u8[s * d->features + ((size_t)sy * w + (size_t)sx) * c + ch];
                size_t j = sc && sc->count > 1 ? k : 0;
                out[k] = sc && sc->kind ? (raw - sc->shift[j]) * sc->scale[j] : raw;
            }
}

/* Batches as large as the largest test needs. */
enum { BATCH = 2000 };
static float got[BATCH * 784], want[BATCH * 784];
static uint32_t idx[BATCH];
static int32_t batch_labels[BATCH];

static void gathering(void)
{
    for (int i = 0; i < BATCH; i++)
        idx[i] = (uint32_t)((i * 37 + 11) % 50);
    /* Tables, raw and scaled. */
    nr_dataset *t = counting_set(50, 3);
    nr__data_gather(t, idx, 20, NULL, got, batch_labels, NULL, 0, NULL);
    bool ok = true;
    for (int i = 0; i < 20; i++) {
        nr_data_sample(t, idx[i], want + 3 * i);
        ok &= batch_labels[i] == (int32_t)(idx[i] % 4);
    }
    CHECK(ok && memcmp(got, want, 20 * 3 * sizeof(float)) == 0, "gather of a table, unscaled");
    nr_net *net = nr_net_new(3);
    CHECK_OK(nr_net_fit_scaling(net, t, NR_SCALE_STANDARD));
    nr__data_gather(t, idx, 20, &net->scaling, got, NULL, NULL, 3, NULL);
    nr__scale_rows(&net->scaling, want, want, 20, 3);
    CHECK(memcmp(got, want, 20 * 3 * sizeof(float)) == 0, "gather of a table, scaled as scale_rows scales");
    nr__scaling whole = {NR_SCALE_STANDARD, 1, (float[]){4}, (float[]){0.5f}};
    nr__data_gather(t, idx, 20, &whole, got, NULL, NULL, 0, NULL);
    ok = true;
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 3; j++)
            ok &= got[3 * i + j] == ((float)(idx[i] * 10 + (uint32_t)j) - 4) * 0.5f;
    CHECK(ok, "gather of a table scaled as a whole");
    nr_net_free(net);
    nr_data_free(t);

    /* Images: 5 x 4 x 2, raw, unit-scaled, per-feature scaled, and shifted by up to 2 pixels. */
    write_idx_pair("g-images-idx3-ubyte", "g-labels-idx1-ubyte", 50, 5, 4, 2);
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_load(path("g-images-idx3-ubyte"), NULL, &d));
    if (!d)
        return;
    const size_t f = 40;
    nr__data_gather(d, idx, 30, NULL, got, batch_labels, NULL, 0, NULL);
    ok = true;
    for (int i = 0; i < 30; i++) {
        reference_shift(d, idx[i], NULL, 0, 0, want + f * (size_t)i);
        ok &= batch_labels[i] == nr_data_labels(d)[idx[i]];
    }
    CHECK(ok && memcmp(got, want, 30 * f * sizeof(float)) == 0, "gather of images, raw");
    nr_net *img = nr_net_new_image(5, 4, 2);
    CHECK_OK(nr_net_fit_scaling(img, d, NR_SCALE_UNIT));
    nr__data_gather(d, idx, 30, &img->scaling, got, NULL, NULL, 0, NULL);
    ok = true;
    for (size_t k = 0; k < 30 * f; k++)
        ok &= got[k] == want[k] * (1.0f / 255) && got[k] >= 0 && got[k] <= 1;
    CHECK(ok, "gather of images, unit scaling");

    float shift_pf[40], scale_pf[40];
    for (int k = 0; k < 40; k++) {
        shift_pf[k] = (float)k;
        scale_pf[k] = 1.0f / (float)(k + 1);
    }
    nr__scaling per_feature = {NR_SCALE_STANDARD, 40, shift_pf, scale_pf};
    const nr__scaling *scalings[3] = {NULL, &img->scaling, &per_feature};
    for (int which = 0; which < 3; which++) {
        /* 600 samples cross the chunks in which offsets are drawn. */
        nr_rng rng, mirror;
        nr_rng_seed(&rng, 99 + (uint64_t)which);
        mirror = rng;
        nr__data_gather(d, idx, 600, scalings[which], got, batch_labels, &rng, 2, NULL);
        int moved = 0, far = 0;
        for (size_t i = 0; i < 600; i++) {
            int dy = (int)nr_rng_below(&mirror, 5) - 2, dx = (int)nr_rng_below(&mirror, 5) - 2;
            moved += dy != 0 || dx != 0;
            far += dy == 2 || dx == -2;
            reference_shift(d, idx[i], scalings[which], dy, dx, want + f * i);
        }
        CHECK(memcmp(got, want, 600 * f * sizeof(float)) == 0, "shifted gather %d matches the reference", which);
        CHECK(moved > 400 && far > 100, "offsets cover the range (%d moved, %d at the edge)", moved, far);
        CHECK(memcmp(&rng, &mirror, sizeof rng) == 0, "two draws per sample, in order");
    }
    /* A shift far larger than the image leaves only what outside pixels become. */
    nr_rng rng;
    nr_rng_seed(&rng, 5);
    nr__data_gather(d, idx, 4, NULL, got, NULL, &rng, 1000000, NULL);
    ok = true;
    for (size_t k = 0; k < 4 * f; k++)
        ok &= got[k] == 0;
    CHECK(ok, "a huge shift moves everything out");
    /* A table is never shifted. */
    t = counting_set(50, 3);
    nr__data_gather(t, idx, 5, NULL, got, NULL, &rng, 2, NULL);
    ok = true;
    for (int i = 0; i < 5; i++)
        ok &= got[3 * i] == (float)(idx[i] * 10);
    CHECK(ok, "tables are not shifted");
    nr_data_free(t);
    nr_net_free(img);
    nr_data_free(d);

    /* MNIST-sized images, enough for the pool to share the work: the same batch whatever the thread count,
     * the same as the reference, and no allocation once the pool runs. */
    write_idx_pair("m-images-idx3-ubyte", "m-labels-idx1-ubyte", 50, 28, 28, 1);
    CHECK_OK(nr_data_load(path("m-images-idx3-ubyte"), NULL, &d));
    if (!d)
        return;
    img = nr_net_new_image(28, 28, 1);
    CHECK_OK(nr_net_fit_scaling(img, d, NR_SCALE_STANDARD));
    CHECK_OK(nr_set_threads(1));
    nr_rng_seed(&rng, 3);
    nr__data_gather(d, idx, BATCH, &img->scaling, want, batch_labels, &rng, 3, NULL);
    CHECK_OK(nr_set_threads(2));
    nr_rng_seed(&rng, 3);
    nr__data_gather(d, idx, BATCH, &img->scaling, got, batch_labels, &rng, 3, NULL);
    CHECK(memcmp(got, want, BATCH * 784 * sizeof(float)) == 0, "the same batch on 1 and 2 threads");
    nr_rng mirror;
    nr_rng_seed(&mirror, 3);
    ok = true;
    for (size_t i = 0; i < BATCH && ok; i++) {
        int dy = (int)nr_rng_below(&mirror, 7) - 3, dx = (int)nr_rng_below(&mirror, 7) - 3;
        reference_shift(d, idx[i], &img->scaling, dy, dx, want + 784 * i);
        ok &= memcmp(got + 784 * i, want + 784 * i, 784 * sizeof(float)) == 0;
    }
    CHECK(ok, "the threaded, shifted batch matches the reference");
    /* Runs of features per thread (a dense first layer), with the next batch prefetched: the same batch as
     * samples per thread, unscaled, unit-, standard- and per-feature-scaled, at 1 and 2 threads; a batch of
     * 64 is split (25 K values a thread). */
    float pf_shift[784], pf_scale[784];
    for (int k = 0; k < 784; k++) {
        pf_shift[k] = (float)(k % 13);
        pf_scale[k] = 1.0f / (float)(k % 7 + 1);
    }
    nr__scaling unit = {NR_SCALE_UNIT, 1, (float[]){0}, (float[]){1.0f / 255}}, pf = {NR_SCALE_STANDARD, 784, pf_shift,
                                                                                    pf_scale};
    const nr__scaling *kinds[4] = {NULL, &unit, &img->scaling, &pf};
    const size_t sizes[2] = {64, BATCH - 1};
    ok = true;
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_OK(nr_set_threads(threads));
        for (int which = 0; which < 4; which++)
            for (int z = 0; z < 2; z++) {
                nr__gather_hints hints = {true, idx + 1, sizes[z]};
                memset(got, 0xff, sizes[z] * 784 * sizeof(float));
                nr__data_gather(d, idx, sizes[z], kinds[which], want, NULL, NULL, 0, NULL);
                nr__data_gather(d, idx, sizes[z], kinds[which], got, batch_labels, NULL, 0, &hints);
                ok &= memcmp(got, want, sizes[z] * 784 * sizeof(float)) == 0;
            }
    }
    CHECK(ok, "a batch gathered in runs of features equals the batch gathered in samples");
    nr_dataset *wide = counting_set(50, 784);  /* floats rather than bytes */
    ok = wide != NULL;
    for (int which = 0; ok && which < 4; which += 3) {
        nr__gather_hints hints = {true, idx + 1, 64};
        nr__data_gather(wide, idx, 64, kinds[which], want, NULL, NULL, 0, NULL);
        nr__data_gather(wide, idx, 64, kinds[which], got, NULL, NULL, 0, &hints);
        ok &= memcmp(got, want, 64 * 784 * sizeof(float)) == 0;
    }
    CHECK(ok, "a table gathered in runs of features equals the table gathered in samples");
    nr_data_free(wide);
    nr__data_gather(d, idx, BATCH, &img->scaling, got, batch_labels, NULL, 0, NULL);
    struct mallinfo2 before = mallinfo2();
    for (int rep = 0; rep < 3; rep++) {
        nr__data_gather(d, idx, BATCH, &img->scaling, got, batch_labels, &rng, 2, NULL);
        nr__data_gather(d, idx, BATCH, NULL, got, batch_labels, NULL, 0, NULL);
        nr__data_gather(d, idx, 7, NULL, got, NULL, &rng, 1, NULL);
    }
    struct mallinfo2 after = mallinfo2();
    CHECK(before.uordblks == after.uordblks && before.hblkhd == after.hblkhd,
          "gathering allocates nothing (heap in use %zu -> %zu bytes)", before.uordblks, after.uordblks);
    CHECK_OK(nr_set_threads(1));
    nr_net_free(img);
    nr_data_free(d);
}

/* ---- the real data sets, when fetched ---- */

static void check_real(const char *images, const char *labels, size_t n, size_t per_class, const char *what)
{
    nr_dataset *d = NULL;
    nr_status st = nr_data_load_idx(images, labels, &d);
    CHECK(st == NR_OK, "%s: %s", what, nr_error_message());
    if (!d)
        return;
    size_t shape[3], counts[10] = {0};
    nr_data_shape(d, shape);
    CHECK(nr_data_count(d) == n && shape[0] == 28 && shape[1] == 28 && shape[2] == 1 && nr_data_classes(d) == 10 &&
              nr_data_is_image(d),
          "%s: %zu samples of %zux%zux%zu, %zu classes", what, nr_data_count(d), shape[0], shape[1], shape[2],
          nr_data_classes(d));
    for (size_t i = 0; i < nr_data_count(d); i++)
        counts[nr_data_labels(d)[i]]++;
    bool balanced = true;
    for (int c = 0; c < 10; c++)
        balanced &= per_class ? counts[c] == per_class : counts[c] > n / 20;
    CHECK(balanced, "%s: samples per class", what);
    nr_data_free(d);
}

static void real_data(void)
{
    const char *fashion = "/usr/share/datasets/fashion-mnist";
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", fashion);
#ifdef NR_HAVE_ZLIB
    if (access(a, R_OK) == 0) {
        snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", fashion);
        check_real(a, b, 60000, 6000, "Fashion-MNIST training set");
        snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte.gz", fashion);
        snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte.gz", fashion);
        check_real(a, b, 10000, 1000, "Fashion-MNIST test set");
    } else {
        printf("note: %s is absent (scripts/fetch-data.sh fashion); its checks are skipped\n", fashion);
    }
#else
    printf("note: built without zlib, so the compressed Fashion-MNIST checks are skipped\n");
#endif
    /* The user's data folder, as neurite fetch fills it (cli/data.c). */
    char root[400];
    const char *env = getenv("NEURITE_DATA"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (env && *env)
        snprintf(root, sizeof root, "%s", env);
    else if (xdg && *xdg)
        snprintf(root, sizeof root, "%s/neurite", xdg);
    else
        snprintf(root, sizeof root, "%s/.local/share/neurite", home ? home : ".");
    snprintf(a, sizeof a, "%s/mnist/train-images-idx3-ubyte", root);
    if (access(a, R_OK) == 0) {
        snprintf(b, sizeof b, "%s/mnist/train-labels-idx1-ubyte", root);
        check_real(a, b, 8000, 0, "MNIST digits training set");
        snprintf(a, sizeof a, "%s/mnist/t10k-images-idx3-ubyte", root);
        snprintf(b, sizeof b, "%s/mnist/t10k-labels-idx1-ubyte", root);
        check_real(a, b, 2000, 0, "MNIST digits test set");
    } else {
        printf("note: %s/mnist is absent (neurite fetch mnist); its checks are skipped\n", root);
    }
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    idx_files();
    idx_errors();
    csv_files();
    csv_errors();
    npy_tables();
    arrays_split_truncate();
    scaling_fit();
    gathering();
    real_data();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "clean up");
    return check_report("test_data");
}
