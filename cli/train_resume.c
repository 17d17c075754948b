/* train_resume.c - a checkpoint remembers the run that made it. Its note (nr_train_config.note) holds the
 * options that shape the run (CLI_RUN) and say where its results go (CLI_KEEP), one "--name=value" per line,
 * read back by the same parser as the command line. `neurite train --resume FILE` alone then continues that
 * very run; an option that would change it is refused. */
#include "train.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTE_HEADER "neurite train options"

enum { MAX_STORED = 100 };

/* The layer list as text: --layers itself, or the file it names, as its tokens in lower case joined by '-'
 * (comments, spaces, commas and line breaks gone), so the same network reads the same however it was given. */
char *train_read_layers(const char *value)
{
    FILE *f = fopen(value, "r");
    char *text = f ? calloc(1, 65536) : strdup(value);
    if (f) {
        size_t n = text ? fread(text, 1, 65535, f) : 0;
        (void)n;
        fclose(f);
    }
    if (!text)
        return NULL;
    char *w = text;
    for (const char *r = text; *r; r++) {
        if (*r == '#') {
            while (r[1] && r[1] != '\n')
                r++;
        } else if (*r == '-' || *r == ',' || isspace((unsigned char)*r)) {
            if (w > text && w[-1] != '-')
                *w++ = '-';
        } else {
            *w++ = (char)tolower((unsigned char)*r);
        }
    }
    while (w > text && w[-1] == '-')
        w--;
    *w = 0;
    return text;
}

/* A path that means the same from any folder. */
static void make_absolute(const char **path, char *buf, size_t cap)
{
    char cwd[2048];
    if (!*path || (*path)[0] == '/' || !getcwd(cwd, sizeof cwd))
        return;
    if (snprintf(buf, cap, "%s/%s", cwd, *path) < (int)cap)
        *path = buf;
}

static bool kept(const cli_opt *o) { return (o->flags & (CLI_RUN | CLI_KEEP)) != 0; }

int train_record_options(train_job *j)
{
    train_options rec = j->o, *o = &rec;  /* with the files named as from any folder */
    char paths[4][4096];
    if (!j->src.named)
        make_absolute(&o->data, paths[0], sizeof paths[0]);
    make_absolute(&o->test, paths[1], sizeof paths[1]);
    make_absolute(&o->out, paths[2], sizeof paths[2]);
    make_absolute(&o->checkpoint, paths[3], sizeof paths[3]);
    size_t len;
    FILE *f = open_memstream(&j->note, &len);
    if (!f)
        return cli_error("train", EXIT_WORK, "out of memory");
    fprintf(f, "%s\n", NOTE_HEADER);
    for (const cli_opt *opt = train_command.opts; opt->name; opt++) {
        char value[4200], usual[4200];
        cli_value_text(opt, o, value, sizeof value);
        cli_value_text(opt, &train_defaults, usual, sizeof usual);
        if (!kept(opt) || strcmp(value, usual) == 0)
            continue;
        if (strchr(value, '\n')) {
            fclose(f);
            return cli_error("train", EXIT_USAGE, "--%s: a value with a line break cannot be kept in a checkpoint",
                             opt->name);
        }
        fprintf(f, opt->kind == OPT_FLAG ? "--%s\n" : "--%s=%s\n", opt->name, value);
    }
    return fclose(f) == 0 ? 0 : cli_error("train", EXIT_WORK, "out of memory");
}

/* The options a checkpoint's note holds, parsed onto the defaults. The strings point into j->stored. */
static int parse_note(train_job *j, const char *path, train_options *stored)
{
    char *argv[MAX_STORED + 1] = {"train"};
    int argc = 1;
    char *line = j->stored, *next;
    if (strncmp(line, NOTE_HEADER "\n", sizeof NOTE_HEADER) != 0)
        return cli_error("train", EXIT_WORK, "%s: the checkpoint's note is not a list of neurite train options",
                         path);
    for (line += sizeof NOTE_HEADER; *line && argc <= MAX_STORED; line = next) {
        next = strchr(line, '\n');
        next = next ? (*next = 0, next + 1) : line + strlen(line);
        argv[argc++] = line;
    }
    *stored = train_defaults;
    if (cli_parse(&train_command, stored, argc, argv, NULL, NULL, NULL) != 0)
        return cli_error("train", EXIT_WORK, "%s: the checkpoint's options above were refused", path);
    return 0;
}

/* A different --epochs is fine when no step already taken depended on the total: constant and step schedules,
 * not reaching back before the epochs done. The cosine schedule was planned over the whole run. */
static bool may_extend(const train_options *stored, const train_options *given, const nr_checkpoint_info *info)
{
    return stored->schedule != NR_SCHED_COSINE && given->epochs > info->epoch;
}

static int conflict(const cli_opt *opt, const char *given, const char *stored, const char *why)
{
    return cli_error("train", EXIT_USAGE, "--%s %s conflicts with the checkpoint's --%s %s: %s", opt->name,
                     given[0] ? given : "(unset)", opt->name, stored[0] ? stored : "(unset)", why);
}

/* Takes from `stored` every kept option the command line did not give; refuses a given one that differs. */
static int merge(train_job *j, const train_options *stored, const nr_checkpoint_info *info)
{
    for (const cli_opt *opt = train_command.opts; opt->name; opt++) {
        if (!kept(opt))
            continue;
        if (!cli_was_given(&train_command, j->given, opt->name)) {
            cli_copy_value(opt, &j->o, stored);
            continue;
        }
        char given[4200], was[4200];
        cli_value_text(opt, &j->o, given, sizeof given);
        cli_value_text(opt, stored, was, sizeof was);
        if (!(opt->flags & CLI_RUN) || strcmp(given, was) == 0)
            continue;
        if (strcmp(opt->name, "epochs") == 0 && may_extend(stored, &j->o, info))
            continue;
        return conflict(opt, given, was,
                        strcmp(opt->name, "epochs") == 0
                            ? "the cosine schedule was planned over the whole run, or those epochs are done"
                            : "a resumed run goes on as it began (start a new run to change it)");
    }
    return 0;
}

int train_resume_options(train_job *j)
{
    nr_checkpoint_info info;
    nr_status st = nr_checkpoint_read(j->o.resume, &info);
    if (st)
        return cli_fail("train", st);
    int rc = 0;
    j->stored = info.note;  /* NULL for a checkpoint made before notes: the command line as it is */
    if (j->stored && cli_was_given(&train_command, j->given, "layers")) {
        /* The network given as it would be kept, to compare like with like. */
        if (!(j->layers = train_read_layers(j->o.layers)))
            rc = cli_error("train", EXIT_WORK, "out of memory");
        j->o.layers = j->layers;
    }
    train_options stored;
    if (!rc && j->stored && !(rc = parse_note(j, j->o.resume, &stored)))
        rc = merge(j, &stored, &info);
    return rc;
}

void train_describe_checkpoint(const char *path, const nr_checkpoint_info *info)
{
    uint64_t batches = info->batch_size ? (info->samples + info->batch_size - 1) / info->batch_size : 0;
    const char *note = info->note && strncmp(info->note, NOTE_HEADER "\n", sizeof NOTE_HEADER) == 0
                           ? info->note + sizeof NOTE_HEADER : NULL;
    const char *epochs = note ? strstr(note, "--epochs=") : NULL;
    unsigned long long total = epochs ? strtoull(epochs + 9, NULL, 10) : 0;
    printf("checkpoint: %llu", (unsigned long long)info->epoch);
    if (total)
        printf(" of %llu", total);
    printf(" epochs done, and %llu of %llu batches of the next; %llu steps; %llu samples in batches of %llu, seed %llu\n",
           (unsigned long long)info->batch, (unsigned long long)batches, (unsigned long long)info->steps,
           (unsigned long long)info->samples, (unsigned long long)info->batch_size, (unsigned long long)info->seed);
    if (info->best_epoch)
        printf("best validation loss so far: %.4f (epoch %llu)\n", info->best_val_loss,
               (unsigned long long)info->best_epoch);
    if (!note) {
        printf("continue with: neurite train --resume %s and the options the run was started with\n", path);
        return;
    }
    printf("run options: ");
    for (const char *p = note; *p; p++)
        if (*p != '\n')
            putchar(*p);
        else if (p[1])
            putchar(' ');
    printf("\n");
    if (total && info->epoch >= total)
        printf("the run is complete; with a constant or step schedule, --resume %s --epochs N goes on\n", path);
    else
        printf("continue with: neurite train --resume %s\n", path);
}
