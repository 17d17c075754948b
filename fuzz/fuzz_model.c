/* fuzz_model.c - the model file reader: nr_model_load, and the checkpoint sections nr_train reads to resume.
 *
 * The input is a model file. It is loaded as it is, then again "resealed" (its length field and checksum made
 * right), because otherwise nearly every mutation stops at the checksum and the parser behind it would never
 * be reached. A model that loads is summarised, run, trained a step and saved (fz_use_net). A checkpoint that
 * loads has its training state read (nr_checkpoint_read) and is resumed, the way `neurite train --resume` does, on the small data set fuzz/seeds.c trained the seed
 * checkpoints on (8 samples, batch 4), so that the training-state sections are parsed too. */
#include "fuzz_common.h"

/* The optimizer kind a checkpoint's "optm" section names, so the resumed run asks for the same one. */
static nr_opt_kind fz_model_opt_kind(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 16 <= size; i++)
        if (memcmp(data + i, "optm", 4) == 0)
            return (nr_opt_kind)(data[i + 12] % 5);
    return NR_OPT_ADAM;
}

/* The data set of the seed checkpoints: 8 samples of `in` features, labels alternating 0 and 1. */
static nr_dataset *fz_model_data(size_t in, size_t n, size_t out)
{
    float *x = malloc(n * in * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    nr_dataset *d = NULL;
    if (x && y) {
        for (size_t i = 0; i < n * in; i++)
            x[i] = (float)((i / in + i % in) % 5) - 2.0f;
        for (size_t i = 0; i < n; i++)
            y[i] = out > 1 ? (int32_t)(i % 2) : 0;
        nr_data_from_arrays(x, y, n, in, &d);
    }
    free(x);
    free(y);
    return d;
}

static void fz_model_resume(const char *path, nr_net *net, nr_opt_kind kind)
{
    size_t in = nr_net_input_size(net), out = nr_net_output_size(net);
    if (!fz_net_small(net) || in > 4096 || out > 64)
        return;
    nr_dataset *train = fz_model_data(in, 8, out), *val = fz_model_data(in, 4, out);
    if (train && val) {
        nr_train_config cfg = {.loss = nr_net_head(net) == NR_LOSS_XENT && out > 1 ? NR_LOSS_XENT : NR_LOSS_MSE,
                               .opt = {.kind = kind}, .epochs = 2, .batch = 4, .patience = 3, .seed = 1,
                               .resume = path};
        nr_train_result res;
        nr_train(net, train, val, &cfg, &res);
    }
    nr_data_free(train);
    nr_data_free(val);
}

static void fz_model_try(const uint8_t *data, size_t size)
{
    const char *path = fz_write("model.nrm", data, size);
    nr_net *net = NULL;
    if (nr_model_load(path, &net) != NR_OK) {
        if (net) {
            fprintf(stderr, "fuzz: nr_model_load failed but returned a network\n");
            abort();
        }
        return;
    }
    if (size >= 16 && (data[12] & 1)) {
        nr_checkpoint_info info;  /* what `neurite info` and `--resume` read first: the position and the note */
        if (nr_checkpoint_read(path, &info) == NR_OK && info.note && strlen(info.note) > 65536) {
            fprintf(stderr, "fuzz: nr_checkpoint_read returned a note longer than the limit\n");
            abort();
        }
        nr_checkpoint_info_free(&info);
        fz_model_resume(path, net, fz_model_opt_kind(data, size));
    }
    fz_use_net(net);
    nr_net_free(net);
}

static int fz_model(const uint8_t *data, size_t size)
{
    fz_model_try(data, size);
    if (size < 28)
        return 0;
    uint8_t *sealed = malloc(size);
    if (!sealed)
        return 0;
    memcpy(sealed, data, size);
    for (int i = 0; i < 8; i++)
        sealed[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint32_t crc = nr__crc32(0, sealed, size - 4);
    for (int i = 0; i < 4; i++)
        sealed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    if (memcmp(sealed, data, size) != 0)
        fz_model_try(sealed, size);
    free(sealed);
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_model(data, size); }
#endif
