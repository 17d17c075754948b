/* opts.c - the option parser shared by every subcommand: one table per command gives names, ranges and
 * help, so every number is range-checked the same way and --help never drifts from the code. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "neurite %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail(const char *cmd, nr_status st)
{
    (void)st;
    return cli_error(cmd, EXIT_WORK, "%s", nr_error_message());
}

static void print_help(const char *cmd, const char *synopsis, const char *about, const cli_opt *opts)
{
    printf("usage: neurite %s %s\n\n%s\n\noptions:\n", cmd, synopsis, about);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->kind == OPT_FLAG ? "" : " ",
                 o->kind == OPT_FLAG ? "" : o->arg);
        printf("  %-24s %s\n", left, o->help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int set_value(const char *cmd, const cli_opt *o, const char *text)
{
    char *end;
    errno = 0;
    switch (o->kind) {
    case OPT_FLAG:
        *(bool *)o->target = true;
        return 0;
    case OPT_STRING:
        *(const char **)o->target = text;
        return 0;
    case OPT_FLOAT: {
        double v = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(v))
            return cli_error(cmd, EXIT_USAGE, "--%s: '%s' is not a number", o->name, text);
        if (v < o->min || v > o->max)
            return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%g to %g)", o->name, text, o->min, o->max);
        *(double *)o->target = v;
        return 0;
    }
    case OPT_SIZE:
    case OPT_INT:
    case OPT_U64: {
        if (text[0] == '-' && o->min >= 0)
            return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%.0f to %.0f)", o->name, text, o->min,
                             o->max);
        unsigned long long v = strtoull(text, &end, 10);
        if (end == text || *end || errno)
            return cli_error(cmd, EXIT_USAGE, "--%s: '%s' is not a whole number", o->name, text);
        if ((double)v < o->min || (double)v > o->max)
            return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%.0f to %.0f)", o->name, text, o->min,
                             o->max);
        if (o->kind == OPT_SIZE)
            *(size_t *)o->target = (size_t)v;
        else if (o->kind == OPT_INT)
            *(int *)o->target = (int)v;
        else
            *(uint64_t *)o->target = (uint64_t)v;
        return 0;
    }
    }
    return EXIT_USAGE;
}

int cli_parse(const char *cmd, const char *synopsis, const char *about, const cli_opt *opts, int argc,
              char **argv, const char **positional, int max_positional, int *n_positional)
{
    *n_positional = 0;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == 0) {
            if (*n_positional >= max_positional)
                return cli_error(cmd, EXIT_USAGE, "unexpected argument '%s' (see neurite %s --help)", a, cmd);
            positional[(*n_positional)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(cmd, synopsis, about, opts);
            return -1;
        }
        if (a[1] != '-')
            return cli_error(cmd, EXIT_USAGE, "unknown option '%s' (options are spelled --name)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = opts;
        for (; o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                break;
        if (!o->name)
            return cli_error(cmd, EXIT_USAGE, "unknown option '--%.*s' (see neurite %s --help)", (int)len, name, cmd);
        const char *value = NULL;
        if (o->kind == OPT_FLAG) {
            if (eq)
                return cli_error(cmd, EXIT_USAGE, "--%s takes no value", o->name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return cli_error(cmd, EXIT_USAGE, "--%s needs a value (%s)", o->name, o->arg);
        }
        int rc = set_value(cmd, o, value);
        if (rc)
            return rc;
    }
    return 0;
}

int cli_write_file(const char *cmd, const char *path, bool (*write)(FILE *f, void *ctx), void *ctx)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return cli_error(cmd, EXIT_USAGE, "%s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_error(cmd, EXIT_WORK, "%s: cannot write: %s", path, strerror(errno));
    bool ok = write(f, ctx);
    ok &= fflush(f) == 0 && !ferror(f);
    int err = errno;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        err = err ? err : errno;
        remove(tmp);
        return cli_error(cmd, EXIT_WORK, "%s: write failed: %s", path, strerror(err));
    }
    return 0;
}
