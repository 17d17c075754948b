/* xor.c - a neurite program to copy and start from: build a small network, train it, predict, free it,
 * checking every status. Build: cc xor.c $(pkg-config --cflags --libs neurite) -o xor */
#include <neurite.h>

#include <stdio.h>

/* Prints the library's message for a failed call and returns 1, so main can `return fail(...)`. */
static int fail(const char *what, nr_status st)
{
    fprintf(stderr, "xor: %s failed (%s): %s\n", what, nr_status_string(st), nr_error_message());
    return 1;
}

int main(void)
{
    /* Four samples of two inputs each, stored one after another, and the answer for each. */
    const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float y[4] = {0, 1, 1, 0};

    /* 2 inputs -> 8 tanh units -> 1 sigmoid output. */
    nr_net *net = nr_net_new(2);
    if (!net)
        return fail("nr_net_new", NR_ENOMEM);
    nr_status st;
    if ((st = nr_net_add_spec(net, "8-tanh-1-sigmoid", NR_ACT_IDENTITY))) {
        nr_net_free(net);
        return fail("nr_net_add_spec", st);
    }

    nr_rng rng;
    nr_rng_seed(&rng, 42);  /* the same seed gives the same network on every machine */
    if ((st = nr_net_init(net, NR_INIT_XAVIER_UNIFORM, &rng))) {
        nr_net_free(net);
        return fail("nr_net_init", st);
    }

    nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){.kind = NR_OPT_ADAM, .lr = 0.05f});
    if (!opt) {
        nr_net_free(net);
        return fail("nr_opt_new", NR_ENOMEM);
    }

    double loss = 0;
    for (int step = 0; step < 1000; step++) {
        if ((st = nr_net_train_batch(net, opt, NR_LOSS_MSE, x, y, NULL, 4, &loss))) {
            nr_opt_free(opt);
            nr_net_free(net);
            return fail("nr_net_train_batch", st);
        }
        if (step % 250 == 0)
            printf("step %4d  loss %.6f\n", step, loss);
    }

    const float *out;  /* points into the network; valid until its next call */
    if ((st = nr_net_forward(net, x, 4, 0, &out))) {
        nr_opt_free(opt);
        nr_net_free(net);
        return fail("nr_net_forward", st);
    }
    int correct = 0;
    for (int i = 0; i < 4; i++) {
        printf("xor(%g, %g) = %.3f\n", x[2 * i], x[2 * i + 1], out[i]);
        correct += (out[i] > 0.5f) == (y[i] > 0.5f);
    }

    nr_opt_free(opt);
    nr_net_free(net);
    printf("%d of 4 right\n", correct);
    return correct == 4 ? 0 : 1;
}
