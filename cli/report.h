/* report.h - the training report: one self-contained HTML file (inline SVG, no script, nothing fetched) that
 * shows a run: its curves, the confusion matrix, per-class precision and recall, the test images it got
 * wrong, the first layer's weights as pictures, the model and the options; a regression's predicted-against-
 * true scatter and residuals instead of the classes. */
#ifndef NR_CLI_REPORT_H
#define NR_CLI_REPORT_H

#include "cli.h"

/* One epoch of the run, as the progress callback or the --log CSV gives it (NaN where there is none). */
typedef struct report_epoch {
    double loss, accuracy, val_loss, val_accuracy, lr;
} report_epoch;

/* The epochs so far, grown as they come. */
typedef struct report_epochs {
    report_epoch *at;
    size_t count, cap;
} report_epochs;

/* Appends one epoch; false if out of memory. */
bool report_add_epoch(report_epochs *e, const report_epoch *epoch);
void report_epochs_free(report_epochs *e);
/* Reads a --log CSV written by neurite train; 0 or an exit code after one line. */
int report_read_log(const char *cmd, const char *path, report_epochs *e);

/* What a report shows. */
typedef struct report_input {
    nr_net *net;
    const nr_dataset *data;      /* the set the model is judged on (test, or validation); may be NULL */
    const char *data_name;
    const report_epochs *epochs; /* may be empty */
    const char *title;
    const char *options;         /* the run's options as text, or NULL */
} report_input;

/* Writes the report, whole or not at all; 0 or an exit code after one line. */
int report_write(const char *cmd, const char *path, const report_input *in);

#endif
