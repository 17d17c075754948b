/* test_shared.c - one run on several processes (nr_train_config.comm), with threads standing in for the
 * processes and a comm of shared memory and barriers: the ordered reduction gives the same bits on 1, 2 and 4
 * "processes" and the default sum agrees to rounding; data that differs is refused everywhere; a stop
 * request on one process stops all at the same batch with one checkpoint; shared evaluation equals the
 * lone one. MPI itself is exercised by test_mpi.sh; this covers the library's side under the sanitizers. */
#include "check.h"
#include "neurite.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_RANKS = 4 };

/* The shared memory the threads talk through. */
typedef struct world {
    int size;
    pthread_barrier_t barrier;
    void *published[MAX_RANKS];
} world;

typedef struct rank_comm {
    world *w;
    int rank;
} rank_comm;

/* Each rank publishes its buffer; after the barrier every rank sums all of them in rank order into a private
 * copy, and after a second barrier (nobody reads any more) writes it back. */
static nr_status sum_floats(void *ctx, float *values, size_t count)
{
    rank_comm *c = ctx;
    c->w->published[c->rank] = values;
    pthread_barrier_wait(&c->w->barrier);
    float *total = calloc(count ? count : 1, sizeof *total);
    for (int r = 0; total && r < c->w->size; r++)
        for (size_t i = 0; i < count; i++)
            total[i] += ((const float *)c->w->published[r])[i];
    pthread_barrier_wait(&c->w->barrier);
    if (total)
        memcpy(values, total, count * sizeof *total);
    free(total);
    pthread_barrier_wait(&c->w->barrier);
    return total ? NR_OK : nr_error_set(NR_ENOMEM, "out of memory");
}

static nr_status sum_doubles(void *ctx, double *values, size_t count)
{
    rank_comm *c = ctx;
    c->w->published[c->rank] = values;
    pthread_barrier_wait(&c->w->barrier);
    double total[16] = {0};
    for (int r = 0; r < c->w->size; r++)
        for (size_t i = 0; i < count && i < 16; i++)
            total[i] += ((const double *)c->w->published[r])[i];
    pthread_barrier_wait(&c->w->barrier);
    memcpy(values, total, (count < 16 ? count : 16) * sizeof *total);
    pthread_barrier_wait(&c->w->barrier);
    return count <= 16 ? NR_OK : nr_error_set(NR_EINVAL, "the test's comm sums at most 16 doubles");
}

static nr_status gather_floats(void *ctx, float *all, size_t count)
{
    rank_comm *c = ctx;
    c->w->published[c->rank] = all;
    pthread_barrier_wait(&c->w->barrier);
    for (int r = 0; r < c->w->size; r++)
        if (r != c->rank)
            memcpy(all + (size_t)r * count, (const float *)c->w->published[r] + (size_t)r * count,
                   count * sizeof *all);
    pthread_barrier_wait(&c->w->barrier);
    return NR_OK;
}

/* Four Gaussian blobs in 10 dimensions. */
static nr_dataset *blobs(size_t n, uint64_t seed, float offset)
{
    nr_rng r;
    nr_rng_seed(&r, seed);
    float *x = malloc(n * 10 * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 4);
        for (int j = 0; j < 10; j++)
            x[i * 10 + j] = offset + 3.0f * nr_rng_normal(&r) + (j % 4 == y[i] ? 4.0f : 0.0f);
    }
    nr_dataset *d = NULL;
    nr_data_from_arrays(x, y, n, 10, &d);
    free(x);
    free(y);
    return d;
}

/* One rank's run: its own network (the same seed everywhere), the same data, the shared settings. */
typedef struct job {
    rank_comm comm_ctx;
    nr_comm comm;
    const char *spec;
    nr_train_config cfg;
    nr_dataset *train, *val;
    nr_status st;
    char message[512];
    uint32_t checksum;
    nr_train_result res;
    nr_eval eval;
    volatile sig_atomic_t stop;
    int stop_at_batch;           /* this rank asks to stop after this batch of epoch 1 (0: never) */
} job;

static void maybe_stop(const nr_progress *p, void *user)
{
    job *j = user;
    if (j->stop_at_batch && p->epoch == 1 && (int)p->batch == j->stop_at_batch)
        j->stop = 1;
}

static void *run_rank(void *arg)
{
    job *j = arg;
    nr_net *net = nr_net_new(10);
    nr_net_add_spec(net, j->spec, NR_ACT_RELU);
    nr_rng r;
    nr_rng_seed(&r, 7);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_net_fit_scaling(net, j->train, NR_SCALE_STANDARD);
    nr_train_config cfg = j->cfg;
    if (j->comm.size > 1)
        cfg.comm = &j->comm;
    cfg.stop = &j->stop;
    cfg.on_batch = maybe_stop;
    cfg.user = j;
    j->st = nr_train(net, j->train, j->val, &cfg, &j->res);
    snprintf(j->message, sizeof j->message, "%s", nr_error_message());
    j->checksum = nr_net_checksum(net);
    if (!j->st)
        nr_evaluate_shared(net, j->val, cfg.comm, &j->eval);
    nr_net_free(net);
    return NULL;
}

/* Runs `size` ranks; rank r trains on train[r] (NULL: train[0]). Fills jobs[0..size). */
static void run_world(int size, const char *spec, const nr_train_config *cfg, nr_dataset **train, nr_dataset *val,
                      int stop_rank, int stop_batch, job *jobs)
{
    world w = {.size = size};
    pthread_barrier_init(&w.barrier, NULL, (unsigned)size);
    pthread_t threads[MAX_RANKS];
    for (int r = 0; r < size; r++) {
        jobs[r] = (job){.comm_ctx = {&w, r}, .spec = spec, .cfg = *cfg, .train = train[r] ? train[r] : train[0],
                        .val = val, .stop_at_batch = r == stop_rank ? stop_batch : 0};
        jobs[r].comm = (nr_comm){r, size, sum_floats, sum_doubles, gather_floats, &jobs[r].comm_ctx, NULL, NULL};
        pthread_create(&threads[r], NULL, run_rank, &jobs[r]);
    }
    for (int r = 0; r < size; r++)
        pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&w.barrier);
}

static void free_jobs(job *jobs, int size)
{
    for (int r = 0; r < size; r++)
        nr_eval_free(&jobs[r].eval);
}

int main(void)
{
    char dir[] = "/tmp/neurite-shared-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    nr_set_threads(1);
    nr_dataset *train = blobs(500, 1, 20.0f), *val = blobs(150, 2, 20.0f), *other = blobs(500, 9, 20.0f);
    nr_dataset *sets[MAX_RANKS] = {train};
    nr_train_config cfg = {.loss = NR_LOSS_XENT, .opt = {.kind = NR_OPT_MOMENTUM, .lr = 0.05f}, .epochs = 3,
                           .batch = 50, .seed = 5};
    job one[1], two[2], four[4];

    /* Ordered: the same bits on 1, 2 and 4 processes, with augmentation-free dropout-free data. */
    cfg.reduce = NR_REDUCE_ORDERED;
    run_world(1, "16-16-4", &cfg, sets, val, -1, 0, one);
    run_world(2, "16-16-4", &cfg, sets, val, -1, 0, two);
    run_world(4, "16-16-4", &cfg, sets, val, -1, 0, four);
    CHECK(one[0].st == NR_OK && two[0].st == NR_OK && four[0].st == NR_OK, "ordered runs: %s / %s / %s",
          one[0].message, two[0].message, four[0].message);
    CHECK(one[0].checksum == two[0].checksum && two[0].checksum == two[1].checksum, "ordered: 1 and 2 processes "
          "give the same weights (%08x, %08x, %08x)", one[0].checksum, two[0].checksum, two[1].checksum);
    CHECK(one[0].checksum == four[0].checksum && four[3].checksum == four[0].checksum,
          "ordered: 4 processes give the same weights (%08x, %08x)", four[0].checksum, four[3].checksum);
    /* (its loss is summed in another order: equal to rounding) */
    CHECK(one[0].eval.accuracy == four[2].eval.accuracy &&
              fabs(one[0].eval.loss - four[2].eval.loss) <= 1e-12 * one[0].eval.loss,
          "shared evaluation on 4 equals the lone one (%.4f vs %.4f, loss %.17g vs %.17g)", four[2].eval.accuracy,
          one[0].eval.accuracy, four[2].eval.loss, one[0].eval.loss);
    CHECK(one[0].eval.accuracy > 0.8, "it learns: accuracy %.3f", one[0].eval.accuracy);
    free_jobs(one, 1);
    free_jobs(two, 2);
    free_jobs(four, 4);

    /* The default sum: every process the same weights, and the loss of one process to rounding. With batch
     * normalisation too (its running statistics averaged, so the processes stay identical). */
    cfg.reduce = NR_REDUCE_SUM;
    run_world(1, "16-16-4", &cfg, sets, val, -1, 0, one);
    run_world(2, "16-16-4", &cfg, sets, val, -1, 0, two);
    CHECK(two[0].st == NR_OK && two[0].checksum == two[1].checksum, "sum: both processes hold the same weights");
    double rel = fabs(two[0].res.train_loss - one[0].res.train_loss) / one[0].res.train_loss;
    CHECK(rel < 1e-5, "sum: 2 processes' final loss %.9g vs one's %.9g (relative %.2g)", two[0].res.train_loss,
          one[0].res.train_loss, rel);
    free_jobs(one, 1);
    free_jobs(two, 2);
    run_world(2, "16-bn-16-4", &cfg, sets, val, -1, 0, two);
    CHECK(two[0].st == NR_OK && two[0].checksum == two[1].checksum,
          "batch norm: both processes hold the same weights and statistics (%s)", two[0].message);
    free_jobs(two, 2);

    /* Different data on one process: refused everywhere, in one message that names it. */
    sets[1] = other;
    run_world(2, "16-4", &cfg, sets, val, -1, 0, two);
    for (int r = 0; r < 2; r++)
        CHECK(two[r].st == NR_EINVAL && strstr(two[r].message, "process 1's training data differs"),
              "rank %d: %s", r, two[r].message);
    free_jobs(two, 2);
    sets[1] = NULL;

    /* A stop request on process 1 alone: both stop at the same batch; rank 0 wrote one checkpoint. */
    char ckpt[64];
    snprintf(ckpt, sizeof ckpt, "%s/stop.ckpt", dir);
    cfg.checkpoint = ckpt;
    run_world(2, "16-4", &cfg, sets, val, 1, 4, two);
    CHECK(two[0].st == NR_ESTOPPED && two[1].st == NR_ESTOPPED, "both stopped: %s / %s", two[0].message,
          two[1].message);
    CHECK(strcmp(two[0].message, two[1].message) == 0 && strstr(two[0].message, "batch 5"),
          "at the same batch: '%s' / '%s'", two[0].message, two[1].message);
    nr_checkpoint_info info;
    CHECK_OK(nr_checkpoint_read(ckpt, &info));
    CHECK(info.epoch == 0 && info.batch == 5, "the checkpoint is at epoch 0, batch 5 (%llu, %llu)",
          (unsigned long long)info.epoch, (unsigned long long)info.batch);
    nr_checkpoint_info_free(&info);
    free_jobs(two, 2);

    /* Settings the processes cannot share. */
    cfg.checkpoint = NULL;
    cfg.reduce = NR_REDUCE_ORDERED;
    cfg.shards = 3;
    run_world(2, "16-4", &cfg, sets, val, -1, 0, two);
    CHECK(two[0].st == NR_EINVAL && strstr(two[0].message, "3 shares of each batch cannot be split evenly among 2"),
          "3 shares on 2 processes: %s", two[0].message);
    free_jobs(two, 2);

    remove(ckpt);
    rmdir(dir);
    nr_data_free(train);
    nr_data_free(val);
    nr_data_free(other);
    return check_report("test_shared");
}
