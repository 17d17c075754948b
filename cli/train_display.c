/* train_display.c - what `neurite train` shows while it trains: a live progress bar on a terminal (samples/s,
 * ETA, running loss), one line per epoch, and the --log CSV rewritten whole after each epoch. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

int train_display_open(train_display *d, bool quiet, const char *log_path)
{
    *d = (train_display){.tty = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO), .quiet = quiet,
                         .log_path = log_path};
    if (log_path && !(d->log_rows = open_memstream(&d->log_buf, &d->log_len)))
        return cli_error("train", EXIT_WORK, "out of memory");
    return 0;
}

void train_display_close(train_display *d)
{
    if (d->log_rows)
        fclose(d->log_rows);
    free(d->log_buf);
    d->log_rows = NULL;
    d->log_buf = NULL;
}

void train_display_clear(const train_display *d)
{
    if (d->tty && !d->quiet)
        fprintf(stderr, "\r\033[K");
}

void train_display_batch(const nr_progress *p, void *user)
{
    train_display *d = user;
    d->steps++;
    if (!d->tty || d->quiet)
        return;
    double t = cli_now();
    if (t - d->last_draw < 0.1 && p->batch < p->batches)
        return;
    d->last_draw = t;
    const int width = 24;
    int filled = (int)((double)width * (double)p->batch / (double)p->batches);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[width] = 0;
    double rate = p->seconds > 0 ? (double)p->samples / p->seconds : 0;
    double eta = p->batch ? p->seconds * (double)(p->batches - p->batch) / (double)p->batch : 0;
    fprintf(stderr, "\r  epoch %zu/%zu [%s] %3.0f%%  %7.0f samples/s  ETA %2d:%02d  loss %.4f\033[K", p->epoch,
            p->epochs, bar, 100.0 * (double)p->batch / (double)p->batches, rate, (int)eta / 60, (int)eta % 60,
            p->loss);
    fflush(stderr);
}

static bool write_log(FILE *f, void *ctx)
{
    const train_display *d = ctx;
    return fprintf(f, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n") > 0 &&
           fwrite(d->log_buf, 1, d->log_len, f) == d->log_len;
}

void train_display_epoch(const nr_progress *p, void *user)
{
    train_display *d = user;
    train_display_clear(d);
    char val[64] = "        -          -", acc[16] = "        -", vacc[16] = "        -";
    if (!isnan(p->accuracy))
        snprintf(acc, sizeof acc, "%8.2f%%", 100 * p->accuracy);
    if (!isnan(p->val_accuracy))
        snprintf(vacc, sizeof vacc, "%8.2f%%", 100 * p->val_accuracy);
    if (!isnan(p->val_loss))
        snprintf(val, sizeof val, "%9.4f  %s%s", p->val_loss, vacc, p->improved ? "*" : " ");
    printf("%5zu  %10.4f  %s  %s  %9.2e  %6.1f s\n", p->epoch, p->loss, acc, val, (double)p->lr, p->seconds);
    fflush(stdout);
    report_epoch e = {p->loss, p->accuracy, p->val_loss, p->val_accuracy, p->lr};
    if (d->epochs && !report_add_epoch(d->epochs, &e))
        d->epochs = NULL;  /* out of memory: the report will lack curves, the run goes on */
    if (d->log_rows && d->log_path) {
        fprintf(d->log_rows, "%zu,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n", p->epoch, p->loss, p->accuracy, p->val_loss,
                p->val_accuracy, (double)p->lr, p->seconds);
        fflush(d->log_rows);
        if (cli_write_file("train", d->log_path, write_log, d) != 0)
            d->log_path = NULL;  /* said once; training goes on */
    }
}
