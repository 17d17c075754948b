/* opts.c - the option parser shared by every subcommand: one table per command gives names, ranges and
 * help, so every number is range-checked the same way and --help never drifts from the code. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_error(const char *cmd, int code, const char *fmt, ...)
{
    /* One write per line, so that the lines of several processes (mpirun) never interleave. */
    char line[2048];
    const nr_comm *comm = cli_comm();
    int n = comm ? snprintf(line, sizeof line, "neurite %s (process %d of %d): ", cmd, comm->rank, comm->size)
                 : snprintf(line, sizeof line, "neurite %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fflush(stdout);
    fputs(line, stderr);
    return code;
}

int cli_fail(const char *cmd, nr_status st)
{
    (void)st;
    return cli_error(cmd, EXIT_WORK, "%s", nr_error_message());
}

/* The choices of an option as "a, b, c". */
static void list_choices(const cli_choice *choices, char *buf, size_t cap)
{
    buf[0] = 0;
    for (const cli_choice *c = choices; c->name; c++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", c == choices ? "" : ", ", c->name);
}

static void print_help(const cli_command *cmd)
{
    printf("usage: neurite %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    for (const cli_opt *o = cmd->opts; o->name; o++) {
        char left[64], choices[256] = "";
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->kind == OPT_FLAG ? "" : " ",
                 o->kind == OPT_FLAG ? "" : o->arg);
        if (o->kind == OPT_CHOICE)
            list_choices(o->choices, choices, sizeof choices);
        printf("  %-24s %s%s%s\n", left, o->help, choices[0] ? "; one of: " : "", choices);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int set_choice(const char *cmd, const cli_opt *o, const char *text, int *target)
{
    for (const cli_choice *c = o->choices; c->name; c++)
        if (strcmp(text, c->name) == 0) {
            *target = c->value;
            return 0;
        }
    char known[256];
    list_choices(o->choices, known, sizeof known);
    return cli_error(cmd, EXIT_USAGE, "--%s: unknown value '%s' (one of: %s)", o->name, text, known);
}

static int set_number(const char *cmd, const cli_opt *o, const char *text, void *target)
{
    char *end;
    errno = 0;
    if (o->kind == OPT_FLOAT) {
        double v = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(v))
            return cli_error(cmd, EXIT_USAGE, "--%s: '%s' is not a number", o->name, text);
        if (v < o->min || v > o->max)
            return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%g to %g)", o->name, text, o->min, o->max);
        *(double *)target = v;
        return 0;
    }
    if (text[0] == '-' && o->min >= 0)
        return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%.0f to %.0f)", o->name, text, o->min, o->max);
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end || errno)
        return cli_error(cmd, EXIT_USAGE, "--%s: '%s' is not a whole number", o->name, text);
    if ((double)v < o->min || (double)v > o->max)
        return cli_error(cmd, EXIT_USAGE, "--%s: %s is out of range (%.0f to %.0f)", o->name, text, o->min, o->max);
    if (o->kind == OPT_SIZE)
        *(size_t *)target = (size_t)v;
    else if (o->kind == OPT_INT)
        *(int *)target = (int)v;
    else
        *(uint64_t *)target = (uint64_t)v;
    return 0;
}

static int set_value(const char *cmd, const cli_opt *o, const char *text, void *settings)
{
    void *target = (char *)settings + o->offset;
    switch (o->kind) {
    case OPT_FLAG:
        *(bool *)target = true;
        return 0;
    case OPT_STRING:
        *(const char **)target = text;
        return 0;
    case OPT_CHOICE:
        return set_choice(cmd, o, text, target);
    case OPT_FLOAT:
    case OPT_SIZE:
    case OPT_INT:
    case OPT_U64:
        return set_number(cmd, o, text, target);
    }
    return EXIT_USAGE;
}

static const cli_opt *find_option(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

const char *cli_choice_name(const cli_command *cmd, const char *option, int value)
{
    const cli_opt *o = find_option(cmd->opts, option, strlen(option));
    for (const cli_choice *c = o ? o->choices : NULL; c && c->name; c++)
        if (c->value == value)
            return c->name;
    return NULL;
}

void cli_value_text(const cli_opt *o, const void *settings, char *buf, size_t cap)
{
    const void *v = (const char *)settings + o->offset;
    const char *name;
    switch (o->kind) {
    case OPT_FLAG: snprintf(buf, cap, "%s", *(const bool *)v ? "yes" : ""); return;
    case OPT_SIZE: snprintf(buf, cap, "%zu", *(const size_t *)v); return;
    case OPT_INT: snprintf(buf, cap, "%d", *(const int *)v); return;
    case OPT_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)v); return;
    case OPT_FLOAT: snprintf(buf, cap, "%.17g", *(const double *)v); return;
    case OPT_STRING: snprintf(buf, cap, "%s", *(const char *const *)v ? *(const char *const *)v : ""); return;
    case OPT_CHOICE:
        name = NULL;
        for (const cli_choice *c = o->choices; c->name && !name; c++)
            name = c->value == *(const int *)v ? c->name : NULL;
        snprintf(buf, cap, "%s", name ? name : "");
        return;
    }
}

void cli_copy_value(const cli_opt *o, void *dst, const void *src)
{
    static const size_t sizes[] = {[OPT_FLAG] = sizeof(bool),   [OPT_SIZE] = sizeof(size_t),
                                   [OPT_INT] = sizeof(int),     [OPT_U64] = sizeof(uint64_t),
                                   [OPT_FLOAT] = sizeof(double), [OPT_STRING] = sizeof(const char *),
                                   [OPT_CHOICE] = sizeof(int)};
    memcpy((char *)dst + o->offset, (const char *)src + o->offset, sizes[o->kind]);
}

bool cli_was_given(const cli_command *cmd, cli_given given, const char *name)
{
    const cli_opt *o = find_option(cmd->opts, name, strlen(name));
    size_t i = o ? (size_t)(o - cmd->opts) : 0;
    return o && (given.bits[i / 64] >> (i % 64) & 1);
}

/* One option at argv[*i] (its value may be the next argument, which *i then moves past). */
static int parse_option(const cli_command *cmd, void *settings, int argc, char **argv, int *i, cli_given *given)
{
    const char *a = argv[*i];
    if (a[1] != '-')
        return cli_error(cmd->name, EXIT_USAGE, "unknown option '%s' (options are spelled --name)", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_opt *o = find_option(cmd->opts, name, len);
    if (!o)
        return cli_error(cmd->name, EXIT_USAGE, "unknown option '--%.*s' (see neurite %s --help)", (int)len, name,
                         cmd->name);
    const char *value = NULL;
    if (o->kind == OPT_FLAG) {
        if (eq)
            return cli_error(cmd->name, EXIT_USAGE, "--%s takes no value", o->name);
    } else if (eq) {
        value = eq + 1;
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        return cli_error(cmd->name, EXIT_USAGE, "--%s needs a value (%s)", o->name, o->arg);
    }
    size_t index = (size_t)(o - cmd->opts);  /* below CLI_MAX_OPTIONS: cli_parse checked the table */
    given->bits[index / 64] |= (uint64_t)1 << (index % 64);
    return set_value(cmd->name, o, value, settings);
}

int cli_parse(const cli_command *cmd, void *settings, int argc, char **argv, const char **positional,
              int *n_positional, cli_given *given)
{
    cli_given seen = {{0}};
    bool only_positional = false;
    int count = 0;
    size_t options = 0;
    while (cmd->opts[options].name)
        options++;
    if (options > CLI_MAX_OPTIONS)
        return cli_error(cmd->name, EXIT_USAGE, "internal: %zu options, at most %d", options, CLI_MAX_OPTIONS);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == 0) {
            if (count >= cmd->max_positional)
                return cli_error(cmd->name, EXIT_USAGE, "unexpected argument '%s' (see neurite %s --help)", a,
                                 cmd->name);
            positional[count++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_positional = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(cmd);
            return -1;
        } else {
            int rc = parse_option(cmd, settings, argc, argv, &i, &seen);
            if (rc)
                return rc;
        }
    }
    if (n_positional)
        *n_positional = count;
    if (given)
        *given = seen;
    return 0;
}

int cli_check_output(const char *cmd, const char *option, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!path[0] || (slash && !slash[1]))
        return cli_error(cmd, EXIT_USAGE, "--%s %s: not a file name", option, path);
    if (snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
                 slash ? path : ".") >= (int)sizeof dir - 32)
        return cli_error(cmd, EXIT_USAGE, "--%s: path too long", option);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_error(cmd, EXIT_USAGE, "--%s %s: is a folder, not a file", option, path);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_error(cmd, EXIT_USAGE, "--%s %s: the folder %s does not exist", option, path, dir);
    /* Only a real attempt tells: permissions, a read-only file system and /proc all answer here. */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.neurite-probe-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0)
        return cli_error(cmd, EXIT_USAGE, "--%s %s: cannot write into %s: %s", option, path, dir, strerror(errno));
    close(fd);
    unlink(probe);
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
