/* cmd_train.c - `neurite train`: load data, build a network from a layer list, train it with a live progress
 * bar, evaluate on the test set, save the model. Ctrl-C saves a checkpoint at the next batch and says how to
 * resume. */
#include "cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
    signal(sig, SIG_DFL);  /* a second Ctrl-C ends the process at once */
}

typedef struct train_opts {
    const char *data, *test, *label, *layers, *act, *loss, *opt, *schedule, *scale, *init, *out, *log;
    const char *checkpoint, *resume;
    double lr, momentum, wd, clip, warmup, gamma, val;
    size_t epochs, batch, step_epochs, patience, checkpoint_every, limit;
    int augment, threads;
    uint64_t seed;
    bool check_numerics, quiet;
} train_opts;

/* Display state for the callbacks. */
typedef struct display {
    bool tty, quiet;
    double last_draw;
    FILE *log_rows;   /* the CSV rows so far, rewritten whole into --log after each epoch */
    const char *log_path;
    char *log_buf;
    size_t log_len;
} display;

static void draw_bar(const nr_progress *p, void *user)
{
    display *d = user;
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
    const display *d = ctx;
    return fprintf(f, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n") > 0 &&
           fwrite(d->log_buf, 1, d->log_len, f) == d->log_len;
}

static void print_epoch(const nr_progress *p, void *user)
{
    display *d = user;
    if (d->tty && !d->quiet)
        fprintf(stderr, "\r\033[K");
    char val[64] = "        -          -";
    if (!isnan(p->val_loss))
        snprintf(val, sizeof val, "%9.4f  %8.2f%%%s", p->val_loss, 100 * p->val_accuracy, p->improved ? "*" : " ");
    printf("%5zu  %10.4f  %8.2f%%  %s  %9.2e  %6.1f s\n", p->epoch, p->loss, 100 * p->accuracy, val, (double)p->lr,
           p->seconds);
    fflush(stdout);
    if (d->log_rows) {
        fprintf(d->log_rows, "%zu,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n", p->epoch, p->loss, p->accuracy, p->val_loss,
                p->val_accuracy, (double)p->lr, p->seconds);
        fflush(d->log_rows);
        if (cli_write_file("train", d->log_path, write_log, d) != 0)
            d->log_path = NULL;  /* said once; training goes on */
    }
}

typedef struct name_value {
    const char *name;
    int value;
} name_value;

/* Looks `text` up in a table; -1 and one line on stderr if it is not there. */
static int lookup(const char *option, const char *text, const name_value *table)
{
    for (const name_value *t = table; t->name; t++)
        if (strcmp(text, t->name) == 0)
            return t->value;
    char known[200] = "";
    for (const name_value *t = table; t->name; t++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "", t->name);
    cli_error("train", EXIT_USAGE, "--%s: unknown value '%s' (one of: %s)", option, text, known);
    return -1;
}

static const name_value acts[] = {{"relu", NR_ACT_RELU}, {"leaky", NR_ACT_LEAKY_RELU}, {"sigmoid", NR_ACT_SIGMOID},
                                  {"tanh", NR_ACT_TANH}, {"identity", NR_ACT_IDENTITY}, {0, 0}};
static const name_value losses[] = {{"xent", NR_LOSS_XENT}, {"mse", NR_LOSS_MSE}, {"sse", NR_LOSS_SSE}, {0, 0}};
static const name_value opts_kinds[] = {{"adam", NR_OPT_ADAM},         {"adamw", NR_OPT_ADAMW},
                                        {"sgd", NR_OPT_SGD},           {"momentum", NR_OPT_MOMENTUM},
                                        {"nesterov", NR_OPT_NESTEROV}, {0, 0}};
static const name_value schedules[] = {{"const", NR_SCHED_CONSTANT}, {"step", NR_SCHED_STEP},
                                       {"cosine", NR_SCHED_COSINE}, {0, 0}};
static const name_value scalings[] = {{"unit", NR_SCALE_UNIT}, {"std", NR_SCALE_STANDARD}, {"none", NR_SCALE_NONE},
                                      {"auto", -2}, {0, 0}};
static const name_value inits[] = {{"auto", NR_INIT_AUTO},           {"normal", NR_INIT_STD_NORMAL},
                                   {"xavier", NR_INIT_XAVIER_UNIFORM}, {"xavier-normal", NR_INIT_XAVIER_NORMAL},
                                   {"he", NR_INIT_HE_UNIFORM},         {"he-normal", NR_INIT_HE_NORMAL},
                                   {0, 0}};

/* The layer list: --layers as given, or read from the file it names. */
static char *read_spec(const char *value)
{
    FILE *f = fopen(value, "r");
    if (!f)
        return strdup(value);
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static const char *scaling_text(nr_scaling s, bool image)
{
    switch (s) {
    case NR_SCALE_UNIT: return image ? "pixels / 255" : "columns to [0, 1] by their training range";
    case NR_SCALE_STANDARD: return image ? "standardised (training mean and deviation)" :
                                           "columns standardised (training means and deviations)";
    case NR_SCALE_NONE: break;
    }
    return "none";
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {.data = "mnist", .act = "relu", .loss = "xent", .opt = "adam", .schedule = "cosine",
                    .scale = "auto", .init = "auto", .lr = 0, .val = 0.1, .epochs = 0, .batch = 64,
                    .augment = -1, .threads = 0, .seed = 1, .gamma = 0.1, .step_epochs = 0};
    const cli_opt table[] = {
        {"data", OPT_STRING, &o.data, 0, 0, "NAME|FILE", "mnist, fashion, or a file: IDX (.gz), .csv, .npy (mnist)"},
        {"test", OPT_STRING, &o.test, 0, 0, "FILE", "test set, evaluated after training (named sets: their own)"},
        {"label", OPT_STRING, &o.label, 0, 0, "NAME|INDEX", "CSV/.npy label column (the last)"},
        {"layers", OPT_STRING, &o.layers, 0, 0, "SPEC|FILE", "network, e.g. 784-256-10 or conv32k3-relu-pool2-fc10"},
        {"act", OPT_STRING, &o.act, 0, 0, "NAME", "activation between dense layers: relu leaky sigmoid tanh identity"},
        {"loss", OPT_STRING, &o.loss, 0, 0, "NAME", "xent (softmax cross-entropy), mse or sse (xent)"},
        {"opt", OPT_STRING, &o.opt, 0, 0, "NAME", "adam adamw sgd momentum nesterov (adam)"},
        {"lr", OPT_FLOAT, &o.lr, 1e-9, 10, "X", "learning rate (adam 1e-3, sgd 1e-2)"},
        {"momentum", OPT_FLOAT, &o.momentum, 0, 0.999, "X", "momentum for momentum/nesterov (0.9)"},
        {"wd", OPT_FLOAT, &o.wd, 0, 0.5, "X", "weight decay (0)"},
        {"clip", OPT_FLOAT, &o.clip, 0, 1e6, "X", "clip the gradient's norm to X (0: off)"},
        {"schedule", OPT_STRING, &o.schedule, 0, 0, "NAME", "learning rate: const, step or cosine (cosine)"},
        {"warmup", OPT_FLOAT, &o.warmup, 0, 1e6, "EPOCHS", "linear warm-up (0)"},
        {"step-epochs", OPT_SIZE, &o.step_epochs, 1, 1e6, "N", "step schedule: decay every N epochs (1)"},
        {"gamma", OPT_FLOAT, &o.gamma, 1e-6, 1, "X", "step schedule: decay factor (0.1)"},
        {"epochs", OPT_SIZE, &o.epochs, 1, 1e6, "N", "passes over the training data (digits 20, else 10)"},
        {"batch", OPT_SIZE, &o.batch, 1, 1 << 20, "N", "samples per step (64)"},
        {"val", OPT_FLOAT, &o.val, 0, 1e9, "F|N", "validation split: a fraction or a count (0.1)"},
        {"patience", OPT_SIZE, &o.patience, 1, 1e6, "N", "early stopping after N epochs without progress (off)"},
        {"scale", OPT_STRING, &o.scale, 0, 0, "NAME", "unit, std or none (images unit, tables std)"},
        {"augment", OPT_INT, &o.augment, 0, 8, "PIXELS", "images: random shifts of up to N pixels (digits 2, else 0)"},
        {"init", OPT_STRING, &o.init, 0, 0, "NAME", "auto normal xavier xavier-normal he he-normal (auto)"},
        {"seed", OPT_U64, &o.seed, 0, 1.8e19, "N", "seed for initial weights, shuffling, dropout (1)"},
        {"threads", OPT_INT, &o.threads, 0, 256, "N", "threads (0: one per core); results do not depend on it (except with NEURITE_GEMM=blas)"},
        {"limit", OPT_SIZE, &o.limit, 1, 1e12, "N", "train on the first N samples only"},
        {"out", OPT_STRING, &o.out, 0, 0, "MODEL", "save the trained model here"},
        {"log", OPT_STRING, &o.log, 0, 0, "FILE.csv", "write per-epoch metrics as CSV"},
        {"checkpoint", OPT_STRING, &o.checkpoint, 0, 0, "FILE", "save the whole training state here each epoch"},
        {"checkpoint-every", OPT_SIZE, &o.checkpoint_every, 1, 1e12, "N", "... and every N batches"},
        {"resume", OPT_STRING, &o.resume, 0, 0, "FILE", "continue from a checkpoint, bit-identically"},
        {"check-numerics", OPT_FLAG, &o.check_numerics, 0, 0, "", "check every layer for NaN/Inf each step"},
        {"quiet", OPT_FLAG, &o.quiet, 0, 0, "", "no progress bar"},
        {0},
    };
    const char *pos[1];
    int npos, rc = cli_parse("train", "[options]",
                             "Trains a classifier and reports its accuracy on the test set. With no options it\n"
                             "trains an MLP on the MNIST digits (fetch them with scripts/fetch-data.sh mnist).",
                             table, argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    int act = lookup("act", o.act, acts), loss = lookup("loss", o.loss, losses);
    int kind = lookup("opt", o.opt, opts_kinds), sched = lookup("schedule", o.schedule, schedules);
    int scale = lookup("scale", o.scale, scalings), init = lookup("init", o.init, inits);
    if (act < 0 || loss < 0 || kind < 0 || sched < 0 || scale == -1 || init < 0)
        return EXIT_USAGE;
    if (o.val >= 1 && o.val != floor(o.val))
        return cli_error("train", EXIT_USAGE, "--val: %g is neither a fraction below 1 nor a whole count", o.val);
    if (o.checkpoint_every && !o.checkpoint)
        return cli_error("train", EXIT_USAGE, "--checkpoint-every needs --checkpoint FILE");
    nr_set_threads(o.threads);

    data_source src;
    if ((rc = cli_resolve_data("train", o.data, &src)))
        return rc;
    nr_dataset *train = NULL, *val = NULL, *test = NULL;
    nr_net *net = NULL;
    char *spec = NULL;
    int ret = EXIT_WORK;
    nr_status st;
    if (cli_load("train", src.train, o.label, false, &train))
        goto done;
    const char *test_path = o.test ? o.test : (src.named ? src.test : NULL);
    if (test_path && cli_load("train", test_path, o.label, false, &test))
        goto done;
    if (o.limit && (st = nr_data_truncate(train, o.limit))) {
        cli_fail("train", st);
        goto done;
    }
    bool digits = strcmp(o.data, "mnist") == 0, image = nr_data_is_image(train);
    size_t shape[3], classes = nr_data_classes(train), total = nr_data_count(train);
    nr_data_shape(train, shape);
    if (test && nr_data_classes(test) > classes)
        classes = nr_data_classes(test);
    if (classes < 2) {
        cli_error("train", EXIT_WORK, "%s: the labels hold only one class; nothing to classify", src.train);
        goto done;
    }
    size_t n_val = o.val < 1 ? (size_t)(o.val * (double)total) : (size_t)o.val;
    if (n_val >= total) {
        ret = cli_error("train", EXIT_USAGE, "--val: %zu validation samples leave none of the %zu to train on", n_val, total);
        goto done;
    }
    nr_rng split_rng;
    nr_rng_seed(&split_rng, o.seed ^ 0x5eed5eedULL);
    if (n_val && (st = nr_data_split(train, n_val, &split_rng, &val))) {
        cli_fail("train", st);
        goto done;
    }

    /* The network: from the checkpoint when resuming, else from the layer list. */
    if (o.resume) {
        if ((st = nr_model_load(o.resume, &net))) {
            cli_fail("train", st);
            goto done;
        }
    } else {
        char def[128];
        if (image && shape[0] > 1)
            snprintf(def, sizeof def, "512-256-%zu", classes);
        else
            snprintf(def, sizeof def, "64-64-%zu", classes);
        spec = read_spec(o.layers ? o.layers : def);
        net = image && shape[0] > 1 ? nr_net_new_image(shape[0], shape[1], shape[2]) : nr_net_new(shape[0] * shape[1] * shape[2]);
        if (!net || !spec || (st = nr_net_add_spec(net, spec, (nr_act)act))) {
            ret = cli_error("train", EXIT_USAGE, "--layers: %s", net && spec ? nr_error_message() : "out of memory");
            goto done;
        }
        nr_rng init_rng;
        nr_rng_seed(&init_rng, o.seed);
        nr_net_init(net, (nr_init)init, &init_rng);
        nr_scaling sc = scale == -2 ? (image ? NR_SCALE_UNIT : NR_SCALE_STANDARD) : (nr_scaling)scale;
        if ((st = nr_net_fit_scaling(net, train, sc))) {
            cli_fail("train", st);
            goto done;
        }
    }
    if (nr_net_output_size(net) != classes && loss == NR_LOSS_XENT) {
        ret = cli_error("train", EXIT_USAGE, "--layers: the network has %zu outputs but the data has %zu classes",
                  nr_net_output_size(net), classes);
        goto done;
    }
    int augment = o.augment >= 0 ? o.augment : (digits ? 2 : 0);
    if (augment && !image) {
        ret = cli_error("train", EXIT_USAGE, "--augment: shifts apply to images, and %s holds a table", src.train);
        goto done;
    }
    size_t epochs = o.epochs ? o.epochs : (digits ? 20 : 10);

    printf("data: %s: %zu samples of %zux%zux%zu, %zu classes; %zu to train, %zu to validate", src.train, total,
           shape[0], shape[1], shape[2], classes, nr_data_count(train), val ? nr_data_count(val) : 0);
    if (test)
        printf("; %zu to test", nr_data_count(test));
    printf("\nscaling: %s; augmentation: %s\n", scaling_text(nr_net_scaling(net), image),
           augment ? (augment == 1 ? "random shifts of up to 1 pixel" : "random shifts of up to 2 pixels") : "none");
    if (augment > 2)
        printf("  (shifts of up to %d pixels)\n", augment);
    printf("model:\n");
    nr_net_print_summary(net, stdout);

    nr_train_config cfg = {
        .loss = (nr_loss)loss,
        .opt = {.kind = (nr_opt_kind)kind, .lr = (float)o.lr, .momentum = (float)o.momentum,
                .weight_decay = (float)o.wd, .clip_norm = (float)o.clip},
        .epochs = epochs, .batch = o.batch, .schedule = (nr_schedule)sched, .warmup_epochs = (float)o.warmup,
        .step_epochs = o.step_epochs, .gamma = (float)o.gamma, .augment_shift = augment, .patience = o.patience,
        .seed = o.seed, .checkpoint = o.checkpoint, .checkpoint_every = o.checkpoint_every, .resume = o.resume,
        .check_numerics = o.check_numerics, .numerics_log = o.check_numerics ? stdout : NULL,
        .on_batch = draw_bar, .on_epoch = print_epoch, .stop = &stop_requested,
    };
    char stop_path[4200];
    snprintf(stop_path, sizeof stop_path, "%s", o.checkpoint ? o.checkpoint : o.out ? o.out : "neurite");
    if (!o.checkpoint)
        strcat(stop_path, ".ckpt");
    cfg.stop_checkpoint = stop_path;
    float lr = cfg.opt.lr > 0 ? cfg.opt.lr : (kind == NR_OPT_ADAM || kind == NR_OPT_ADAMW ? 1e-3f : 1e-2f);
    printf("training: %s, lr %g, %s schedule, batch %zu, %zu epochs, seed %llu, %d threads (%s kernel)%s\n", o.opt,
           (double)lr, o.schedule, o.batch, epochs, (unsigned long long)o.seed, nr_threads(), nr_gemm_backend(),
           o.resume ? ", resumed" : "");
    printf("%5s  %10s  %9s  %9s  %9s  %9s  %8s\n", "epoch", "train loss", "train acc", "val loss", "val acc", "lr",
           "time");
    display disp = {.tty = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO), .quiet = o.quiet, .log_path = o.log};
    if (o.log && !(disp.log_rows = open_memstream(&disp.log_buf, &disp.log_len))) {
        cli_error("train", EXIT_WORK, "out of memory");
        goto done;
    }
    cfg.user = &disp;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    nr_train_result res;
    double t0 = cli_now();
    st = nr_train(net, train, val, &cfg, &res);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (disp.log_rows)
        fclose(disp.log_rows);
    free(disp.log_buf);
    if (st == NR_ESTOPPED) {
        if (disp.tty)
            fprintf(stderr, "\r\033[K");
        cli_error("train", EXIT_WORK, "interrupted: %s; continue with the same options and --resume %s",
                  nr_error_message(), stop_path);
        goto done;
    }
    if (st) {
        cli_fail("train", st);
        goto done;
    }
    printf("trained in %.1f s", cli_now() - t0);
    if (res.stopped)
        printf("; stopped early, keeping the weights of epoch %zu", res.best_epoch);
    printf("; weights checksum %08x\n", (unsigned)nr_net_checksum(net));
    if (test) {
        nr_eval ev;
        if ((st = nr_evaluate(net, test, &ev))) {
            cli_fail("train", st);
            goto done;
        }
        printf("test: accuracy %.4f, loss %.4f, on %zu samples\n", ev.accuracy, ev.loss, ev.count);
        nr_eval_free(&ev);
    }
    if (o.out) {
        if ((st = nr_model_save(net, o.out))) {
            cli_fail("train", st);
            goto done;
        }
        printf("saved %s\n", o.out);
    }
    ret = 0;
done:
    free(spec);
    nr_net_free(net);
    nr_data_free(train);
    nr_data_free(val);
    nr_data_free(test);
    return ret;
}
