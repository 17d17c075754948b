/* cmd_predict.c - `neurite predict MODEL INPUT...`: the class and the probabilities for every row or image.
 * Inputs are data files (IDX images, CSV, .npy; a label column, if any, is named with --label and ignored)
 * or image files (PNG, JPEG, PGM, PPM), each made the model's channels and size. */
#include "cli.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct predict_options {
    const char *label;
    int threads, invert;
    bool csv, center, logits;
} predict_options;

/* Image files predict reads one at a time (anything else is a data file). */
static bool is_image(const char *path)
{
    static const char *const suffixes[] = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm"};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (strcasecmp(dot, suffixes[i]) == 0)
            return true;
    return false;
}

/* One image as the model's input: its channels and size, inverted and centred as asked. */
static int read_image(const nr_net *net, const char *path, const predict_options *o, float **x)
{
    size_t shape[3];
    nr_net_input_shape(net, shape);
    if (shape[0] == 1 && shape[1] == 1)
        return cli_error("predict", EXIT_WORK, "%s: the model takes %zu numbers, not an image", path, shape[2]);
    if (!(*x = malloc(nr_net_input_size(net) * sizeof **x)))
        return cli_error("predict", EXIT_WORK, "out of memory");
    nr_image_options opt = {.invert = o->invert, .center = o->center};
    nr_status st = nr_image_load(path, shape[0], shape[1], shape[2], &opt, *x);
    return st ? cli_fail("predict", st) : 0;
}

/* One sample's prediction: its class and the probabilities, or a regression's targets, or the raw outputs. */
static void print_row(const nr_net *net, const char *name, size_t row, const float *p, bool csv, bool logits)
{
    size_t k = nr_net_output_size(net), best = 0;
    bool regress = nr_net_task(net) == NR_TASK_REGRESS && !logits, classes = nr_net_head(net) == NR_LOSS_XENT && !logits;
    char buf[32];
    for (size_t j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    if (csv) {
        printf("%s,%zu", name, row);
        if (!regress && !logits)
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

static const cli_choice inversions[] = {{"auto", -1}, {"yes", 1}, {"no", 0}, {0, 0}};

static const cli_opt predict_options_table[] = {
    {"label", OPT_STRING, offsetof(predict_options, label), 0, 0, "NAME|INDEX",
     "CSV/.npy: a label column to skip (none: all features)", 0, 0},
    {"csv", OPT_FLAG, offsetof(predict_options, csv), 0, 0, "",
     "print CSV: file,row,class,then every probability in full", 0, 0},
    {"logits", OPT_FLAG, offsetof(predict_options, logits), 0, 0, "",
     "the outputs before the head: a classifier's logits (no softmax), a regression's standardised values", 0, 0},
    {"threads", OPT_INT, offsetof(predict_options, threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {"invert", OPT_CHOICE, offsetof(predict_options, invert), 0, 0, "WHEN",
     "images: light on dark, as MNIST (auto: when the border is light, e.g. ink on paper)", inversions, 0},
    {"center", OPT_FLAG, offsetof(predict_options, center), 0, 0, "",
     "images: scale the drawing into the middle 20/28 and centre its mass, as MNIST's digits were made", 0, 0},
    {0},
};

enum { MAX_INPUTS = 64 };

const cli_command predict_command = {
    "predict", "MODEL INPUT...",
    "Prints, for every row of a data file or every image, the most likely class and the\n"
    "probabilities of all classes (a regression: its predicted values). Inputs: IDX images,\n"
    ".csv, .npy, or image files (PNG, JPEG, PGM, PPM), each turned into the model's\n"
    "channels and size.",
    predict_options_table, MAX_INPUTS,
};

/* The raw samples of one input: a PGM image, or every row of a data file. */
static int read_input(const nr_net *net, const char *path, const predict_options *o, float **x, size_t *n)
{
    size_t in = nr_net_input_size(net);
    const char *label = o->label;
    *n = 1;
    if (is_image(path))
        return read_image(net, path, o, x);
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
    int rc = read_input(net, path, o, &x, &n);
    if (!rc && !(p = malloc(n * k * sizeof *p)))
        rc = cli_error("predict", EXIT_WORK, "out of memory");
    if (!rc && (st = (o->logits ? nr_net_logits : nr_net_predict)(net, x, n, p)))
        rc = cli_fail("predict", st);
    for (size_t r = 0; !rc && r < n; r++)
        print_row(net, path, r, p + r * k, o->csv, o->logits);
    free(x);
    free(p);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    predict_options o = {.invert = -1};
    const char *pos[MAX_INPUTS];
    int npos, rc = cli_parse(&predict_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos < 2)
        return cli_error("predict", EXIT_USAGE, "needs a model and at least one input (neurite predict MODEL INPUT...)");
    nr_set_threads(o.threads);
    nr_net *net;
    nr_status st = cli_load_model(pos[0], &net);
    if (st)
        return cli_fail("predict", st);
    if (o.csv) {
        bool regress = nr_net_task(net) == NR_TASK_REGRESS && !o.logits;
        printf("file,row%s", regress || o.logits ? "" : ",class");
        for (size_t j = 0; j < nr_net_output_size(net); j++) {
            const char *t = regress ? nr_net_target_name(net, j) : NULL;
            if (t)
                printf(",%s", t);
            else
                printf(regress || o.logits ? ",y%zu" : ",p%zu", j);
        }
        printf("\n");
    }
    for (int i = 1; i < npos && !rc; i++)
        rc = predict_file(net, pos[i], &o);
    nr_net_free(net);
    return rc;
}
