/* fuzz_image.c - the image reader: PNG through libpng, JPEG through libjpeg-turbo, and PGM/PPM of our own.
 *
 * The first byte chooses what the image is turned into, the rest is the file:
 *   bits 0-1  height and width: 28x28, 1x1, 7x5, 64x64
 *   bit 2     channels: 1 or 3
 *   bits 3-4  inversion: none, yes, auto, auto
 *   bit 5     MNIST-style centring
 * nr_image_load must either fail with a message or fill every value with a number from 0 to 255. */
#include "fuzz_common.h"

#include <math.h>

static int fz_image(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t sizes[4][2] = {{28, 28}, {1, 1}, {7, 5}, {64, 64}};
    const unsigned mode = data[0];
    size_t h = sizes[mode & 3][0], w = sizes[mode & 3][1], c = (mode >> 2) & 1 ? 3 : 1;
    nr_image_options opt = {.invert = ((mode >> 3) & 3) == 0 ? 0 : ((mode >> 3) & 3) == 1 ? 1 : -1,
                            .center = (mode >> 5) & 1};
    const char *path = fz_write((mode >> 6) & 1 ? "image.pgm" : "image.png", data + 1, size - 1);
    float out[64 * 64 * 3];
    nr_status st = nr_image_load(path, h, w, c, &opt, out);
    if (st && !nr_error_message()[0]) {
        fprintf(stderr, "fuzz: nr_image_load failed without a message\n");
        abort();
    }
    for (size_t i = 0; !st && i < h * w * c; i++)
        if (!(out[i] >= -0.001f && out[i] <= 255.001f)) {
            fprintf(stderr, "fuzz: pixel %zu is %g, outside 0..255\n", i, (double)out[i]);
            abort();
        }
    return 0;
}

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_image(data, size); }
#endif
