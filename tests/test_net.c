/* test_net.c - building networks: the API's error paths, the layer-list parser, the parameter table, the
 * memory plan (no allocation in a training step), results that do not depend on the thread count, and
 * prepacked weights for one-sample inference (nr_net_prepack). */
#include "check.h"
#include "neurite.h"
#include "core/internal.h" /* nr__gemm_row_pairs: whether the fused one-sample pass ran */

#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void errors(void)
{
    CHECK(nr_net_new(0) == NULL && nr_error_message()[0], "a network of 0 inputs is refused");
    CHECK(nr_net_new_image(28, 0, 1) == NULL, "an image of width 0 is refused");
    CHECK(nr_net_new_image((size_t)1 << 30, (size_t)1 << 30, 64) == NULL, "an overflowing image is refused");
    nr_net *net = nr_net_new(4);
    CHECK_ERR(nr_net_dense(net, 0, 1), NR_EINVAL);
    CHECK_ERR(nr_net_dense(NULL, 3, 1), NR_EINVAL);
    CHECK_ERR(nr_net_dense(net, (size_t)1 << 40, 1), NR_EINVAL);
    CHECK_ERR(nr_net_act(net, (nr_act)99), NR_EINVAL);
    CHECK_ERR(nr_net_leaky_relu(net, 1.5f), NR_EINVAL);
    CHECK(nr_net_layer_count(net) == 0, "failed additions leave no layer");
    float x[8] = {0};
    const float *out;
    CHECK_ERR(nr_net_forward(net, x, 2, 0, &out), NR_EINVAL);  /* no layers yet */
    CHECK_OK(nr_net_dense(net, 3, 1));
    CHECK_ERR(nr_net_forward(net, NULL, 2, 0, &out), NR_EINVAL);
    CHECK_ERR(nr_net_forward(net, x, 0, 0, &out), NR_EINVAL);
    CHECK_ERR(nr_net_forward(net, x, (size_t)1 << 50, 0, &out), NR_EINVAL);
    CHECK_ERR(nr_net_backward(net), NR_EINVAL);  /* nothing to back-propagate */
    double loss;
    CHECK_ERR(nr_net_loss(net, NR_LOSS_SSE, x, NULL, &loss), NR_EINVAL);  /* no forward yet */
    CHECK_OK(nr_net_forward(net, x, 2, 1, &out));
    int32_t bad[2] = {0, 3};
    CHECK_ERR(nr_net_loss(net, NR_LOSS_XENT, NULL, bad, &loss), NR_EINVAL);
    CHECK(strstr(nr_error_message(), "label 3 of sample 1") != NULL, "label message: %s", nr_error_message());
    CHECK_ERR(nr_net_loss(net, NR_LOSS_SSE, NULL, NULL, &loss), NR_EINVAL);
    CHECK_ERR(nr_net_loss(net, (nr_loss)9, x, NULL, &loss), NR_EINVAL);
    CHECK_ERR(nr_net_backward(net), NR_EINVAL);  /* the failed loss left nothing to back-propagate */
    nr_tensor_info ti;
    CHECK_ERR(nr_net_find_tensor(net, "dense9.w", &ti), NR_EINVAL);
    CHECK_ERR(nr_net_tensor(net, 5, &ti), NR_EINVAL);
    nr_layer_info li;
    CHECK_ERR(nr_net_layer_info(net, 1, &li), NR_EINVAL);
    CHECK(nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_SGD, .lr = -1}) == NULL, "negative lr refused");
    CHECK(nr_opt_new(net, &(nr_opt_config){.kind = (nr_opt_kind)42}) == NULL, "unknown optimizer refused");
    CHECK(nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM, .beta1 = 1.0f}) == NULL, "beta1 = 1 refused");
    CHECK(nr_opt_new(NULL, &(nr_opt_config){0}) == NULL, "NULL net refused");
    nr_net *cross = nr_net_new(2);
    nr_net_dense(cross, 1, 1);
    CHECK_OK(nr_net_forward(cross, x, 1, 1, &out));
    CHECK_ERR(nr_net_loss(cross, NR_LOSS_XENT, NULL, bad, &loss), NR_ESHAPE);  /* one output is no classifier */
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_SGD});
    CHECK_ERR(nr_opt_step(opt, cross, 0.1f, NULL), NR_ESHAPE);  /* optimizer of another network */
    CHECK_ERR(nr_opt_step(opt, net, 0.0f, NULL), NR_EINVAL);
    nr_opt_free(opt);
    nr_net_free(cross);
    nr_net_free(net);
    nr_net_free(NULL);
    nr_opt_free(NULL);
}

static void spec(void)
{
    nr_net *net = nr_net_new(784);
    CHECK_OK(nr_net_add_spec(net, "784-256-relu-10", NR_ACT_IDENTITY));
    CHECK(nr_net_layer_count(net) == 3, "784-256-relu-10 gives 3 layers, not %zu", nr_net_layer_count(net));
    CHECK(nr_net_param_count(net) == 784 * 256 + 256 + 256 * 10 + 10, "parameter count %zu", nr_net_param_count(net));
    CHECK(nr_net_output_size(net) == 10, "output size");
    nr_tensor_info ti;
    CHECK_OK(nr_net_find_tensor(net, "dense2.w", &ti));
    CHECK(ti.ndim == 2 && ti.shape[0] == 256 && ti.shape[1] == 10 && ti.offset == 784 * 256 + 256 &&
              (ti.flags & NR_TENSOR_DECAY),
          "the table names dense2.w with its shape and offset");
    CHECK_OK(nr_net_find_tensor(net, "dense0.b", &ti));
    CHECK(ti.size == 256 && !(ti.flags & NR_TENSOR_DECAY), "biases are not decayed");
    /* A bad token leaves the network as it was and names the token. */
    CHECK_ERR(nr_net_add_spec(net, "32-rleu-10", NR_ACT_RELU), NR_EINVAL);
    CHECK(strstr(nr_error_message(), "rleu") != NULL, "message names the token: %s", nr_error_message());
    CHECK(nr_net_layer_count(net) == 3, "failed spec changes nothing");
    nr_net_free(net);

    net = nr_net_new(20);
    CHECK_OK(nr_net_add_spec(net, "20-64-32-fc5 # comment\n", NR_ACT_TANH));
    nr_layer_info li;
    const char *want[] = {"dense", "tanh", "dense", "tanh", "dense"};
    CHECK(nr_net_layer_count(net) == 5, "default activation between dense layers: %zu layers", nr_net_layer_count(net));
    for (size_t i = 0; i < 5 && i < nr_net_layer_count(net); i++) {
        nr_net_layer_info(net, i, &li);
        CHECK(strcmp(li.tag, want[i]) == 0, "layer %zu is %s, not %s", i, li.tag, want[i]);
    }
    nr_net_free(net);
    /* Where the default activation goes: after each dense or conv layer but the last, unless named. */
    const struct {
        const char *spec, *want;
    } cases[] = {
        {"64-drop0.5-10", "dense relu dropout dense"},
        {"32-bn-10", "dense batchnorm relu dense"},
        {"32-bn-tanh-10", "dense batchnorm tanh dense"},
        {"32-sigmoid-16-10-softmax", "dense sigmoid dense relu dense softmax"},
        {"conv4k3-pool2-conv2k3-bn-fc10", "conv2d relu maxpool conv2d batchnorm relu dense"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        net = nr_net_new_image(8, 8, 3);  /* 192 inputs: no list here starts by naming the input */
        CHECK_OK(nr_net_add_spec(net, cases[c].spec, NR_ACT_RELU));
        char got[200] = "";
        for (size_t i = 0; i < nr_net_layer_count(net); i++) {
            nr_net_layer_info(net, i, &li);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", li.tag);
        }
        CHECK(strcmp(got, cases[c].want) == 0, "%s with relu: got '%s', want '%s'", cases[c].spec, got,
              cases[c].want);
        nr_net_free(net);
    }
    net = nr_net_new(3);
    CHECK_OK(nr_net_add_spec(net, "leaky0.2, 4, leaky1e-3, sigmoid", NR_ACT_IDENTITY));
    nr_net_layer_info(net, 0, &li);
    CHECK(strcmp(li.desc, "leaky_relu 0.2") == 0, "leaky slope parsed: %s", li.desc);
    nr_net_layer_info(net, 2, &li);
    CHECK(strcmp(li.desc, "leaky_relu 0.001") == 0, "exponent in a slope parsed: %s", li.desc);
    CHECK_ERR(nr_net_add_spec(net, "", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK_ERR(nr_net_add_spec(net, "0", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK_ERR(nr_net_add_spec(net, "leakyx", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK_ERR(nr_net_add_spec(net, "leaky2", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK_ERR(nr_net_add_spec(net, "99999999999999999", NR_ACT_IDENTITY), NR_EINVAL);
    CHECK_ERR(nr_net_add_spec(net, NULL, NR_ACT_IDENTITY), NR_EINVAL);
    nr_net_free(net);
}

/* Trains a 300-200-relu-10 network for a few steps and returns its parameters. */
static float *train_copy(int threads, size_t *count)
{
    nr_set_threads(threads);
    nr_net *net = nr_net_new(300);
    nr_net_add_spec(net, "200-relu-10", NR_ACT_IDENTITY);
    nr_rng r;
    nr_rng_seed(&r, 5);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 1e-3f, .clip_norm = 1.0f});
    enum { N = 128 };
    float *x = malloc(N * 300 * sizeof *x);
    int32_t labels[N];
    for (size_t i = 0; i < N * 300; i++)
        x[i] = (float)nr_rng_uniform(&r);
    for (int i = 0; i < N; i++)
        labels[i] = (int32_t)nr_rng_below(&r, 10);
    for (int s = 0; s < 5; s++)
        nr_net_train_batch(net, opt, NR_LOSS_XENT, x, NULL, labels, N, NULL);
    *count = nr_net_param_count(net);
    float *copy = malloc(*count * sizeof *copy);
    memcpy(copy, nr_net_params(net), *count * sizeof *copy);
    free(x);
    nr_opt_free(opt);
    nr_net_free(net);
    return copy;
}

static void determinism(void)
{
    const char *kernels[] = {"portable", "avx2", "avx512"};
    for (size_t k = 0; k < 3; k++) {
        if (nr_set_gemm_backend(kernels[k]) != NR_OK)
            continue;
        size_t n1, n2;
        float *one = train_copy(1, &n1), *two = train_copy(2, &n2);
        CHECK(n1 == n2 && memcmp(one, two, n1 * sizeof *one) == 0,
              "%s kernel: 1 and 2 threads give bit-identical weights", kernels[k]);
        free(one);
        free(two);
    }
    nr_set_gemm_backend("auto");
}

/* Backward adds to the gradients unless they were cleared: twice without clearing doubles them, and a
 * cleared buffer reads as zeros until the next backward. */
static void accumulation(void)
{
    nr_net *net = nr_net_new_image(6, 5, 2);
    nr_net_add_spec(net, "conv3k3-bn-relu-flatten-7-4", NR_ACT_RELU);
    nr_rng r;
    nr_rng_seed(&r, 12);
    nr_net_init(net, NR_INIT_AUTO, &r);
    float x[3 * 60];
    int32_t labels[3] = {0, 3, 1};
    for (int i = 0; i < 180; i++)
        x[i] = (float)nr_rng_normal(&r);
    size_t np = nr_net_param_count(net);
    float *once = malloc(np * sizeof *once);
    nr_net_forward(net, x, 3, 1, NULL);
    nr_net_loss(net, NR_LOSS_XENT, NULL, labels, NULL);
    nr_net_zero_grad(net);
    bool zeros = true;
    for (size_t i = 0; i < np; i++)
        zeros &= nr_net_grads(net)[i] == 0.0f;
    CHECK(zeros, "after nr_net_zero_grad the gradients read as zeros");
    nr_net_zero_grad(net);
    CHECK_OK(nr_net_backward(net));
    memcpy(once, nr_net_grads(net), np * sizeof *once);
    CHECK_OK(nr_net_forward(net, x, 3, 1, NULL));
    CHECK_OK(nr_net_loss(net, NR_LOSS_XENT, NULL, labels, NULL));
    CHECK_OK(nr_net_backward(net));
    bool doubled = true;
    for (size_t i = 0; i < np; i++)
        doubled &= nr_net_grads(net)[i] == 2.0f * once[i] || fabsf(nr_net_grads(net)[i] - 2.0f * once[i]) < 1e-6f;
    CHECK(doubled, "a second backward without clearing adds the same gradient again");
    free(once);
    nr_net_free(net);
}

static void no_allocation_in_step(void)
{
    nr_set_threads(2);
    nr_net *net = nr_net_new(100);
    nr_net_add_spec(net, "64-relu-64-tanh-10", NR_ACT_IDENTITY);
    nr_rng r;
    nr_rng_seed(&r, 3);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAMW, .weight_decay = 0.01f});
    float x[32 * 100];
    int32_t labels[32];
    for (size_t i = 0; i < 32 * 100; i++)
        x[i] = (float)nr_rng_normal(&r);
    for (int i = 0; i < 32; i++)
        labels[i] = i % 10;
    nr_net_train_batch(net, opt, NR_LOSS_XENT, x, NULL, labels, 32, NULL);
    struct mallinfo2 before = mallinfo2();
    for (int s = 0; s < 10; s++)
        nr_net_train_batch(net, opt, NR_LOSS_XENT, x, NULL, labels, s % 2 ? 32 : 17, NULL);
    struct mallinfo2 after = mallinfo2();
    CHECK(before.uordblks == after.uordblks && before.hblkhd == after.hblkhd,
          "training steps allocate nothing (heap in use %zu -> %zu bytes)", before.uordblks, after.uordblks);
    nr_opt_free(opt);
    nr_net_free(net);
}

/* Whether nets a and b give the same bits for each of `count` samples run one at a time. */
static bool same_one_by_one(nr_net *a, nr_net *b, const float *x, size_t count)
{
    size_t in = nr_net_input_size(a), out = nr_net_output_size(a);
    bool same = true;
    for (size_t i = 0; i < count; i++) {
        const float *ya, *yb;
        if (nr_net_forward(a, x + i * in, 1, 0, &ya) || nr_net_forward(b, x + i * in, 1, 0, &yb))
            return false;
        same &= memcmp(ya, yb, out * sizeof *ya) == 0;
    }
    return same;
}

/* nr_net_prepack: one sample at a time from the packed copies gives the bits of the weights read in place,
 * at 1 and 2 threads; the copies are really what is read (a write through a pointer taken before the last
 * pass is not seen until nr_net_params is called again); and every library call that changes the weights
 * leaves the copies stale, so that a prepacked twin trained alongside a plain one keeps giving its bits. */
static void prepack(void)
{
    nr_set_gemm_backend("auto");
    nr_net *a = nr_net_new(40), *b = nr_net_new(40);
    CHECK_OK(nr_net_add_spec(a, "600-relu-256-relu-10", NR_ACT_IDENTITY));
    CHECK_OK(nr_net_add_spec(b, "600-relu-256-relu-10", NR_ACT_IDENTITY));
    nr_rng r;
    nr_rng_seed(&r, 5);
    nr_net_init(a, NR_INIT_AUTO, &r);
    nr_rng_seed(&r, 5);
    nr_net_init(b, NR_INIT_AUTO, &r);
    enum { N = 16 };
    float x[N * 40];
    int32_t labels[N];
    for (size_t i = 0; i < N * 40; i++)
        x[i] = (float)nr_rng_normal(&r);
    for (int i = 0; i < N; i++)
        labels[i] = i % 10;
    CHECK_ERR(nr_net_prepack(NULL, 1), NR_EINVAL);
    CHECK_OK(nr_net_prepack(a, 1));
    for (int t = 1; t <= 2; t++) {
        nr_set_threads(t);
        CHECK(same_one_by_one(a, b, x, 4), "prepacked: one sample at a time the same bits at %d thread(s)", t);
    }
    /* The copies are read: a write through an old pointer is not seen, until nr_net_params is called. */
    float *wa = nr_net_params(a), *wb = nr_net_params(b);
    const float *y;
    float before[10], stale[10];
    CHECK_OK(nr_net_forward(a, x, 1, 0, &y));
    memcpy(before, y, sizeof before);
    for (size_t j = 0; j < 600; j++) {
        wa[j] += 0.5f; /* row 0 of the first layer's weights */
        wb[j] += 0.5f;
    }
    CHECK_OK(nr_net_forward(a, x, 1, 0, &y));
    memcpy(stale, y, sizeof stale);
    CHECK(memcmp(before, stale, sizeof stale) == 0, "prepacked: a write through an old pointer is not seen");
    nr_net_params(a);
    CHECK_OK(nr_net_forward(a, x, 1, 0, &y));
    CHECK(memcmp(before, y, sizeof before) != 0 && same_one_by_one(a, b, x, 4),
          "prepacked: after nr_net_params the write is seen");
    /* Every way the library changes weights. */
    nr_optimizer *oa = nr_opt_new(a, &(nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.05f});
    nr_optimizer *ob = nr_opt_new(b, &(nr_opt_config){.kind = NR_OPT_SGD, .lr = 0.05f});
    CHECK_OK(nr_net_train_batch(a, oa, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK_OK(nr_net_train_batch(b, ob, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow an SGD training step");
    nr_opt_free(oa);
    nr_opt_free(ob);
    oa = nr_opt_new(a, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f});
    ob = nr_opt_new(b, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.01f});
    CHECK_OK(nr_net_train_batch(a, oa, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK_OK(nr_net_train_batch(b, ob, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow an Adam training step");
    nr_net *nets[2] = {a, b};
    nr_optimizer *opts[2] = {oa, ob};
    for (int k = 0; k < 2; k++) {
        nr_net_zero_grad(nets[k]);
        CHECK_OK(nr_net_forward(nets[k], x, N, 1, NULL));
        CHECK_OK(nr_net_loss(nets[k], NR_LOSS_XENT, NULL, labels, NULL));
        CHECK_OK(nr_net_backward(nets[k]));
    }
    CHECK(same_one_by_one(a, b, x, 1), "prepacked: inference between backward and the step"); /* copies made */
    CHECK_OK(nr_opt_step(oa, a, 0.01f, NULL));
    CHECK_OK(nr_opt_step(ob, b, 0.01f, NULL));
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow nr_opt_step");
    for (int k = 0; k < 2; k++) {
        CHECK_OK(nr_net_forward(nets[k], x, N, 1, NULL));
        CHECK_OK(nr_net_loss(nets[k], NR_LOSS_XENT, NULL, labels, NULL));
        CHECK_OK(nr_net_backward_step(nets[k], opts[k], 0.01f));
    }
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow nr_net_backward_step");
    nr_rng_seed(&r, 6);
    nr_net_init(a, NR_INIT_AUTO, &r);
    nr_rng_seed(&r, 6);
    nr_net_init(b, NR_INIT_AUTO, &r);
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow nr_net_init");
    /* Copies made by one backend are declined by another: the weights are read in place. */
    if (nr_set_gemm_backend("avx2") == NR_OK)
        CHECK(same_one_by_one(a, b, x, 4), "prepacked: copies made for avx512 under avx2");
    nr_set_gemm_backend("auto");
    /* No allocation once the copies exist: remaking them reuses their memory. */
    struct mallinfo2 m0 = mallinfo2();
    for (int s = 0; s < 3; s++) {
        CHECK_OK(nr_net_train_batch(a, oa, NR_LOSS_XENT, x, NULL, labels, N, NULL));
        CHECK_OK(nr_net_train_batch(b, ob, NR_LOSS_XENT, x, NULL, labels, N, NULL));
        CHECK_OK(nr_net_forward(a, x, 1, 0, NULL));
    }
    struct mallinfo2 m1 = mallinfo2();
    CHECK(m0.uordblks == m1.uordblks && m0.hblkhd == m1.hblkhd,
          "prepacked: remaking the copies allocates nothing (heap in use %zu -> %zu bytes, mapped %zu -> %zu)",
          m0.uordblks, m1.uordblks, m0.hblkhd, m1.hblkhd);
    CHECK(same_one_by_one(a, b, x, 4), "prepacked: the copies follow training after inference");
    CHECK_OK(nr_net_prepack(a, 0));
    CHECK_OK(nr_net_train_batch(a, oa, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK_OK(nr_net_train_batch(b, ob, NR_LOSS_XENT, x, NULL, labels, N, NULL));
    CHECK(same_one_by_one(a, b, x, 4), "prepacking off: the weights in place");
    nr_opt_free(oa);
    nr_opt_free(ob);
    nr_net_free(a);
    nr_net_free(b);
}

/* A net of dense (bias or not), activation, dense layers from `units` (0 ends), the activation between them
 * `act`, prepacked or not; seeded alike. */
static nr_net *chain(size_t in, const size_t *units, nr_act act, int bias, int prepack)
{
    nr_net *net = nr_net_new(in);
    for (size_t i = 0; units[i]; i++) {
        CHECK_OK(nr_net_dense(net, units[i], bias));
        if (units[i + 1])
            CHECK_OK(act == NR_ACT_LEAKY_RELU ? nr_net_leaky_relu(net, 0.1f) : nr_net_act(net, act));
    }
    nr_rng r;
    nr_rng_seed(&r, 17);
    nr_net_init(net, NR_INIT_AUTO, &r);
    if (bias) { /* biases start at zero: nudge every 7th parameter, biases among them, alike in both twins */
        float *p = nr_net_params(net);
        for (size_t i = 0; i < nr_net_param_count(net); i += 7)
            p[i] += 0.01f * (float)(i % 13);
    }
    CHECK_OK(nr_net_prepack(net, prepack));
    return net;
}

/* One sample through dense, activation, dense in one pool job (nr__gemm_row_pair, used by prepacked nets at two
 * threads where each thread's columns of the first layer are the second layer's k block): every layer's output
 * has the bits of the layers run one by one, for each activation, with and without biases, whether the second
 * layer is packed too (MLP-512's 512-256) or read in place (MLP-256's 256-10); and the fused pass really runs. */
static void prepack_fused(void)
{
    static const size_t shapes[][5] = {{256, 10, 0},  {512, 256, 10, 0}, {256, 300, 0},
                                       {1024, 64, 0}, {600, 256, 10, 0}, {300, 10, 0}};
    static const size_t inputs[] = {784, 100, 33, 40, 40, 50};
    /* 600 is three panels (no) but 600-256-10 pairs 256 with 10; 300 is two panels of 160, k blocks of 150. */
    static const bool fused[] = {true, true, true, true, true, false};
    static const nr_act acts[] = {NR_ACT_RELU, NR_ACT_TANH, NR_ACT_SIGMOID, NR_ACT_LEAKY_RELU, NR_ACT_IDENTITY};
    nr_set_threads(2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int bias = 0; bias <= 1; bias++) {
            nr_act act = acts[(s + (size_t)bias) % 5];
            nr_net *a = chain(inputs[s], shapes[s], act, bias, 1), *b = chain(inputs[s], shapes[s], act, bias, 0);
            size_t in = inputs[s];
            float *x = malloc(3 * in * sizeof *x);
            nr_rng r;
            nr_rng_seed(&r, 23);
            for (size_t i = 0; i < 3 * in; i++)
                x[i] = (float)nr_rng_normal(&r);
            size_t pairs = nr__gemm_row_pairs(), differ = 0;
            for (size_t i = 0; i < 3; i++) {
                CHECK_OK(nr_net_forward(a, x + i * in, 1, 0, NULL));
                CHECK_OK(nr_net_forward(b, x + i * in, 1, 0, NULL));
                for (size_t l = 0; l < nr_net_layer_count(a); l++) {
                    nr_layer_info info;
                    const float *ya = nr_net_layer_output(a, l), *yb = nr_net_layer_output(b, l);
                    differ += nr_net_layer_info(a, l, &info) != NR_OK || !ya || !yb ||
                              memcmp(ya, yb, info.out_size * sizeof *ya) != 0;
                }
            }
            CHECK(differ == 0, "fused pair, %zu inputs, shape %zu: %zu layer outputs differ from the unfused pass",
                  in, s, differ);
            CHECK((nr__gemm_row_pairs() > pairs) == fused[s], "fused pair, shape %zu: ran %zu times (expected %s)", s,
                  nr__gemm_row_pairs() - pairs, fused[s] ? "some" : "none");
            free(x);
            nr_net_free(a);
            nr_net_free(b);
        }
    nr_set_threads(1);
    size_t pairs = nr__gemm_row_pairs();
    nr_net *a = chain(784, shapes[0], NR_ACT_RELU, 1, 1);
    float x[784] = {0};
    CHECK_OK(nr_net_forward(a, x, 1, 0, NULL));
    CHECK(nr__gemm_row_pairs() == pairs, "fused pair: not at one thread");
    nr_net_free(a);
}

int main(void)
{
    errors();
    spec();
    prepack_fused();
    determinism();
    accumulation();
    no_allocation_in_step();
    prepack();
    return check_report("test_net");
}
