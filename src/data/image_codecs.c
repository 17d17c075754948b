/* image_codecs.c - PNG through libpng and JPEG through libjpeg-turbo, each optional at build time.
 *
 * Why these two: they are what browsers, Pillow and the operating system decode with, maintained for security
 * and fuzzed continuously by OSS-Fuzz, and both have an interface with no setjmp (libpng's "simplified" png_image
 * API, libjpeg-turbo's TurboJPEG API). (stb_image, tried first, is not hardened: Debian's 2.27 read out of
 * bounds on a fuzzed JPEG and allocated 512 MB for an 86-byte PNG.) A file is read whole into memory first (its
 * length is capped by the caller), the header's dimensions checked against the caller's limit, and only then
 * the pixels decoded, into a buffer we allocate. */
#include "data/data.h"

#include <stdlib.h>
#include <string.h>

#ifdef NR_HAVE_PNG
#include <png.h>
#endif
#ifdef NR_HAVE_JPEG
#include <turbojpeg.h>
#endif

#ifdef NR_HAVE_PNG
/* Puts alpha over white paper: an image with transparency is a drawing on paper. Drops the alpha channel. */
static void over_white(const uint8_t *px, size_t n, size_t c, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned alpha = px[i * (c + 1) + c];
        for (size_t k = 0; k < c; k++)
            out[i * c + k] = (uint8_t)((px[i * (c + 1) + k] * alpha + 255 * (255 - alpha) + 127) / 255);
    }
}

/* The same for 16-bit values whose colour is already multiplied by alpha: white * (1 - alpha) is added. */
static void over_white_deep(const uint16_t *px, size_t n, size_t c, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t alpha = px[i * (c + 1) + c];
        for (size_t k = 0; k < c; k++)
            out[i * c + k] = (uint8_t)((px[i * (c + 1) + k] + (65535 - alpha) + 128) / 257);
    }
}

nr_status nr__png_read(const char *path, const unsigned char *data, size_t len, size_t max_pixels, nr__image *img)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, data, len))
        return nr__fail(NR_EFORMAT, "%s: a damaged PNG (%s)", path, png.message);
    if ((size_t)png.width * png.height > max_pixels) {
        png_image_free(&png);
        return nr__fail(NR_EFORMAT, "%s: %ux%u pixels is more than the limit of %zu", path, png.width, png.height,
                        max_pixels);
    }
    /* Grey stays grey, anything else becomes RGB, both with alpha (composited below). An 8-bit file is read
     * as its 8-bit values; a 16-bit one as its 16-bit values (libpng's "linear" format: no gamma conversion,
     * colour premultiplied by alpha), then rounded to 8 bits, as other tools do. */
    size_t c = png.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    bool deep = png.format & PNG_FORMAT_FLAG_LINEAR;
    png.format = (c == 3 ? PNG_FORMAT_RGBA : PNG_FORMAT_GA) | (deep ? PNG_FORMAT_FLAG_LINEAR : 0);
    size_t n = (size_t)png.width * png.height;
    void *px = malloc(PNG_IMAGE_SIZE(png));
    img->pixels = malloc(n * c);
    if (!px || !img->pixels) {
        free(px);
        png_image_free(&png);
        return nr__fail(NR_ENOMEM, "%s: out of memory for %zu pixels", path, n);
    }
    if (!png_image_finish_read(&png, NULL, px, 0, NULL)) {
        nr_status st = nr__fail(NR_EFORMAT, "%s: a damaged PNG (%s)", path, png.message);
        png_image_free(&png);
        free(px);
        return st;
    }
    png_image_free(&png);
    if (deep)
        over_white_deep(px, n, c, img->pixels);
    else
        over_white(px, n, c, img->pixels);
    img->h = png.height;
    img->w = png.width;
    img->c = c;
    free(px);
    return NR_OK;
}
#endif

#ifdef NR_HAVE_JPEG
static nr_status jpeg_fail(const char *path, tjhandle tj, const char *what)
{
    nr_status st = nr__fail(NR_EFORMAT, "%s: %s (%s)", path, what, tjGetErrorStr2(tj));
    tjDestroy(tj);
    return st;
}

nr_status nr__jpeg_read(const char *path, const unsigned char *data, size_t len, size_t max_pixels, nr__image *img)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return nr__fail(NR_ENOMEM, "%s: cannot start the JPEG decoder (%s)", path, tjGetErrorStr2(NULL));
    int w, h, subsampling, colourspace;
    if (len > (unsigned long)-1 || tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsampling, &colourspace))
        return jpeg_fail(path, tj, "a damaged JPEG");
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h > max_pixels) {
        tjDestroy(tj);
        return nr__fail(NR_EFORMAT, "%s: %dx%d pixels is more than the limit of %zu", path, w, h, max_pixels);
    }
    size_t c = colourspace == TJCS_GRAY ? 1 : 3;
    if (!(img->pixels = malloc((size_t)w * (size_t)h * c))) {
        tjDestroy(tj);
        return nr__fail(NR_ENOMEM, "%s: out of memory for %dx%d pixels", path, w, h);
    }
    /* A warning (a file cut short, a corrupt segment) refuses the image rather than fill it with grey; a
     * progressive file may have at most 500 scans, so a crafted one cannot run for minutes. The DCT and
     * upsampling are libjpeg's defaults, as Pillow's, so the pixels are the same. */
    if (tjDecompress2(tj, data, (unsigned long)len, img->pixels, w, 0, h, c == 1 ? TJPF_GRAY : TJPF_RGB,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS))
        return jpeg_fail(path, tj, "a damaged JPEG");
    tjDestroy(tj);
    img->h = (size_t)h;
    img->w = (size_t)w;
    img->c = c;
    return NR_OK;
}
#endif
