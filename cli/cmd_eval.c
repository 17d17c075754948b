/* cmd_eval.c - `neurite eval` (accuracy, per-class precision and recall, confusion matrix) and `neurite info`
 * (a saved model's summary). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_eval(int argc, char **argv)
{
    const char *data = NULL, *label = NULL;
    int threads = 0;
    const cli_opt table[] = {
        {"data", OPT_STRING, &data, 0, 0, "NAME|FILE", "mnist or fashion (their test split), or a labelled file"},
        {"label", OPT_STRING, &label, 0, 0, "NAME|INDEX", "CSV/.npy label column (the last)"},
        {"threads", OPT_INT, &threads, 0, 256, "N", "threads (0: one per core)"},
        {0},
    };
    const char *pos[1];
    int npos, rc = cli_parse("eval", "MODEL --data NAME|FILE [options]",
                             "Evaluates a trained classifier on labelled data: accuracy on a line of its own, then\n"
                             "each class's precision and recall, then the confusion matrix.",
                             table, argc, argv, pos, 1, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || !data)
        return cli_error("eval", EXIT_USAGE, "needs a model and --data (see neurite eval --help)");
    nr_set_threads(threads);
    data_source src;
    if ((rc = cli_resolve_data("eval", data, &src)))
        return rc;
    nr_net *net = NULL;
    nr_dataset *set = NULL;
    nr_eval ev = {0};
    nr_status st;
    int ret = EXIT_WORK;
    if ((st = nr_model_load(pos[0], &net))) {
        cli_fail("eval", st);
        goto done;
    }
    if (cli_load("eval", src.named ? src.test : src.train, label, false, &set))
        goto done;
    if ((st = nr_evaluate(net, set, &ev))) {
        cli_fail("eval", st);
        goto done;
    }
    printf("accuracy: %.4f\n", ev.accuracy);
    printf("samples: %zu, loss %.4f\n\n", ev.count, ev.loss);
    size_t k = ev.classes;
    printf("%5s  %9s  %7s  %7s\n", "class", "precision", "recall", "samples");
    for (size_t c = 0; c < k; c++) {
        size_t tp = ev.confusion[c * k + c], truth = 0, predicted = 0;
        for (size_t j = 0; j < k; j++) {
            truth += ev.confusion[c * k + j];
            predicted += ev.confusion[j * k + c];
        }
        if (truth == 0 && predicted == 0)
            continue;
        printf("%5zu  %9.4f  %7.4f  %7zu\n", c, predicted ? (double)tp / (double)predicted : 0.0,
               truth ? (double)tp / (double)truth : 0.0, truth);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n     ");
    for (size_t j = 0; j < k; j++)
        printf(" %5zu", j);
    printf("\n");
    for (size_t c = 0; c < k; c++) {
        printf("%5zu", c);
        for (size_t j = 0; j < k; j++)
            printf(" %5zu", ev.confusion[c * k + j]);
        printf("\n");
    }
    ret = 0;
done:
    nr_eval_free(&ev);
    nr_data_free(set);
    nr_net_free(net);
    return ret;
}

int cmd_info(int argc, char **argv)
{
    const cli_opt table[] = {{0}};
    const char *pos[1];
    int npos, rc = cli_parse("info", "MODEL", "Prints the summary of a saved model or checkpoint.", table, argc, argv,
                             pos, 1, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1)
        return cli_error("info", EXIT_USAGE, "needs a model file (neurite info MODEL)");
    nr_net *net;
    nr_status st = nr_model_load(pos[0], &net);
    if (st)
        return cli_fail("info", st);
    struct stat sb;
    long long bytes = stat(pos[0], &sb) == 0 ? (long long)sb.st_size : -1;
    const char *scale[] = {"none", "to [0, 1]", "standardised"};
    const char *head[] = {"the outputs as they are (trained with SSE)", "the outputs as they are (trained with MSE)",
                          "class probabilities (softmax; trained with cross-entropy)"};
    printf("model: %s (%lld bytes)\n", pos[0], bytes);
    printf("input: %zu values; scaling: %s\n", nr_net_input_size(net), scale[nr_net_scaling(net)]);
    printf("output: %zu values, %s\n", nr_net_output_size(net), head[nr_net_head(net)]);
    nr_net_print_summary(net, stdout);
    nr_net_free(net);
    return 0;
}
