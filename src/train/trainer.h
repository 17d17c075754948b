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

/* A kind of learning problem, as a table: how the loss's targets come from a batch, and how a batch's outputs
 * are scored. The trainer and the evaluator call these and know nothing else of the task. */
typedef struct nr__task {
    const char *name;
    /* Fills b->targets for the first m samples of the batch when `loss` compares outputs with targets. */
    void (*targets)(nr__batches *b, size_t m, size_t outputs, nr_loss loss);
    /* Adds the batch's outputs y (m x outputs) to the tally; `confusion` (may be NULL) is classes x classes. */
    void (*score)(const float *y, const nr__batches *b, size_t m, size_t outputs, nr__tally *tally,
                  size_t *confusion, size_t classes);
} nr__task;

extern const nr__task nr__classification;

/* Adds one batch's loss (the network's head or the training loss `loss`) of m samples to the tally. */
void nr__tally_loss(nr__tally *tally, nr_loss loss, double value, size_t m);
/* The tally's mean loss and score (NaN when empty). */
double nr__tally_mean_loss(const nr__tally *tally);
double nr__tally_accuracy(const nr__tally *tally);

/* Loss and score of the network on a whole data set, in batches of b->cap (evaluate.c). */
nr_status nr__evaluate_into(nr_net *net, const nr__task *task, const nr_dataset *d, nr__batches *b,
                            nr__tally *tally, size_t *confusion, size_t classes);

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

#endif
