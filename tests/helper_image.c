/* helper_image.c - reads an image through nr_image_load and prints its values, for tests/test_images.py to
 * compare with another decoder (Pillow).
 *
 *   helper_image FILE HEIGHT WIDTH CHANNELS [INVERT CENTER]
 *
 * Prints HEIGHT * WIDTH * CHANNELS numbers, one per line; exits 1 with the library's message otherwise. */
#include "neurite.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: helper_image FILE HEIGHT WIDTH CHANNELS [INVERT CENTER]\n");
        return 2;
    }
    size_t h = strtoul(argv[2], NULL, 10), w = strtoul(argv[3], NULL, 10), c = strtoul(argv[4], NULL, 10);
    nr_image_options opt = {argc == 7 ? atoi(argv[5]) : 0, argc == 7 ? atoi(argv[6]) : 0};
    size_t n = h * w * c;
    float *out = malloc((n ? n : 1) * sizeof *out);
    if (!out || nr_image_load(argv[1], h, w, c, &opt, out) != NR_OK) {
        fprintf(stderr, "%s\n", out ? nr_error_message() : "out of memory");
        free(out);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%.6g\n", (double)out[i]);
    free(out);
    return 0;
}
