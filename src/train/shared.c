/* shared.c - one run on several processes (data parallelism), through the caller's nr_comm: each process
 * holds the whole network and computes the gradient of its shares of every batch; the gradients are summed
 * everywhere, and every process takes the same update. Nothing here knows how the processes talk.
 *
 * Two ways to sum. NR_REDUCE_SUM: one share per process, one sum by the transport (an allreduce); its order is
 * the transport's, so runs on different numbers of processes agree to rounding. NR_REDUCE_ORDERED: a fixed
 * number of shares whatever the process count, each share's gradient gathered everywhere and added in share
 * order, so 1, 2 or 4 processes give the same bits - the single process computes the same shares itself. */
#include "train/trainer.h"

#include <stdlib.h>

enum { DEFAULT_SHARDS = 4, CHECKS = 8, SUM_GRAIN = 16384, BUCKET_FLOATS = 1 << 18 };

/* Adjacent layers whose parameters are summed as one: [begin, end) of the gradient buffer, started when
 * backward has finished `lowest`, the first of them. */
typedef struct nr__bucket {
    size_t lowest, begin, end;
    bool started;
} nr__bucket;

static nr_status check_comm(const nr_comm *c)
{
    if (!c)
        return NR_OK;
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return nr__fail(NR_EINVAL, "process %d of %d is not a valid rank", c->rank, c->size);
    if (!c->sum || !c->sum_f64 || !c->gather)
        return nr__fail(NR_EINVAL, "nr_comm: the sum, sum_f64 and gather operations must all be given");
    return NR_OK;
}

/* A CRC-32 of a data set's shape, values and labels. */
static uint32_t data_checksum(const nr_dataset *d)
{
    if (!d)
        return 0;
    uint64_t shape[2] = {d->n, d->features};
    uint32_t crc = nr__crc32(0, shape, sizeof shape);
    if (d->u8)
        crc = nr__crc32(crc, d->u8, d->n * d->features);
    else if (d->f32)
        crc = nr__crc32(crc, d->f32, d->n * d->features * sizeof(float));
    return nr__crc32(crc, d->labels, d->n * sizeof *d->labels);
}

/* Every process must train the same network on the same data, or the sums mean nothing: each shares the
 * checksums of its data, its network and its parameter count, and all compare them with rank 0's. */
static nr_status check_same(nr__trainer *t)
{
    const nr_comm *c = t->comm;
    const char *what[CHECKS / 2] = {"training data", "validation data", "network's weights", "network's size"};
    uint32_t mine[CHECKS / 2] = {data_checksum(t->train), data_checksum(t->val), nr_net_checksum(t->net),
                                 (uint32_t)t->net->n_params};
    float *all = calloc((size_t)c->size * CHECKS, sizeof *all);
    if (!all)
        return nr__fail(NR_ENOMEM, "out of memory");
    for (int i = 0; i < CHECKS / 2; i++) {  /* 16-bit halves travel exactly as floats */
        all[(size_t)c->rank * CHECKS + 2 * i] = (float)(mine[i] & 0xffff);
        all[(size_t)c->rank * CHECKS + 2 * i + 1] = (float)(mine[i] >> 16);
    }
    nr_status st = c->gather(c->ctx, all, CHECKS);
    for (int r = 1; !st && r < c->size; r++)
        for (int i = 0; !st && i < CHECKS; i++)
            if (all[(size_t)r * CHECKS + i] != all[i])
                st = nr__fail(NR_EINVAL, "process %d's %s differs from process 0's (checksums %08x and %08x): every "
                              "process must be given the same", r, what[i / 2],
                              (unsigned)all[(size_t)r * CHECKS + i / 2 * 2] |
                                  (unsigned)all[(size_t)r * CHECKS + i / 2 * 2 + 1] << 16,
                              (unsigned)all[i / 2 * 2] | (unsigned)all[i / 2 * 2 + 1] << 16);
    free(all);
    return st;
}

/* The parameter range of layer i: from its first tensor to the end of its last (empty without tensors). */
static void layer_range(const nr_net *net, size_t i, size_t *begin, size_t *end)
{
    const nr_layer *l = &net->layers[i];
    *begin = *end = l->n_tensors ? l->tensor_offset[0] : 0;
    for (int k = 0; k < l->n_tensors; k++) {
        size_t size = 1;
        for (int d = 0; d < l->tensors[k].ndim; d++)
            size *= l->tensors[k].shape[d];
        if (l->tensor_offset[k] + size > *end)
            *end = l->tensor_offset[k] + size;
    }
}

static void start_bucket(nr__trainer *t, nr__bucket *b)
{
    nr_status st = t->comm->sum_start(t->comm->ctx, t->net->grads + b->begin, b->end - b->begin);
    if (st && !t->overlap_status)
        t->overlap_status = nr__prefix(st, "summing the gradients");
    b->started = true;
}

/* nr_net_backward's call: the buckets whose lowest layer is `layer` start summing. */
static void grads_ready(void *ctx, size_t layer)
{
    nr__trainer *t = ctx;
    for (size_t i = 0; i < t->n_buckets; i++)
        if (t->buckets[i].lowest == layer)
            start_bucket(t, &t->buckets[i]);
}

/* Buckets of about 1 MB, from the output layer down, as backward produces them. */
static nr_status plan_buckets(nr__trainer *t)
{
    nr_net *net = t->net;
    if (!(t->buckets = calloc(net->n_layers, sizeof *t->buckets)))
        return nr__fail(NR_ENOMEM, "out of memory");
    nr__bucket open = {0};
    bool have = false;
    for (size_t i = net->n_layers; i-- > 0;) {
        size_t begin, end;
        layer_range(net, i, &begin, &end);
        if (begin == end)
            continue;
        open = have ? (nr__bucket){i, begin, open.end, false} : (nr__bucket){i, begin, end, false};
        have = true;
        if (open.end - open.begin >= BUCKET_FLOATS) {
            t->buckets[t->n_buckets++] = open;
            have = false;
        }
    }
    if (have)
        t->buckets[t->n_buckets++] = open;
    net->grads_ready = grads_ready;
    net->grads_ready_ctx = t;
    return NR_OK;
}

nr_status nr__shared_open(nr__trainer *t)
{
    const nr_comm *c = t->cfg.comm;
    nr_status st = check_comm(c);
    if (st)
        return st;
    size_t k = c ? (size_t)c->size : 1, rank = c ? (size_t)c->rank : 0;
    t->comm = k > 1 ? c : NULL;
    t->writer = rank == 0;
    bool ordered = t->cfg.reduce == NR_REDUCE_ORDERED;
    if (t->cfg.reduce != NR_REDUCE_SUM && !ordered)
        return nr__fail(NR_EINVAL, "unknown reduction %d", (int)t->cfg.reduce);
    t->shards = ordered ? (t->cfg.shards ? t->cfg.shards : DEFAULT_SHARDS) : k;
    if (t->shards % k != 0 || t->shards > 4096)
        return nr__fail(NR_EINVAL, "%zu shares of each batch cannot be split evenly among %zu processes",
                        t->shards, k);
    t->my_shards = t->shards / k;
    t->first_shard = rank * t->my_shards;
    size_t floats;
    if (ordered && (!nr__mul(t->shards, t->net->n_params, &floats) ||
                    !(t->shard_grads = nr__floats(floats))))
        return nr__prefix(NR_ENOMEM, "the ordered reduction's %zu gradients", t->shards);
    if (t->cfg.overlap && t->comm && (ordered || !c->sum_start || !c->sum_wait))
        return nr__fail(NR_EINVAL, "overlapping the sums with backward needs the plain sum and a comm that can "
                                   "start a sum without waiting");
    if (t->cfg.overlap && t->comm && (st = plan_buckets(t)))
        return st;
    return t->comm ? check_same(t) : NR_OK;
}

void nr__shared_close(nr__trainer *t)
{
    nr__free(t->shard_grads);
    t->shard_grads = NULL;
    free(t->buckets);
    t->buckets = NULL;
    t->n_buckets = 0;
    t->net->grads_ready = NULL;
    t->net->grads_ready_ctx = NULL;
}

void nr__shared_finish_buckets(nr__trainer *t)
{
    bool any = false;
    for (size_t i = 0; i < t->n_buckets; i++)
        any |= t->buckets[i].started;
    /* Backward did not run: this process adds zeros to the sum. Without one, nothing reads the gradient here (a
     * fused step leaves none, and clearing 800 KB a step would cost more than the step saved). */
    if (!any && t->comm)
        nr__net_settle_grads(t->net);
    for (size_t i = 0; i < t->n_buckets; i++)
        if (!t->buckets[i].started)
            start_bucket(t, &t->buckets[i]);
}

void nr__shared_keep_gradient(nr__trainer *t, size_t shard, bool empty)
{
    if (!t->shard_grads)
        return;
    float *dst = t->shard_grads + shard * t->net->n_params;
    if (empty) {
        memset(dst, 0, t->net->n_params * sizeof(float));
        return;
    }
    nr__net_settle_grads(t->net);
    memcpy(dst, t->net->grads, t->net->n_params * sizeof(float));
}

typedef struct ordered_sum {
    const float *shards;
    float *out;
    size_t count, n;
} ordered_sum;

/* Each gradient element is the sum of its shares from the first to the last: the same bits everywhere. */
static void sum_range(void *ctx, size_t b, size_t e)
{
    const ordered_sum *j = ctx;
    for (size_t i = b; i < e; i++) {
        float acc = j->shards[i];
        for (size_t s = 1; s < j->count; s++)
            acc += j->shards[s * j->n + i];
        j->out[i] = acc;
    }
}

void nr__shared_drain(nr__trainer *t)
{
    if (!t->n_buckets)
        return;
    t->comm->sum_wait(t->comm->ctx);
    for (size_t i = 0; i < t->n_buckets; i++)
        t->buckets[i].started = false;
    t->overlap_status = NR_OK;
}

nr_status nr__shared_reduce_gradients(nr__trainer *t)
{
    nr_net *net = t->net;
    nr_status st;
    if (t->shard_grads) {
        if (t->comm && (st = t->comm->gather(t->comm->ctx, t->shard_grads, t->my_shards * net->n_params)))
            return nr__prefix(st, "sharing the gradients");
        ordered_sum job = {t->shard_grads, net->grads, t->shards, net->n_params};
        nr__parallel_for(net->n_params, SUM_GRAIN, sum_range, &job);
        return NR_OK;
    }
    if (!t->comm)
        return NR_OK;
    if (t->n_buckets) {  /* the sums started during backward */
        st = t->comm->sum_wait(t->comm->ctx);
        for (size_t i = 0; i < t->n_buckets; i++)
            t->buckets[i].started = false;
        st = t->overlap_status ? t->overlap_status : st;
        t->overlap_status = NR_OK;
        return st ? nr__prefix(st, "summing the gradients") : NR_OK;
    }
    nr__net_settle_grads(net);  /* a process whose share was empty adds zeros */
    st = t->comm->sum(t->comm->ctx, net->grads, net->n_params);
    return st ? nr__prefix(st, "summing the gradients") : NR_OK;
}

/* Which process failed, from the count of failures and the sum of their ranks + 1. */
static nr_status failed_elsewhere(double failures, double ranks, const char *when)
{
    if (failures == 1)
        return nr__fail(NR_EIO, "process %.0f failed %s (its own line says why); every process stops", ranks - 1,
                        when);
    return nr__fail(NR_EIO, "%.0f processes failed %s (their own lines say why); every process stops", failures,
                    when);
}

nr_status nr__shared_agree(nr__trainer *t, nr_status local)
{
    nr__tally *run = &t->run.tally, step = t->step;
    if (t->comm) {
        double v[6] = {step.loss_sum, (double)step.correct, (double)step.seen, t->cfg.stop && *t->cfg.stop,
                       local != NR_OK, local != NR_OK ? t->comm->rank + 1 : 0};
        char keep[512];
        snprintf(keep, sizeof keep, "%s", nr_error_message());  /* the sum must not lose this process's reason */
        nr_status st = t->comm->sum_f64(t->comm->ctx, v, 6);
        if (st)
            return nr__prefix(st, "summing the batch's loss");
        if (local)
            return nr_error_set(local, keep);
        if (v[4] > 0) {
            char when[64];
            snprintf(when, sizeof when, "at epoch %zu, batch %zu", t->epoch + 1, t->index + 1);
            return failed_elsewhere(v[4], v[5], when);
        }
        step = (nr__tally){v[0], (uint64_t)v[1], (uint64_t)v[2]};
        t->stop_all = v[3] > 0;
    } else if (local) {
        return local;
    }
    run->loss_sum += step.loss_sum;
    run->correct += step.correct;
    run->seen += step.seen;
    return NR_OK;
}

nr_status nr__shared_agree_write(nr__trainer *t, nr_status local)
{
    if (!t->comm)
        return local;
    double v[2] = {local != NR_OK, local != NR_OK ? t->comm->rank + 1 : 0};
    char keep[512];
    snprintf(keep, sizeof keep, "%s", nr_error_message());
    nr_status st = t->comm->sum_f64(t->comm->ctx, v, 2);
    if (st)
        return nr__prefix(st, "agreeing on the checkpoint");
    if (local)
        return nr_error_set(local, keep);
    return v[0] > 0 ? failed_elsewhere(v[0], v[1], "writing the checkpoint") : NR_OK;
}

nr_status nr__shared_sync_state(nr__trainer *t)
{
    if (!t->comm)
        return NR_OK;
    const nr_net *net = t->net;
    float share = 1.0f / (float)t->comm->size;
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *tensor = &net->tensors[i];
        if (!(tensor->flags & NR__TENSOR_STATE))
            continue;
        float *v = net->params + tensor->offset;
        nr_status st = t->comm->sum(t->comm->ctx, v, tensor->size);
        if (st)
            return nr__prefix(st, "averaging %s", tensor->name);
        for (size_t k = 0; k < tensor->size; k++)
            v[k] *= share;
    }
    return NR_OK;
}
