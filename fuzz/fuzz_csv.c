/* fuzz_csv.c - the CSV reader.
 *
 * The first byte of the input chooses the options, the rest is the file:
 *   bits 0-2  the label column: the last (NULL), "0", "1", "label", "y", "2", "x", "99"
 *   bits 3-4  the header option: 0 guess, 1 yes, 2 no, 3 guess
 *   bit 5     unlabeled (samples only, as `neurite predict` reads them)
 * A data set that loads is used as training uses it (fz_use_data). */
#include "fuzz_common.h"

static int fz_csv(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const labels[] = {NULL, "0", "1", "label", "y", "2", "x", "99"};
    const unsigned mode = data[0];
    nr_data_options opts = {.label = labels[mode & 7], .header = (int)((mode >> 3) & 3) % 3,
                            .unlabeled = (mode >> 5) & 1};
    const char *path = fz_write("table.csv", data + 1, size - 1);
    nr_dataset *d = NULL;
    nr_status st = nr_data_load(path, &opts, &d);
    return fz_loaded(st, d, false, "a CSV", mode);
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_csv(data, size); }
#endif
