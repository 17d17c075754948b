/* qgemm_avx2.c - the int8 product with AVX2, exact.
 *
 * The usual AVX2 int8 route, vpmaddubsw, multiplies unsigned by signed bytes and adds pairs into signed
 * 16 bits with saturation: 255 * 127 + 255 * 127 = 64770 does not fit, so it silently clips exactly when
 * activations and weights are large together, and the results would differ from the reference. Here B's
 * bytes are widened to 16 bits (vpmovsxbw) and A's to 16-bit pairs, and vpmaddwd adds pairs of 16 x 16-bit
 * products into 32 bits, which cannot overflow. That costs a widening per 16 weights, and keeps every
 * kernel bit-identical. A tile is 2 rows by 16 columns; each accumulator holds 4 columns as pairs of partial
 * sums (k0 + k1, k2 + k3), added at the end. Compiled with -mavx2, called only on a CPU that has it. */
#include "kernels/qgemm.h"

#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>

/* ROWS rows x QUADS groups of 4 columns at column c, all k. Always inlined with constant ROWS and QUADS (the
 * switches below), so that the accumulators stay in registers (as in qgemm_vnni.c). */
static inline __attribute__((always_inline)) void tile(const uint8_t *a, size_t lda, size_t r, const size_t ROWS,
                                                       size_t c, const size_t QUADS, const nr__qmatrix *b,
                                                       int32_t *out, size_t ldc)
{
    __m256i acc[2][4];
    for (size_t i = 0; i < ROWS; i++)
        for (size_t q = 0; q < QUADS; q++)
            acc[i][q] = _mm256_setzero_si256();
    const size_t full = b->k / 4, step = b->np * 4;
    const int8_t *p = b->packed + c * 4;
    for (size_t g = 0; g < b->groups; g++, p += step) {
        __m256i w[4];
        for (size_t q = 0; q < QUADS; q++)  /* 4 columns x 4 k, widened */
            w[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 16 * q)));
        for (size_t i = 0; i < ROWS; i++) {
            const uint8_t *row = a + (r + i) * lda;
            uint32_t word;
            if (g < full)  /* the last group may run past k: its bytes are read one by one */
                __builtin_memcpy(&word, row + 4 * g, 4);
            else
                word = nr__qgroup(row, b->k, g);
            /* the 4 bytes as 4 16-bit lanes, repeated: pairs (k0, k1), (k2, k3) against each column's */
            __m256i x = _mm256_set1_epi64x((long long)_mm_cvtsi128_si64(
                _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)word))));
            for (size_t q = 0; q < QUADS; q++)
                acc[i][q] = _mm256_add_epi32(acc[i][q], _mm256_madd_epi16(x, w[q]));
        }
    }
    for (size_t i = 0; i < ROWS; i++)
        for (size_t q = 0; q < QUADS; q++) {
            int32_t pairs[8];
            _mm256_storeu_si256((__m256i *)pairs, acc[i][q]);
            for (size_t t = 0; t < 4 && c + 4 * q + t < b->n; t++)
                out[(r + i) * ldc + c + 4 * q + t] = pairs[2 * t] + pairs[2 * t + 1];
        }
}

#define TILES(ROWS)                                                                                               \
    static void tile##ROWS(const uint8_t *a, size_t lda, size_t r, size_t c, size_t quads, const nr__qmatrix *b,    \
                           int32_t *out, size_t ldc)                                                               \
    {                                                                                                              \
        switch (quads) {                                                                                           \
        case 4: tile(a, lda, r, ROWS, c, 4, b, out, ldc); break;                                                   \
        case 3: tile(a, lda, r, ROWS, c, 3, b, out, ldc); break;                                                   \
        case 2: tile(a, lda, r, ROWS, c, 2, b, out, ldc); break;                                                   \
        default: tile(a, lda, r, ROWS, c, 1, b, out, ldc); break;                                                  \
        }                                                                                                          \
    }
TILES(2)
TILES(1)

void nr__qgemm_avx2(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc)
{
    for (size_t col = c0; col < c1; col += 16) {
        size_t quads = (c1 - col + 3) / 4;
        quads = quads > 4 ? 4 : quads;
        size_t r = r0;
        for (; r + 2 <= r1; r += 2)
            tile2(a, lda, r, col, quads, b, c, ldc);
        for (; r < r1; r++)
            tile1(a, lda, r, col, quads, b, c, ldc);
    }
}

#else

void nr__qgemm_avx2(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc)
{
    (void)a, (void)lda, (void)r0, (void)r1, (void)c0, (void)c1, (void)b, (void)c, (void)ldc;
}

#endif
