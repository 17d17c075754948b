/* cmd_quantize.c - `neurite quantize MODEL --calib DATA --out MODEL.q.nrm`: the model in int8 (docs/quantization.md),
 * calibrated on samples of its training data, with the accuracy before and after when the data has a test
 * split (or --test). */
#include "cli.h"

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

typedef struct quantize_options {
    const char *calib, *test, *label, *out;
    size_t samples;
    int method;
    double percentile;
    int threads;
} quantize_options;

static const cli_choice methods[] = {{"minmax", NR_CALIB_MINMAX}, {"percentile", NR_CALIB_PERCENTILE}, {0, 0}};

static const cli_opt quantize_options_table[] = {
    {"calib", OPT_STRING, offsetof(quantize_options, calib), 0, 0, "NAME|FILE",
     "calibration data: mnist, fashion (their training split) or the model's training file (required)", 0, 0},
    {"out", OPT_STRING, offsetof(quantize_options, out), 0, 0, "FILE", "the int8 model to write (required)", 0, 0},
    {"samples", OPT_SIZE, offsetof(quantize_options, samples), 1, 1 << 24, "N",
     "calibration samples, spread over the data (1000)", 0, 0},
    {"method", OPT_CHOICE, offsetof(quantize_options, method), 0, 0, "NAME",
     "activation ranges: their whole span (minmax) or the span of --percentile of the values", methods, 0},
    {"percentile", OPT_FLOAT, offsetof(quantize_options, percentile), 50.01, 100, "P",
     "--method percentile: the share of values kept inside the range (99.99)", 0, 0},
    {"test", OPT_STRING, offsetof(quantize_options, test), 0, 0, "FILE",
     "labelled data to compare the float and int8 accuracy on (named sets: their test split)", 0, 0},
    {"label", OPT_STRING, offsetof(quantize_options, label), 0, 0, "NAME|INDEX", "CSV/.npy label column", 0, 0},
    {"threads", OPT_INT, offsetof(quantize_options, threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {0},
};

const cli_command quantize_command = {
    "quantize", "MODEL --calib NAME|FILE --out FILE [options]",
    "Makes an int8 model: weights signed bytes with a scale per output, activations bytes with\n"
    "a scale and zero point calibrated on samples of the training data, integer arithmetic\n"
    "throughout (AVX-512 VNNI or AVX2 where the CPU has them). About a quarter of the size;\n"
    "eval, predict, info and export take it like any model. Prints the accuracy of both on\n"
    "the test data when there is some.",
    quantize_options_table, 1,
};

/* Accuracy of a model on a data set, or -1 (said) on failure. */
static double accuracy(nr_net *net, const nr_dataset *set)
{
    nr_eval ev = {0};
    nr_status st = nr_evaluate(net, set, &ev);
    double a = st ? -1 : ev.accuracy;
    if (st)
        cli_fail("quantize", st);
    nr_eval_free(&ev);
    return a;
}

/* The float and int8 accuracy on the test data (a named set's test split); the exit status. */
static int compare(nr_net *net, nr_net *q, const char *path, const char *label)
{
    data_source src;
    nr_dataset *set = NULL;
    int rc = cli_resolve_data("quantize", path, &src);
    if (rc || (rc = cli_load("quantize", src.named ? src.test : src.train,
                             &(nr_data_options){.label = label, .model = net}, &set)))
        return rc;
    double before = nr_net_task(net) == NR_TASK_CLASSIFY ? accuracy(net, set) : -2;
    double after = before >= 0 ? accuracy(q, set) : -2;
    if (before >= 0 && after >= 0)
        printf("test accuracy: float %.4f, int8 %.4f (%+.2f points) on %zu samples\n", before, after,
               100 * (after - before), nr_data_count(set));
    nr_data_free(set);
    return before == -1 || after == -1 ? EXIT_WORK : 0;
}

int cmd_quantize(int argc, char **argv)
{
    quantize_options o = {.samples = 1000, .percentile = 99.99};
    const char *pos[1];
    int npos, rc = cli_parse(&quantize_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || !o.calib || !o.out)
        return cli_error("quantize", EXIT_USAGE, "needs a model, --calib and --out (see neurite quantize --help)");
    if ((rc = cli_check_output("quantize", "--out", o.out)))
        return rc;
    nr_set_threads(o.threads);
    /* The model before the data: an int8 model is refused before a data set is fetched or read. */
    nr_net *net = NULL, *q = NULL;
    nr_dataset *calib = NULL;
    data_source src;
    nr_status st = cli_load_model(pos[0], &net);
    double t0 = cli_now();
    if (st)
        rc = cli_fail("quantize", st);
    else if (nr_net_quantization(net, NULL))
        rc = cli_error("quantize", EXIT_WORK, "%s: the network is already quantized", pos[0]);
    else if (!(rc = cli_resolve_data("quantize", o.calib, &src)) &&
             !(rc = cli_load("quantize", src.train, &(nr_data_options){.label = o.label, .model = net}, &calib)) &&
             (st = nr_net_quantize(net, calib, &(nr_quant_options){o.samples, (nr_calibration)o.method, o.percentile},
                                   &q)))
        rc = cli_fail("quantize", st);
    double seconds = cli_now() - t0;
    if (!rc && (st = nr_model_save(q, o.out)))
        rc = cli_fail("quantize", st);
    if (!rc) {
        struct stat a, b;
        bool sizes = stat(pos[0], &a) == 0 && stat(o.out, &b) == 0;
        printf("quantized %s on %zu samples (%s) in %.2f s, int8 kernel %s: %s, %lld bytes (%.1f%% of %lld)\n", pos[0],
               o.samples < nr_data_count(calib) ? o.samples : nr_data_count(calib), methods[o.method].name, seconds,
               nr_qgemm_backend(), o.out, sizes ? (long long)b.st_size : -1LL,
               sizes ? 100.0 * (double)b.st_size / (double)a.st_size : 0.0, sizes ? (long long)a.st_size : -1LL);
        const char *test = o.test ? o.test : src.named ? o.calib : NULL;
        if (test)
            rc = compare(net, q, test, o.label);
    }
    nr_data_free(calib);
    nr_net_free(q);
    nr_net_free(net);
    return rc;
}
