/* fuzz_common.h - what the fuzz targets share: a private directory for the files the readers take, and the
 * work done with whatever a reader accepted (a network is run, trained one step and saved; a data set is
 * scaled, evaluated and trained on), capped so that one input costs milliseconds.
 *
 * Every target is one function, fz_<target>(data, size), that returns 0. The libFuzzer entry point calls it;
 * tests/test_fuzz_regress.c includes the targets with FUZZ_NO_MAIN defined and calls the same functions on
 * the inputs that once crashed, so a regression test runs exactly what the fuzzer ran. Harness failures that
 * are not the library's (a temporary file cannot be written) abort. */
#ifndef NR_FUZZ_COMMON_H
#define NR_FUZZ_COMMON_H

#include "../src/core/net.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What one input may make the harness run: parameters, activations per sample, multiply-adds per sample. */
#define FZ_MAX_PARAMS ((size_t)1 << 18)
#define FZ_MAX_ACTS ((size_t)1 << 16)
#define FZ_MAX_WORK ((size_t)1 << 22)
/* Data sets larger than this many values are only loaded, not used. */
#define FZ_MAX_VALUES ((size_t)1 << 14)

static char fz_dir[200];
static char fz_paths[8][320];
static int fz_next_path;

NR_UNUSED static void fz_cleanup(void)
{
    if (!fz_dir[0])
        return;
    DIR *d = opendir(fz_dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", fz_dir, e->d_name);
            remove(p);
        }
        closedir(d);
    }
    rmdir(fz_dir);
    fz_dir[0] = 0;
}

/* Creates the per-process directory (in /dev/shm when there is one: no disk traffic) on first use. */
NR_UNUSED static void fz_init(void)
{
    if (fz_dir[0])
        return;
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    snprintf(fz_dir, sizeof fz_dir, "%s/neurite-fuzz-XXXXXX", base);
    if (!mkdtemp(fz_dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fz_cleanup);
}

/* The path of `name` in the directory (a few stay valid at once). */
NR_UNUSED static const char *fz_path(const char *name)
{
    fz_init();
    char *p = fz_paths[fz_next_path++ % 8];
    snprintf(p, sizeof fz_paths[0], "%s/%s", fz_dir, name);
    return p;
}

/* Writes `len` bytes to the file `name` in the directory and returns its path. */
NR_UNUSED static const char *fz_write(const char *name, const void *data, size_t len)
{
    const char *p = fz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror("fuzz: writing a temporary file");
        abort();
    }
    return p;
}

/* A whole file into memory (NULL if it cannot be read). */
NR_UNUSED static unsigned char *fz_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A network is worth running if its parameters, activations and multiply-adds per sample are small. Reads the
 * layers directly: the public queries do not say how much work a layer does. */
NR_UNUSED static bool fz_net_small(const nr_net *net)
{
    if (net->n_params > FZ_MAX_PARAMS || net->in_size > FZ_MAX_ACTS)
        return false;
    size_t acts = net->in_size, work = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        size_t per = 1;
        if (l->ops == &nr__dense_ops)
            per = l->in_size;
        else if (l->ops == &nr__conv2d_ops)
            per = (size_t)l->ints[1] * (size_t)l->ints[1] * l->in_shape[2];
        else if (l->ops == &nr__maxpool_ops || l->ops == &nr__avgpool_ops)
            per = (size_t)l->ints[0] * (size_t)l->ints[0];
        if (l->out_size > FZ_MAX_ACTS || per > FZ_MAX_WORK || l->out_size * per > FZ_MAX_WORK)
            return false;
        acts += l->out_size;
        work += l->out_size * per;
        if (acts > FZ_MAX_ACTS || work > FZ_MAX_WORK)
            return false;
    }
    return true;
}

/* Saves `net`, loads the file, saves that again: the two files must be identical byte for byte. */
NR_UNUSED static void fz_round_trip(const nr_net *net)
{
    const char *a = fz_path("round-a.nrm"), *b = fz_path("round-b.nrm");
    if (nr_model_save(net, a) != NR_OK)
        return;
    nr_net *back = NULL;
    if (nr_model_load(a, &back) != NR_OK) {
        fprintf(stderr, "fuzz: a model neurite saved does not load: %s\n", nr_error_message());
        abort();
    }
    if (nr_model_save(back, b) != NR_OK) {
        fprintf(stderr, "fuzz: a loaded model cannot be saved again: %s\n", nr_error_message());
        abort();
    }
    nr_net_free(back);
    size_t la = 0, lb = 0;
    unsigned char *da = fz_slurp(a, &la), *db = fz_slurp(b, &lb);
    if (!da || !db || la != lb || memcmp(da, db, la) != 0) {
        fprintf(stderr, "fuzz: save -> load -> save changed the file (%zu and %zu bytes)\n", la, lb);
        abort();
    }
    free(da);
    free(db);
}

/* Runs a network the way the commands do: a summary, the C export, predictions for two samples, one step of each
 * loss, and a save/load round trip. Failures are fine; crashes, leaks and undefined behaviour are not. */
NR_UNUSED static void fz_use_net(nr_net *net)
{
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    if (devnull)
        nr_net_print_summary(net, devnull);
    for (size_t i = 0; i < nr_net_tensor_count(net); i++) {
        nr_tensor_info info;
        if (nr_net_tensor(net, i, &info) == NR_OK)
            nr_net_find_tensor(net, info.name, &info);
    }
    if (!fz_net_small(net))
        return;
    if (devnull)  /* the C export reads every field a loaded model holds (int8 ones included) */
        nr_model_export_c(net, devnull, "fz");
    size_t in = nr_net_input_size(net), out = nr_net_output_size(net);
    float *x = calloc(2 * in, sizeof *x), *y = calloc(2 * out, sizeof *y), *t = calloc(2 * out, sizeof *t);
    if (x && y && t) {
        for (size_t i = 0; i < 2 * in; i++)
            x[i] = (float)(i % 7) - 3.0f;
        nr_net_predict(net, x, 2, y);
        const int32_t labels[2] = {0, out > 1 ? 1 : 0};
        for (nr_loss loss = NR_LOSS_SSE; loss <= NR_LOSS_XENT; loss++) {
            const float *o;
            nr_net_zero_grad(net);
            if (nr_net_forward(net, x, 2, 1, &o) == NR_OK && nr_net_loss(net, loss, t, labels, NULL) == NR_OK)
                nr_net_backward(net);
        }
    }
    free(x);
    free(y);
    free(t);
    fz_round_trip(net);
}

NR_UNUSED static void fz_use_data(nr_dataset *d, unsigned mode);

/* After a reader returned st and d: a failure must return no data set, a success one stored as images or not
 * as `image` says (kind names the reader); a loaded set is then used and freed. */
NR_UNUSED static int fz_loaded(nr_status st, nr_dataset *d, bool image, const char *kind, unsigned mode)
{
    if (st != NR_OK && d) {
        fprintf(stderr, "fuzz: a failed load returned a data set\n");
        abort();
    }
    if (st == NR_OK) {
        if ((nr_data_is_image(d) != 0) != image) {
            fprintf(stderr, "fuzz: %s set is %sstored as images\n", kind, image ? "not " : "");
            abort();
        }
        fz_use_data(d, mode);
    }
    nr_data_free(d);
    return 0;
}

/* Uses a data set the way training does: samples read back, a scaling fitted, a network with one dense layer
 * evaluated and trained for an epoch (with shift augmentation for images), a validation split. */
NR_UNUSED static void fz_use_data(nr_dataset *d, unsigned mode)
{
    size_t n = nr_data_count(d), f = nr_data_features(d), classes = nr_data_classes(d), shape[3];
    nr_data_shape(d, shape);
    if (n == 0 || f == 0 || f != shape[0] * shape[1] * shape[2] || classes == 0) {
        fprintf(stderr, "fuzz: a loaded data set is inconsistent (%zu samples of %zu features, %zu classes)\n", n,
                f, classes);
        abort();
    }
    const int32_t *labels = nr_data_labels(d);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= classes) {
            fprintf(stderr, "fuzz: label %d of sample %zu is outside 0..%zu\n", (int)labels[i], i, classes - 1);
            abort();
        }
    float *x = malloc(f * sizeof *x);
    if (x && f <= FZ_MAX_VALUES) {
        nr_data_sample(d, 0, x);
        nr_data_sample(d, n - 1, x);
    }
    free(x);
    if (n * f > FZ_MAX_VALUES || classes > 64)
        return;
    bool image = nr_data_is_image(d) && shape[0] > 1;
    nr_net *net = image ? nr_net_new_image(shape[0], shape[1], shape[2]) : nr_net_new(f);
    size_t outs = classes < 2 ? 2 : classes;
    if (!net || nr_net_dense(net, outs, 1) != NR_OK) {
        nr_net_free(net);
        return;
    }
    nr_rng rng;
    nr_rng_seed(&rng, mode);
    nr_net_init(net, NR_INIT_AUTO, &rng);
    nr_net_fit_scaling(net, d, (nr_scaling)(mode % 3));
    nr_eval ev;
    if (nr_evaluate(net, d, &ev) == NR_OK)
        nr_eval_free(&ev);
    nr_dataset *val = NULL;
    if (n >= 2)
        nr_data_split(d, 1 + (mode >> 2) % (n - 1), &rng, &val);
    nr_train_config cfg = {.loss = NR_LOSS_XENT, .opt = {.kind = NR_OPT_ADAM}, .epochs = 1, .batch = 4,
                           .augment_shift = image ? 1 + (int)(mode >> 4) % 3 : 0, .seed = mode,
                           .patience = val ? 1 : 0};
    nr_train_result res;
    nr_train(net, d, val, &cfg, &res);
    nr_data_free(val);
    if (nr_data_count(d) > 1)
        nr_data_truncate(d, 1);
    nr_net_free(net);
}

#endif
