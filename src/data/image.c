/* image.c - images as people have them: PNG and JPEG (decoded by libpng and libjpeg-turbo, image_codecs.c, when
 * the build has them) and PGM/PPM (always, read here), turned into what a network takes: its channels (grey
 * from colour by luminance, colour from grey by copying; transparency over white paper), its size (averaging
 * the pixels a target pixel covers when shrinking, bilinear when growing), and optionally the way MNIST's
 * digits were made: dark strokes on paper inverted to light on dark, the drawing scaled into the middle 20/28
 * of the frame and centred on its centre of mass. The format is told by the file's first bytes, not its name;
 * the file's size and the image's dimensions are checked before anything is decoded. */
#include "data/data.h"
#include "io/io.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The largest file and image read: far beyond any photo a classifier is shown, short of exhausting memory. */
#define MAX_IMAGE_FILE ((size_t)1 << 28)
#define MAX_PIXELS ((size_t)1 << 26)

const char *nr_image_decoder(void)
{
#if defined NR_HAVE_PNG && defined NR_HAVE_JPEG
    return "libpng, libjpeg-turbo";
#elif defined NR_HAVE_PNG
    return "libpng";
#elif defined NR_HAVE_JPEG
    return "libjpeg-turbo";
#else
    return NULL;
#endif
}

/* ---- PGM and PPM (P2, P3, P5, P6), read whatever the build ---- */

typedef struct pnm {
    const unsigned char *p, *end;
} pnm;

/* The next header number, after white space and comments. */
static bool pnm_number(pnm *r, unsigned long *v)
{
    while (r->p < r->end && (isspace(*r->p) || *r->p == '#'))
        if (*r->p++ == '#')
            while (r->p < r->end && *r->p != '\n')
                r->p++;
    if (r->p >= r->end || !isdigit(*r->p))
        return false;
    *v = 0;
    while (r->p < r->end && isdigit(*r->p) && *v < 100000000)
        *v = *v * 10 + (unsigned long)(*r->p++ - '0');
    return true;
}

static nr_status read_pnm(const char *path, const unsigned char *data, size_t len, nr__image *img)
{
    pnm r = {data + 2, data + len};
    bool colour = data[1] == '3' || data[1] == '6', text = data[1] == '2' || data[1] == '3';
    unsigned long w, h, max;
    if (!pnm_number(&r, &w) || !pnm_number(&r, &h) || !pnm_number(&r, &max) || w == 0 || h == 0 || max == 0 ||
        max > 255)
        return nr__fail(NR_EFORMAT, "%s: not an 8-bit PGM or PPM image", path);
    size_t c = colour ? 3 : 1;
    if (w * h > MAX_PIXELS)
        return nr__fail(NR_EFORMAT, "%s: %lux%lu pixels is more than the limit of %zu", path, w, h, MAX_PIXELS);
    if (r.p < r.end)
        r.p++;  /* the single white-space character after the header (none when the file ends there) */
    if (!text && (size_t)(r.end - r.p) < w * h * c)
        return nr__fail(NR_EFORMAT, "%s: truncated image (%lux%lu needs %lu bytes)", path, w, h, w * h * c);
    if (!(img->pixels = malloc(w * h * c)))
        return nr__fail(NR_ENOMEM, "%s: out of memory", path);
    img->h = h;
    img->w = w;
    img->c = c;
    for (size_t i = 0; i < w * h * c; i++) {
        unsigned long v = 0;
        if (text ? !pnm_number(&r, &v) || v > max : false)
            return nr__fail(NR_EFORMAT, "%s: truncated image (value %zu of %lu)", path, i, w * h * c);
        if (!text)
            v = r.p[i];
        img->pixels[i] = (uint8_t)(v > max ? 255 : v * 255 / max);
    }
    return NR_OK;
}

nr_status nr__image_read(const char *path, nr__image *img)
{
    unsigned char *data;
    size_t len;
    *img = (nr__image){0};
    nr_status st = nr__read_file(path, MAX_IMAGE_FILE, &data, &len);
    if (st)
        return st;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && data[0] == 'P' && data[1] >= '2' && data[1] <= '6' && data[1] != '4')
        st = read_pnm(path, data, len, img);
    else if (len >= 8 && memcmp(data, png_sig, 8) == 0)
#ifdef NR_HAVE_PNG
        st = nr__png_read(path, data, len, MAX_PIXELS, img);
#else
        st = nr__fail(NR_EFORMAT, "%s: a PNG, and this neurite was built without PNG support (install "
                                  "libpng-dev and rebuild)", path);
#endif
    else if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
#ifdef NR_HAVE_JPEG
        st = nr__jpeg_read(path, data, len, MAX_PIXELS, img);
#else
        st = nr__fail(NR_EFORMAT, "%s: a JPEG, and this neurite was built without JPEG support (install "
                                  "libturbojpeg0-dev and rebuild)", path);
#endif
    else
        st = nr__fail(NR_EFORMAT, "%s: not an image neurite can read (PNG, JPEG, PGM or PPM)", path);
    free(data);
    if (st)
        nr__image_free(img);
    return st;
}

void nr__image_free(nr__image *img)
{
    free(img->pixels);
    *img = (nr__image){0};
}

/* ---- conversions, on floats 0..255 ---- */

/* To `channels`: grey from colour by luminance (ITU-R BT.601), colour from grey by copying. */
static void to_channels(const nr__image *img, size_t channels, float *out)
{
    size_t n = img->h * img->w;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->pixels + i * img->c;
        float grey = img->c >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
        for (size_t k = 0; k < channels; k++)
            out[i * channels + k] = channels == img->c ? p[k] : channels == 1 ? grey : p[img->c >= 3 ? k % 3 : 0];
    }
}

/* One output pixel's value from a source of sh x sw: the average of the source pixels it covers when
 * shrinking, bilinear between the nearest four when growing (per axis). */
static float sample(const float *src, size_t sh, size_t sw, size_t c, size_t k, double y0, double y1, double x0,
                    double x1)
{
    if (y1 - y0 <= 1.0 && x1 - x0 <= 1.0) {  /* growing: bilinear at the pixel's centre */
        double y = (y0 + y1) / 2 - 0.5, x = (x0 + x1) / 2 - 0.5;
        y = y < 0 ? 0 : y > (double)sh - 1 ? (double)sh - 1 : y;
        x = x < 0 ? 0 : x > (double)sw - 1 ? (double)sw - 1 : x;
        size_t iy = (size_t)y, ix = (size_t)x, jy = iy + 1 < sh ? iy + 1 : iy, jx = ix + 1 < sw ? ix + 1 : ix;
        double fy = y - (double)iy, fx = x - (double)ix;
        double top = src[(iy * sw + ix) * c + k] * (1 - fx) + src[(iy * sw + jx) * c + k] * fx;
        double bottom = src[(jy * sw + ix) * c + k] * (1 - fx) + src[(jy * sw + jx) * c + k] * fx;
        return (float)(top * (1 - fy) + bottom * fy);
    }
    double sum = 0, area = 0;  /* shrinking: the area-weighted average */
    for (size_t y = (size_t)y0; (double)y < y1 && y < sh; y++) {
        double wy = fmin(y1, (double)y + 1) - fmax(y0, (double)y);
        for (size_t x = (size_t)x0; (double)x < x1 && x < sw; x++) {
            double wx = fmin(x1, (double)x + 1) - fmax(x0, (double)x);
            sum += src[(y * sw + x) * c + k] * wy * wx;
            area += wy * wx;
        }
    }
    return area > 0 ? (float)(sum / area) : 0.0f;
}

/* src (sh x sw x c) resized into dst (dh x dw x c). */
static void resize(const float *src, size_t sh, size_t sw, size_t c, float *dst, size_t dh, size_t dw)
{
    double ry = (double)sh / (double)dh, rx = (double)sw / (double)dw;
    for (size_t y = 0; y < dh; y++)
        for (size_t x = 0; x < dw; x++)
            for (size_t k = 0; k < c; k++)
                dst[(y * dw + x) * c + k] = sample(src, sh, sw, c, k, (double)y * ry, (double)(y + 1) * ry,
                                                   (double)x * rx, (double)(x + 1) * rx);
}

/* Dark strokes on light paper (the border is mostly light) become light on dark, as MNIST's digits are. */
static void invert(float *v, size_t h, size_t w, size_t c, int mode)
{
    if (mode == 0)
        return;
    double border = 0;
    size_t count = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            if (y == 0 || x == 0 || y + 1 == h || x + 1 == w)
                for (size_t k = 0; k < c; k++, count++)
                    border += v[(y * w + x) * c + k];
    if (mode < 0 && border / (double)count < 127.5)
        return;
    for (size_t i = 0; i < h * w * c; i++)
        v[i] = 255.0f - v[i];
}

/* The drawing, as MNIST's digits were made: its bounding box (pixels above a quarter of the brightest) scaled
 * to fit the middle 20/28 of the frame, then placed so that its centre of mass is the frame's centre. False if
 * the image is blank (then it is only resized). */
static bool center(const float *v, size_t h, size_t w, size_t c, float *out, size_t oh, size_t ow)
{
    float top = 0;
    for (size_t i = 0; i < h * w * c; i++)
        top = v[i] > top ? v[i] : top;
    size_t y0 = h, y1 = 0, x0 = w, x1 = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (size_t k = 0; k < c; k++)
                if (top > 0 && v[(y * w + x) * c + k] > top / 4) {
                    y0 = y < y0 ? y : y0;
                    y1 = y + 1 > y1 ? y + 1 : y1;
                    x0 = x < x0 ? x : x0;
                    x1 = x + 1 > x1 ? x + 1 : x1;
                }
    if (y1 <= y0)
        return false;
    size_t bh = y1 - y0, bw = x1 - x0, box = (size_t)lround((double)(oh < ow ? oh : ow) * 20.0 / 28.0);
    double f = (double)(box ? box : 1) / (double)(bh > bw ? bh : bw);
    size_t sh = (size_t)fmax(1.0, round((double)bh * f)), sw = (size_t)fmax(1.0, round((double)bw * f));
    float *crop = malloc(bh * bw * c * sizeof *crop), *small = malloc(sh * sw * c * sizeof *small);
    bool ok = crop && small;
    for (size_t y = 0; ok && y < bh; y++)
        memcpy(crop + y * bw * c, v + ((y0 + y) * w + x0) * c, bw * c * sizeof *crop);
    if (ok)
        resize(crop, bh, bw, c, small, sh, sw);
    double mass = 0, my = 0, mx = 0;
    for (size_t y = 0; ok && y < sh; y++)
        for (size_t x = 0; x < sw; x++)
            for (size_t k = 0; k < c; k++) {
                double p = small[(y * sw + x) * c + k];
                mass += p;
                my += p * ((double)y + 0.5);
                mx += p * ((double)x + 0.5);
            }
    long dy = mass > 0 ? lround((double)oh / 2 - my / mass) : 0, dx = mass > 0 ? lround((double)ow / 2 - mx / mass) : 0;
    memset(out, 0, oh * ow * c * sizeof *out);
    for (size_t y = 0; ok && y < sh; y++)
        for (size_t x = 0; x < sw; x++) {
            long ty = (long)y + dy, tx = (long)x + dx;
            if (ty >= 0 && tx >= 0 && ty < (long)oh && tx < (long)ow)
                memcpy(out + ((size_t)ty * ow + (size_t)tx) * c, small + (y * sw + x) * c, c * sizeof *out);
        }
    free(crop);
    free(small);
    return ok;
}

nr_status nr__image_convert(const nr__image *img, size_t h, size_t w, size_t c, const nr_image_options *opt,
                            float *out)
{
    float *v = malloc(img->h * img->w * c * sizeof *v);
    if (!v)
        return nr__fail(NR_ENOMEM, "out of memory for a %zux%zu image", img->h, img->w);
    to_channels(img, c, v);
    invert(v, img->h, img->w, c, opt ? opt->invert : 0);
    if (!(opt && opt->center && center(v, img->h, img->w, c, out, h, w)))
        resize(v, img->h, img->w, c, out, h, w);
    free(v);
    return NR_OK;
}

nr_status nr_image_load(const char *path, size_t height, size_t width, size_t channels,
                        const nr_image_options *options, float *out)
{
    if (!path || !out)
        return nr__fail(NR_EINVAL, "nr_image_load: NULL argument");
    if (height == 0 || width == 0 || (channels != 1 && channels != 3) || height * width > MAX_PIXELS)
        return nr__fail(NR_EINVAL, "nr_image_load: %zux%zu with %zu channels cannot be made (1 or 3 channels)",
                        height, width, channels);
    nr__image img;
    nr_status st = nr__image_read(path, &img);
    if (!st)
        st = nr__image_convert(&img, height, width, channels, options, out);
    nr__image_free(&img);
    return st;
}
