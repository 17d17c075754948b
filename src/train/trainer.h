/* trainer.h - what the pieces of training share: the task table, the batch buffers, the position of a run,
 * and the trainer that nr_train (train.c) drives through them. */
#ifndef NR_TRAINER_H
#define NR_TRAINER_H

#include "data/data.h"

/* ---- batches (evaluate.c) ---- */

/* Buffers one pass over a data set needs, planned once. */
typedef struct nr__batches {
    size_t cap;
    uint32_t *order;     /* sample indices */
    float *x;            /* cap * features */
    int32_t *labels;     /* cap */
    float *targets;      /* cap * outputs: what SSE and MSE compare the outputs with */
} nr__batches;

/* Buffers for batches of up to `cap` from sets of up to `samples`. */
nr_status nr__batches_new(nr__batches *b, size_t cap, size_t samples, size_t features, size_t outputs);
void nr__batches_free(nr__batches *b);

/* ---- tasks (task.c) ---- */

/* What a task adds up over a pass: the loss, and the task's own score. */
typedef struct nr__tally {
    double loss_sum;     /* each batch's loss weighted by its samples (SSE: summed as it is) */
    uint64_t correct;    /* classification: samples whose largest output is their label */
    uint64_t seen;
} nr__tally;

/* A batch as the task sees it: the samples idx[0..m) of a data set, gathered into b. */
typedef struct nr__batch_view {
    const nr_net *net;
    const nr_dataset *data;
    const uint32_t *idx;
    size_t m, outputs;
} nr__batch_view;

/* A kind of learning problem, as a table: how the loss's targets come from a batch, and how a batch's outputs
 * are scored. The trainer and the evaluator call these and know nothing else of the task. */
typedef struct nr__task {
    const char *name;
    /* Fills b->targets for the batch when `loss` compares outputs with targets. */
    void (*targets)(const nr__batch_view *v, nr__batches *b, nr_loss loss);
    /* Adds the batch's outputs y (m x outputs) to the tally; `confusion` (may be NULL) is classes x classes. */
    void (*score)(const nr__batch_view *v, const float *y, const nr__batches *b, nr__tally *tally,
                  size_t *confusion, size_t classes);
} nr__task;

/* Classes, from labels; regression, from a data set's targets (learnt standardised by the network's target
 * scaling, nr_net_fit_scaling). */
extern const nr__task nr__classification, nr__regression;
/* The task of a data set. */
const nr__task *nr__task_of(const nr_dataset *d);

/* Adds one batch's loss (the network's head or the training loss `loss`) of m samples to the tally. */
void nr__tally_loss(nr__tally *tally, nr_loss loss, double value, size_t m);
/* The tally's mean loss and accuracy (NaN when empty; a regression's accuracy is NaN, its tally counts no
 * correct answers and the callers say so). */
double nr__tally_mean_loss(const nr__tally *tally);
double nr__tally_accuracy(const nr__tally *tally);

/* Loss and score of the network on a whole data set, in batches of b->cap (evaluate.c). With `comm` (may be
 * NULL) each process evaluates its part and all receive the totals; `scratch` holds classes^2 doubles for the
 * confusion matrix's sum (may be NULL without one). */
nr_status nr__evaluate_into(nr_net *net, const nr__task *task, const nr_dataset *d, nr__batches *b,
                            const nr_comm *comm, nr__tally *tally, size_t *confusion, size_t classes,
                            double *scratch);

/* A regression's MAE, RMSE and R^2 per target into `out` (metrics.c); shared by the processes of comm. */
nr_status nr__regression_metrics(nr_net *net, const nr_dataset *d, const nr_comm *comm, nr_eval *out);

/* Refuses a data set the network cannot take ("training", "validation", "evaluation" name it). */
nr_status nr__check_data(const nr_net *net, const nr_dataset *d, const char *what);

/* ---- the position of a run (checkpoint.c) ---- */

/* The position and history of a run, saved with the weights and the optimizer's state. */
typedef struct nr__run {
    uint64_t seed;
    uint64_t epoch;          /* the epoch in progress (0-based) */
    uint64_t batch;          /* batches of it done */
    uint64_t samples, batch_size;  /* to refuse resuming on other data or another batch size */
    nr__tally tally;         /* the epoch in progress so far */
    double best_val;
    uint64_t best_epoch, since_best;
    bool has_best;
    float *best;             /* the best weights (early stopping), n_params */
} nr__run;

/* Saves the whole training state, and the caller's note (may be NULL), whole or not at all. */
nr_status nr__checkpoint_save(const char *path, const nr_net *net, nr_optimizer *opt, const nr__run *run,
                              const char *note);
/* Restores weights, scaling, head, optimizer state and position from a checkpoint of the same network, run
 * on as many samples in batches of the same size (run->samples and run->batch_size say which). */
nr_status nr__checkpoint_load(const char *path, nr_net *net, nr_optimizer *opt, nr__run *run);

/* ---- numerics (numerics.c) ---- */

/* Looks for where a non-finite value first appeared, before the update (`backward` false: the weights, then
 * the forward pass layer by layer) or after backward (the loss gradient, then the first layer from the output
 * down whose backward pass made a finite gradient non-finite). Describes it in `where`; false if all is
 * finite. */
bool nr__locate_nonfinite(const nr_net *net, bool backward, char *where, size_t cap);
/* Per-layer health after a step: RMS of outputs and gradients, and the share of dead ReLU units. */
void nr__log_numerics(const nr_net *net, FILE *f, size_t epoch);

/* ---- the run (train.c) ---- */

/* A run in progress: its settings, its buffers, where it stands, and the batch in flight. */
typedef struct nr__trainer {
    nr_net *net;
    const nr_dataset *train, *val;
    nr_train_config cfg;         /* the caller's, with defaults filled in */
    const nr__task *task;
    nr_optimizer *opt;
    nr__batches buf;
    nr__run run;
    size_t outputs, n, batch, batches;
    uint64_t total_steps, warmup;
    nr_progress progress;
    nr_train_result result;
    double best_train_loss, best_train_acc;  /* of the epoch whose weights early stopping keeps */
    bool stop_early;
    double epoch_start;
    char last_checkpoint[300];   /* for the message when a step fails */
    /* sharing the work (shared.c) */
    const nr_comm *comm;         /* NULL or a single process: alone */
    bool writer;                 /* this process writes checkpoints (rank 0, or alone) */
    bool stop_all;               /* a stop request reached some process by the last step's sum */
    size_t shards;               /* passes each batch is computed in: 1 alone, else the processes or, ordered,
                                    cfg.shards */
    size_t first_shard, my_shards;  /* this process's shares of them */
    float *shard_grads;          /* NR_REDUCE_ORDERED: every share's gradient, shards x n_params */
    struct nr__bucket *buckets;  /* overlap: the ranges of the gradient summed as backward finishes them */
    size_t n_buckets;
    nr_status overlap_status;    /* the first failure to start a bucket's sum this step */
    double *scratch;             /* the shared evaluation's sums */
    /* the batch in flight */
    size_t epoch, index, m;      /* epoch and batch index (0-based), samples in the whole batch */
    size_t shard_first, shard_m; /* the share in flight: its first sample (in the batch) and count */
    nr__tally step;              /* this process's shares of the batch, before they are summed */
    const float *y;
    double loss;
    float lr;
} nr__trainer;

/* ---- several processes (shared.c) ---- */

/* Plans the shares of each batch and checks that every process has the same data and network. */
nr_status nr__shared_open(nr__trainer *t);
void nr__shared_close(nr__trainer *t);
/* After a share's backward: keeps its gradient apart when the sum must follow share order (`empty`: the share
 * had no samples, its gradient is zero). */
void nr__shared_keep_gradient(nr__trainer *t, size_t shard, bool empty);
/* Starts the sums of the buckets backward did not (it did not run: an empty share, or a failure), so every
 * process starts the same sums in the same order. */
void nr__shared_finish_buckets(nr__trainer *t);
/* After a failure agreed on: the sums already started finish everywhere (their buffers stay in use until
 * then), and their results are dropped. */
void nr__shared_drain(nr__trainer *t);
/* The batch's gradient from every share on every process, summed. */
nr_status nr__shared_reduce_gradients(nr__trainer *t);
/* After this process's shares of a batch (`local`: how they went): every process learns whether any failed,
 * then adds the batch's tally from all to the run's and learns whether any was asked to stop. A failure
 * anywhere stops every process at the same batch (no process waits for one that left); the process that
 * failed keeps its own message, the others name it. */
nr_status nr__shared_agree(nr__trainer *t, nr_status local);
/* The same after rank 0 wrote (or failed to write) a checkpoint. */
nr_status nr__shared_agree_write(nr__trainer *t, nr_status local);
/* After the update: batch-norm running statistics averaged, so every process keeps the same network. */
nr_status nr__shared_sync_state(nr__trainer *t);

#endif
