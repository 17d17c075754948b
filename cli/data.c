/* data.c - how the CLI finds and loads data: the names "mnist" and "fashion", or a file path. The digits live
 * in the user's data folder (cli_data_dir), so --data mnist works from any folder and after make install;
 * Fashion-MNIST is where Debian's package puts it. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_data_dir(void)
{
    static char dir[4096];
    const char *d = getenv("NEURITE_DATA"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (d && *d)
        return d;
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/neurite", xdg);
    else
        snprintf(dir, sizeof dir, "%s/.local/share/neurite", home && *home ? home : ".");
    return dir;
}

static bool exists(const char *path) { return access(path, R_OK) == 0; }

int cli_resolve_data(const char *cmd, const char *value, data_source *src)
{
    memset(src, 0, sizeof *src);
    src->name = value;
    if (strcmp(value, "mnist") == 0) {
        const char *dir = cli_data_dir();
        snprintf(src->train, sizeof src->train, "%s/mnist/train-images-idx3-ubyte", dir);
        snprintf(src->test, sizeof src->test, "%s/mnist/t10k-images-idx3-ubyte", dir);
        src->named = true;
        if (!exists(src->train) || !exists(src->test))
            return cli_error(cmd, EXIT_WORK, "the MNIST digits are not in %s/mnist: fetch them with "
                                             "'neurite fetch mnist'", dir);
        return 0;
    }
    if (strcmp(value, "fashion") == 0) {
        const char *dir = "/usr/share/datasets/fashion-mnist";
        snprintf(src->train, sizeof src->train, "%s/train-images-idx3-ubyte.gz", dir);
        snprintf(src->test, sizeof src->test, "%s/t10k-images-idx3-ubyte.gz", dir);
        src->named = true;
        if (!exists(src->train) || !exists(src->test))
            return cli_error(cmd, EXIT_WORK, "Fashion-MNIST is not in %s: fetch it with "
                                             "'neurite fetch fashion' (Debian's dataset-fashion-mnist)", dir);
        return 0;
    }
    if (strlen(value) >= sizeof src->train)
        return cli_error(cmd, EXIT_USAGE, "--data: path too long");
    snprintf(src->train, sizeof src->train, "%s", value);
    return 0;
}

bool cli_is_onnx(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, ".onnx") == 0;
}

nr_status cli_load_model(const char *path, nr_net **net)
{
    return cli_is_onnx(path) ? nr_onnx_import(path, net) : nr_model_load(path, net);
}

int cli_load(const char *cmd, const char *path, const nr_data_options *options, nr_dataset **out)
{
    nr_status st = nr_data_load(path, options, out);
    return st ? cli_fail(cmd, st) : 0;
}

const char *cli_class_name(const nr_net *net, size_t k, char *buf, size_t cap)
{
    const char *name = nr_net_class_name(net, k);
    if (name)
        return name;
    snprintf(buf, cap, "%zu", k);
    return buf;
}
