/* fuzz_spec.c - the text form of a network (nr_net_add_spec), the reader behind `neurite train --layers`.
 *
 * The first byte of the input chooses the network the list is added to and the default activation:
 *   bits 0-2  the input: 1, 2, 10 or 784 features, or an image of 8x8x1, 5x7x3, 28x28x1 or 16x16x4
 *   bits 3-5  the default activation: identity, relu, leaky, sigmoid, tanh, softmax, relu, identity
 *   bit 6     the list is added in two calls, split at the first ';' (the second continues the first)
 * The rest is the list (up to a zero byte). A network that builds is initialised and, if it is small
 * (fz_net_small: a list may legitimately describe a network of billions of parameters), run forward and
 * backward on a batch of 2 and saved and loaded (fz_use_net). A list that fails must leave the network
 * as it was. */
#include "fuzz_common.h"

#ifndef FUZZ_NO_MAIN
/* Allocations above 64 MB fail (return NULL) instead of being attempted, so a list that describes a huge
 * network exercises the out-of-memory paths instead of the machine's memory. The library must handle it.
 * (tests/test_fuzz_regress.c sets the same.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=64"; }
#endif

static int fz_spec(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t shapes[8][3] = {{1, 1, 1}, {1, 1, 2}, {1, 1, 10}, {1, 1, 784},
                                        {8, 8, 1}, {5, 7, 3}, {28, 28, 1}, {16, 16, 4}};
    static const nr_act acts[8] = {NR_ACT_IDENTITY, NR_ACT_RELU, NR_ACT_LEAKY_RELU, NR_ACT_SIGMOID,
                                   NR_ACT_TANH,     NR_ACT_SOFTMAX, NR_ACT_RELU, NR_ACT_IDENTITY};
    const unsigned mode = data[0];
    const size_t *s = shapes[mode & 7];
    nr_act act = acts[(mode >> 3) & 7];
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    nr_net *net = s[0] == 1 ? nr_net_new(s[2]) : nr_net_new_image(s[0], s[1], s[2]);
    if (!net) {
        free(text);
        return 0;
    }
    char *second = (mode & 64) ? strchr(text, ';') : NULL;
    if (second)
        *second++ = 0;
    bool built = nr_net_add_spec(net, text, act) == NR_OK;
    if (second) {
        size_t layers = nr_net_layer_count(net), params = nr_net_param_count(net);
        if (nr_net_add_spec(net, second, act) != NR_OK &&
            (nr_net_layer_count(net) != layers || nr_net_param_count(net) != params)) {
            fprintf(stderr, "fuzz: a failed nr_net_add_spec changed the network\n");
            abort();
        }
        built = nr_net_layer_count(net) > 0;
    } else if (!built && nr_net_layer_count(net) != 0) {
        fprintf(stderr, "fuzz: a failed nr_net_add_spec changed the network\n");
        abort();
    }
    if (built) {
        nr_rng rng;
        nr_rng_seed(&rng, mode);
        /* Initialising a network of millions of weights takes long and finds nothing fz_use_net would run. */
        if (fz_net_small(net))
            nr_net_init(net, (nr_init)(mode % 6), &rng);
        nr_net_set_head(net, (nr_loss)(mode % 3));
        fz_use_net(net);
    }
    nr_net_free(net);
    free(text);
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_spec(data, size); }
#endif
