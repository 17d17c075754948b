/* test_grad.c - every layer, activation and loss against central differences, on random shapes including
 * batch size 1 and non-square matrices. */
#include "gradcheck.h"

static const gradcheck_opts smooth = {NR_LOSS_SSE, 1e-2, 1e-3, 1e-4, 200};

/* A fresh vector network of `in` features. */
static nr_net *vec(size_t in)
{
    nr_net *net = nr_net_new(in);
    CHECK(net != NULL, "nr_net_new(%zu): %s", in, nr_error_message());
    return net;
}

static void dense_shapes(void)
{
    nr_rng r;
    nr_rng_seed(&r, 7);
    for (int trial = 0; trial < 12; trial++) {
        size_t n = 1 + nr_rng_below(&r, 5), in = 1 + nr_rng_below(&r, 9), out = 1 + nr_rng_below(&r, 9);
        int bias = trial % 2;
        char name[64];
        snprintf(name, sizeof name, "dense n=%zu %zu->%zu bias=%d", n, in, out, bias);
        nr_net *net = vec(in);
        CHECK_OK(nr_net_dense(net, out, bias));
        gradcheck(name, net, n, smooth, 100 + (uint64_t)trial);
        nr_net_free(net);
    }
}

static void activations(void)
{
    const nr_act acts[] = {NR_ACT_IDENTITY, NR_ACT_RELU, NR_ACT_LEAKY_RELU, NR_ACT_SIGMOID, NR_ACT_TANH,
                           NR_ACT_SOFTMAX};
    const size_t shapes[][2] = {{1, 1}, {1, 7}, {4, 3}, {3, 10}};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (size_t s = 0; s < 4; s++) {
            if (acts[a] == NR_ACT_SOFTMAX && shapes[s][1] == 1)
                continue;
            char name[64];
            snprintf(name, sizeof name, "activation %d n=%zu d=%zu", (int)acts[a], shapes[s][0], shapes[s][1]);
            nr_net *net = vec(shapes[s][1]);
            CHECK_OK(nr_net_act(net, acts[a]));
            gradcheck(name, net, shapes[s][0], smooth, 200 + a * 10 + s);
            nr_net_free(net);
        }
    nr_net *net = vec(5);
    CHECK_OK(nr_net_leaky_relu(net, 0.2f));
    gradcheck("leaky relu 0.2", net, 3, smooth, 300);
    nr_net_free(net);
}

static void losses(void)
{
    const nr_loss kinds[] = {NR_LOSS_SSE, NR_LOSS_MSE, NR_LOSS_XENT};
    const size_t shapes[][3] = {{1, 3, 2}, {6, 4, 5}, {2, 1, 10}};
    for (size_t k = 0; k < 3; k++)
        for (size_t s = 0; s < 3; s++) {
            char name[64];
            snprintf(name, sizeof name, "loss %d n=%zu %zu->%zu", (int)kinds[k], shapes[s][0], shapes[s][1],
                     shapes[s][2]);
            nr_net *net = vec(shapes[s][1]);
            CHECK_OK(nr_net_dense(net, shapes[s][2], 1));
            gradcheck_opts o = smooth;
            o.loss = kinds[k];
            gradcheck(name, net, shapes[s][0], o, 400 + k * 10 + s);
            nr_net_free(net);
        }
}

static void deep(void)
{
    nr_net *net = vec(6);
    CHECK_OK(nr_net_add_spec(net, "8-relu-7-tanh-6-sigmoid-5", NR_ACT_IDENTITY));
    gradcheck_opts o = smooth;
    o.loss = NR_LOSS_XENT;
    gradcheck("6-8-relu-7-tanh-6-sigmoid-5 xent", net, 4, o, 500);
    nr_net_free(net);
}

int main(void)
{
    nr_set_threads(1);
    dense_shapes();
    activations();
    losses();
    deep();
    return check_report("test_grad");
}
