/* test_train.c - the training loop: it learns, it is reproducible (same seed, any thread count, and across
 * an interruption and resume), early stopping keeps the best weights, a stop request leaves a checkpoint,
 * and a NaN is traced to the layer where it appeared. */
#include "check.h"
#include "neurite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/neurite-train-XXXXXX";

static const char *path(const char *name)
{
    static char buf[2][256];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

/* Four Gaussian blobs in 10 dimensions, offset so that scaling matters. */
static nr_dataset *blobs(size_t n, uint64_t seed)
{
    nr_rng r;
    nr_rng_seed(&r, seed);
    float *x = malloc(n * 10 * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 4);
        for (int j = 0; j < 10; j++)
            x[i * 10 + j] = 50.0f + 4.0f * (float)nr_rng_normal(&r) + (j % 4 == y[i] ? 12.0f : 0.0f);
    }
    nr_dataset *d = NULL;
    nr_status st = nr_data_from_arrays(x, y, n, 10, &d);
    CHECK(st == NR_OK, "nr_data_from_arrays: %s", nr_error_message());
    free(x);
    free(y);
    return d;
}

static nr_net *fresh(uint64_t seed, nr_dataset *train, const char *spec)
{
    nr_net *net = nr_net_new(10);
    nr_net_add_spec(net, spec, NR_ACT_RELU);
    nr_rng r;
    nr_rng_seed(&r, seed);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_net_fit_scaling(net, train, NR_SCALE_STANDARD);
    return net;
}

static bool same_params(nr_net *a, nr_net *b)
{
    return nr_net_param_count(a) == nr_net_param_count(b) &&
           memcmp(nr_net_params(a), nr_net_params(b), nr_net_param_count(a) * sizeof(float)) == 0;
}

static size_t epochs_seen;
static void count_epochs(const nr_progress *p, void *user)
{
    (void)p;
    (void)user;
    epochs_seen++;
}

static volatile sig_atomic_t stop_flag;
static void stop_after_batches(const nr_progress *p, void *user)
{
    if (p->epoch == 2 && p->batch == 3)
        stop_flag = 1;
    (void)user;
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    nr_dataset *train = blobs(800, 1), *val = blobs(200, 2), *test = blobs(400, 3);
    nr_train_config cfg = {.loss = NR_LOSS_XENT, .opt = {.kind = NR_OPT_ADAM, .lr = 0.01f}, .epochs = 8,
                           .batch = 32, .seed = 5, .schedule = NR_SCHED_COSINE, .warmup_epochs = 1,
                           .on_epoch = count_epochs};

    /* It learns: far above the 25% of chance. */
    nr_set_threads(2);
    nr_net *a = fresh(1, train, "32-16-4");
    nr_train_result res;
    CHECK_OK(nr_train(a, train, val, &cfg, &res));
    nr_eval ev;
    CHECK_OK(nr_evaluate(a, test, &ev));
    CHECK(ev.accuracy > 0.9, "test accuracy %.3f on separable blobs", ev.accuracy);
    CHECK(epochs_seen == 8 && res.epochs_run == 8, "8 epochs reported (%zu)", epochs_seen);
    CHECK(ev.confusion && ev.classes == 4, "a 4x4 confusion matrix");
    size_t diag = 0, all = 0;
    for (size_t i = 0; i < 16; i++) {
        all += ev.confusion[i];
        diag += i % 5 == 0 ? ev.confusion[i] : 0;
    }
    CHECK(all == 400 && fabs((double)diag / 400 - ev.accuracy) < 1e-12, "confusion matrix agrees with accuracy");
    nr_eval_free(&ev);

    /* The same seed at 1 thread: the same weights, bit for bit. */
    nr_set_threads(1);
    nr_net *b = fresh(1, train, "32-16-4");
    CHECK_OK(nr_train(b, train, val, &cfg, NULL));
    CHECK(same_params(a, b), "1 and 2 threads train bit-identical weights");
    nr_net_free(b);
    nr_net_free(a);
    nr_set_threads(2);

    /* Interrupted after 2 epochs and resumed: bit-identical to 4 epochs straight, with dropout and
     * augmentation-free shuffling in play. */
    cfg.epochs = 4;
    cfg.opt.kind = NR_OPT_MOMENTUM;
    cfg.opt.lr = 0.05f;
    nr_net *straight = fresh(3, train, "32-drop0.3-16-4");
    CHECK_OK(nr_train(straight, train, val, &cfg, NULL));
    nr_net *part = fresh(3, train, "32-drop0.3-16-4");
    nr_train_config first = cfg;
    first.epochs = 4;
    first.checkpoint = path("run.ckpt");
    first.on_batch = stop_after_batches;
    first.stop = &stop_flag;
    CHECK_ERR(nr_train(part, train, val, &first, NULL), NR_ESTOPPED);
    CHECK(strstr(nr_error_message(), "run.ckpt") != NULL, "the stop message names the checkpoint: %s",
          nr_error_message());
    nr_net *resumed = NULL;
    CHECK_OK(nr_model_load(path("run.ckpt"), &resumed));  /* a checkpoint is also a model */
    nr_train_config second = cfg;
    second.resume = path("run.ckpt");
    CHECK_OK(nr_train(resumed, train, val, &second, NULL));
    CHECK(same_params(straight, resumed), "stopped mid-epoch and resumed: bit-identical to a straight run");
    nr_net_free(part);
    nr_net_free(resumed);
    /* The way the command line does it: 2 epochs, then resume for 4 in all. With a constant learning rate
     * (a cosine schedule depends on the run's length) this is bit-identical to 4 straight. */
    nr_train_config flat = cfg;
    flat.schedule = NR_SCHED_CONSTANT;
    flat.warmup_epochs = 0;
    nr_net *four = fresh(3, train, "32-drop0.3-16-4");
    CHECK_OK(nr_train(four, train, val, &flat, NULL));
    nr_net *two = fresh(3, train, "32-drop0.3-16-4");
    first = flat;
    first.epochs = 2;
    first.checkpoint = path("epoch.ckpt");
    first.checkpoint_every = 5;
    CHECK_OK(nr_train(two, train, val, &first, NULL));
    second = flat;
    second.resume = path("epoch.ckpt");
    CHECK_OK(nr_train(two, train, val, &second, NULL));
    CHECK(same_params(four, two), "2 epochs + resume to 4: bit-identical to 4 straight");
    nr_net_free(two);
    nr_net_free(four);
    /* Resuming with another batch size or from a plain model is refused. */
    nr_net *other = fresh(3, train, "32-drop0.3-16-4");
    second.batch = 16;
    CHECK_ERR(nr_train(other, train, val, &second, NULL), NR_EFORMAT);
    CHECK(strstr(nr_error_message(), "batch 32") != NULL, "message names the batch sizes: %s", nr_error_message());
    second.batch = cfg.batch;
    CHECK_OK(nr_model_save(other, path("plain.nrm")));
    second.resume = path("plain.nrm");
    CHECK_ERR(nr_train(other, train, val, &second, NULL), NR_EFORMAT);
    nr_net *wrong = fresh(3, train, "8-4");
    second.resume = path("epoch.ckpt");
    CHECK_ERR(nr_train(wrong, train, val, &second, NULL), NR_ESHAPE);
    nr_net_free(wrong);
    nr_net_free(other);
    nr_net_free(straight);

    /* Early stopping: a big network on 40 samples overfits, the validation loss climbs, training stops and
     * the best epoch's weights come back. */
    nr_dataset *few = blobs(40, 9);
    nr_net *es = fresh(4, few, "128-128-4");
    nr_train_config stop = {.opt = {.kind = NR_OPT_ADAM, .lr = 0.01f}, .epochs = 200, .batch = 8, .patience = 3,
                            .seed = 1};
    CHECK_OK(nr_train(es, few, val, &stop, &res));
    nr_eval vev;
    CHECK_OK(nr_evaluate(es, val, &vev));
    CHECK(res.stopped && res.epochs_run < 200, "stopped early after %zu epochs", res.epochs_run);
    CHECK(res.best_epoch + 3 == res.epochs_run, "best epoch %zu, stopped %zu", res.best_epoch, res.epochs_run);
    CHECK(fabs(vev.loss - res.best_val_loss) < 1e-6 * (1 + res.best_val_loss),
          "the kept weights score the best validation loss (%g vs %g)", vev.loss, res.best_val_loss);
    nr_eval_free(&vev);
    nr_net_free(es);
    nr_data_free(few);

    /* Plain SGD takes its steps inside the backward pass (nr_net_backward_step); with --check-numerics the
     * gradient is checked between backward and step, so the step comes after: the same weights. */
    for (int threads = 1; threads <= 2; threads++) {
        nr_set_threads(threads);
        nr_train_config sgd = {.loss = NR_LOSS_XENT, .opt = {.kind = NR_OPT_SGD, .lr = 0.05f, .weight_decay = 1e-3f},
                               .epochs = 2, .batch = 24, .seed = 9};
        nr_net *fused = fresh(8, train, "32-16-4"), *apart = fresh(8, train, "32-16-4");
        CHECK_OK(nr_train(fused, train, NULL, &sgd, NULL));
        sgd.check_numerics = 1;
        CHECK_OK(nr_train(apart, train, NULL, &sgd, NULL));
        CHECK(same_params(fused, apart), "%d threads: SGD stepped in backward trains the weights of backward, then "
              "step", threads);
        nr_net_free(fused);
        nr_net_free(apart);
    }
    nr_set_threads(2);

    /* A NaN is traced to where it started. */
    nr_net *bad = fresh(5, train, "16-8-4");
    nr_tensor_info ti;
    nr_net_find_tensor(bad, "dense2.w", &ti);
    nr_net_params(bad)[ti.offset + 3] = NAN;
    CHECK_ERR(nr_train(bad, train, val, &cfg, NULL), NR_ENUMERIC);
    CHECK(strstr(nr_error_message(), "backward pass of layer 2 (dense 16->8)") &&
              strstr(nr_error_message(), "epoch 1, batch 1"),
          "NaN message: %s", nr_error_message());
    nr_net_free(bad);
    nr_net *blow = fresh(5, train, "16-8-4");
    nr_train_config hot = {.opt = {.kind = NR_OPT_SGD, .lr = 1e3f}, .loss = NR_LOSS_SSE, .epochs = 3,
                           .check_numerics = 1, .checkpoint = path("hot.ckpt")};
    nr_status st = nr_train(blow, train, NULL, &hot, NULL);
    CHECK(st == NR_ENUMERIC && strstr(nr_error_message(), "layer"), "exploding run stops with %s: %s",
          nr_status_string(st), nr_error_message());
    nr_net_free(blow);

    /* Configuration errors. */
    nr_net *c = fresh(6, train, "8-4");
    nr_train_config badcfg = {.epochs = 2000000};
    CHECK_ERR(nr_train(c, train, NULL, &badcfg, NULL), NR_EINVAL);
    badcfg = (nr_train_config){.patience = 3};
    CHECK_ERR(nr_train(c, train, NULL, &badcfg, NULL), NR_EINVAL);
    badcfg = (nr_train_config){.augment_shift = 40};
    CHECK_ERR(nr_train(c, train, NULL, &badcfg, NULL), NR_EINVAL);
    nr_net *narrow = fresh(6, train, "8-3");  /* 3 outputs for 4 classes */
    CHECK_ERR(nr_train(narrow, train, NULL, &cfg, NULL), NR_ESHAPE);
    nr_net *wide = nr_net_new(7);
    nr_net_add_spec(wide, "4", NR_ACT_RELU);
    CHECK_ERR(nr_train(wide, train, NULL, &cfg, NULL), NR_ESHAPE);  /* 7 inputs for 10 features */
    nr_net_free(wide);
    nr_net_free(narrow);
    nr_net_free(c);

    /* Schedules. */
    CHECK(nr_lr_at(NR_SCHED_CONSTANT, 0.1f, 50, 100, 0, 0, 0) == 0.1f, "constant");
    CHECK(fabsf(nr_lr_at(NR_SCHED_COSINE, 0.1f, 50, 100, 0, 0, 0) - 0.05f) < 1e-6f, "cosine halfway");
    CHECK(nr_lr_at(NR_SCHED_COSINE, 0.1f, 100, 100, 0, 0, 0) < 1e-9f, "cosine ends at 0");
    CHECK(fabsf(nr_lr_at(NR_SCHED_STEP, 0.1f, 25, 100, 0, 10, 0.5f) - 0.025f) < 1e-7f, "step decays twice by 25");
    CHECK(fabsf(nr_lr_at(NR_SCHED_COSINE, 0.1f, 4, 100, 10, 0, 0) - 0.05f) < 1e-7f, "warm-up rises linearly");

    nr_data_free(train);
    nr_data_free(val);
    nr_data_free(test);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "clean up");
    return check_report("test_train");
}
