/* cmd_eval.c - `neurite eval` (accuracy, per-class precision and recall, confusion matrix) and `neurite info`
 * (a saved model's summary). */
#include "train.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct eval_options {
    const char *data, *label;
    int threads;
} eval_options;

static const cli_opt eval_options_table[] = {
    {"data", OPT_STRING, offsetof(eval_options, data), 0, 0, "NAME|FILE",
     "mnist or fashion (their test split), or a labelled file", 0, 0},
    {"label", OPT_STRING, offsetof(eval_options, label), 0, 0, "NAME|INDEX", "CSV/.npy label column (the last)", 0, 0},
    {"threads", OPT_INT, offsetof(eval_options, threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {0},
};

const cli_command eval_command = {
    "eval", "MODEL --data NAME|FILE [options]",
    "Evaluates a trained classifier on labelled data: accuracy on a line of its own, then\n"
    "each class's precision and recall, then the confusion matrix.",
    eval_options_table, 1,
};

static void print_evaluation(const nr_net *net, const nr_eval *ev);

int cmd_eval(int argc, char **argv)
{
    eval_options o = {0};
    const char *pos[1];
    int npos, rc = cli_parse(&eval_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || !o.data)
        return cli_error("eval", EXIT_USAGE, "needs a model and --data (see neurite eval --help)");
    nr_set_threads(o.threads);
    data_source src;
    if ((rc = cli_resolve_data("eval", o.data, &src)))
        return rc;
    nr_net *net = NULL;
    nr_dataset *set = NULL;
    nr_eval ev = {0};
    nr_status st = cli_load_model(pos[0], &net);
    if (st)
        rc = cli_fail("eval", st);
    else if ((rc = cli_load("eval", src.named ? src.test : src.train,
                            &(nr_data_options){.label = o.label, .model = net}, &set)))
        ;  /* said */
    else if ((st = nr_evaluate(net, set, &ev)))
        rc = cli_fail("eval", st);
    else
        print_evaluation(net, &ev);
    nr_eval_free(&ev);
    nr_data_free(set);
    nr_net_free(net);
    return rc;
}

/* A regression: per target, MAE, RMSE and R^2 in the target's units. */
static void print_regression(const nr_net *net, const nr_eval *e)
{
    printf("samples: %zu, loss %.6g\n\n%-16s %12s %12s %9s\n", e->count, e->loss, "target", "MAE", "RMSE", "R^2");
    for (size_t j = 0; j < e->targets; j++) {
        char name[32];
        snprintf(name, sizeof name, "%zu", j);
        const char *t = nr_net_target_name(net, j);
        printf("%-16s %12.6g %12.6g %9.4f\n", t ? t : name, e->mae[j], e->rmse[j], e->r2[j]);
    }
}

/* Accuracy on a line of its own, each class's precision and recall, and the confusion matrix. */
static void print_evaluation(const nr_net *net, const nr_eval *e)
{
    if (e->targets) {
        print_regression(net, e);
        return;
    }
    char buf[32];
    printf("accuracy: %.4f\n", e->accuracy);
    printf("samples: %zu, loss %.4f\n\n", e->count, e->loss);
    size_t k = e->classes;
    printf("%-12s  %9s  %7s  %7s\n", "class", "precision", "recall", "samples");
    for (size_t c = 0; c < k; c++) {
        size_t tp = e->confusion[c * k + c], truth = 0, predicted = 0;
        for (size_t j = 0; j < k; j++) {
            truth += e->confusion[c * k + j];
            predicted += e->confusion[j * k + c];
        }
        if (truth == 0 && predicted == 0)
            continue;
        printf("%-12.12s  %9.4f  %7.4f  %7zu\n", cli_class_name(net, c, buf, sizeof buf),
               predicted ? (double)tp / (double)predicted : 0.0, truth ? (double)tp / (double)truth : 0.0, truth);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%12s", "");
    for (size_t j = 0; j < k; j++)
        printf(" %5.5s", cli_class_name(net, j, buf, sizeof buf));
    printf("\n");
    for (size_t c = 0; c < k; c++) {
        printf("%-12.12s", cli_class_name(net, c, buf, sizeof buf));
        for (size_t j = 0; j < k; j++)
            printf(" %5zu", e->confusion[c * k + j]);
        printf("\n");
    }
}

/* The classes', targets' and input columns' names, when the model knows them. */
static void print_names(const nr_net *net)
{
    char buf[4096];
    if (nr_net_class_name(net, 0)) {
        printf("classes:");
        for (size_t k = 0; nr_net_class_name(net, k); k++)
            printf(" %s", nr_net_class_name(net, k));
        printf("\n");
    }
    for (size_t j = 0; j < nr_net_target_count(net); j++)
        printf("%s%s", j ? ", " : "targets: ", nr_net_target_name(net, j) ? nr_net_target_name(net, j) : "?");
    if (nr_net_target_count(net))
        printf("\n");
    nr_net_describe_inputs(net, buf, sizeof buf);
    if (buf[0])
        printf("input columns: %s\n", buf);
}

static const cli_opt no_options[] = {{0}};

const cli_command info_command = {"info", "MODEL", "Prints the summary of a saved model or checkpoint.", no_options, 1};

int cmd_info(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&info_command, NULL, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1)
        return cli_error("info", EXIT_USAGE, "needs a model file (neurite info MODEL)");
    nr_net *net;
    nr_status st = cli_load_model(pos[0], &net);
    if (st)
        return cli_fail("info", st);
    struct stat sb;
    long long bytes = stat(pos[0], &sb) == 0 ? (long long)sb.st_size : -1;
    const char *scale[] = {"none", "to [0, 1]", "standardised"};
    const char *head[] = {"the outputs as they are (trained with SSE)", "the outputs as they are (trained with MSE)",
                          "class probabilities (softmax; trained with cross-entropy)"};
    printf("model: %s (%lld bytes)\n", pos[0], bytes);
    printf("input: %zu values; scaling: %s\n", nr_net_input_size(net), scale[nr_net_scaling(net)]);
    nr_quant_options q;
    if (nr_net_quantization(net, &q))
        printf("int8: weights signed bytes (a scale per output), activations bytes; calibrated on %zu samples (%s); "
               "int8 kernel %s\n", q.samples, q.method == NR_CALIB_PERCENTILE ? "percentile" : "minmax",
               nr_qgemm_backend());
    if (nr_net_task(net) == NR_TASK_REGRESS)
        printf("output: %zu regression targets, in their own units (trained with %s)\n", nr_net_target_count(net),
               nr_net_head(net) == NR_LOSS_SSE ? "SSE" : "MSE");
    else
        printf("output: %zu values, %s\n", nr_net_output_size(net), head[nr_net_head(net)]);
    print_names(net);
    nr_net_print_summary(net, stdout);
    size_t len = nr_net_pytorch(net, NULL, 0);
    char *torch = len ? malloc(len + 1) : NULL;
    if (torch && nr_net_pytorch(net, torch, len + 1) == len)  /* what --format safetensors fits */
        printf("PyTorch (NCHW input, logits out): %s\n", torch);
    free(torch);
    nr_net_free(net);
    nr_checkpoint_info ck;
    if (nr_checkpoint_read(pos[0], &ck) == NR_OK) {  /* a checkpoint: where its run stands */
        train_describe_checkpoint(pos[0], &ck);
        nr_checkpoint_info_free(&ck);
    }
    return 0;
}
