/* cmd_report.c - `neurite report MODEL --data D [--log LOG.csv] --out FILE.html`: the training report of a
 * saved model (report.h), its curves from the run's --log. */
#include "report.h"

#include <stddef.h>
#include <stdlib.h>

typedef struct report_options {
    const char *data, *label, *log, *out;
    int threads;
} report_options;

static const cli_opt report_options_table[] = {
    {"data", OPT_STRING, offsetof(report_options, data), 0, 0, "NAME|FILE",
     "judge the model on mnist or fashion (their test split), or a labelled file", 0, 0},
    {"label", OPT_STRING, offsetof(report_options, label), 0, 0, "NAME|INDEX", "CSV/.npy label column (the last)", 0,
     0},
    {"log", OPT_STRING, offsetof(report_options, log), 0, 0, "FILE.csv", "the run's curves, from train --log", 0, 0},
    {"out", OPT_STRING, offsetof(report_options, out), 0, 0, "FILE.html", "write the report here", 0, 0},
    {"threads", OPT_INT, offsetof(report_options, threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {0},
};

const cli_command report_command = {
    "report", "MODEL --out FILE.html [--data NAME|FILE] [--log LOG.csv]",
    "Writes one self-contained HTML file (inline SVG, nothing fetched) that shows a model:\n"
    "the curves of its run (--log), the confusion matrix, each class's precision and recall,\n"
    "the images it gets wrong, its first layer's weights as pictures, and the model itself;\n"
    "for a regression, predicted against true values and the residuals.",
    report_options_table, 1,
};

int cmd_report(int argc, char **argv)
{
    report_options o = {0};
    const char *pos[1];
    int npos, rc = cli_parse(&report_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || !o.out)
        return cli_error("report", EXIT_USAGE, "needs a model and --out (see neurite report --help)");
    if ((rc = cli_check_output("report", "out", o.out)))
        return rc;
    nr_set_threads(o.threads);
    nr_net *net = NULL;
    nr_dataset *set = NULL;
    report_epochs epochs = {0};
    data_source src = {0};
    nr_status st = cli_load_model(pos[0], &net);
    if (st)
        rc = cli_fail("report", st);
    if (!rc && o.log)
        rc = report_read_log("report", o.log, &epochs);
    if (!rc && o.data && !(rc = cli_resolve_data("report", o.data, &src)))
        rc = cli_load("report", src.named ? src.test : src.train, &(nr_data_options){.label = o.label, .model = net},
                      &set);
    if (!rc) {
        char title[512];
        snprintf(title, sizeof title, "neurite: %.400s", pos[0]);
        report_input in = {net, set, o.data, &epochs, title, NULL};
        rc = report_write("report", o.out, &in);
    }
    report_epochs_free(&epochs);
    nr_data_free(set);
    nr_net_free(net);
    return rc;
}
