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
    for (size_t col = c0; col < c1; col += 64) {
        size_t blocks = (c1 - col + 15) / 16;
        blocks = blocks > 4 ? 4 : blocks;
        size_t r = r0;
        for (; r + 4 <= r1; r += 4)
            tile4(a, lda, r, col, blocks, b, c, ldc);
        for (; r < r1; r++)
            tile1(a, lda, r, col, blocks, b, c, ldc);
    }
}

#else

void nr__qgemm_vnni(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc)
{
    (void)a, (void)lda, (void)r0, (void)r1, (void)c0, (void)c1, (void)b, (void)c, (void)ldc;
}

#endif
