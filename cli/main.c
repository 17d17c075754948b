/* main.c - the neurite command: dispatches to a subcommand. */
#include "cli.h"

#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} command;

static const command commands[] = {
    {"seed", cmd_seed, "the lecture's two-layer network, reproduced (--trace shows one step in detail)"},
    {"xor", cmd_xor, "why activations must be non-linear: linear layers collapse into one matrix"},
    {"train", cmd_train, "train a classifier on a data file, or on the digits or Fashion-MNIST"},
    {"eval", cmd_eval, "accuracy, per-class precision and recall, and the confusion matrix of a model"},
    {"predict", cmd_predict, "the class and probabilities a model gives each row or image"},
    {"info", cmd_info, "the summary of a saved model or checkpoint"},
    {"export", cmd_export, "a model as a dependency-free C file, an ONNX model or PyTorch tensors"},
    {"import", cmd_import, "a model from ONNX, or PyTorch tensors (safetensors) into a layer list"},
    {"quantize", cmd_quantize, "an int8 model: 4x smaller, integer arithmetic, calibrated on training samples"},
    {"report", cmd_report, "one HTML page that shows a model: curves, confusion matrix, mistakes, weights"},
    {"fetch", cmd_fetch, "fetch the MNIST digits or Fashion-MNIST into the data folder"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: neurite <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "  %-9s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'neurite <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "neurite: no command given (try 'neurite --help')\n");
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("neurite %s (matrix kernel: %s; int8 kernel: %s; images: %s%s%s)\n", NR_VERSION_STRING,
               nr_gemm_backend(), nr_qgemm_backend(), nr_image_decoder() ? nr_image_decoder() : "PGM and PPM only", cli_comm_kind() ? "; processes: " : "",
               cli_comm_kind() ? cli_comm_kind() : "");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) {
            int rc = cli_comm_start(&argc, &argv);
            if (!rc)
                rc = commands[i].run(argc - 1, argv + 1);
            cli_comm_stop();
            return rc;
        }
    fprintf(stderr, "neurite: unknown command '%s' (try 'neurite --help')\n", name);
    return EXIT_USAGE;
}
