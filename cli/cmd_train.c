/* cmd_train.c - `neurite train`: its options, as one table that is the parser, --help and docs/cli.md alike;
 * the checks that need more than one option; then one call that runs the job (train_job.c). */
#include "train.h"

#include <math.h>
#include <stddef.h>

static const cli_choice acts[] = {{"relu", NR_ACT_RELU},         {"leaky", NR_ACT_LEAKY_RELU},
                                  {"sigmoid", NR_ACT_SIGMOID},   {"tanh", NR_ACT_TANH},
                                  {"identity", NR_ACT_IDENTITY}, {0, 0}};
static const cli_choice losses[] = {{"xent", NR_LOSS_XENT}, {"mse", NR_LOSS_MSE}, {"sse", NR_LOSS_SSE}, {0, 0}};
static const cli_choice optimizers[] = {{"adam", NR_OPT_ADAM},         {"adamw", NR_OPT_ADAMW},
                                        {"sgd", NR_OPT_SGD},           {"momentum", NR_OPT_MOMENTUM},
                                        {"nesterov", NR_OPT_NESTEROV}, {0, 0}};
static const cli_choice schedules[] = {{"const", NR_SCHED_CONSTANT}, {"step", NR_SCHED_STEP},
                                       {"cosine", NR_SCHED_COSINE}, {0, 0}};
static const cli_choice scalings[] = {{"unit", NR_SCALE_UNIT}, {"std", NR_SCALE_STANDARD},
                                      {"none", NR_SCALE_NONE}, {"auto", SCALE_AUTO}, {0, 0}};
static const cli_choice tasks[] = {{"classify", NR_TASK_CLASSIFY}, {"regress", NR_TASK_REGRESS}, {0, 0}};
static const cli_choice missings[] = {{"refuse", NR_MISSING_REFUSE}, {"drop", NR_MISSING_DROP},
                                      {"mean", NR_MISSING_MEAN}, {0, 0}};
static const cli_choice reductions[] = {{"sum", NR_REDUCE_SUM}, {"ordered", NR_REDUCE_ORDERED}, {0, 0}};
static const cli_choice inits[] = {{"auto", NR_INIT_AUTO},           {"normal", NR_INIT_STD_NORMAL},
                                   {"xavier", NR_INIT_XAVIER_UNIFORM}, {"xavier-normal", NR_INIT_XAVIER_NORMAL},
                                   {"he", NR_INIT_HE_UNIFORM},         {"he-normal", NR_INIT_HE_NORMAL},
                                   {0, 0}};

#define O(field) offsetof(train_options, field)
static const cli_opt options[] = {
    {"data", OPT_STRING, O(data), 0, 0, "NAME|FILE",
     "mnist, fashion, or a file: IDX (.gz), .csv, .npy (mnist)", 0, CLI_RUN},
    {"test", OPT_STRING, O(test), 0, 0, "FILE",
     "test set, evaluated after training (named sets: their own)", 0, CLI_KEEP},
    {"label", OPT_STRING, O(label), 0, 0, "NAME|INDEX",
     "CSV/.npy label column (the last); regression: several, a,b", 0, CLI_RUN},
    {"task", OPT_CHOICE, O(task), 0, 0, "NAME",
     "classify (labels: numbers, or text naming the classes) or regress (numeric targets, mse)", tasks, CLI_RUN},
    {"missing", OPT_CHOICE, O(missing), 0, 0, "NAME",
     "CSV missing values (empty, NA, ?): refuse, drop the row, or fill with the mean (refuse)", missings, CLI_RUN},
    {"layers", OPT_STRING, O(layers), 0, 0, "SPEC|FILE",
     "network, e.g. 784-256-10 or conv32k3-relu-pool2-fc10", 0, CLI_RUN},
    {"act", OPT_CHOICE, O(act), 0, 0, "NAME", "activation between dense layers (relu)", acts, CLI_RUN},
    {"loss", OPT_CHOICE, O(loss), 0, 0, "NAME", "xent is softmax cross-entropy (xent)", losses, CLI_RUN},
    {"opt", OPT_CHOICE, O(opt), 0, 0, "NAME", "optimizer (adam)", optimizers, CLI_RUN},
    {"lr", OPT_FLOAT, O(lr), 1e-9, 10, "X", "learning rate (adam 1e-3, sgd 1e-2)", 0, CLI_RUN},
    {"momentum", OPT_FLOAT, O(momentum), 0, 0.999, "X", "momentum for momentum/nesterov (0.9)", 0, CLI_RUN},
    {"wd", OPT_FLOAT, O(wd), 0, 0.5, "X", "weight decay (0)", 0, CLI_RUN},
    {"clip", OPT_FLOAT, O(clip), 0, 1e6, "X", "clip the gradient's norm to X (0: off)", 0, CLI_RUN},
    {"schedule", OPT_CHOICE, O(schedule), 0, 0, "NAME", "learning-rate schedule (cosine)", schedules, CLI_RUN},
    {"warmup", OPT_FLOAT, O(warmup), 0, 1e6, "EPOCHS", "linear warm-up (0)", 0, CLI_RUN},
    {"step-epochs", OPT_SIZE, O(step_epochs), 1, 1e6, "N", "step schedule: decay every N epochs (1)", 0, CLI_RUN},
    {"gamma", OPT_FLOAT, O(gamma), 1e-6, 1, "X", "step schedule: decay factor (0.1)", 0, CLI_RUN},
    {"epochs", OPT_SIZE, O(epochs), 1, 1e6, "N",
     "passes over the training data (digits 20, images 10, tables about 2000 steps' worth, 10 to 1000)", 0, CLI_RUN},
    {"batch", OPT_SIZE, O(batch), 1, 1 << 20, "N", "samples per step (64)", 0, CLI_RUN},
    {"val", OPT_FLOAT, O(val), 0, 1e9, "F|N", "validation split: a fraction or a count (0.1)", 0, CLI_RUN},
    {"patience", OPT_SIZE, O(patience), 1, 1e6, "N",
     "early stopping after N epochs without progress (off)", 0, CLI_RUN},
    {"scale", OPT_CHOICE, O(scale), 0, 0, "NAME", "input scaling (auto: images unit, tables std)", scalings, CLI_RUN},
    {"augment", OPT_INT, O(augment), 0, 8, "PIXELS",
     "images: random shifts of up to N pixels (digits 2, else 0)", 0, CLI_RUN},
    {"init", OPT_CHOICE, O(init), 0, 0, "NAME",
     "initial weights (auto: He before ReLU, else Xavier)", inits, CLI_RUN},
    {"seed", OPT_U64, O(seed), 0, 1.8e19, "N", "seed for initial weights, shuffling, dropout (1)", 0, CLI_RUN},
    {"reduce", OPT_CHOICE, O(reduce), 0, 0, "NAME",
     "under mpirun, how the processes' gradients are summed (sum: fast; ordered: the same bits on any number of "
     "processes, see --shards)", reductions, CLI_RUN},
    {"shards", OPT_SIZE, O(shards), 1, 4096, "N", "--reduce ordered: shares of each batch, a multiple of the processes (4)",
     0, CLI_RUN},
    {"overlap", OPT_FLAG, O(overlap), 0, 0, "",
     "under mpirun with --reduce sum: start summing each layer's gradients while backward goes on (as DDP)", 0, 0},
    {"threads", OPT_INT, O(threads), 0, 256, "N",
     "threads (0: one per core); results do not depend on it (except with NEURITE_GEMM=blas)", 0, 0},
    {"limit", OPT_SIZE, O(limit), 1, 1e12, "N", "train on the first N samples only", 0, CLI_RUN},
    {"out", OPT_STRING, O(out), 0, 0, "MODEL", "save the trained model here", 0, CLI_KEEP},
    {"log", OPT_STRING, O(log), 0, 0, "FILE.csv", "write per-epoch metrics as CSV", 0, 0},
    {"report", OPT_STRING, O(report), 0, 0, "FILE.html",
     "write a report: curves, confusion matrix, mistakes, first-layer weights (one HTML file)", 0, CLI_KEEP},
    {"checkpoint", OPT_STRING, O(checkpoint), 0, 0, "FILE",
     "save the whole training state here each epoch", 0, CLI_KEEP},
    {"checkpoint-every", OPT_SIZE, O(checkpoint_every), 1, 1e12, "N", "... and every N batches", 0, CLI_KEEP},
    {"resume", OPT_STRING, O(resume), 0, 0, "FILE", "continue from a checkpoint, bit-identically", 0, 0},
    {"check-numerics", OPT_FLAG, O(check_numerics), 0, 0, "", "check every layer for NaN/Inf each step", 0, CLI_KEEP},
    {"quiet", OPT_FLAG, O(quiet), 0, 0, "", "no progress bar", 0, 0},
    {0},
};
#undef O

const cli_command train_command = {
    "train", "[options]",
    "Trains a classifier and reports its accuracy on the test set. With no options it\n"
    "trains an MLP on the MNIST digits, which 'neurite fetch mnist' puts in the data folder\n"
    "($NEURITE_DATA, else $XDG_DATA_HOME/neurite, else ~/.local/share/neurite) for any folder.\n"
    "Every output's folder is checked before training. A checkpoint keeps the run's options:\n"
    "'neurite train --resume FILE' alone continues that run, and refuses an option that would\n"
    "change it.",
    options, 0,
};

const train_options train_defaults = {
    .data = "mnist", .act = NR_ACT_RELU, .loss = NR_LOSS_XENT, .opt = NR_OPT_ADAM, .schedule = NR_SCHED_COSINE,
    .scale = SCALE_AUTO, .init = NR_INIT_AUTO, .val = 0.1, .batch = 64, .augment = -1, .seed = 1, .gamma = 0.1,
};

/* What one option alone cannot say is wrong. */
static int check_options(const train_options *o)
{
    if (o->val >= 1 && o->val != floor(o->val))
        return cli_error("train", EXIT_USAGE, "--val: %g is neither a fraction below 1 nor a whole count", o->val);
    if (o->checkpoint_every && !o->checkpoint)
        return cli_error("train", EXIT_USAGE, "--checkpoint-every needs --checkpoint FILE");
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_job job = {.o = train_defaults};
    int rc = cli_parse(&train_command, &job.o, argc, argv, NULL, NULL, &job.given);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = check_options(&job.o)))
        return rc;
    return train_job_run(&job);
}
