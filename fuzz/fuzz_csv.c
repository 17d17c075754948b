/* fuzz_csv.c - the CSV reader.
 *
 * The first byte of the input chooses the options, the rest is the file:
 *   bits 0-2  the label column: the last (NULL), "0", "1", "label", "y", "2", "x", "99"
 *   bits 3-4  the header option: 0 guess, 1 yes, 2 no, 3 guess
 *   bit 5     unlabeled (samples only, as `neurite predict` reads them)
 *   bits 6-7  0 classes, 1 regression targets, 2 missing values dropped, 3 missing values filled
 * A data set that loads is used as training uses it (fz_use_data); one that carries an encoding, class names
 * or targets is then read again as a network trained on it reads files (options.model). */
#include "fuzz_common.h"

/* The same file read for a network fitted to it: its encoding, class names and targets in use. */
static void fz_csv_as_model(const char *path, const nr_dataset *d, const nr_data_options *opts)
{
    size_t outputs = nr_data_target_count(d) ? nr_data_target_count(d) : nr_data_classes(d);
    if (nr_data_features(d) > 4096 || outputs > 4096 || outputs == 0)
        return;
    nr_net *net = nr_net_new(nr_data_features(d));
    if (net && !nr_net_dense(net, outputs, 1) && !nr_net_fit_scaling(net, d, NR_SCALE_STANDARD)) {
        nr_data_options again = *opts;
        again.model = net;
        for (int unlabeled = 0; unlabeled < 2; unlabeled++) {
            nr_dataset *e = NULL;
            again.unlabeled = unlabeled;
            /* Labelled as before, the file must read to the same features (unlabeled, its label is one more). */
            if (nr_data_load(path, &again, &e) == NR_OK && !unlabeled && nr_data_features(e) != nr_data_features(d)) {
                fprintf(stderr, "fuzz: read for its model, the file has %zu features, not %zu\n",
                        nr_data_features(e), nr_data_features(d));
                abort();
            }
            nr_data_free(e);
        }
    }
    nr_net_free(net);
}

static int fz_csv(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const labels[] = {NULL, "0", "1", "label", "y", "2", "x", "99"};
    const unsigned mode = data[0];
    const unsigned kind = (mode >> 6) & 3;
    nr_data_options opts = {.label = labels[mode & 7], .header = (int)((mode >> 3) & 3) % 3,
                            .unlabeled = (mode >> 5) & 1, .task = kind == 1 ? NR_TASK_REGRESS : NR_TASK_CLASSIFY,
                            .missing = kind == 2 ? NR_MISSING_DROP : kind == 3 ? NR_MISSING_MEAN : NR_MISSING_REFUSE};
    const char *path = fz_write("table.csv", data + 1, size - 1);
    nr_dataset *d = NULL;
    nr_status st = nr_data_load(path, &opts, &d);
    if (!st && d && (nr_data_class_name(d, 0) || nr_data_target_count(d) || kind >= 2))
        fz_csv_as_model(path, d, &opts);
    return fz_loaded(st, d, false, "a CSV", mode);
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_csv(data, size); }
#endif
