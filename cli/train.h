/* train.h - the pieces of `neurite train`: the options (cmd_train.c), the job that runs them (train_job.c),
 * and what is shown while it runs (train_display.c). */
#ifndef NR_CLI_TRAIN_H
#define NR_CLI_TRAIN_H

#include "report.h"

/* --scale auto: unit for images, standardised for tables. */
enum { SCALE_AUTO = -2 };

/* The command line of `neurite train`, as parsed (strings point into argv). */
typedef struct train_options {
    const char *data, *test, *label, *layers, *out, *log, *checkpoint, *resume, *report;
    int act, loss, opt, schedule, scale, init, reduce, task, missing;   /* OPT_CHOICE values */
    double lr, momentum, wd, clip, warmup, gamma, val;
    size_t epochs, batch, step_epochs, patience, checkpoint_every, limit, shards;
    int augment, threads;
    uint64_t seed;
    bool check_numerics, quiet, overlap;
} train_options;

/* Everything one run of `neurite train` holds, from the options to the trained network. */
typedef struct train_job {
    train_options o;
    cli_given given;
    data_source src;
    nr_dataset *train, *val, *test;
    nr_net *net;
    bool digits, image, regress; /* the named digits (their own defaults); images; a regression */
    size_t shape[3], classes, total;  /* classes: or the regression's targets */
    int augment;                 /* pixels, after the default */
    size_t epochs;               /* after the default */
    char stop_path[4200];        /* where Ctrl-C saves the state */
    char *note;                  /* the run's options as kept in its checkpoints */
    char *stored;                /* the note of the checkpoint resumed from (its strings point here) */
    char *layers;                /* the layer list as text, comments and line breaks gone */
    report_epochs history;       /* every epoch, for --report */
} train_job;

extern const cli_command train_command;
extern const train_options train_defaults;

/* Runs the whole job: data, network, training, test accuracy, the saved model. Returns the exit code. */
int train_job_run(train_job *job);

/* ---- the run's options in its checkpoints (train_resume.c) ---- */

/* With --resume: the options the checkpoint's run was made with, for every option the command line did not
 * give; an option given that would change the run is refused in one line naming both values. */
int train_resume_options(train_job *job);
/* The options that shape the run (and where its results go) as the text its checkpoints keep, in job->note. */
int train_record_options(train_job *job);
/* The layer list as text (--layers, or the file it names) without comments or line breaks; NULL if out of
 * memory. */
char *train_read_layers(const char *value);
/* Prints where a checkpoint's run stands and the command that continues it (for neurite info). */
void train_describe_checkpoint(const char *path, const nr_checkpoint_info *info);

/* ---- display (train_display.c) ---- */

/* What the progress callbacks draw on and log into. */
typedef struct train_display {
    bool tty, quiet;
    size_t steps;     /* batches trained in this process */
    double last_draw;
    FILE *log_rows;   /* the CSV rows so far, rewritten whole into --log after each epoch */
    report_epochs *epochs;  /* --report: every epoch, for the curves (may be NULL) */
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
