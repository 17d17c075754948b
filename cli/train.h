/* train.h - the pieces of `neurite train`: the options (cmd_train.c), the job that runs them (train_job.c),
 * and what is shown while it runs (train_display.c). */
#ifndef NR_CLI_TRAIN_H
#define NR_CLI_TRAIN_H

#include "cli.h"

/* --scale auto: unit for images, standardised for tables. */
enum { SCALE_AUTO = -2 };

/* The command line of `neurite train`, as parsed (strings point into argv). */
typedef struct train_options {
    const char *data, *test, *label, *layers, *out, *log, *checkpoint, *resume;
    int act, loss, opt, schedule, scale, init;   /* OPT_CHOICE values */
    double lr, momentum, wd, clip, warmup, gamma, val;
    size_t epochs, batch, step_epochs, patience, checkpoint_every, limit;
    int augment, threads;
    uint64_t seed;
    bool check_numerics, quiet;
} train_options;

/* Everything one run of `neurite train` holds, from the options to the trained network. */
typedef struct train_job {
    train_options o;
    cli_given given;
    data_source src;
    nr_dataset *train, *val, *test;
    nr_net *net;
    bool digits, image;          /* the named digits (their own defaults); samples are images */
    size_t shape[3], classes, total;
    int augment;                 /* pixels, after the default */
    size_t epochs;               /* after the default */
    char stop_path[4200];        /* where Ctrl-C saves the state */
} train_job;

extern const cli_command train_command;

/* Runs the whole job: data, network, training, test accuracy, the saved model. Returns the exit code. */
int train_job_run(train_job *job);

/* ---- display (train_display.c) ---- */

/* What the progress callbacks draw on and log into. */
typedef struct train_display {
    bool tty, quiet;
    double last_draw;
    FILE *log_rows;   /* the CSV rows so far, rewritten whole into --log after each epoch */
    const char *log_path;
    char *log_buf;
    size_t log_len;
} train_display;

/* Opens the display for a run (the log's rows in memory); 0 or an exit code after one line. */
int train_display_open(train_display *d, bool quiet, const char *log_path);
void train_display_close(train_display *d);
/* nr_train's callbacks: the live progress bar, and one line (and a log row) per epoch. */
void train_display_batch(const nr_progress *p, void *display);
void train_display_epoch(const nr_progress *p, void *display);
/* Clears the progress bar's line before a message. */
void train_display_clear(const train_display *d);

#endif
