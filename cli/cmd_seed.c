/* cmd_seed.c - `neurite seed`: the lecture's two-layer network, run through the library like any network.
 *
 *   h = x.w1, h_relu = relu(h), y_pred = h_relu.w2, loss = sum((y_pred - y)^2), w -= lr * grad
 *
 * x is batch x in filled with 0.025, y is batch x out of ones, w1 and w2 start standard normal (from our
 * generator, or from NumPy .npy files), there are no biases, and plain SGD updates them. */
#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct stats {
    double mean, std, min, max, zero;
} stats;

static stats stats_of(const float *v, size_t n)
{
    stats s = {0, 0, v[0], v[0], 0};
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        s.min = v[i] < s.min ? v[i] : s.min;
        s.max = v[i] > s.max ? v[i] : s.max;
        s.zero += v[i] == 0.0f;
    }
    s.mean = sum / (double)n;
    for (size_t i = 0; i < n; i++)  /* a second pass: no cancellation when the spread is tiny */
        sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(sq / (double)n);
    s.zero /= (double)n;
    return s;
}

static void print_stats(const char *indent, const float *v, size_t n)
{
    stats s = stats_of(v, n);
    printf("%smean %+.4g  std %.4g  min %+.4g  max %+.4g", indent, s.mean, s.std, s.min, s.max);
    if (s.zero > 0)
        printf("  zeros %.0f%%", 100 * s.zero);
    printf("\n");
}

/* The teaching trace: the first iteration's forward and backward pass, read from the library's own
 * buffers, with the shapes of every product and the reason for every transpose. */
static void print_trace(nr_net *net, size_t N, size_t D, size_t H, size_t O, double loss, double lr,
                        const float *x)
{
    nr_tensor_info w1, w2;
    nr_net_find_tensor(net, "dense0.w", &w1);
    nr_net_find_tensor(net, "dense2.w", &w2);
    const float *params = nr_net_params(net), *grads = nr_net_grads(net);
    const float *h = nr_net_layer_output(net, 0), *h_relu = nr_net_layer_output(net, 1);
    const float *y_pred = nr_net_layer_output(net, 2);
    const float *g_y = nr_net_layer_grad(net, 2), *g_h_relu = nr_net_layer_grad(net, 1);
    const float *g_h = nr_net_layer_grad(net, 0);
    const char *in = "      ";

    printf("\n== Iteration 0, step by step ==\n\n");
    printf("The data: x is %zu×%zu (a batch of %zu samples, each with %zu inputs), y is %zu×%zu (the answers).\n",
           N, D, N, D, N, O);
    print_stats("  x:   ", x, N * D);
    printf("The weights: w1 is %zu×%zu (every input to every hidden unit), w2 is %zu×%zu (hidden to output).\n",
           D, H, H, O);
    print_stats("  w1:  ", params + w1.offset, w1.size);
    print_stats("  w2:  ", params + w2.offset, w2.size);

    printf("\n── Forward propagation: input → hidden → output ──\n\n");
    printf("h = x·w1              (%zu×%zu)·(%zu×%zu) → (%zu×%zu)\n", N, D, D, H, N, H);
    printf("%sEach hidden unit adds up its %zu inputs, each times its own weight.\n", in, D);
    print_stats(in, h, N * H);
    printf("h_relu = relu(h)      (%zu×%zu) → (%zu×%zu)\n", N, H, N, H);
    printf("%sThe threshold: a unit whose sum is below 0 does not fire and outputs 0.\n", in);
    print_stats(in, h_relu, N * H);
    printf("y_pred = h_relu·w2    (%zu×%zu)·(%zu×%zu) → (%zu×%zu)\n", N, H, H, O, N, O);
    print_stats(in, y_pred, N * O);
    printf("loss = Σ(y_pred − y)²  over all %zu×%zu outputs = %.6g\n", N, O, loss);

    printf("\n── Backward propagation: output → hidden → input, each step the mirror of one above ──\n\n");
    printf("g_y = 2(y_pred − y)             (%zu×%zu)\n", N, O);
    printf("%sThe derivative of the square: how much the loss moves when each prediction moves.\n", in);
    print_stats(in, g_y, N * O);
    printf("g_w2 = h_reluᵀ·g_y              (%zu×%zu)·(%zu×%zu) → (%zu×%zu)\n", H, N, N, O, H, O);
    printf("%sWhy the transpose: weight w2[j,k] multiplied h_relu[i,j] for every sample i, so its\n", in);
    printf("%sgradient sums h_relu[i,j] * g_y[i,k] over the %zu samples. That sum is a product only with\n", in, N);
    printf("%sh_relu turned on its side, and only it gives a result of w2's own shape, %zu×%zu.\n", in, H, O);
    print_stats(in, grads + w2.offset, w2.size);
    printf("g_h_relu = g_y·w2ᵀ              (%zu×%zu)·(%zu×%zu) → (%zu×%zu)\n", N, O, O, H, N, H);
    printf("%sEach hidden unit gets back the errors of the outputs it fed, through the same weights, so w2\n", in);
    printf("%sruns backwards: transposed, it maps %zu outputs to %zu hidden units.\n", in, O, H);
    print_stats(in, g_h_relu, N * H);
    printf("g_h = g_h_relu where h > 0, else 0   (%zu×%zu)\n", N, H);
    printf("%sA unit that did not fire passed nothing forward, so it passes no error back.\n", in);
    print_stats(in, g_h, N * H);
    printf("g_w1 = xᵀ·g_h                   (%zu×%zu)·(%zu×%zu) → (%zu×%zu)\n", D, N, N, H, D, H);
    printf("%sThe same reasoning as for g_w2, one layer down: x turned on its side, a result of w1's shape.\n",
           in);
    print_stats(in, grads + w1.offset, w1.size);
    printf("\n── Update: w −= lr·g, with lr = %g ──\n", lr);
    printf("%sEvery weight takes a small step against its gradient, downhill on the loss.\n\n", in);
}

typedef struct loss_list {
    const double *values;
    size_t count;
} loss_list;

static bool write_losses(FILE *f, void *ctx)
{
    const loss_list *l = ctx;
    for (size_t i = 0; i < l->count; i++)
        if (fprintf(f, "%.9g\n", l->values[i]) < 0)
            return false;
    return true;
}

typedef struct seed_options {
    size_t N, D, H, O, iters, print_every;
    double lr;
    uint64_t seed;
    int threads;
    bool trace;
    const char *w1, *w2, *save_w1, *save_w2, *losses;
} seed_options;

#define O(field) offsetof(seed_options, field)
static const cli_opt seed_options_table[] = {
    {"batch", OPT_SIZE, O(N), 1, 1 << 20, "N", "samples in the batch (64)", 0, 0},
    {"in", OPT_SIZE, O(D), 1, 1 << 24, "N", "inputs per sample, D_in (1000)", 0, 0},
    {"hidden", OPT_SIZE, O(H), 1, 1 << 20, "N", "hidden units, H (100)", 0, 0},
    {"out", OPT_SIZE, O(O), 1, 1 << 20, "N", "outputs per sample, D_out (10)", 0, 0},
    {"lr", OPT_FLOAT, O(lr), 1e-30, 1e3, "X", "learning rate (1e-6)", 0, 0},
    {"iters", OPT_SIZE, O(iters), 1, 1e9, "N", "iterations (5000)", 0, 0},
    {"seed", OPT_U64, O(seed), 0, 1.8e19, "N", "seed for the standard-normal weights (0)", 0, 0},
    {"print-every", OPT_SIZE, O(print_every), 0, 1e9, "N", "print the loss every N iterations; 0: only the end (500)",
     0, 0},
    {"w1", OPT_STRING, O(w1), 0, 0, "FILE", "start w1 from a .npy file (float32/float64, D_in x H)", 0, 0},
    {"w2", OPT_STRING, O(w2), 0, 0, "FILE", "start w2 from a .npy file (H x D_out)", 0, 0},
    {"save-w1", OPT_STRING, O(save_w1), 0, 0, "FILE", "write the final w1 as .npy", 0, 0},
    {"save-w2", OPT_STRING, O(save_w2), 0, 0, "FILE", "write the final w2 as .npy", 0, 0},
    {"losses", OPT_STRING, O(losses), 0, 0, "FILE", "write every iteration's loss, one per line", 0, 0},
    {"trace", OPT_FLAG, O(trace), 0, 0, "", "explain the first iteration's forward and backward pass", 0, 0},
    {"threads", OPT_INT, O(threads), 0, 256, "N", "threads (0: one per core)", 0, 0},
    {0},
};
#undef O

const cli_command seed_command = {
    "seed", "[options]",
    "The lecture's exercise: a two-layer network (no biases, ReLU, sum of squared errors, plain\n"
    "SGD) on x = 0.025 and y = 1, whose predictions must converge to 1.",
    seed_options_table, 0,
};

/* The names of the lecture's two weight matrices in the network: dense layers 0 and 2 (1 is the ReLU). */
static const char *const weight_names[2] = {"dense0.w", "dense2.w"};

/* What one run holds. */
typedef struct seed_run {
    const seed_options *o;
    nr_net *net;
    nr_optimizer *opt;
    nr_tensor *x;
    float *y;
    double *losses;
    double seconds;
} seed_run;

/* w1 or w2 from a .npy file of the right shape, every value finite. */
static int load_weight(nr_net *net, int which, const char *path)
{
    nr_tensor_info ti;
    nr_tensor *w;
    nr_net_find_tensor(net, weight_names[which], &ti);
    nr_status st = nr_npy_load(path, &w);
    if (st)
        return cli_fail("seed", st);
    int rc = 0;
    if (w->ndim != 2 || w->shape[0] != ti.shape[0] || w->shape[1] != ti.shape[1])
        rc = cli_error("seed", EXIT_WORK, "%s: w%d must be %zux%zu, the file holds %s%zux%zu", path, which + 1,
                       ti.shape[0], ti.shape[1], w->ndim == 2 ? "" : "an array of another rank, ", w->shape[0],
                       w->ndim > 1 ? w->shape[1] : 1);
    for (size_t j = 0; !rc && j < w->size; j++)
        if (!isfinite(w->data[j]))
            rc = cli_error("seed", EXIT_WORK, "%s: value %zu (row %zu, column %zu) is %g; weights must be finite",
                           path, j, j / w->shape[1], j % w->shape[1], (double)w->data[j]);
    if (!rc)
        memcpy(nr_net_params(net) + ti.offset, w->data, ti.size * sizeof(float));
    nr_tensor_free(w);
    return rc;
}

/* The network (dense, relu, dense, no biases) with standard-normal weights or those of the files, SGD, and
 * the data: x filled with 0.025, y with ones. */
static int build(seed_run *r)
{
    const seed_options *o = r->o;
    nr_status st = NR_OK;
    r->net = nr_net_new(o->D);
    if (!r->net || (st = nr_net_dense(r->net, o->H, 0)) || (st = nr_net_act(r->net, NR_ACT_RELU)) ||
        (st = nr_net_dense(r->net, o->O, 0)))
        return cli_fail("seed", st);
    nr_rng rng;
    nr_rng_seed(&rng, o->seed);
    nr_net_init(r->net, NR_INIT_STD_NORMAL, &rng);
    const char *paths[2] = {o->w1, o->w2};
    for (int i = 0; i < 2; i++) {
        int rc = paths[i] ? load_weight(r->net, i, paths[i]) : 0;
        if (rc)
            return rc;
    }
    size_t xs[2] = {o->N, o->D};
    r->x = nr_tensor_new(2, xs);
    r->y = malloc(o->N * o->O * sizeof *r->y);
    r->losses = malloc(o->iters * sizeof *r->losses);
    r->opt = nr_opt_new(r->net, &(nr_opt_config){.kind = NR_OPT_SGD, .lr = (float)o->lr});
    if (!r->x || !r->y || !r->losses || !r->opt)
        return cli_error("seed", EXIT_WORK, "%s", r->x && r->opt ? "out of memory" : nr_error_message());
    for (size_t i = 0; i < o->N * o->D; i++)
        r->x->data[i] = 0.025f;
    for (size_t i = 0; i < o->N * o->O; i++)
        r->y[i] = 1.0f;
    return 0;
}

/* One iteration: forward, loss, backward (explained step by step the first time with --trace), update. */
static int iterate(seed_run *r, size_t it)
{
    const seed_options *o = r->o;
    double loss;
    nr_status st;
    if ((st = nr_net_forward(r->net, r->x->data, o->N, 1, NULL)) ||
        (st = nr_net_loss(r->net, NR_LOSS_SSE, r->y, NULL, &loss)))
        return cli_fail("seed", st);
    r->losses[it] = loss;
    if (!isfinite(loss))
        return cli_error("seed", EXIT_WORK, "the loss became %g at iteration %zu; try a smaller --lr", loss, it);
    if (o->trace && it == 0) {
        /* The trace shows the gradients, so this step keeps them: backward, then the update. */
        nr_net_zero_grad(r->net);
        nr_net_backward(r->net);
        print_trace(r->net, o->N, o->D, o->H, o->O, loss, o->lr, r->x->data);
        st = nr_opt_step(r->opt, r->net, (float)o->lr, NULL);
    } else {
        /* The same numbers, with each weight gradient folded into its weights as it is computed. */
        st = nr_net_backward_step(r->net, r->opt, (float)o->lr);
    }
    if (st)
        return cli_fail("seed", st);
    if (o->print_every && (it % o->print_every == 0 || it + 1 == o->iters))
        printf("%10zu  %.7g\n", it, loss);
    return 0;
}

static int train(seed_run *r)
{
    const seed_options *o = r->o;
    printf("The lecture's network: x %zux%zu = 0.025, y %zux%zu = 1, w1 %zux%zu and w2 %zux%zu from %s,\n"
           "no biases, ReLU, loss = sum of squared errors, SGD with lr %g, %zu iterations. Threads: %d.\n",
           o->N, o->D, o->N, o->O, o->D, o->H, o->H, o->O, o->w1 || o->w2 ? "files" : "N(0, 1)", o->lr, o->iters,
           nr_threads());
    if (o->print_every)
        printf("\n%10s  %s\n", "iteration", "loss");
    double t0 = cli_now();
    for (size_t it = 0; it < o->iters; it++) {
        int rc = iterate(r, it);
        if (rc)
            return rc;
    }
    r->seconds = cli_now() - t0;
    return 0;
}

/* The final loss and predictions, whether they converged to 1, and the speed. */
static void report(const seed_run *r)
{
    const seed_options *o = r->o;
    const float *pred;
    double final_loss;
    nr_net_forward(r->net, r->x->data, o->N, 0, &pred);
    nr_net_loss(r->net, NR_LOSS_SSE, r->y, NULL, &final_loss);
    stats s = stats_of(pred, o->N * o->O);
    double flops = 4.0 * (double)o->N * (double)o->H * (double)(o->D + o->O) * (double)o->iters;
    printf("\nAfter %zu iterations: loss %.4g; prediction (%zux%zu): mean %.7f, min %.7f, max %.7f\n", o->iters,
           final_loss, o->N, o->O, s.mean, s.min, s.max);
    printf("%s: |mean - 1| = %.2g\n", fabs(s.mean - 1.0) < 1e-3 ? "Converged to 1" : "Not converged",
           fabs(s.mean - 1.0));
    stats hidden = stats_of(nr_net_layer_output(r->net, 1), o->N * o->H);
    if (hidden.zero == 1.0)
        printf("Every hidden unit is dead: each ReLU outputs 0 for every sample, so no gradient flows back and\n"
               "learning has stopped. The steps were too large; try a smaller --lr.\n");
    printf("Time: %.3f s, %.1f GFLOP/s (%s kernel)\n", r->seconds, flops / r->seconds * 1e-9, nr_gemm_backend());
}

/* --save-w1, --save-w2 and --losses. */
static int save_outputs(seed_run *r)
{
    const seed_options *o = r->o;
    const char *saves[2] = {o->save_w1, o->save_w2};
    for (int i = 0; i < 2; i++) {
        if (!saves[i])
            continue;
        nr_tensor_info ti;
        nr_net_find_tensor(r->net, weight_names[i], &ti);
        nr_tensor t = {nr_net_params(r->net) + ti.offset, {ti.shape[0], ti.shape[1]}, 2, ti.size};
        nr_status st = nr_npy_save(saves[i], &t);
        if (st)
            return cli_fail("seed", st);
    }
    loss_list list = {r->losses, o->iters};
    return o->losses ? cli_write_file("seed", o->losses, write_losses, &list) : 0;
}

int cmd_seed(int argc, char **argv)
{
    seed_options o = {.N = 64, .D = 1000, .H = 100, .O = 10, .iters = 5000, .print_every = 500, .lr = 1e-6};
    int rc = cli_parse(&seed_command, &o, argc, argv, NULL, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((double)o.D * (double)o.H > 1e9 || (double)o.N * (double)o.D > 1e9)
        return cli_error("seed", EXIT_USAGE, "the matrices would need more than 4 GB; choose smaller sizes");
    nr_set_threads(o.threads);
    seed_run r = {.o = &o};
    rc = build(&r);
    if (!rc)
        rc = train(&r);
    if (!rc) {
        report(&r);
        rc = save_outputs(&r);
    }
    nr_tensor_free(r.x);
    free(r.y);
    free(r.losses);
    nr_opt_free(r.opt);
    nr_net_free(r.net);
    return rc;
}
