/* cmd_xor.c - `neurite xor`: the lecture's footnote made runnable. With identity activations, layers of
 * matrices multiply out to one matrix, so a deep network is no better than a single linear map and cannot
 * learn XOR; the same network with ReLU, sigmoid or tanh can. */
#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const float xor_x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float xor_y[4] = {0, 1, 1, 0};

typedef struct xor_result {
    double loss;
    float out[4];
    bool learned;
} xor_result;

static nr_status build(nr_net **out, nr_act act, size_t hidden, size_t depth)
{
    nr_net *net = nr_net_new(2);
    nr_status st = net ? NR_OK : NR_ENOMEM;
    for (size_t d = 0; d < depth && !st; d++)
        if (!(st = nr_net_dense(net, hidden, 1)))
            st = nr_net_act(net, act);
    if (!st)
        st = nr_net_dense(net, 1, 1);
    if (st) {
        nr_net_free(net);
        return st;
    }
    *out = net;
    return NR_OK;
}

static nr_status train(nr_net *net, size_t steps, uint64_t seed, xor_result *r)
{
    nr_rng rng;
    nr_rng_seed(&rng, seed);
    nr_status st = nr_net_init(net, NR_INIT_XAVIER_UNIFORM, &rng);
    nr_optimizer *opt = st ? NULL : nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.02f});
    if (!opt)
        return st ? st : NR_ENOMEM;
    for (size_t i = 0; i < steps && !st; i++)
        st = nr_net_train_batch(net, opt, NR_LOSS_MSE, xor_x, xor_y, NULL, 4, &r->loss);
    nr_opt_free(opt);
    const float *out;
    if (st || (st = nr_net_forward(net, xor_x, 4, 0, &out)) || (st = nr_net_loss(net, NR_LOSS_MSE, xor_y, NULL, &r->loss)))
        return st;
    r->learned = true;
    for (int i = 0; i < 4; i++) {
        r->out[i] = out[i];
        r->learned &= fabsf(out[i] - xor_y[i]) < 0.1f;
    }
    return NR_OK;
}

/* Folds dense layer k (the network's layer 2k) into the map x.W + c of `cols` outputs, where W is 2 x cols:
 * (x.W + c).Wk + bk = x.(W.Wk) + (c.Wk + bk). W and c are replaced; false if out of memory. */
static bool fold_layer(nr_net *net, size_t k, float **W, float **c, size_t *cols)
{
    char name[32];
    nr_tensor_info wi, bi;
    snprintf(name, sizeof name, "dense%zu.w", 2 * k);
    if (nr_net_find_tensor(net, name, &wi))
        return false;
    snprintf(name, sizeof name, "dense%zu.b", 2 * k);
    if (nr_net_find_tensor(net, name, &bi))
        return false;
    size_t units = wi.shape[1];
    float *next = calloc(2 * units, sizeof *next), *next_c = malloc(units * sizeof *next_c);
    const float *Wk = nr_net_params(net) + wi.offset, *bk = nr_net_params(net) + bi.offset;
    if (next_c)
        memcpy(next_c, bk, units * sizeof *next_c);
    bool ok = next && next_c &&
         !nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, 2, units, *cols, 1, *W, *cols, Wk, units, 0, next, units) &&
         !nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, 1, units, *cols, 1, *c, *cols, Wk, units, 1, next_c, units);
    if (!ok) {
        free(next);
        free(next_c);
        return false;
    }
    free(*W);
    free(*c);
    *W = next;
    *c = next_c;
    *cols = units;
    return true;
}

/* Multiplies the identity network's layers out into one map x.W + c and checks it gives the same outputs. */
static int collapse(nr_net *net, size_t depth)
{
    size_t n_dense = depth + 1, cols = 2;
    float *W = calloc(4, sizeof *W), *c = calloc(2, sizeof *c);  /* the identity map on 2 inputs */
    bool ok = W && c;
    if (ok)
        W[0] = W[3] = 1;
    for (size_t k = 0; ok && k < n_dense; k++)
        ok = fold_layer(net, k, &W, &c, &cols);
    const float *out;
    ok = ok && nr_net_forward(net, xor_x, 4, 0, &out) == NR_OK;
    double worst = 0;
    for (int i = 0; ok && i < 4; i++) {
        float v = xor_x[2 * i] * W[0] + xor_x[2 * i + 1] * W[1] + c[0];
        worst = fmax(worst, fabs(v - out[i]));
    }
    if (ok) {
        printf("\nThe identity network's %zu weight matrices and biases multiply out to one linear map:\n", n_dense);
        printf("  f(a, b) = %.4f a %+.4f b %+.4f\n", W[0], W[1], c[0]);
        printf("which gives the network's outputs to within %.1g. However deep, a network without a non-linear\n"
               "activation is this one map, and no plane separates XOR: the best it can do is 0.5 everywhere\n"
               "(loss 0.25). A ReLU, sigmoid or tanh bends the map, and the network learns XOR.\n", worst);
    }
    free(W);
    free(c);
    return ok && worst < 1e-4 ? 0 : EXIT_WORK;
}

typedef struct xor_options {
    size_t hidden, depth, steps;
    uint64_t seed;
} xor_options;

static const cli_opt xor_options_table[] = {
    {"hidden", OPT_SIZE, offsetof(xor_options, hidden), 1, 4096, "N", "units in each hidden layer (8)", 0, 0},
    {"depth", OPT_SIZE, offsetof(xor_options, depth), 1, 64, "N", "hidden layers (2)", 0, 0},
    {"steps", OPT_SIZE, offsetof(xor_options, steps), 1, 1e7, "N", "training steps on the 4 XOR samples (2000)", 0, 0},
    {"seed", OPT_U64, offsetof(xor_options, seed), 0, 1.8e19, "N", "seed for the initial weights (1)", 0, 0},
    {0},
};

const cli_command xor_command = {
    "xor", "[options]",
    "Trains the same network on XOR with each activation, and shows that with the identity\n"
    "it collapses to a single linear map.",
    xor_options_table, 0,
};

int cmd_xor(int argc, char **argv)
{
    xor_options o = {.hidden = 8, .depth = 2, .steps = 2000, .seed = 1};
    int rc = cli_parse(&xor_command, &o, argc, argv, NULL, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    size_t hidden = o.hidden, depth = o.depth, steps = o.steps;
    uint64_t seed = o.seed;
    const nr_act acts[] = {NR_ACT_IDENTITY, NR_ACT_RELU, NR_ACT_SIGMOID, NR_ACT_TANH};
    const char *names[] = {"identity", "relu", "sigmoid", "tanh"};
    printf("XOR with a 2");
    for (size_t d = 0; d < depth; d++)
        printf("-%zu", hidden);
    printf("-1 network, mean squared error, Adam, %zu steps\n\n", steps);
    printf("%-10s %10s   %7s %7s %7s %7s   %s\n", "activation", "loss", "f(0,0)", "f(0,1)", "f(1,0)", "f(1,1)",
           "learned XOR?");
    int ret = 0;
    nr_net *linear = NULL;
    for (size_t a = 0; a < 4; a++) {
        nr_net *net = NULL;
        xor_result r;
        nr_status st = build(&net, acts[a], hidden, depth);
        if (st || (st = train(net, steps, seed, &r))) {
            nr_net_free(net);
            return cli_fail("xor", st);
        }
        printf("%-10s %10.6f   %7.3f %7.3f %7.3f %7.3f   %s\n", names[a], r.loss, r.out[0], r.out[1], r.out[2],
               r.out[3], r.learned ? "yes" : "no");
        if (acts[a] == NR_ACT_IDENTITY)
            linear = net;  /* kept for the explanation below the table */
        else
            nr_net_free(net);
    }
    if (collapse(linear, depth) != 0)
        ret = cli_error("xor", EXIT_WORK, "the identity network did not collapse to one map");
    nr_net_free(linear);
    return ret;
}
