/* fuzz_onnx.c - the ONNX importer: nr_onnx_import on any bytes.
 *
 * The input is the file. A model that imports must be whole: it is summarised, run, trained a step and saved
 * (fz_use_net), then exported as ONNX and imported again, and the second import must give the same layers,
 * head and parameters bit for bit: everything the importer accepts, the exporter writes. */
#include "fuzz_common.h"

static void fz_onnx_round_trip(nr_net *net)
{
    const char *p = fz_path("again.onnx");
    if (nr_onnx_export(net, p, 0) != NR_OK) {
        fprintf(stderr, "fuzz: an imported model does not export: %s\n", nr_error_message());
        abort();
    }
    nr_net *back = NULL;
    if (nr_onnx_import(p, &back) != NR_OK) {
        fprintf(stderr, "fuzz: an exported model does not import: %s\n", nr_error_message());
        abort();
    }
    if (nr_net_layer_count(back) != nr_net_layer_count(net) || nr_net_head(back) != nr_net_head(net) ||
        nr_net_param_count(back) != nr_net_param_count(net) ||
        (nr_net_param_count(net) && /* no parameters: no arrays to compare (memcmp takes no NULL) */
         memcmp(nr_net_params(back), nr_net_params(net), nr_net_param_count(net) * sizeof(float)) != 0)) {
        fprintf(stderr, "fuzz: export -> import changed the network\n");
        abort();
    }
    nr_net_free(back);
}

static int fz_onnx(const uint8_t *data, size_t size)
{
    const char *path = fz_write("model.onnx", data, size);
    nr_net *net = NULL;
    nr_status st = nr_onnx_import(path, &net);
    if (st != NR_OK && net) {
        fprintf(stderr, "fuzz: a failed import returned a network\n");
        abort();
    }
    if (st != NR_OK && !nr_error_message()[0]) {
        fprintf(stderr, "fuzz: an import failed without a message\n");
        abort();
    }
    if (st != NR_OK)
        return 0;
    if (fz_net_small(net))
        fz_onnx_round_trip(net);
    fz_use_net(net);
    nr_net_free(net);
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_onnx(data, size); }
#endif
