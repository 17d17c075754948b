/* cli.h - shared by the neurite command's subcommands. */
#ifndef NR_CLI_H
#define NR_CLI_H

#include "neurite.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 a failure while working (bad file, numbers went wrong), 2 a bad command line. */
enum { EXIT_WORK = 1, EXIT_USAGE = 2 };

/* The kinds of option value, and the C type each writes. */
typedef enum opt_kind {
    OPT_FLAG,     /* bool, set by the bare option */
    OPT_SIZE,     /* size_t */
    OPT_INT,      /* int */
    OPT_U64,      /* uint64_t */
    OPT_FLOAT,    /* double */
    OPT_STRING,   /* const char *, pointing into argv */
    OPT_CHOICE    /* int: the value of one of the option's named choices */
} opt_kind;

/* A named value of an OPT_CHOICE option; a table ends with a NULL name. */
typedef struct cli_choice {
    const char *name;
    int value;
} cli_choice;

/* One option of a subcommand: --name VALUE (or --name=VALUE), written at `offset` into the command's settings
 * struct and checked against [min, max]. A command's options are a static table, the one source of its parser,
 * its --help and docs/cli.md. */
typedef struct cli_opt {
    const char *name;
    opt_kind kind;
    size_t offset;      /* offsetof(settings struct, field) */
    double min, max;    /* inclusive range for numbers */
    const char *arg;    /* the value's name in --help, e.g. "N" */
    const char *help;
    const cli_choice *choices;  /* OPT_CHOICE: the names it takes (listed by --help) */
    unsigned flags;             /* CLI_RUN, CLI_KEEP */
} cli_opt;

/* What a checkpoint keeps of an option. CLI_RUN: it shapes the run's numbers (data, network, optimizer, ...);
 * a resumed run takes it from the checkpoint and refuses a different value. CLI_KEEP: it says where results
 * go; a resumed run takes it from the checkpoint unless the command line gives another. */
enum { CLI_RUN = 1, CLI_KEEP = 2 };

/* A subcommand's command line: its name, synopsis, description and option table (ended by a NULL name). */
typedef struct cli_command {
    const char *name, *synopsis, *about;
    const cli_opt *opts;
    int max_positional;
} cli_command;

/* Options a command line gave, by their index in the table (so a default is told apart from a choice). */
enum { CLI_MAX_OPTIONS = 128 };
typedef struct cli_given {
    uint64_t bits[CLI_MAX_OPTIONS / 64];
} cli_given;

/* Parses argv[1..] of a subcommand into `settings`. Positional arguments are returned in order (pointers into
 * argv); `given` (may be NULL) receives which options were on the command line. Returns 0, or EXIT_USAGE after
 * printing one line to stderr, or -1 after printing --help to stdout. */
int cli_parse(const cli_command *cmd, void *settings, int argc, char **argv, const char **positional,
              int *n_positional, cli_given *given);

/* Whether the option `name` of the command was given on the command line. */
bool cli_was_given(const cli_command *cmd, cli_given given, const char *name);

/* The value of option `o` in `settings` as text that the parser reads back to the same value ("" for an unset
 * string or flag). */
void cli_value_text(const cli_opt *o, const void *settings, char *buf, size_t cap);

/* Copies option o's value from one settings struct to another. */
void cli_copy_value(const cli_opt *o, void *dst, const void *src);

/* The name that the OPT_CHOICE option `option` of the command gives `value` (NULL if none). */
const char *cli_choice_name(const cli_command *cmd, const char *option, int value);

/* Prints "neurite CMD: <message>" to stderr with the library's last error message, returns EXIT_WORK. */
int cli_fail(const char *cmd, nr_status st);

/* Prints "neurite CMD: <formatted message>" to stderr and returns `code`. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes a text file whole or not at all: write(f, ctx) fills a temporary file that is renamed over `path`
 * only if everything succeeded. Returns 0 or EXIT_WORK after printing one line. */
int cli_write_file(const char *cmd, const char *path, bool (*write)(FILE *f, void *ctx), void *ctx);

/* Refuses, in one line naming the option, an output path whose folder does not exist or cannot take a new
 * file (tried with a probe file that is removed at once; the path itself is not created). 0 or EXIT_USAGE. */
int cli_check_output(const char *cmd, const char *option, const char *path);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* A data set named on the command line: "mnist", "fashion" or a file. */
typedef struct data_source {
    const char *name;
    char train[4096];   /* the training file (or the only file) */
    char test[4096];    /* the named sets' test file; "" for a plain path */
    bool named;
} data_source;

/* The folder that holds the named data sets fetched for this user: $NEURITE_DATA, else $XDG_DATA_HOME/neurite,
 * else ~/.local/share/neurite. */
const char *cli_data_dir(void);

/* Resolves --data; for the named sets checks the files exist and says how to fetch them if not. Returns 0 or
 * an exit code after printing one line. */
int cli_resolve_data(const char *cmd, const char *value, data_source *src);

/* A model file: neurite's own, or an ONNX model (by the .onnx suffix) imported as it is read. */
nr_status cli_load_model(const char *path, nr_net **net);
bool cli_is_onnx(const char *path);
/* Loads a data file as `options` say (NULL: the defaults); 0 or an exit code after one line. */
int cli_load(const char *cmd, const char *path, const nr_data_options *options, nr_dataset **out);

/* The name of class k of a model ("3" when it has none), in buf. */
const char *cli_class_name(const nr_net *net, size_t k, char *buf, size_t cap);

/* ---- several processes (comm_mpi.c) ---- */

/* Starts MPI when mpirun started this process (never otherwise); 0 or an exit code after one line. */
int cli_comm_start(int *argc, char ***argv);
void cli_comm_stop(void);
/* The processes of this run (NULL: one process). */
const nr_comm *cli_comm(void);
/* "MPI" when built with MPI (mpirun can start several processes), else NULL. */
const char *cli_comm_kind(void);
/* This process's rank (0 alone). */
int cli_rank(void);
/* Every process learns whether any failed (rc != 0): one that did returns its rc, the others say which
 * failed, in one line, and return EXIT_WORK. Alone: rc. */
int cli_agree(int rc);

/* Subcommands: each one's command line (its options table, for --help and docs/cli.md) and its entry. */
extern const cli_command seed_command, xor_command, train_command, eval_command, predict_command, info_command,
    export_command, fetch_command, report_command, import_command, quantize_command;
int cmd_seed(int argc, char **argv);
int cmd_xor(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif
