/* train_job.c - one run of `neurite train`, step by step: the data, the network, what the run will do, the
 * training itself, the test accuracy, the saved model. Each step prints its one line on failure and returns
 * the exit code. */
#include "train.h"

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

/* Splits off the validation samples (--val: a fraction or a count) with a generator of their own. */
static int split_validation(train_job *j)
{
    const train_options *o = &j->o;
    size_t n_val = o->val < 1 ? (size_t)(o->val * (double)j->total) : (size_t)o->val;
    if (n_val >= j->total)
        return cli_error("train", EXIT_USAGE, "--val: %zu validation samples leave none of the %zu to train on",
                         n_val, j->total);
    nr_rng split_rng;
    nr_rng_seed(&split_rng, o->seed ^ 0x5eed5eedULL);
    nr_status st;
    if (n_val && (st = nr_data_split(j->train, n_val, &split_rng, &j->val)))
        return cli_fail("train", st);
    return 0;
}

static int load_data(train_job *j)
{
    const train_options *o = &j->o;
    int rc = cli_resolve_data("train", o->data, &j->src);
    if (rc)
        return rc;
    nr_data_options opts = {.label = o->label, .task = (nr_task)o->task, .missing = (nr_missing)o->missing};
    if (cli_load("train", j->src.train, &opts, &j->train))
        return EXIT_WORK;
    nr_status st;
    if (o->limit && (st = nr_data_truncate(j->train, o->limit)))
        return cli_fail("train", st);
    j->digits = strcmp(o->data, "mnist") == 0;
    j->image = nr_data_is_image(j->train);
    j->regress = nr_data_target_count(j->train) > 0;
    j->classes = j->regress ? nr_data_target_count(j->train) : nr_data_classes(j->train);
    j->total = nr_data_count(j->train);
    nr_data_shape(j->train, j->shape);
    if (j->classes < 2 && !j->regress)
        return cli_error("train", EXIT_WORK, "%s: the labels hold only one class; nothing to classify", j->src.train);
    return split_validation(j);
}

/* The test set, read as the network reads its inputs (a table's text values, its class names). */
static int load_test(train_job *j)
{
    const char *path = j->o.test ? j->o.test : (j->src.named ? j->src.test : NULL);
    nr_data_options opts = {.label = j->o.label, .model = j->net};
    return path ? cli_load("train", path, &opts, &j->test) : 0;
}

/* A new network from the layer list (or the default for the data), initialised and scaled for the data. */
static int build_from_spec(train_job *j)
{
    const train_options *o = &j->o;
    bool picture = j->image && j->shape[0] > 1;
    char def[128];
    snprintf(def, sizeof def, picture ? "512-256-%zu" : "64-64-%zu", j->classes);
    if (!j->layers)
        j->layers = train_read_layers(o->layers ? o->layers : def);
    j->o.layers = j->layers;
    j->net = picture ? nr_net_new_image(j->shape[0], j->shape[1], j->shape[2])
                     : nr_net_new(j->shape[0] * j->shape[1] * j->shape[2]);
    nr_status st;
    if (!j->net || !j->layers || (st = nr_net_add_spec(j->net, j->layers, (nr_act)o->act)))
        return cli_error("train", EXIT_USAGE, "--layers: %s",
                         j->net && j->layers ? nr_error_message() : "out of memory");
    nr_rng init_rng;
    nr_rng_seed(&init_rng, o->seed);
    nr_net_init(j->net, (nr_init)o->init, &init_rng);
    nr_scaling sc = o->scale == SCALE_AUTO ? (j->image ? NR_SCALE_UNIT : NR_SCALE_STANDARD) : (nr_scaling)o->scale;
    if ((st = nr_net_fit_scaling(j->net, j->train, sc)))
        return cli_fail("train", st);
    return 0;
}

/* Without --epochs: 20 for the digits, 10 for other images, and for a table enough passes for about 2000 steps
 * (10 to 1000): a small table of a hundred rows learns nothing in 10 epochs of 2 steps. */
static size_t default_epochs(const train_job *j)
{
    if (j->digits)
        return 20;
    if (j->image)
        return 10;
    size_t batches = (nr_data_count(j->train) + j->o.batch - 1) / j->o.batch;
    size_t epochs = (2000 + batches - 1) / batches;
    return epochs < 10 ? 10 : epochs > 1000 ? 1000 : epochs;
}

/* The network (from the checkpoint when resuming), checked against the data and the options. */
static int build_network(train_job *j)
{
    nr_status st;
    int rc;
    if (j->o.resume && (st = nr_model_load(j->o.resume, &j->net)))
        return cli_fail("train", st);
    if (!j->o.resume && (rc = build_from_spec(j)))
        return rc;
    if (nr_net_output_size(j->net) != j->classes && (j->o.loss == NR_LOSS_XENT || j->regress))
        return cli_error("train", EXIT_USAGE, "--layers: the network has %zu outputs but the data has %zu %s",
                         nr_net_output_size(j->net), j->classes, j->regress ? "targets" : "classes");
    j->augment = j->o.augment >= 0 ? j->o.augment : (j->digits ? 2 : 0);
    if (j->augment && !j->image)
        return cli_error("train", EXIT_USAGE, "--augment: shifts apply to images, and %s holds a table", j->src.train);
    j->epochs = j->o.epochs ? j->o.epochs : default_epochs(j);
    j->o.augment = j->augment;  /* as resolved: what the checkpoints keep */
    j->o.epochs = j->epochs;
    return 0;
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

/* What the run is about to do: the data, the scaling, the model, the settings, and the epoch table's head. */
static void describe(const train_job *j, const nr_train_config *cfg)
{
    const train_options *o = &j->o;
    printf("data: %s: %zu samples of %zux%zux%zu, %zu %s; %zu to train, %zu to validate", j->src.train,
           j->total, j->shape[0], j->shape[1], j->shape[2], j->classes, j->regress ? "targets" : "classes",
           nr_data_count(j->train), j->val ? nr_data_count(j->val) : 0);
    if (j->test)
        printf("; %zu to test", nr_data_count(j->test));
    printf("\nscaling: %s; augmentation: %s\n", scaling_text(nr_net_scaling(j->net), j->image),
           j->augment ? (j->augment == 1 ? "random shifts of up to 1 pixel" : "random shifts of up to 2 pixels")
                      : "none");
    if (j->augment > 2)
        printf("  (shifts of up to %d pixels)\n", j->augment);
    printf("model:\n");
    nr_net_print_summary(j->net, stdout);
    bool adam = o->opt == NR_OPT_ADAM || o->opt == NR_OPT_ADAMW;
    float lr = cfg->opt.lr > 0 ? cfg->opt.lr : (adam ? 1e-3f : 1e-2f);
    printf("training: %s, lr %g, %s schedule, batch %zu, %zu epochs, seed %llu, %d threads (%s kernel)%s\n",
           cli_choice_name(&train_command, "opt", o->opt), (double)lr,
           cli_choice_name(&train_command, "schedule", o->schedule), o->batch, j->epochs,
           (unsigned long long)o->seed, nr_threads(), nr_gemm_backend(), o->resume ? ", resumed" : "");
    printf("%5s  %10s  %9s  %9s  %9s  %9s  %8s\n", "epoch", "train loss", "train acc", "val loss", "val acc", "lr",
           "time");
}

static nr_train_config train_config(train_job *j)
{
    const train_options *o = &j->o;
    nr_train_config cfg = {
        .loss = j->regress && !cli_was_given(&train_command, j->given, "loss") ? NR_LOSS_MSE : (nr_loss)o->loss,
        .opt = {.kind = (nr_opt_kind)o->opt, .lr = (float)o->lr, .momentum = (float)o->momentum,
                .weight_decay = (float)o->wd, .clip_norm = (float)o->clip},
        .epochs = j->epochs, .batch = o->batch, .schedule = (nr_schedule)o->schedule,
        .warmup_epochs = (float)o->warmup, .step_epochs = o->step_epochs, .gamma = (float)o->gamma,
        .augment_shift = j->augment, .patience = o->patience, .seed = o->seed, .checkpoint = o->checkpoint,
        .checkpoint_every = o->checkpoint_every, .resume = o->resume, .check_numerics = o->check_numerics,
        .numerics_log = o->check_numerics ? stdout : NULL, .on_batch = train_display_batch,
        .on_epoch = train_display_epoch, .stop = &stop_requested, .note = j->note, .comm = cli_comm(),
        .reduce = (nr_reduce)o->reduce, .shards = o->shards, .overlap = o->overlap,
    };
    if (cli_rank() != 0)  /* one process reports: the others keep their numbers to themselves */
        cfg.numerics_log = NULL;
    snprintf(j->stop_path, sizeof j->stop_path, "%s%s", o->checkpoint ? o->checkpoint : o->out ? o->out : "neurite",
             o->checkpoint ? "" : ".ckpt");
    cfg.stop_checkpoint = j->stop_path;
    return cfg;
}

/* When a file cannot be written where asked (the disk filled, the folder went away), the weights of the run are
 * not lost: they go beside the checkpoint, or into the temporary folder, and the one line says where. */
static int save_elsewhere(train_job *j, const char *what)
{
    char why[512], place[4300];
    snprintf(why, sizeof why, "%s", nr_error_message());
    const char *tmp = getenv("TMPDIR"), *name = j->o.out ? j->o.out : "model.nrm";
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    if (j->o.checkpoint)
        snprintf(place, sizeof place, "%s.final.nrm", j->o.checkpoint);
    if (!j->o.checkpoint || nr_model_save(j->net, place) != NR_OK) {
        snprintf(place, sizeof place, "%s/neurite-%ld-%s", tmp && *tmp ? tmp : "/tmp", (long)getpid(), base);
        if (nr_model_save(j->net, place) != NR_OK)
            return cli_error("train", EXIT_WORK, "%s; nor could the weights be saved in %s: %s", why, place,
                             nr_error_message());
    }
    return cli_error("train", EXIT_WORK, "%s; the %s are saved in %s instead", why, what, place);
}

/* Trains with the live display; Ctrl-C or SIGTERM stops at the next batch with a checkpoint. */
static int fit(train_job *j, nr_train_config *cfg)
{
    train_display disp;
    int rc = train_display_open(&disp, j->o.quiet, j->o.log);
    if (rc)
        return rc;
    disp.epochs = j->o.report ? &j->history : NULL;
    cfg->user = &disp;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    nr_train_result res;
    double t0 = cli_now();
    nr_status st = nr_train(j->net, j->train, j->val, cfg, &res);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (st == NR_ESTOPPED) {
        train_display_clear(&disp);
        rc = cli_error("train", EXIT_WORK, "interrupted: %s; continue with: neurite train --resume %s",
                       nr_error_message(), j->stop_path);
    } else if (st == NR_EIO && disp.steps) {  /* a checkpoint could not be written: keep what the run learnt */
        train_display_clear(&disp);
        rc = save_elsewhere(j, "weights so far");
    } else if (st) {
        rc = cli_fail("train", st);
    } else {
        printf("trained in %.1f s", cli_now() - t0);
        if (res.stopped)
            printf("; stopped early, keeping the weights of epoch %zu", res.best_epoch);
        printf("; weights checksum %08x\n", (unsigned)nr_net_checksum(j->net));
    }
    train_display_close(&disp);
    return rc;
}

static int test_and_save(train_job *j)
{
    nr_status st;
    if (j->test) {
        nr_eval ev;
        if ((st = nr_evaluate_shared(j->net, j->test, cli_comm(), &ev)))
            return cli_fail("train", st);
        if (ev.targets)
            for (size_t t = 0; t < ev.targets; t++)
                printf("test: %s: MAE %.6g, RMSE %.6g, R^2 %.4f, on %zu samples\n",
                       nr_net_target_name(j->net, t) ? nr_net_target_name(j->net, t) : "target", ev.mae[t],
                       ev.rmse[t], ev.r2[t], ev.count);
        else
            printf("test: accuracy %.4f, loss %.4f, on %zu samples\n", ev.accuracy, ev.loss, ev.count);
        nr_eval_free(&ev);
    }
    if (j->o.out && cli_rank() == 0) {
        if (nr_model_save(j->net, j->o.out) != NR_OK)
            return save_elsewhere(j, "trained weights");
        printf("saved %s\n", j->o.out);
    }
    return 0;
}

/* The report judges the model on the test set, else the validation set; its options are the checkpoints'. */
static int write_report(train_job *j)
{
    const nr_dataset *data = j->test ? j->test : j->val;
    char title[512];
    snprintf(title, sizeof title, "neurite: %.200s on %.200s", j->o.out ? j->o.out : "a model", j->src.train);
    report_input in = {.net = j->net, .data = data, .data_name = j->test ? "the test set" : "the validation set",
                       .epochs = &j->history, .title = title, .options = j->note ? strchr(j->note, '\n') + 1 : NULL};
    int rc = report_write("train", j->o.report, &in);
    if (!rc)
        printf("report: %s\n", j->o.report);
    return rc;
}

/* Every file the run will write, refused now if its folder cannot take it, not after hours of training. */
static int check_outputs(const train_job *j)
{
    if (cli_rank() != 0)  /* only rank 0 writes */
        return 0;
    const char *names[] = {"out", "checkpoint", "log", "report"};
    const char *paths[] = {j->o.out, j->o.checkpoint, j->o.log, j->o.report};
    for (int i = 0; i < 4; i++) {
        int rc = paths[i] ? cli_check_output("train", names[i], paths[i]) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int train_job_run(train_job *j)
{
    if (cli_rank() != 0) {  /* under mpirun, rank 0 alone prints, logs and saves */
        j->o.quiet = true;
        j->o.log = NULL;
        if (!freopen("/dev/null", "w", stdout))
            return cli_error("train", EXIT_WORK, "cannot silence the output of process %d", cli_rank());
    }
    int rc = j->o.resume ? train_resume_options(j) : 0;
    if (!rc)
        rc = check_outputs(j);
    if (!rc) {
        nr_set_threads(j->o.threads);
        rc = load_data(j);
    }
    if (!rc)
        rc = build_network(j);
    if (!rc)
        rc = load_test(j);
    if (!rc)
        rc = train_record_options(j);
    rc = cli_agree(rc);  /* no process trains while another could not start */
    if (!rc) {
        nr_train_config cfg = train_config(j);
        describe(j, &cfg);
        rc = fit(j, &cfg);
    }
    if (!rc)
        rc = test_and_save(j);
    if (!rc && j->o.report && cli_rank() == 0)
        rc = write_report(j);
    report_epochs_free(&j->history);
    free(j->note);
    free(j->stored);
    free(j->layers);
    nr_net_free(j->net);
    nr_data_free(j->train);
    nr_data_free(j->val);
    nr_data_free(j->test);
    return rc;
}
