/* fuzz_safetensors.c - the safetensors reader: nr_safetensors_import on any bytes.
 *
 * The first byte chooses the network the tensors are read into (a bit of everything: dense, convolution with
 * and without bias, batch normalisation on an image and on features, a flattened image before a dense layer);
 * the rest is the file. A failed import must leave the network as it was; a good one must hold only finite
 * numbers, and export and import again to the same parameters. */
#include "fuzz_common.h"

#include <math.h>

static const char *const fz_st_nets[4][2] = {
    {"4x4x2", "conv3k3-bn-relu-pool2-fc5"},
    {"6", "fc4-bn-tanh-fc3"},
    {"5x5x1", "conv2k3s2p0-flatten-bn-fc2"},
    {"3x3x3", "conv4k1-avgpool3-drop0.5-fc2-softmax"},
};

static nr_net *fz_st_net(unsigned which)
{
    const char *const *spec = fz_st_nets[which % 4];
    size_t h = 1, w = 1, c;
    nr_net *net = sscanf(spec[0], "%zux%zux%zu", &h, &w, &c) == 3 ? nr_net_new_image(h, w, c)
                                                                   : nr_net_new((size_t)atoi(spec[0]));
    if (!net || nr_net_add_spec(net, spec[1], NR_ACT_IDENTITY) != NR_OK) {
        fprintf(stderr, "fuzz: the harness's network %s does not build: %s\n", spec[1], nr_error_message());
        abort();
    }
    nr_rng rng;
    nr_rng_seed(&rng, which);
    nr_net_init(net, NR_INIT_AUTO, &rng);
    return net;
}

static int fz_safetensors(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    nr_net *net = fz_st_net(data[0]);
    size_t n = nr_net_param_count(net);
    float *before = malloc(n * sizeof *before);
    if (!before)
        abort();
    memcpy(before, nr_net_params(net), n * sizeof *before);
    nr_status st = nr_safetensors_import(net, fz_write("tensors.safetensors", data + 1, size - 1));
    if (st != NR_OK && (memcmp(before, nr_net_params(net), n * sizeof *before) != 0 || !nr_error_message()[0])) {
        fprintf(stderr, "fuzz: a failed import changed the network or said nothing\n");
        abort();
    }
    for (size_t i = 0; st == NR_OK && i < n; i++)
        if (!isfinite(nr_net_params(net)[i])) {
            fprintf(stderr, "fuzz: an import gave parameter %zu the value %g\n", i, (double)nr_net_params(net)[i]);
            abort();
        }
    if (st == NR_OK) {
        const char *p = fz_path("again.safetensors");
        nr_net *back = fz_st_net(data[0]);
        if (nr_safetensors_export(net, p) != NR_OK || nr_safetensors_import(back, p) != NR_OK ||
            (n && memcmp(nr_net_params(back), nr_net_params(net), n * sizeof(float)) != 0)) {
            fprintf(stderr, "fuzz: export -> import changed the tensors: %s\n", nr_error_message());
            abort();
        }
        nr_net_free(back);
    }
    free(before);
    nr_net_free(net);
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_safetensors(data, size); }
#endif
