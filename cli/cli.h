/* cli.h - shared by the neurite command's subcommands. */
#ifndef NR_CLI_H
#define NR_CLI_H

#include "neurite.h"

#include <stdbool.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 a failure while working (bad file, numbers went wrong), 2 a bad command line. */
enum { EXIT_WORK = 1, EXIT_USAGE = 2 };

typedef enum opt_kind { OPT_FLAG, OPT_SIZE, OPT_INT, OPT_U64, OPT_FLOAT, OPT_STRING } opt_kind;

/* One option of a subcommand: --name VALUE (or --name=VALUE), checked against [min, max]. */
typedef struct cli_opt {
    const char *name;
    opt_kind kind;
    void *target;       /* bool*, size_t*, int*, uint64_t*, double*, const char** */
    double min, max;    /* inclusive range for numbers */
    const char *arg;    /* the value's name in --help, e.g. "N" */
    const char *help;
} cli_opt;

/* Parses argv[1..] of a subcommand. Positional arguments are returned in order (pointers into argv).
 * Returns 0, or EXIT_USAGE after printing one line to stderr, or -1 after printing --help to stdout. */
int cli_parse(const char *cmd, const char *synopsis, const char *about, const cli_opt *opts, int argc,
              char **argv, const char **positional, int max_positional, int *n_positional);

/* Prints "neurite CMD: <message>" to stderr with the library's last error message, returns EXIT_WORK. */
int cli_fail(const char *cmd, nr_status st);

/* Prints "neurite CMD: <formatted message>" to stderr and returns `code`. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes a text file whole or not at all: write(f, ctx) fills a temporary file that is renamed over `path`
 * only if everything succeeded. Returns 0 or EXIT_WORK after printing one line. */
int cli_write_file(const char *cmd, const char *path, bool (*write)(FILE *f, void *ctx), void *ctx);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* A data set named on the command line: "mnist", "fashion" or a file. */
typedef struct data_source {
    const char *name;
    char train[4096];   /* the training file (or the only file) */
    char test[4096];    /* the named sets' test file; "" for a plain path */
    bool named;
} data_source;

/* Resolves --data; for the named sets checks the files exist and says how to fetch them if not. Returns 0 or
 * an exit code after printing one line. */
int cli_resolve_data(const char *cmd, const char *value, data_source *src);

/* Loads a data file (label column for CSV/.npy as given, NULL: the last; unlabeled: samples only); 0 or an
 * exit code after one line. */
int cli_load(const char *cmd, const char *path, const char *label, bool unlabeled, nr_dataset **out);

/* Subcommands. */
int cmd_seed(int argc, char **argv);
int cmd_xor(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
