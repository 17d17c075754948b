/* seeds.c - writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/: small valid files made
 * with the library itself (models, checkpoints, arrays) or written out by hand (IDX, CSV, layer lists), and
 * broken ones of every kind the readers must refuse. `make fuzz-seeds` builds and runs it; the output is
 * deterministic, so the committed corpus can be regenerated and compared.
 *
 * Inputs of the targets that take an options byte (idx, csv, spec) start with it: see each fuzz_*.c. */
#include "../src/core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NR_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef NR_HAVE_PNG
#include <png.h>
#endif
#ifdef NR_HAVE_JPEG
#include <turbojpeg.h>
#endif

static const char *root = "fuzz/corpus";
static char scratch[] = "/tmp/neurite-seeds-XXXXXX";

static void die(const char *what)
{
    fprintf(stderr, "seeds: %s: %s\n", what, nr_error_message()[0] ? nr_error_message() : strerror(errno));
    exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, target);
    mkdir(root, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", root, target, name);
    FILE *f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        die(p);
}

/* An options byte followed by text. */
static void put_text(const char *target, const char *name, unsigned mode, const char *text)
{
    size_t n = strlen(text);
    unsigned char *b = malloc(n + 1);
    if (!b)
        die("out of memory");
    b[0] = (unsigned char)mode;
    memcpy(b + 1, text, n);
    put(target, name, b, n + 1);
    free(b);
}

static const char *tmp(const char *name)
{
    static char buf[4][300];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", scratch, name);
    return b;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(*len + 8);
    if (!d || fread(d, 1, *len, f) != *len)
        die(path);
    fclose(f);
    return d;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void reseal(unsigned char *d, size_t len)
{
    put_le64(d + 16, len);
    uint32_t crc = nr__crc32(0, d, len - 4);
    for (int i = 0; i < 4; i++)
        d[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

/* ---- models and checkpoints ---- */

static nr_dataset *table(size_t n, size_t in, size_t outputs)
{
    float *x = malloc(n * in * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    if (!x || !y)
        die("out of memory");
    /* The same values fuzz_model.c resumes checkpoints on. */
    for (size_t i = 0; i < n * in; i++)
        x[i] = (float)((i / in + i % in) % 5) - 2.0f;
    for (size_t i = 0; i < n; i++)
        y[i] = outputs > 1 ? (int32_t)(i % 2) : 0;
    nr_dataset *d;
    if (nr_data_from_arrays(x, y, n, in, &d))
        die("nr_data_from_arrays");
    free(x);
    free(y);
    return d;
}

static void save_model(const char *name, nr_net *net)
{
    if (nr_model_save(net, tmp(name)))
        die(name);
    size_t len;
    unsigned char *d = slurp(tmp(name), &len);
    put("model", name, d, len);
    free(d);
}

/* Models that keep what their table said: text columns and named classes, and a regression's targets. */
/* The int8 form of a network (a QUNT section), calibrated on the data it was scaled by. */
static void save_quantized(const char *name, nr_net *net, const nr_dataset *calib, nr_calibration method)
{
    nr_net *q;
    if (nr_net_quantize(net, calib, &(nr_quant_options){.samples = 100, .method = method, .percentile = 99.9}, &q))
        die(name);
    save_model(name, q);
    nr_net_free(q);
}

static void table_models(void)
{
    FILE *f = fopen(tmp("text.csv"), "w");
    if (!f)
        die("text.csv");
    fprintf(f, "size,colour,kind\n1.5,red,cat\n2,blue,dog\n,red,cat\n3,green,dog\n");
    fclose(f);
    const struct { const char *name, *label; nr_task task; } kinds[] = {{"text-classes.nrm", "kind", NR_TASK_CLASSIFY},
                                                                         {"regression.nrm", "size", NR_TASK_REGRESS}};
    for (int k = 0; k < 2; k++) {
        nr_dataset *d;
        nr_data_options o = {.label = kinds[k].label, .task = kinds[k].task, .missing = NR_MISSING_MEAN};
        if (nr_data_load(tmp("text.csv"), &o, &d))
            die(kinds[k].name);
        nr_net *net = nr_net_new(nr_data_features(d));
        char spec[32];
        snprintf(spec, sizeof spec, "3-%zu", k ? (size_t)1 : nr_data_classes(d));
        nr_net_add_spec(net, spec, NR_ACT_RELU);
        nr_rng rng;
        nr_rng_seed(&rng, 5);
        nr_net_init(net, NR_INIT_AUTO, &rng);
        nr_net_fit_scaling(net, d, NR_SCALE_STANDARD);
        nr_net_set_head(net, k ? NR_LOSS_MSE : NR_LOSS_XENT);
        save_model(kinds[k].name, net);
        nr_net_free(net);
        nr_data_free(d);
    }
}

static volatile sig_atomic_t stop_flag;

static void stop_after_one(const nr_progress *p, void *user)
{
    (void)user;
    if (p->batch == 1)
        stop_flag = 1;
}

static void checkpoint(const char *name, const char *spec, nr_opt_kind kind, bool best, bool stop, const char *note)
{
    nr_net *net = nr_net_new(3);
    if (!net || nr_net_add_spec(net, spec, NR_ACT_RELU))
        die(spec);
    nr_rng rng;
    nr_rng_seed(&rng, 3);
    nr_net_init(net, NR_INIT_AUTO, &rng);
    nr_dataset *train = table(8, 3, 2), *val = table(4, 3, 2);
    nr_net_fit_scaling(net, train, NR_SCALE_STANDARD);
    stop_flag = 0;
    nr_train_config cfg = {.loss = NR_LOSS_XENT, .opt = {.kind = kind}, .epochs = 1, .batch = 4, .seed = 1,
                           .patience = best ? 3 : 0, .checkpoint = tmp(name), .note = note};
    if (stop) {
        cfg.on_batch = stop_after_one;
        cfg.stop = &stop_flag;
    }
    nr_train_result res;
    nr_status st = nr_train(net, train, best ? val : NULL, &cfg, &res);
    if (st && !(stop && st == NR_ESTOPPED))
        die(name);
    size_t len;
    unsigned char *d = slurp(tmp(name), &len);
    put("model", name, d, len);
    free(d);
    nr_data_free(train);
    nr_data_free(val);
    nr_net_free(net);
}

/* Writes an IDX file of 2 images of h x w (x c) bytes into the scratch directory. */
static const char *scratch_idx(const char *name, size_t h, size_t w, size_t c, size_t count)
{
    unsigned char b[4096];
    int ndim = c ? 4 : 3;
    size_t dims[4] = {count, h, w, c}, len = 4 + 4 * (size_t)ndim;
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    size_t pixels = count * h * w * (c ? c : 1);
    for (size_t i = 0; i < pixels; i++)
        b[len + i] = (unsigned char)(i * 29 + 7);
    FILE *f = fopen(tmp(name), "wb");
    if (!f || fwrite(b, 1, len + pixels, f) != len + pixels || fclose(f))
        die(name);
    return tmp(name);
}

static void models(void)
{
    nr_rng rng;
    nr_rng_seed(&rng, 2);

    nr_net *mlp = nr_net_new(6);
    if (nr_net_add_spec(mlp, "12-tanh-8-leaky0.05-4", NR_ACT_RELU))
        die("mlp");
    nr_net_init(mlp, NR_INIT_HE_NORMAL, &rng);
    nr_net_set_head(mlp, NR_LOSS_XENT);
    nr_dataset *d6 = table(5, 6, 4);
    nr_net_fit_scaling(mlp, d6, NR_SCALE_STANDARD);
    save_model("mlp.nrm", mlp);
    save_quantized("mlp-int8.nrm", mlp, d6, NR_CALIB_MINMAX);
    nr_data_free(d6);
    nr_net_free(mlp);

    nr_net *plain = nr_net_new(3);
    nr_net_dense(plain, 4, 0);
    nr_net_act(plain, NR_ACT_SIGMOID);
    nr_net_dense(plain, 3, 1);
    nr_net_act(plain, NR_ACT_SOFTMAX);
    nr_net_act(plain, NR_ACT_IDENTITY);
    nr_net_init(plain, NR_INIT_XAVIER_UNIFORM, &rng);
    nr_dataset *d3 = table(4, 3, 3);
    nr_net_fit_scaling(plain, d3, NR_SCALE_UNIT);
    nr_data_free(d3);
    nr_net_set_head(plain, NR_LOSS_MSE);
    save_model("plain.nrm", plain);
    nr_net_free(plain);

    /* Every image layer, with a unit scaling fitted on IDX images (one value for all pixels). */
    nr_net *img = nr_net_new_image(9, 7, 2);
    if (nr_net_add_spec(img, "conv4k3-bn-relu-maxpool2-conv3k2s1p1-avgpool2-drop0.25-flatten-fc5", NR_ACT_RELU))
        die("image network");
    nr_net_init(img, NR_INIT_AUTO, &rng);
    nr_net_set_head(img, NR_LOSS_XENT);
    nr_dataset *pix;
    if (nr_data_load_idx(scratch_idx("i-images-idx3-ubyte", 9, 7, 2, 2), NULL, &pix))
        die("images");
    nr_net_fit_scaling(img, pix, NR_SCALE_STANDARD);
    save_quantized("image-int8.nrm", img, pix, NR_CALIB_PERCENTILE);
    nr_data_free(pix);
    save_model("image.nrm", img);
    nr_net_free(img);

    nr_net *tiny = nr_net_new_image(4, 4, 1);
    nr_net_add_spec(tiny, "conv2k3s2-tanh-avgpool1-flatten-fc2-sigmoid", NR_ACT_IDENTITY);
    nr_net_init(tiny, NR_INIT_STD_NORMAL, &rng);
    save_model("tiny-image.nrm", tiny);
    nr_net_free(tiny);

    table_models();

    size_t len;
    unsigned char *v1 = slurp("tests/data/v1-mlp.nrm", &len);
    put("model", "v1-mlp.nrm", v1, len);
    free(v1);

    checkpoint("adam.ckpt", "4-2", NR_OPT_ADAM, false, false, NULL);
    checkpoint("adam-best.ckpt", "4-bn-2", NR_OPT_ADAM, true, false, NULL);
    checkpoint("momentum-stopped.ckpt", "5-2", NR_OPT_MOMENTUM, false, true, NULL);
    checkpoint("sgd.ckpt", "2", NR_OPT_SGD, false, false, NULL);
    checkpoint("sgd-note.ckpt", "2", NR_OPT_SGD, false, false, "neurite train options\n--seed=3\n--epochs=1\n");

    /* Broken models, from the MLP. */
    unsigned char *good = slurp(tmp("mlp.nrm"), &len);
    unsigned char *d = malloc(len + 16);
    if (!d)
        die("out of memory");
    put("model", "broken-truncated.nrm", good, len / 2);
    put("model", "broken-header-only.nrm", good, 24);
    put("model", "broken-empty.nrm", good, 0);
    memcpy(d, good, len);
    d[len / 3] ^= 0x04;
    put("model", "broken-bitflip.nrm", d, len);
    memcpy(d, good, len);
    memcpy(d, "NEURITF", 7);
    put("model", "broken-magic.nrm", d, len);
    memcpy(d, good, len);
    d[8] = 99;
    reseal(d, len);
    put("model", "broken-version.nrm", d, len);
    memcpy(d, good, len);
    memcpy(d + len, "junk", 4);
    put("model", "broken-trailing.nrm", d, len + 4);
    memcpy(d, good, len);
    put_le64(d + 24 + 4, UINT64_MAX);
    reseal(d, len);
    put("model", "broken-section-size.nrm", d, len);
    memcpy(d, good, len);
    d[24 + 12 + 16] = 0xff;
    d[24 + 12 + 17] = 0xff;  /* 65535 layers */
    reseal(d, len);
    put("model", "broken-layer-count.nrm", d, len);
    memcpy(d, good, len);
    put_le64(d + 24 + 12 + 20 + 1 + 5 + 1, (uint64_t)1 << 40);  /* 2^40 units in the first dense layer */
    reseal(d, len);
    put("model", "broken-units.nrm", d, len);
    free(d);
    free(good);
}

/* ---- IDX ---- */

/* An options byte, then an IDX header of unsigned bytes with `ndim` sizes, then `extra` data bytes (a pattern),
 * then `tail` bytes appended as they are. */
static void idx_seed(const char *name, unsigned mode, int type, int ndim, const uint32_t *dims, size_t extra,
                     const void *tail, size_t tail_len)
{
    unsigned char b[2048];
    size_t n = 0;
    b[n++] = (unsigned char)mode;
    b[n++] = 0;
    b[n++] = 0;
    b[n++] = (unsigned char)type;
    b[n++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[n++] = (unsigned char)(dims[i] >> (24 - 8 * k));
    for (size_t i = 0; i < extra && n < sizeof b; i++)
        b[n++] = (unsigned char)(i * 53 + 1);
    if (tail_len && n + tail_len <= sizeof b) {
        memcpy(b + n, tail, tail_len);
        n += tail_len;
    }
    put("idx", name, b, n);
}

static void idx(void)
{
    const uint32_t img3[] = {2, 3, 3}, img4[] = {2, 2, 2, 3}, lab2[] = {2}, big[] = {65535, 65535, 65535},
                   zero[] = {2, 0, 3}, many[] = {0x7fffffff, 28, 28};
    idx_seed("images.idx", 0x00, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-alone.idx", 0x03, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-color.idx", 0x00, 8, 4, img4, 24, NULL, 0);
    idx_seed("images-gz.idx", 0x04, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-gz-both.idx", 0x0c, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-by-name.idx", 0x10, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-by-name-gz.idx", 0x34, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-by-name-mixed.idx", 0x58, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-by-name-unnamed.idx", 0x90, 8, 3, img3, 18, NULL, 0);
    idx_seed("images-by-name-unlabeled.idx", 0x13, 8, 3, img3, 18, NULL, 0);
    idx_seed("labels.idx", 0x01, 8, 1, lab2, 2, NULL, 0);
    idx_seed("labels-gz.idx", 0x09, 8, 1, lab2, 2, NULL, 0);
    /* Both files: length 22 (little-endian) of the images, then the labels. */
    const unsigned char pair_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    unsigned char pair[64] = {0x02, 22, 0, 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3};
    for (int i = 0; i < 18; i++)
        pair[19 + i] = (unsigned char)(i * 11);
    memcpy(pair + 37, pair_labels, sizeof pair_labels);
    put("idx", "pair.idx", pair, 37 + sizeof pair_labels);
    pair[0] = 0x0e;
    put("idx", "pair-gz.idx", pair, 37 + sizeof pair_labels);
    pair[37 + 7] = 3;  /* 3 labels for 2 images */
    pair[0] = 0x02;
    put("idx", "broken-pair-count.idx", pair, 37 + sizeof pair_labels + 1);
#ifdef NR_HAVE_ZLIB
    /* gzip data in the input itself, so the fuzzer mutates compressed streams too. */
    unsigned char raw[64] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3};
    for (int i = 0; i < 18; i++)
        raw[16 + i] = (unsigned char)(i * 13);
    gzFile g = gzopen(tmp("raw.gz"), "wb9");
    if (!g || gzwrite(g, raw, 34) != 34 || gzclose(g) != Z_OK)
        die("gzip");
    size_t len;
    unsigned char *z = slurp(tmp("raw.gz"), &len);
    unsigned char *withmode = malloc(len + 1);
    withmode[0] = 0x03;
    memcpy(withmode + 1, z, len);
    put("idx", "gzip-stream.idx", withmode, len + 1);
    put("idx", "broken-gzip-truncated.idx", withmode, len - 6);
    withmode[len / 2] ^= 0x21;
    put("idx", "broken-gzip-corrupt.idx", withmode, len + 1);
    free(withmode);
    free(z);
#endif
    idx_seed("broken-truncated.idx", 0x00, 8, 3, img3, 11, NULL, 0);
    idx_seed("broken-trailing.idx", 0x00, 8, 3, img3, 25, NULL, 0);
    idx_seed("broken-type.idx", 0x00, 0x0d, 3, img3, 72, NULL, 0);
    idx_seed("broken-dims.idx", 0x00, 8, 2, img3, 6, NULL, 0);
    idx_seed("broken-zero.idx", 0x00, 8, 3, zero, 0, NULL, 0);
    idx_seed("broken-huge.idx", 0x00, 8, 3, big, 16, NULL, 0);
    idx_seed("broken-huge-gz.idx", 0x04, 8, 3, big, 16, NULL, 0);
    idx_seed("broken-count.idx", 0x03, 8, 3, many, 16, NULL, 0);
    idx_seed("broken-labels-as-images.idx", 0x03, 8, 1, lab2, 2, NULL, 0);
    const unsigned char zip[] = {0x00, 'P', 'K', 3, 4, 0, 0, 0, 0};
    put("idx", "broken-magic.idx", zip, sizeof zip);
    const unsigned char shortfile[] = {0x00, 0, 0, 8};
    put("idx", "broken-short.idx", shortfile, sizeof shortfile);
}

/* ---- CSV ---- */

static void csv(void)
{
    /* options: bits 0-2 label (last, "0", "1", "label", "y", "2", "x", "99"), bits 3-4 header, bit 5 unlabeled */
    put_text("csv", "header.csv", 0x00, "a,b,label\n1,2,0\n3,4,1\n5.5,-6e-1,2\n");
    put_text("csv", "label-name.csv", 0x03, "label,a,b\n0,1,2\n1,3,4\n");
    put_text("csv", "label-first.csv", 0x01, "0,1.5,2\n1,2.5,-3e2\n2,0,0\n");
    put_text("csv", "no-header.csv", 0x10, "1,2,0\n3,4,1\n");
    put_text("csv", "forced-header.csv", 0x08, "1,2,3\n4,5,1\n6,7,0\n");
    put_text("csv", "unlabeled.csv", 0x20, "1,2,3\n4,5,6\n");
    put_text("csv", "one-column-unlabeled.csv", 0x20, "1\n2\n3\n");
    put_text("csv", "dialect.csv", 0x04, "\xEF\xBB\xBF" "\"x\", \"y\" ,\t\"z\"\r\n 1 ,\"2\",3\r\n4,5,6\r\n\r\n\r\n");
    put_text("csv", "pandas-index.csv", 0x00, ",a,b\n0,1.25,1\n1,2.5,0\n");
    put_text("csv", "wide.csv", 0x00, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,3\n16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0\n");
    put_text("csv", "no-newline.csv", 0x00, "1,2,1\n3,4,0");
    put_text("csv", "broken-ragged.csv", 0x00, "1,2,0\n3,4\n");
    put_text("csv", "broken-nan.csv", 0x00, "1,nan,0\n3,4,1\n");
    put_text("csv", "broken-inf.csv", 0x00, "1,2,0\n-inf,4,1\n");
    put_text("csv", "broken-float32.csv", 0x00, "1,1e39,0\n");
    put_text("csv", "broken-label-fraction.csv", 0x00, "1,2,3.5\n");
    put_text("csv", "broken-label-large.csv", 0x00, "1,2,70000\n");
    put_text("csv", "broken-label-negative.csv", 0x00, "1,2,-1\n");
    put_text("csv", "broken-blank-inside.csv", 0x00, "1,2,0\n\n3,4,1\n");
    put_text("csv", "broken-quote.csv", 0x00, "\"1,2,0\n");
    put_text("csv", "broken-quote-comma.csv", 0x00, "\"1,5\",2,0\n");
    put_text("csv", "broken-one-column.csv", 0x00, "1\n2\n");
    put_text("csv", "broken-empty-field.csv", 0x10, "1,,0\n");
    put_text("csv", "broken-header-only.csv", 0x00, "a,b,c\n");
    put_text("csv", "broken-ambiguous.csv", 0x03, "label,label,b\n1,2,3\n");
    put_text("csv", "broken-label-missing.csv", 0x04, "a,b,c\n1,2,3\n");
    put_text("csv", "broken-label-index.csv", 0x07, "1,2,3\n");
    put_text("csv", "broken-text.csv", 0x10, "1,abc,0\n");
    put_text("csv", "broken-empty.csv", 0x00, "");
}

/* ---- .npy ---- */

/* A .npy written by hand: magic, version, the dict padded to 64 bytes, then `len` bytes of `data`. */
static void npy_seed(const char *name, int major, const char *dict, const void *data, size_t len)
{
    unsigned char b[1024];
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12, total = (pre + dl + 1 + 63) / 64 * 64;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t hl = total - pre;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', total - pre - dl - 1);
    b[total - 1] = '\n';
    if (total + len > sizeof b)
        die(name);
    memcpy(b + total, data, len);
    put("npy", name, b, total + len);
}

static void npy(void)
{
    float f[12] = {1, 2, 0, 3.5f, -4, 1, 0, 0, 2, 1e-3f, 7, 1};
    nr_tensor *t = nr_tensor_new(2, (size_t[]){4, 3});
    memcpy(t->data, f, sizeof f);
    if (nr_npy_save(tmp("t.npy"), t))
        die("npy");
    nr_tensor_free(t);
    size_t len;
    unsigned char *saved = slurp(tmp("t.npy"), &len);
    put("npy", "table-f4.npy", saved, len);
    free(saved);
    double d[6] = {0.5, -1, 1, 2, 3e10, 0};
    npy_seed("table-f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", d, sizeof d);
    npy_seed("vector.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f, 12);
    npy_seed("cube.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", f, 24);
    npy_seed("four-d.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3), }", f, 24);
    npy_seed("version2.npy", 2, "{\"descr\": \"<f4\", \"shape\": (2, 2), \"fortran_order\": False}", f, 16);
    npy_seed("version3.npy", 3, "{'descr':'<f4','fortran_order':False,'shape':(6,2)}", f, 48);
    npy_seed("broken-version.npy", 9, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f, 8);
    npy_seed("broken-big-endian.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f, 8);
    npy_seed("broken-int.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", f, 8);
    npy_seed("broken-fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f, 16);
    npy_seed("broken-zero-dim.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", f, 0);
    npy_seed("broken-scalar.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4);
    npy_seed("broken-five-d.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,2), }", f, 8);
    npy_seed("broken-truncated.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, 20);
    npy_seed("broken-trailing.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f, 12);
    npy_seed("broken-huge.npy", 1,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }", f, 8);
    npy_seed("broken-large.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
             f, 8);
    npy_seed("broken-key.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f, 8);
    npy_seed("broken-missing.npy", 1, "{'descr': '<f4', 'shape': (2,), }", f, 8);
    npy_seed("broken-dict.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", f, 8);
    const float nan_row[4] = {1, 0.0f / 0.0f, 0, 1};
    npy_seed("broken-nan.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", nan_row, 16);
    const float bad_label[4] = {1, 2.5f, 3, 1e9f};
    npy_seed("broken-label.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", bad_label, 16);
    const unsigned char magic[] = "\x93NUMPZ\x01\x00\x10\x00{}";
    put("npy", "broken-magic.npy", magic, sizeof magic - 1);
    const unsigned char long_header[] = "\x93NUMPY\x01\x00\xff\xff{'descr'";
    put("npy", "broken-header-length.npy", long_header, sizeof long_header - 1);
}

/* ---- layer lists ---- */

static void spec(void)
{
    /* options: bits 0-2 input (1, 2, 10, 784, 8x8x1, 5x7x3, 28x28x1, 16x16x4), bits 3-5 default activation
     * (identity relu leaky sigmoid tanh softmax relu identity), bit 6 two calls split at ';' */
    put_text("spec", "mlp.txt", 0x0b, "784-256-relu-10");
    put_text("spec", "mlp-small.txt", 0x0a, "10-16-8-3");
    put_text("spec", "cnn.txt", 0x0e, "conv4k3-relu-pool2-conv8k3-relu-pool2-fc16-relu-fc10");
    put_text("spec", "cnn-bn.txt", 0x0c, "conv4k3-bn-pool2-fc10");
    put_text("spec", "cnn-strided.txt", 0x24, "conv4k3s2p0-avgpool2-flatten-drop0.5-fc3");
    put_text("spec", "pool-leaky.txt", 0x0c, "maxpool3-leaky0.2-fc2-softmax");
    put_text("spec", "color.txt", 0x0d, "conv2k1-bn-relu-flatten-fc4");
    put_text("spec", "wide-kernel.txt", 0x0f, "conv3k5p2,maxpool2 avgpool2\tdense8");
    put_text("spec", "two-calls.txt", 0x4a, "16-tanh;8-sigmoid-2");
    put_text("spec", "comments.txt", 0x12, "8-8 # hidden\n1-sigmoid # out\n4");
    put_text("spec", "names.txt", 0x01, "dense4,fc3 lrelu1e-3 identity linear BN dropout0.1 softmax");
    put_text("spec", "exponent.txt", 0x02, "leaky1e-2-4-drop.5-1");
    put_text("spec", "broken-unknown.txt", 0x0a, "16-rleu-3");
    put_text("spec", "broken-zero.txt", 0x0a, "fc0");
    put_text("spec", "broken-conv.txt", 0x0c, "conv0k3-conv3k0-conv3");
    put_text("spec", "broken-conv-vector.txt", 0x0a, "conv4k3-fc2");
    put_text("spec", "broken-pool.txt", 0x0c, "pool0");
    put_text("spec", "broken-pool-large.txt", 0x0c, "pool9");
    put_text("spec", "broken-drop.txt", 0x0a, "drop1.5");
    put_text("spec", "broken-leaky.txt", 0x0a, "leakyx");
    put_text("spec", "broken-huge-dense.txt", 0x0a, "fc99999999999");
    put_text("spec", "broken-huge-conv.txt", 0x0e, "conv99999k3-fc10");
    put_text("spec", "broken-token.txt", 0x0a,
             "fc1234567890123456789012345678901234567890123456789012345678901234567890");
    put_text("spec", "broken-empty.txt", 0x0a, " # nothing\n");
}

/* ---- images ---- */

/* A small picture: a light ring on dark, grey or colour. */
static void picture(unsigned char *px, int w, int h, int c)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dy = 2 * y - h, dx = 2 * x - w, r = dy * dy + dx * dx;
            for (int k = 0; k < c; k++)
                px[(y * w + x) * c + k] = (unsigned char)(r > h * h / 4 && r < h * h / 2 ? 200 + 20 * k : 10 * k);
        }
}

/* Encodes 16x20 pixels of c channels as PNG (8 or 16 bits) or JPEG (baseline or progressive) into m. */
typedef struct mem {
    unsigned char data[16384];
    size_t len;
} mem;

static void encode(mem *m, const unsigned char *px, int c, int kind)
{
    m->len = 0;
#ifdef NR_HAVE_PNG
    if (kind <= 1) {
        uint16_t deep[16 * 20 * 3];
        for (size_t i = 0; i < 16 * 20 * (size_t)c; i++)
            deep[i] = (uint16_t)(px[i] * 257 + (i % 7));
        png_image png = {.version = PNG_IMAGE_VERSION, .width = 16, .height = 20,
                         .format = (c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (kind ? PNG_FORMAT_FLAG_LINEAR : 0)};
        png_alloc_size_t len = sizeof m->data;
        if (!png_image_write_to_memory(&png, m->data, &len, 0, kind ? (const void *)deep : px, 0, NULL))
            die(png.message);
        m->len = len;
    }
#endif
#ifdef NR_HAVE_JPEG
    if (kind >= 2) {
        tjhandle tj = tjInitCompress();
        unsigned char *out = m->data;
        unsigned long len = sizeof m->data;
        if (!tj || tjCompress2(tj, px, 16, 0, 20, c == 3 ? TJPF_RGB : TJPF_GRAY, &out, &len,
                               c == 3 ? TJSAMP_420 : TJSAMP_GRAY, 90,
                               TJFLAG_NOREALLOC | (kind == 3 ? TJFLAG_PROGRESSIVE : 0)))
            die(tjGetErrorStr2(tj));
        tjDestroy(tj);
        m->len = len;
    }
#endif
}

/* An options byte (fuzz_image.c) followed by the file. */
static void put_image(const char *name, unsigned mode, const void *file, size_t len)
{
    unsigned char *b = malloc(len + 1);
    if (!b)
        die("out of memory");
    b[0] = (unsigned char)mode;
    memcpy(b + 1, file, len);
    put("image", name, b, len + 1);
    free(b);
}

static void images(void)
{
    unsigned char px[20 * 16 * 3];
    char pgm[2048];
    picture(px, 16, 20, 1);
    int n = snprintf(pgm, sizeof pgm, "P5\n16 20\n255\n");
    memcpy(pgm + n, px, 16 * 20);
    put_image("ring.pgm", 0x40 | 0x20, pgm, (size_t)n + 16 * 20);
    put_image("broken-pgm-truncated.pgm", 0x40, pgm, (size_t)n + 100);
    put_image("ascii.pgm", 0x40 | 0x08, "P2 3 2 9\n0 1 2\n3 4 9\n", 23);
    /* kind: 0 PNG, 1 16-bit PNG, 2 JPEG, 3 progressive JPEG */
    const struct { const char *name; int c; unsigned mode; int kind; } kinds[] = {
        {"ring-grey.png", 1, 0x00, 0}, {"ring-rgb.png", 3, 0x04 | 0x10, 0}, {"ring-deep.png", 3, 0x02, 1},
        {"ring.jpg", 3, 0x01 | 0x20, 2}, {"ring-grey.jpg", 1, 0x03, 2}, {"ring-progressive.jpg", 3, 0x04, 3}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        mem m;
        picture(px, 16, 20, kinds[i].c);
        encode(&m, px, kinds[i].c, kinds[i].kind);
        if (!m.len)
            continue;  /* a build without that decoder */
        put_image(kinds[i].name, kinds[i].mode, m.data, m.len);
        if (i == 1 || i == 3) {
            const char *stem = i == 1 ? "broken-png" : "broken-jpg";
            char name[64];
            snprintf(name, sizeof name, "%s-truncated.%s", stem, i == 1 ? "png" : "jpg");
            put_image(name, kinds[i].mode, m.data, m.len / 2);
            m.data[m.len / 2] ^= 0x55;
            snprintf(name, sizeof name, "%s-bitflip.%s", stem, i == 1 ? "png" : "jpg");
            put_image(name, kinds[i].mode, m.data, m.len);
        }
    }
}

/* A file the library wrote, into the corpus (after a harness options byte when `mode` >= 0). */
static void put_file(const char *target, const char *name, const char *path, int mode)
{
    FILE *f = fopen(path, "rb");
    static unsigned char b[1 << 20];
    size_t at = mode >= 0, len = f ? fread(b + at, 1, sizeof b - 1, f) : 0;
    if (!f || fclose(f) != 0 || len == 0)
        die(path);
    b[0] = (unsigned char)(mode >= 0 ? mode : b[0]);
    put(target, name, b, len + at);
}

/* ONNX models neurite writes, and safetensors files for the networks fuzz_safetensors.c builds. */
static void interop(void)
{
    static const struct { const char *name, *input, *layers; int head, logits; } nets[] = {
        {"mlp.onnx", "6", "12-tanh-8-leaky0.05-drop0.1-4-softmax", NR_LOSS_XENT, 0},
        {"cnn.onnx", "6x6x2", "conv3k3-bn-relu-avgpool2-conv4k1s1p0-pool3-flatten-fc3", NR_LOSS_XENT, 1},
        {"image-mlp.onnx", "3x3x1", "5-sigmoid-2", NR_LOSS_MSE, 0}};
    static const char *const harness[4][2] = {
        {"4x4x2", "conv3k3-bn-relu-pool2-fc5"}, {"6", "fc4-bn-tanh-fc3"}, {"5x5x1", "conv2k3s2p0-flatten-bn-fc2"},
        {"3x3x3", "conv4k1-avgpool3-drop0.5-fc2-softmax"}};
    nr_rng rng;
    nr_rng_seed(&rng, 9);
    for (int i = 0; i < 3 + 4; i++) {
        const char *input = i < 3 ? nets[i].input : harness[i - 3][0], *layers = i < 3 ? nets[i].layers : harness[i - 3][1];
        size_t h = 1, w = 1, c;
        nr_net *net = sscanf(input, "%zux%zux%zu", &h, &w, &c) == 3 ? nr_net_new_image(h, w, c)
                                                                     : nr_net_new((size_t)atoi(input));
        if (!net || nr_net_add_spec(net, layers, NR_ACT_IDENTITY))
            die(layers);
        nr_net_init(net, NR_INIT_AUTO, &rng);
        if (i < 3) {
            nr_net_set_head(net, (nr_loss)nets[i].head);
            if (i == 1)
                nr_net_set_scaling(net, NR_SCALE_STANDARD, 3.0f, 0.25f);
            if (nr_onnx_export(net, tmp(nets[i].name), nets[i].logits) == NR_OK)  /* (not in a build without ONNX) */
                put_file("onnx", nets[i].name, tmp(nets[i].name), -1);
        } else {
            char name[32];
            snprintf(name, sizeof name, "net%d.safetensors", i - 3);
            if (nr_safetensors_export(net, tmp(name)))
                die(name);
            put_file("safetensors", name, tmp(name), i - 3);
        }
        nr_net_free(net);
    }
}

int main(void)
{
    if (!mkdtemp(scratch))
        die("mkdtemp");
    models();
    idx();
    csv();
    npy();
    spec();
    images();
    interop();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        die("clean up");
    return 0;
}
