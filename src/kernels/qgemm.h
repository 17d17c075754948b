/* qgemm.h - the int8 matrix product of quantized inference (docs/quantization.md): C = A B with A unsigned
 * 8-bit activations (m x k), B signed 8-bit weights (k x n), C 32-bit sums. Every kernel computes exactly the
 * same integers; they differ only in speed. */
#ifndef NR_QGEMM_H
#define NR_QGEMM_H

#include <stddef.h>
#include <stdint.h>

/* B packed for the kernels: groups of 4 consecutive k of each column side by side, [k/4][n16][4] (k padded
 * with zero rows to a multiple of 4, n with zero columns to a multiple of 16), which is what one VNNI
 * instruction (vpdpbusd) multiplies with 4 bytes of a row of A. colsum holds each column's sum, for the
 * activations' zero point. */
typedef struct nr__qmatrix {
    size_t k, n, groups, np;  /* groups = ceil(k / 4); np = n rounded up to 16 */
    int8_t *packed;
    int32_t *colsum;
} nr__qmatrix;

/* Packs a row-major k x n matrix; NR_ENOMEM (message set) on failure. */
int nr__qmatrix_pack(nr__qmatrix *m, const int8_t *b, size_t k, size_t n);
void nr__qmatrix_free(nr__qmatrix *m);

/* C (m x n, row stride ldc) = A (m x k, row stride lda) times B, on the thread pool. */
void nr__qgemm(const uint8_t *a, size_t lda, size_t m, const nr__qmatrix *b, int32_t *c, size_t ldc);

/* A kernel: rows [r0, r1) and columns [c0, c1) of C (c0 a multiple of 16). */
typedef void (*nr__qkernel)(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1,
                            const nr__qmatrix *b, int32_t *c, size_t ldc);
void nr__qgemm_vnni(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc);
void nr__qgemm_avx2(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1, const nr__qmatrix *b,
                    int32_t *c, size_t ldc);

/* The work around the product, with AVX-512 where the vnni kernel runs (1 if it does, from
 * nr__qgemm_avx512()). Each gives exactly the bytes of its scalar twin in quant/qforward.c:
 * - requantization of rows x n sums: out = clamp(zero + ((sum + bias[o]) * mult[o] + 2^(30 + shift[o]))
 *   >> (31 + shift[o])), the 64-bit product and the arithmetic shift per lane (vpmuldq, vpsravq);
 * - the input as bytes: clamp(round_half_away(min(max(x * inv, -512), 512)) + zero). */
int nr__qgemm_avx512(void);
void nr__qrequant_avx512(const int32_t *sums, size_t rows, size_t n, const int32_t *bias, const int32_t *mult,
                         const int32_t *shift, int32_t zero, uint8_t *out);
void nr__qinput_avx512(const float *x, size_t count, float inv_scale, int32_t zero, uint8_t *out);

/* The 4 bytes of row `a` (k long) at group g, as one little-endian word; bytes past k are 0. */
static inline uint32_t nr__qgroup(const uint8_t *a, size_t k, size_t g)
{
    uint32_t w = 0;
    for (size_t t = 0; t < 4 && 4 * g + t < k; t++)
        w |= (uint32_t)a[4 * g + t] << (8 * t);
    return w;
}

#endif
