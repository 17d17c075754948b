/* cmd_predict.c - `neurite predict MODEL INPUT...`: the class and the probabilities for every row or image.
 * Inputs are data files (IDX images, CSV, .npy; a label column, if any, is named with --label and ignored)
 * or single images as binary or text PGM. */
#include "cli.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Reads one PGM image (P5 binary or P2 text, maxval <= 255) as raw pixel values 0..255. */
static int read_pgm(const char *path, size_t want, float **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error("predict", EXIT_WORK, "%s: cannot open", path);
    char magic[3] = {0};
    unsigned long dims[3];
    int ok = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '2');
    for (int i = 0; ok && i < 3; i++) {
        int c;
        while ((c = fgetc(f)) != EOF && (isspace(c) || c == '#'))
            if (c == '#')
                while ((c = fgetc(f)) != EOF && c != '\n')
                    ;
        ok = c != EOF && isdigit(c) && ungetc(c, f) != EOF && fscanf(f, "%lu", &dims[i]) == 1;
    }
    if (!ok || dims[2] == 0 || dims[2] > 255 || dims[0] == 0 || dims[1] == 0) {
        fclose(f);
        return cli_error("predict", EXIT_WORK, "%s: not an 8-bit PGM image", path);
    }
    if (dims[0] * dims[1] != want) {
        fclose(f);
        return cli_error("predict", EXIT_WORK, "%s: a %lux%lu image, the model takes %zu values", path, dims[0],
                         dims[1], want);
    }
    fgetc(f);  /* the single white-space character after the header */
    float *x = malloc(want * sizeof *x);
    for (size_t i = 0; x && i < want && ok; i++) {
        unsigned v;
        if (magic[1] == '5') {
            int c = fgetc(f);
            ok = c != EOF;
            v = (unsigned)c;
        } else {
            ok = fscanf(f, "%u", &v) == 1 && v <= dims[2];
        }
        if (ok)
            x[i] = (float)v * 255.0f / (float)dims[2];
    }
    fclose(f);
    if (!x || !ok) {
        free(x);
        return cli_error("predict", EXIT_WORK, "%s: %s", path, x ? "truncated image" : "out of memory");
    }
    *out = x;
    return 0;
}

/* One sample's prediction: its class and the probabilities, or a regression's targets, or the raw outputs. */
static void print_row(const nr_net *net, const char *name, size_t row, const float *p, bool csv)
{
    size_t k = nr_net_output_size(net), best = 0;
    bool regress = nr_net_task(net) == NR_TASK_REGRESS, classes = nr_net_head(net) == NR_LOSS_XENT;
    char buf[32];
    for (size_t j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    if (csv) {
        printf("%s,%zu", name, row);
        if (!regress)
            printf(",%s", cli_class_name(net, best, buf, sizeof buf));
        for (size_t j = 0; j < k; j++)
            printf(",%.9g", p[j]);
        printf("\n");
        return;
    }
    if (regress || !classes) {
        printf("%s:%zu  %s", name, row, regress ? "predicted" : "outputs");
        for (size_t j = 0; j < k; j++) {
            const char *t = regress ? nr_net_target_name(net, j) : NULL;
            if (t)
                printf(" %s=%.6g", t, p[j]);
            else
                printf(" %.6g", p[j]);
        }
        printf("\n");
        return;
    }
    printf("%s:%zu  class %s  p=%.4f  [", name, row, cli_class_name(net, best, buf, sizeof buf), p[best]);
    for (size_t j = 0; j < k && j < 10; j++)
        printf("%s%.3f", j ? " " : "", p[j]);
    printf("%s]\n", k > 10 ? " ..." : "");
}

typedef struct predict_options {
    const char *label;
    int threads;
    bool csv;
} predict_options;

static const cli_opt predict_options_table[] = {
    {"label", OPT_STRING, offsetof(predict_options, label), 0, 0, "NAME|INDEX",
     "CSV/.npy: a label column to skip (none: all features)", 0, 0},
    {"csv", OPT_FLAG, offsetof(predict_options, csv), 0, 0, "",
     "print CSV: file,row,class,then every probability in full", 0, 0},
    {"threads", OPT_INT, offsetof(predict_options, threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {0},
};

enum { MAX_INPUTS = 64 };

const cli_command predict_command = {
    "predict", "MODEL INPUT...",
    "Prints, for every row of a data file or every image, the most likely class and the\n"
    "probabilities of all classes. Inputs: IDX images, .csv, .npy, or .pgm images.",
    predict_options_table, MAX_INPUTS,
};

/* The raw samples of one input: a PGM image, or every row of a data file. */
static int read_input(const nr_net *net, const char *path, const char *label, float **x, size_t *n)
{
    size_t in = nr_net_input_size(net);
    size_t len = strlen(path);
    *n = 1;
    if (len > 4 && strcmp(path + len - 4, ".pgm") == 0)
        return read_pgm(path, in, x);
    nr_dataset *set;
    int rc = cli_load("predict", path, &(nr_data_options){.label = label, .unlabeled = label == NULL, .model = net},
                      &set);
    if (rc)
        return rc;
    *n = nr_data_count(set);
    if (nr_data_features(set) != in) {
        rc = cli_error("predict", EXIT_WORK, "%s: %zu values per sample, the model takes %zu", path,
                       nr_data_features(set), in);
        nr_data_free(set);
        return rc;
    }
    *x = malloc(*n * in * sizeof **x);
    for (size_t r = 0; *x && r < *n; r++)
        nr_data_sample(set, r, *x + r * in);
    nr_data_free(set);
    return *x ? 0 : cli_error("predict", EXIT_WORK, "out of memory");
}

static int predict_file(nr_net *net, const char *path, const predict_options *o)
{
    size_t k = nr_net_output_size(net), n;
    float *x = NULL, *p = NULL;
    nr_status st;
    int rc = read_input(net, path, o->label, &x, &n);
    if (!rc && !(p = malloc(n * k * sizeof *p)))
        rc = cli_error("predict", EXIT_WORK, "out of memory");
    if (!rc && (st = nr_net_predict(net, x, n, p)))
        rc = cli_fail("predict", st);
    for (size_t r = 0; !rc && r < n; r++)
        print_row(net, path, r, p + r * k, o->csv);
    free(x);
    free(p);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    predict_options o = {0};
    const char *pos[MAX_INPUTS];
    int npos, rc = cli_parse(&predict_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos < 2)
        return cli_error("predict", EXIT_USAGE, "needs a model and at least one input (neurite predict MODEL INPUT...)");
    nr_set_threads(o.threads);
    nr_net *net;
    nr_status st = nr_model_load(pos[0], &net);
    if (st)
        return cli_fail("predict", st);
    if (o.csv) {
        bool regress = nr_net_task(net) == NR_TASK_REGRESS;
        printf("file,row%s", regress ? "" : ",class");
        for (size_t j = 0; j < nr_net_output_size(net); j++) {
            const char *t = regress ? nr_net_target_name(net, j) : NULL;
            if (t)
                printf(",%s", t);
            else
                printf(regress ? ",y%zu" : ",p%zu", j);
        }
        printf("\n");
    }
    for (int i = 1; i < npos && !rc; i++)
        rc = predict_file(net, pos[i], &o);
    nr_net_free(net);
    return rc;
}
