/* qgemm_vnni.c - the int8 product with AVX-512 VNNI: vpdpbusd multiplies 4 unsigned bytes of A by 4 signed
 * bytes of B and adds the four products to a 32-bit lane, 64 multiply-adds per instruction, no
 * intermediate that can saturate. A tile is 4 rows by 64 columns (16 accumulators); each group of 4 k is 4
 * loads of B, 4 broadcasts of A and 16 vpdpbusd. Compiled with -mavx512f -mavx512bw -mavx512vl
 * -mavx512vnni, called only on a CPU that has them (qgemm.c). */
#include "kernels/qgemm.h"

#if defined(__x86_64__) && defined(__AVX512VNNI__)
#include <immintrin.h>

/* ROWS x BLOCKS blocks of 16 columns starting at column c, all k. Always inlined with constant ROWS and
 * BLOCKS (see the switch below), so that the accumulators live in registers: with run-time bounds gcc keeps
 * them in memory and the kernel runs several times slower. */
static inline __attribute__((always_inline)) void tile(const uint8_t *a, size_t lda, size_t r, const size_t ROWS,
                                                       size_t c, const size_t BLOCKS, const nr__qmatrix *b,
                                                       int32_t *out, size_t ldc)
{
    __m512i acc[4][4];
    for (size_t i = 0; i < ROWS; i++)
        for (size_t v = 0; v < BLOCKS; v++)
            acc[i][v] = _mm512_setzero_si512();
    const size_t full = b->k / 4, step = b->np * 4;
    const int8_t *p = b->packed + c * 4;
    const uint8_t *row[4];
    for (size_t i = 0; i < ROWS; i++)
        row[i] = a + (r + i) * lda;
    for (size_t g = 0; g < b->groups; g++, p += step) {
        __m512i w[4];
        for (size_t v = 0; v < BLOCKS; v++)
            w[v] = _mm512_loadu_si512((const void *)(p + 64 * v));
        for (size_t i = 0; i < ROWS; i++) {
            int32_t word;
            if (g < full)  /* the last group may run past k: its bytes are read one by one */
                __builtin_memcpy(&word, row[i] + 4 * g, 4);
            else
                word = (int32_t)nr__qgroup(row[i], b->k, g);
            const __m512i x = _mm512_set1_epi32(word);
            for (size_t v = 0; v < BLOCKS; v++)
                acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], x, w[v]);
        }
    }
    for (size_t i = 0; i < ROWS; i++)
        for (size_t v = 0; v < BLOCKS; v++) {
            size_t col = c + 16 * v, left = b->n - col;
            __mmask16 keep = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_epi32(out + (r + i) * ldc + col, keep, acc[i][v]);
        }
}

/* One row (a batch of one): BLOCKS blocks of 16 columns with two sets of accumulators, even and odd groups
 * of k, added at the end. A single set would wait on vpdpbusd's latency at every group, since one row has
 * no other rows to interleave; this is the loop that decides batch-1 speed. */
static inline __attribute__((always_inline)) void row_tile(const uint8_t *a, size_t lda, size_t r, size_t c,
                                                           const size_t BLOCKS, const nr__qmatrix *b, int32_t *out,
                                                           size_t ldc)
{
    __m512i even[4], odd[4];
    for (size_t v = 0; v < BLOCKS; v++)
        even[v] = odd[v] = _mm512_setzero_si512();
    const size_t full = b->k / 4, step = b->np * 4;
    const int8_t *p = b->packed + c * 4;
    const uint8_t *row = a + r * lda;
    size_t g = 0;
    for (; g + 2 <= full; g += 2, p += 2 * step) {
        int32_t w0, w1;
        __builtin_memcpy(&w0, row + 4 * g, 4);
        __builtin_memcpy(&w1, row + 4 * g + 4, 4);
        const __m512i x0 = _mm512_set1_epi32(w0), x1 = _mm512_set1_epi32(w1);
        for (size_t v = 0; v < BLOCKS; v++) {
            even[v] = _mm512_dpbusd_epi32(even[v], x0, _mm512_loadu_si512((const void *)(p + 64 * v)));
            odd[v] = _mm512_dpbusd_epi32(odd[v], x1, _mm512_loadu_si512((const void *)(p + step + 64 * v)));
        }
    }
    for (; g < b->groups; g++, p += step) {  /* an odd group left, and the last one, which may run past k */
        const __m512i x = _mm512_set1_epi32((int32_t)nr__qgroup(row, b->k, g));
        for (size_t v = 0; v < BLOCKS; v++)
            even[v] = _mm512_dpbusd_epi32(even[v], x, _mm512_loadu_si512((const void *)(p + 64 * v)));
    }
    for (size_t v = 0; v < BLOCKS; v++) {
        size_t col = c + 16 * v, left = b->n - col;
        __mmask16 keep = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        _mm512_mask_storeu_epi32(out + r * ldc + col, keep, _mm512_add_epi32(even[v], odd[v]));
    }
}

static void tile1(const uint8_t *a, size_t lda, size_t r, size_t c, size_t blocks, const nr__qmatrix *b,
                  int32_t *out, size_t ldc)
{
    switch (blocks) {
    case 4: row_tile(a, lda, r, c, 4, b, out, ldc); break;
    case 3: row_tile(a, lda, r, c, 3, b, out, ldc); break;
    case 2: row_tile(a, lda, r, c, 2, b, out, ldc); break;
    default: row_tile(a, lda, r, c, 1, b, out, ldc); break;
    }
}

/* One row against 256 columns in one pass: each group of k reads 1 KB of B in order, where four passes of
 * 64 columns would each read a quarter of every KB (a stride the prefetchers follow less well). 16
 * accumulators, each its own chain, hide vpdpbusd's latency without a second set. */
static void row_wide(const uint8_t *a, size_t lda, size_t r, size_t c, const nr__qmatrix *b, int32_t *out,
                     size_t ldc)
{
    __m512i acc[16];
    for (int v = 0; v < 16; v++)
        acc[v] = _mm512_setzero_si512();
    const size_t full = b->k / 4, step = b->np * 4;
    const int8_t *p = b->packed + c * 4;
    const uint8_t *row = a + r * lda;
    for (size_t g = 0; g < b->groups; g++, p += step) {
        int32_t word;
        if (g < full)
            __builtin_memcpy(&word, row + 4 * g, 4);
        else
            word = (int32_t)nr__qgroup(row, b->k, g);
        const __m512i x = _mm512_set1_epi32(word);
        for (int v = 0; v < 16; v++)
            acc[v] = _mm512_dpbusd_epi32(acc[v], x, _mm512_loadu_si512((const void *)(p + 64 * v)));
    }
    for (int v = 0; v < 16; v++)
        _mm512_storeu_si512((void *)(out + r * ldc + c + 16 * v), acc[v]);
}

/* One tile with its shape as constants. */
#define TILES(ROWS)                                                                                               \
    static void tile##ROWS(const uint8_t *a, size_t lda, size_t r, size_t c, size_t blocks, const nr__qmatrix *b,   \
                           int32_t *out, size_t ldc)                                                               \
    {                                                                                                              \
        switch (blocks) {                                                                                          \
        case 4: tile(a, lda, r, ROWS, c, 4, b, out, ldc); break;                                                   \
        case 3: tile(a, lda, r, ROWS, c, 3, b, out, ldc); break;                                                   \
        case 2: tile(a, lda, r, ROWS, c, 2, b, out, ldc); break;                                                   \
        default: tile(a, lda, r, ROWS, c, 1, b, out, ldc); break;                                                  \
        }                                                                                                          \
    }
TILES(4)

void nr__qgemm_vnni(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc)
{
    const size_t whole = r0 + (r1 - r0) / 4 * 4;  /* rows in tiles of 4; the rest one at a time */
    for (size_t col = c0; col < c1; col += 64) {
        size_t blocks = (c1 - col + 15) / 16;
        for (size_t r = r0; r < whole; r += 4)
            tile4(a, lda, r, col, blocks > 4 ? 4 : blocks, b, c, ldc);
    }
    for (size_t r = whole; r < r1; r++) {
        size_t col = c0;
        for (; col + 256 <= c1; col += 256)
            row_wide(a, lda, r, col, b, c, ldc);
        for (; col < c1; col += 64) {
            size_t blocks = (c1 - col + 15) / 16;
            tile1(a, lda, r, col, blocks > 4 ? 4 : blocks, b, c, ldc);
        }
    }
}

/* ---- around the product ---- */

void nr__qrequant_avx512(const int32_t *sums, size_t rows, size_t n, const int32_t *bias, const int32_t *mult,
                         const int32_t *shift, int32_t zero, uint8_t *out)
{
    const __m512i one = _mm512_set1_epi64(1), thirty_one = _mm512_set1_epi64(31), z = _mm512_set1_epi32(zero),
                  lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < n; o += 16) {
            const __mmask16 keep = n - o >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - o)) - 1);
            const __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(keep, sums + r * n + o),
                                               _mm512_maskz_loadu_epi32(keep, bias + o));
            const __m512i m = _mm512_maskz_loadu_epi32(keep, mult + o), s = _mm512_maskz_loadu_epi32(keep, shift + o);
            __m256i half[2];
            for (int h = 0; h < 2; h++) {  /* 8 lanes of 64 bits at a time */
                __m512i v64 = _mm512_cvtepi32_epi64(h ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v));
                __m512i m64 = _mm512_cvtepi32_epi64(h ? _mm512_extracti64x4_epi64(m, 1) : _mm512_castsi512_si256(m));
                __m256i s32 = h ? _mm512_extracti64x4_epi64(s, 1) : _mm512_castsi512_si256(s);
                __m512i total = _mm512_add_epi64(thirty_one, _mm512_cvtepi32_epi64(s32));
                __m512i p = _mm512_mul_epi32(v64, m64);
                p = _mm512_add_epi64(p, _mm512_sllv_epi64(one, _mm512_sub_epi64(total, one)));
                half[h] = _mm512_cvtepi64_epi32(_mm512_srav_epi64(p, total));
            }
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
            q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, z), lo), hi);
            _mm_mask_storeu_epi8(out + r * n + o, keep, _mm512_cvtepi32_epi8(q));
        }
}

void nr__qinput_avx512(const float *x, size_t count, float inv_scale, int32_t zero, uint8_t *out)
{
    const __m512 inv = _mm512_set1_ps(inv_scale), lo = _mm512_set1_ps(-512.0f), hi = _mm512_set1_ps(512.0f),
                 half = _mm512_set1_ps(0.5f);
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000u), z = _mm512_set1_epi32(zero),
                  bottom = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    for (size_t k = 0; k < count; k += 16) {
        const __mmask16 keep = count - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - k)) - 1);
        __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(keep, x + k), inv), lo), hi);
        __m512i bits = _mm512_or_si512(_mm512_castps_si512(half), _mm512_and_si512(_mm512_castps_si512(t), sign));
        t = _mm512_add_ps(t, _mm512_castsi512_ps(bits));
        __m512i r = _mm512_add_epi32(_mm512_cvttps_epi32(t), z);
        r = _mm512_min_epi32(_mm512_max_epi32(r, bottom), top);
        _mm_mask_storeu_epi8(out + k, keep, _mm512_cvtepi32_epi8(r));
    }
}

#else

void nr__qrequant_avx512(const int32_t *sums, size_t rows, size_t n, const int32_t *bias, const int32_t *mult,
                         const int32_t *shift, int32_t zero, uint8_t *out)
{
    (void)sums, (void)rows, (void)n, (void)bias, (void)mult, (void)shift, (void)zero, (void)out;
}

void nr__qinput_avx512(const float *x, size_t count, float inv_scale, int32_t zero, uint8_t *out)
{
    (void)x, (void)count, (void)inv_scale, (void)zero, (void)out;
}

void nr__qgemm_vnni(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc)
{
    (void)a, (void)lda, (void)r0, (void)r1, (void)c0, (void)c1, (void)b, (void)c, (void)ldc;
}

#endif
