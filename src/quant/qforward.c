/* qforward.c - the int8 forward pass: the scaled input made bytes once, then every layer in integers (matrix
 * products through qgemm.c with 32-bit sums, requantized by a fixed-point multiplier; element-wise layers by
 * table; pooling on the bytes), and floats again only at the end: the last matrix product's sums times
 * their scale, or the last bytes dequantized. Same bits at any thread count and with any kernel. */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void nr__q_multiplier(double m, int32_t *mult, int32_t *shift)
{
    int e;
    double f = frexp(m, &e);  /* m = f * 2^e, f in [0.5, 1) */
    int64_t q = (int64_t)llround(f * 2147483648.0);
    if (q == ((int64_t)1 << 31)) {
        q /= 2;
        e++;
    }
    if (!(m > 0) || -e > 31) {  /* below 2^-32: every sum we can see rounds to 0 */
        *mult = 0;
        *shift = 0;
        return;
    }
    if (-e < -30) {  /* above 2^30: saturates anyway */
        *mult = INT32_MAX;
        *shift = -30;
        return;
    }
    *mult = (int32_t)q;
    *shift = -e;
}

static uint8_t clamp_byte(int32_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

void nr__qnet_free(nr__qnet *q)
{
    if (!q)
        return;
    for (size_t i = 0; q->layers && i < q->n_layers; i++) {
        nr__qlayer *l = &q->layers[i];
        free(l->w);
        free(l->w_scale);
        free(l->bias);
        free(l->mult);
        free(l->shift);
        free(l->bias_zero);
        nr__qmatrix_free(&l->packed);
    }
    free(q->layers);
    free(q->bytes[0]);
    free(q->bytes[1]);
    free(q->cols);
    free(q->sums);
    free(q);
}

/* ---- the layers ---- */

/* Sums of one matrix product (rows x n) to bytes, or to floats for the last layer. The loops take their
 * arrays as restrict locals: stores through a byte pointer may alias anything, and without that promise the
 * compiler reloads every field at every element and vectorizes nothing. */
static void sums_to_bytes(const int32_t *restrict sums, const int32_t *restrict bias, const int32_t *restrict mult,
                          const int32_t *restrict shift, int32_t zero, size_t rows, size_t n, uint8_t *restrict out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < n; o++)
            out[r * n + o] = clamp_byte(zero + nr__q_scale(sums[r * n + o] + bias[o], mult[o], shift[o]));
}

static void sums_to_floats(const int32_t *restrict sums, const int32_t *restrict bias, const float *restrict w_scale,
                           float in_scale, size_t rows, size_t n, float *restrict out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < n; o++)
            out[r * n + o] = (float)(sums[r * n + o] + bias[o]) * (in_scale * w_scale[o]);
}

static void finish_sums(const nr__qlayer *ql, nr__qparams in, const int32_t *sums, size_t rows, uint8_t *bytes,
                        float *floats)
{
    if (floats)
        sums_to_floats(sums, ql->bias_zero, ql->w_scale, in.scale, rows, ql->n, floats);
    else if (nr__qgemm_avx512())
        nr__qrequant_avx512(sums, rows, ql->n, ql->bias_zero, ql->mult, ql->shift, ql->out.zero, bytes);
    else
        sums_to_bytes(sums, ql->bias_zero, ql->mult, ql->shift, ql->out.zero, rows, ql->n, bytes);
}

/* The scaled inputs as bytes, nr__q_input's arithmetic 8 at a time where SSE2 is (every x86-64): maxps and
 * minps pick their second operand for NaN, as its comparisons do; adding +-0.5 by the sign bit and
 * truncating rounds half away from zero (-0.0 gives 0 either way); the packs saturate to 0..255. Compilers do
 * not vectorize the plain loop (the float to int conversion with its selects). */
static void input_bytes(const float *restrict x, size_t count, float inv_scale, int32_t zero, uint8_t *restrict out)
{
    size_t k = 0;
    if (nr__qgemm_avx512()) {
        nr__qinput_avx512(x, count, inv_scale, zero, out);
        return;
    }
#if defined(__SSE2__)
    const __m128 inv = _mm_set1_ps(inv_scale), lo = _mm_set1_ps(-512.0f), hi = _mm_set1_ps(512.0f),
                 half = _mm_set1_ps(0.5f), sign = _mm_set1_ps(-0.0f);
    const __m128i z = _mm_set1_epi32(zero);
    for (; k + 8 <= count; k += 8) {
        __m128i r[2];
        for (int h = 0; h < 2; h++) {
            __m128 t = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(x + k + 4 * h), inv), lo), hi);
            t = _mm_add_ps(t, _mm_or_ps(half, _mm_and_ps(t, sign)));
            r[h] = _mm_add_epi32(_mm_cvttps_epi32(t), z);
        }
        __m128i words = _mm_packs_epi32(r[0], r[1]);
        _mm_storel_epi64((__m128i *)(out + k), _mm_packus_epi16(words, words));
    }
#endif
    for (; k < count; k++)
        out[k] = nr__q_input(x[k], inv_scale, zero);
}

/* The two element-wise passes of a batch, split over the threads by rows (each row's bytes are the same
 * whichever thread makes them): at batch 256 they are a third of the time, serial. */
typedef struct rows_job {
    const nr__qlayer *ql;
    nr__qparams in;
    const float *x;        /* input rows (x), or NULL for sums rows */
    const int32_t *sums;
    size_t width;
    uint8_t *bytes;
    float *floats;
} rows_job;

static void rows_part(void *ctx, size_t begin, size_t end)
{
    const rows_job *j = ctx;
    if (j->x)
        input_bytes(j->x + begin * j->width, (end - begin) * j->width, 1.0f / j->in.scale, j->in.zero,
                    j->bytes + begin * j->width);
    else
        finish_sums(j->ql, j->in, j->sums + begin * j->width, end - begin, j->bytes ? j->bytes + begin * j->width : NULL,
                    j->floats ? j->floats + begin * j->width : NULL);
}

static void rows_parallel(rows_job *j, size_t rows)
{
    nr__parallel_for(rows, 1 + 32768 / (j->width + 1), rows_part, j);
}

/* One sample of a convolution as rows of patches: (oy, ox) x (u, v, cin), padding with the zero point. */
static void im2col(const nr_layer *l, const uint8_t *x, uint8_t pad, uint8_t *cols)
{
    const size_t h = l->in_shape[0], w = l->in_shape[1], c = l->in_shape[2];
    const size_t oh = l->out_shape[0], ow = l->out_shape[1], k = (size_t)l->ints[1], s = (size_t)l->ints[2];
    const long p = (long)l->ints[3];
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t u = 0; u < k; u++)
                for (size_t v = 0; v < k; v++, cols += c) {
                    long y = (long)(oy * s + u) - p, xx = (long)(ox * s + v) - p;
                    if (y < 0 || xx < 0 || y >= (long)h || xx >= (long)w)
                        memset(cols, pad, c);
                    else
                        memcpy(cols, x + ((size_t)y * w + (size_t)xx) * c, c);
                }
}

static void pool(const nr_layer *l, bool max, const uint8_t *x, uint8_t *y)
{
    const size_t w = l->in_shape[1], c = l->in_shape[2], oh = l->out_shape[0], ow = l->out_shape[1];
    const size_t k = (size_t)l->ints[0], s = (size_t)l->ints[1];
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t ch = 0; ch < c; ch++) {
                uint32_t r = 0;
                for (size_t u = 0; u < k; u++)
                    for (size_t v = 0; v < k; v++) {
                        uint32_t b = x[((oy * s + u) * w + ox * s + v) * c + ch];
                        r = max ? (b > r ? b : r) : r + b;
                    }
                y[(oy * ow + ox) * c + ch] = (uint8_t)(max ? r : nr__q_mean(r, (uint32_t)(k * k)));
            }
}

/* Layer i on n samples: bytes in, bytes (or, for the last, floats) out. */
static void run_layer(nr_net *net, size_t i, const uint8_t *x, size_t n, uint8_t *y, float *yf)
{
    nr__qnet *q = net->q;
    const nr__qlayer *ql = &q->layers[i];
    const nr_layer *l = &net->layers[i];
    const nr__qparams in = nr__q_in(q, i);
    if (ql->kind == NR__Q_MATMUL && l->ops == &nr__dense_ops) {
        nr__qgemm(x, l->in_size, n, &ql->packed, q->sums, ql->n);
        rows_parallel(&(rows_job){ql, in, NULL, q->sums, ql->n, y, yf}, n);
    } else if (ql->kind == NR__Q_MATMUL) {
        size_t rows = l->out_shape[0] * l->out_shape[1];
        for (size_t s = 0; s < n; s++) {
            im2col(l, x + s * l->in_size, (uint8_t)in.zero, q->cols);
            nr__qgemm(q->cols, ql->k, rows, &ql->packed, q->sums, ql->n);
            finish_sums(ql, in, q->sums, rows, y ? y + s * l->out_size : NULL, yf ? yf + s * l->out_size : NULL);
        }
    } else if (ql->kind == NR__Q_MAXPOOL || ql->kind == NR__Q_AVGPOOL) {
        for (size_t s = 0; s < n; s++)
            pool(l, ql->kind == NR__Q_MAXPOOL, x + s * l->in_size, y + s * l->out_size);
    } else if (ql->kind == NR__Q_TABLE) {
        for (size_t k = 0; k < n * l->out_size; k++)
            y[k] = ql->table[x[k]];
    } else {
        memcpy(y, x, n * l->out_size);
    }
}

/* Working memory for n samples: two byte buffers, the patches of one sample, the sums of a product. */
static nr_status reserve(nr_net *net, size_t n)
{
    nr__qnet *q = net->q;
    size_t bytes = net->in_size, cols = 1, sums = 1;
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        bytes = l->out_size > bytes ? l->out_size : bytes;
        if (q->layers[i].kind != NR__Q_MATMUL)
            continue;
        bool conv = l->ops == &nr__conv2d_ops;
        size_t rows = conv ? l->out_shape[0] * l->out_shape[1] : n;
        cols = conv && rows * q->layers[i].k > cols ? rows * q->layers[i].k : cols;
        sums = rows * q->layers[i].n > sums ? rows * q->layers[i].n : sums;
    }
    bytes *= n;
    if (bytes > q->bytes_cap || cols > q->cols_cap || sums > q->sums_cap) {
        for (int b = 0; b < 2; b++) {
            free(q->bytes[b]);
            q->bytes[b] = malloc(bytes);
        }
        free(q->cols);
        free(q->sums);
        q->cols = malloc(cols);
        q->sums = malloc(sums * sizeof *q->sums);
        q->bytes_cap = q->cols_cap = q->sums_cap = 0;
        if (!q->bytes[0] || !q->bytes[1] || !q->cols || !q->sums)
            return nr__fail(NR_ENOMEM, "out of memory for an int8 batch of %zu", n);
        q->bytes_cap = bytes;
        q->cols_cap = cols;
        q->sums_cap = sums;
    }
    return NR_OK;
}

nr_status nr__qnet_forward(nr_net *net, const float *x, size_t n, const float **out)
{
    nr__qnet *q = net->q;
    nr_status st = reserve(net, n);
    if (st)
        return st;
    rows_parallel(&(rows_job){NULL, q->input, x, NULL, net->in_size, q->bytes[0], NULL}, n);
    size_t last = net->n_layers - 1, cur = 0;
    for (size_t i = 0; i < net->n_layers; i++, cur ^= 1) {
        bool sums_out = i == last && q->layers[i].kind == NR__Q_MATMUL;
        run_layer(net, i, q->bytes[cur], n, sums_out ? NULL : q->bytes[cur ^ 1], sums_out ? net->out[last] : NULL);
    }
    if (q->layers[last].kind != NR__Q_MATMUL) {  /* the last bytes, dequantized */
        const nr__qparams p = q->layers[last].out;
        for (size_t k = 0; k < n * net->layers[last].out_size; k++)
            net->out[last][k] = p.scale * (float)((int32_t)q->bytes[cur][k] - p.zero);
    }
    net->batch = n;
    net->state = NR__NET_FORWARD;
    if (out)
        *out = net->out[last];
    return NR_OK;
}

nr_status nr__qnet_prepare(nr_net *net)
{
    nr__qnet *q = net->q;
    for (size_t i = 0; i < net->n_layers; i++) {
        nr__qlayer *ql = &q->layers[i];
        if (ql->kind != NR__Q_MATMUL)
            continue;
        nr__qmatrix_free(&ql->packed);
        free(ql->bias_zero);
        if (nr__qmatrix_pack(&ql->packed, ql->w, ql->k, ql->n) || !(ql->bias_zero = malloc(ql->n * sizeof(int32_t))))
            return nr__fail(NR_ENOMEM, "out of memory preparing the int8 layers");
        for (size_t o = 0; o < ql->n; o++)
            ql->bias_zero[o] = ql->bias[o] - nr__q_in(q, i).zero * ql->packed.colsum[o];
    }
    return NR_OK;
}
