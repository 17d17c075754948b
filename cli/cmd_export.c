/* cmd_export.c - `neurite export MODEL`: the trained network as one dependency-free C file. */
#include "cli.h"

#include <stddef.h>

typedef struct export_job {
    const nr_net *net;
    const char *name;
    nr_status st;
} export_job;

static bool write_source(FILE *f, void *ctx)
{
    export_job *j = ctx;
    j->st = nr_model_export_c(j->net, f, j->name);
    return j->st == NR_OK;
}

typedef struct export_options {
    const char *name, *out;
} export_options;

static const cli_opt export_options_table[] = {
    {"name", OPT_STRING, offsetof(export_options, name), 0, 0, "NAME",
     "prefix of the generated names (model): NAME_predict, ...", 0, 0},
    {"out", OPT_STRING, offsetof(export_options, out), 0, 0, "FILE", "write here (default: standard output)", 0, 0},
    {0},
};

const cli_command export_command = {
    "export", "MODEL [--name NAME] [--out FILE.h]",
    "Writes the model as one self-contained C file: constant weight arrays and a\n"
    "NAME_predict(x, out, work) function in plain loops. It needs no neurite and no\n"
    "allocation; compile it into any program, e.g. on a microcontroller.",
    export_options_table, 1,
};

int cmd_export(int argc, char **argv)
{
    export_options o = {.name = "model"};
    const char *pos[1];
    int npos, rc = cli_parse(&export_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1)
        return cli_error("export", EXIT_USAGE, "needs a model file (neurite export MODEL)");
    nr_net *net;
    nr_status st = nr_model_load(pos[0], &net);
    if (st)
        return cli_fail("export", st);
    export_job job = {net, o.name, NR_OK};
    if (o.out) {
        rc = cli_write_file("export", o.out, write_source, &job);
        if (rc && job.st)
            rc = cli_fail("export", job.st);  /* the library's reason, not just "write failed" */
    } else if (!write_source(stdout, &job)) {
        rc = cli_fail("export", job.st);
    }
    nr_net_free(net);
    return rc;
}
