/* classify_digits.c - a network exported by `neurite export --format c --name model --out model.h`, used by a
 * plain C program with no neurite and no allocation: it classifies every image of an IDX file and, given the
 * labels file, prints the accuracy.
 *
 *   cc -O2 -I. examples/exported/classify_digits.c -lm -o classify
 *   ./classify t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
 *
 * The header is found as "model.h" on the include path (-I the folder it was written to). */
#include "model.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    static float x[model_INPUTS], out[model_OUTPUTS], work[model_WORK];
    unsigned char head[16], pixel[model_INPUTS], label;
    FILE *images = argc > 1 ? fopen(argv[1], "rb") : NULL, *labels = argc > 2 ? fopen(argv[2], "rb") : NULL;
    if (!images || fread(head, 1, 16, images) != 16 || head[2] != 8 || head[3] != 3) {
        fprintf(stderr, "usage: classify IMAGES-idx3-ubyte [LABELS-idx1-ubyte]\n");
        return 2;
    }
    if (labels && fread(head, 1, 8, labels) != 8)
        labels = NULL;
    unsigned long right = 0, n = 0;
    for (; fread(pixel, 1, model_INPUTS, images) == model_INPUTS; n++) {
        for (int i = 0; i < model_INPUTS; i++)
            x[i] = pixel[i];  /* raw pixels: the model scales them itself */
        model_predict(x, out, work);
        int best = 0;
        for (int k = 1; k < model_OUTPUTS; k++)
            best = out[k] > out[best] ? k : best;
        if (labels && fread(&label, 1, 1, labels) == 1)
            right += label == best;
        else
            printf("%d\n", best);
    }
    if (labels)
        printf("%lu images, %lu right: accuracy %.4f\n", n, right, n ? (double)right / (double)n : 0.0);
    return 0;
}
