/* test_npy.c - .npy round trips, float64 input, and every way a file can be wrong. */
#include "check.h"
#include "neurite.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/neurite-npy-XXXXXX";

static const char *path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Writes a hand-made .npy: magic, version, the dict padded to 64 bytes, then `data`. */
static void write_npy(const char *name, int major, const char *dict, const void *data, size_t len, size_t cut)
{
    unsigned char head[512];
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12, total = (pre + dl + 1 + 63) / 64 * 64;
    memcpy(head, "\x93NUMPY", 6);
    head[6] = (unsigned char)major;
    head[7] = 0;
    size_t hl = total - pre;
    if (major == 1) {
        head[8] = (unsigned char)hl;
        head[9] = (unsigned char)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            head[8 + i] = (unsigned char)(hl >> (8 * i));
    }
    memcpy(head + pre, dict, dl);
    memset(head + pre + dl, ' ', total - pre - dl - 1);
    head[total - 1] = '\n';
    FILE *f = fopen(path(name), "wb");
    size_t whole = total + len;
    size_t keep = cut ? whole - cut : whole;
    fwrite(head, 1, keep < total ? keep : total, f);
    if (keep > total)
        fwrite(data, 1, keep - total, f);
    fclose(f);
}

static void expect_error(const char *name, const char *needle)
{
    nr_tensor *t = (nr_tensor *)1;
    nr_status st = nr_npy_load(path(name), &t);
    CHECK(st != NR_OK && t == NULL, "%s: loaded although broken", name);
    CHECK(strstr(nr_error_message(), needle) != NULL, "%s: message '%s' lacks '%s'", name, nr_error_message(), needle);
    CHECK(strstr(nr_error_message(), name) != NULL, "%s: message '%s' does not name the file", name,
          nr_error_message());
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    /* Round trips in 1 to 4 dimensions. */
    const size_t shapes[4][4] = {{5}, {3, 4}, {2, 3, 4}, {2, 1, 3, 2}};
    for (int nd = 1; nd <= 4; nd++) {
        nr_tensor *t = nr_tensor_new(nd, shapes[nd - 1]), *back = NULL;
        for (size_t i = 0; i < t->size; i++)
            t->data[i] = (float)i * 0.37f - 1.5f;
        CHECK_OK(nr_npy_save(path("rt.npy"), t));
        CHECK_OK(nr_npy_load(path("rt.npy"), &back));
        bool same = back && back->ndim == nd && back->size == t->size &&
                    memcmp(back->data, t->data, t->size * sizeof(float)) == 0;
        for (int d = 0; back && d < nd; d++)
            same &= back->shape[d] == t->shape[d];
        CHECK(same, "round trip of a %d-d tensor", nd);
        nr_tensor_free(t);
        nr_tensor_free(back);
    }
    CHECK(access(path("rt.npy.tmp"), F_OK) != 0, "no temporary file is left behind");

    /* float64 is converted. */
    double d[6] = {1.5, -2.25, 3e10, 1e-40, 0, -0.1};
    write_npy("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d, 0);
    nr_tensor *t = NULL;
    CHECK_OK(nr_npy_load(path("f8.npy"), &t));
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->data[1] == -2.25f &&
              t->data[2] == 3e10f && t->data[5] == -0.1f,
          "float64 file read and converted");
    nr_tensor_free(t);
    /* Version 2 headers and the other key order NumPy may write. */
    float f[3] = {1, 2, 3};
    write_npy("v2.npy", 2, "{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}", f, sizeof f, 0);
    t = NULL;
    CHECK_OK(nr_npy_load(path("v2.npy"), &t));
    CHECK(t && t->ndim == 1 && t->size == 3 && t->data[2] == 3.0f, "version 2.0 header read");
    nr_tensor_free(t);

    /* Everything that must be refused, each with a message naming the file and the problem. */
    float data[12] = {0};
    write_npy("int.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }", data, 48, 0);
    expect_error("int.npy", "unsupported dtype '<i4'");
    write_npy("big.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", data, 48, 0);
    expect_error("big.npy", "big-endian");
    write_npy("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", data, 48, 0);
    expect_error("fortran.npy", "Fortran");
    write_npy("short.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", data, 48, 5);
    expect_error("short.npy", "truncated");
    write_npy("header.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", data, 48, 60);
    expect_error("header.npy", "truncated");
    write_npy("long.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", data, 48, 0);
    expect_error("long.npy", "unexpected bytes");
    write_npy("dims.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2), }", data, 8, 0);
    expect_error("dims.npy", "dimensions");
    write_npy("scalar.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data, 4, 0);
    expect_error("scalar.npy", "dimensions");
    write_npy("huge.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
              data, 48, 0);
    expect_error("huge.npy", "too large");
    write_npy("garbage.npy", 1, "{'descr' '<f4' 'shape': (3, 4)}", data, 48, 0);
    expect_error("garbage.npy", "header");
    write_npy("version.npy", 7, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data, 12, 0);
    expect_error("version.npy", "version");
    FILE *fp = fopen(path("magic.npy"), "wb");
    fputs("PK\3\4 this is a zip, not an npy", fp);
    fclose(fp);
    expect_error("magic.npy", "bad magic");
    expect_error("missing.npy", "cannot open");

    /* Arguments. */
    CHECK_ERR(nr_npy_load(NULL, &t), NR_EINVAL);
    CHECK_ERR(nr_npy_save(path("x.npy"), NULL), NR_EINVAL);
    nr_tensor *one = nr_tensor_new(1, (size_t[]){2});
    CHECK_ERR(nr_npy_save("/nonexistent-dir/x.npy", one), NR_EIO);
    nr_tensor_free(one);
    CHECK(nr_tensor_new(0, (size_t[]){1}) == NULL, "0-d tensor refused");
    CHECK(nr_tensor_new(5, (size_t[]){1, 1, 1, 1, 1}) == NULL, "5-d tensor refused");
    CHECK(nr_tensor_new(2, (size_t[]){3, 0}) == NULL, "zero dimension refused");
    CHECK(nr_tensor_new(2, (size_t[]){(size_t)1 << 40, (size_t)1 << 40}) == NULL, "overflowing shape refused");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "clean up");
    return check_report("test_npy");
}
