/* data.c - how the CLI finds and loads data: the names "mnist" and "fashion", or a file path. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *data_dir(void)
{
    const char *d = getenv("NEURITE_DATA");
    return d && *d ? d : "data";
}

static bool exists(const char *path) { return access(path, R_OK) == 0; }

int cli_resolve_data(const char *cmd, const char *value, data_source *src)
{
    memset(src, 0, sizeof *src);
    src->name = value;
    if (strcmp(value, "mnist") == 0) {
        snprintf(src->train, sizeof src->train, "%s/mnist/train-images-idx3-ubyte", data_dir());
        snprintf(src->test, sizeof src->test, "%s/mnist/t10k-images-idx3-ubyte", data_dir());
        src->named = true;
        if (!exists(src->train) || !exists(src->test))
            return cli_error(cmd, EXIT_WORK, "the MNIST digits are not in %s/mnist: fetch them with "
                                             "'scripts/fetch-data.sh mnist' (or run 'make run')", data_dir());
        return 0;
    }
    if (strcmp(value, "fashion") == 0) {
        const char *dir = "/usr/share/datasets/fashion-mnist";
        snprintf(src->train, sizeof src->train, "%s/train-images-idx3-ubyte.gz", dir);
        snprintf(src->test, sizeof src->test, "%s/t10k-images-idx3-ubyte.gz", dir);
        src->named = true;
        if (!exists(src->train) || !exists(src->test))
            return cli_error(cmd, EXIT_WORK, "Fashion-MNIST is not in %s: fetch it with "
                                             "'scripts/fetch-data.sh fashion' (Debian's dataset-fashion-mnist)", dir);
        return 0;
    }
    if (strlen(value) >= sizeof src->train)
        return cli_error(cmd, EXIT_USAGE, "--data: path too long");
    snprintf(src->train, sizeof src->train, "%s", value);
    return 0;
}

int cli_load(const char *cmd, const char *path, const char *label, bool unlabeled, nr_dataset **out)
{
    nr_data_options opts = {.label = label, .unlabeled = unlabeled};
    nr_status st = nr_data_load(path, &opts, out);
    return st ? cli_fail(cmd, st) : 0;
}
