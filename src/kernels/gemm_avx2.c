/* gemm_avx2.c - the AVX2 + FMA register-blocked microkernels behind the "avx2" matrix-product backend.
 *
 * The same design as gemm_avx512.c with 8-float ymm vectors and 16 registers: a tile of MR rows by NV
 * vectors of C stays in registers for a whole k block (at most 12 accumulators, the classic 6 x 16), each
 * step broadcasts MR values of A and loads NV vectors of B. The last vector of a tile is loaded and stored
 * through a lane mask (vmaskmov), which never touches memory outside the mask; full tiles use plain loads,
 * which are cheaper. An 8 x 8 transposer packs transposed operands. Design and measurements: docs/gemm.md.
 *
 * Every element is accumulated from zero in the order of k by one FMA per step, then combined with C in one
 * fixed formula, so its value does not depend on which tile, edge or thread computed it. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stddef.h>

#include "kernels/gemm_kernels.h"

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#define UNROLL_K _Pragma("clang loop unroll_count(4)")
#else
#define UNROLL _Pragma("GCC unroll 32")
#define UNROLL_K _Pragma("GCC unroll 4")
#endif

#define LANES 8
#define MAX_ROWS 8
#define MAX_VECTORS 3

/* The tallest tile for a width of `vectors` ymm: at most 12 accumulators, leaving room for B and a broadcast. */
static const int rows_for_vectors[MAX_VECTORS + 1] = {0, 8, 6, 4};

int nr__gemm_avx2_rows(size_t vectors)
{
    return vectors >= 1 && vectors <= MAX_VECTORS ? rows_for_vectors[vectors] : 0;
}

/* Lane masks for vmaskmov: entry w has its first w lanes set. */
static const int lane_masks[LANES + 1][LANES] = {
    {0, 0, 0, 0, 0, 0, 0, 0},         {-1, 0, 0, 0, 0, 0, 0, 0},        {-1, -1, 0, 0, 0, 0, 0, 0},
    {-1, -1, -1, 0, 0, 0, 0, 0},      {-1, -1, -1, -1, 0, 0, 0, 0},     {-1, -1, -1, -1, -1, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, 0, 0},   {-1, -1, -1, -1, -1, -1, -1, 0},  {-1, -1, -1, -1, -1, -1, -1, -1},
};

/* A vector of C in `mode` (gemm_kernels.h) from the tile's sum acc and C's old value w. */
static inline __attribute__((always_inline)) __m256 final_value(__m256 acc, __m256 w, __m256 va, __m256 vb,
                                                                int mode)
{
    if (mode == 0)
        return _mm256_mul_ps(va, acc);
    if (mode == 1)
        return _mm256_fmadd_ps(va, acc, w);
    if (mode == 2)
        return _mm256_fmadd_ps(va, acc, _mm256_mul_ps(vb, w));
    return _mm256_sub_ps(w, _mm256_mul_ps(va, _mm256_add_ps(acc, _mm256_mul_ps(vb, w))));
}

/* One tile: C[0..MR) x [0..8 NV) (with MASKED, the last vector limited to `tail` lanes; vmaskmov costs
 * more than a plain load, so full tiles do without) from a k block of length kc.
 * A element (r, p) is at a[r * a_rs + p * a_ks]; B row p of the panel starts at b + p * b_ks.
 * mode: gemm_kernels.h. */
static inline __attribute__((always_inline)) void tile(const int MR, const int NV, const int MASKED, size_t kc,
                                                       const float *a, size_t a_rs, size_t a_ks, const float *b,
                                                       size_t b_ks, size_t tail, float *c, size_t ldc,
                                                       float alpha, float beta, int mode)
{
    const __m256i mask = _mm256_loadu_si256((const __m256i *)lane_masks[tail]);
    __m256 acc[MAX_ROWS][MAX_VECTORS];
    if (kc >= 16) {
        /* C is touched only after the k loop; asking for it now (and for the next tile's) hides its
         * latency behind the FMAs. For a short k there is nothing to hide it behind. */
        UNROLL for (int r = 0; r < MR; r++)
            UNROLL for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(c + (size_t)r * ldc + LANES * v), _MM_HINT_T0);
        UNROLL for (int r = 0; r < MR; r++)
            UNROLL for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(c + (size_t)r * ldc + LANES * (NV + v)), _MM_HINT_T1);
    }
    UNROLL for (int r = 0; r < MR; r++)
        UNROLL for (int v = 0; v < NV; v++)
            acc[r][v] = _mm256_setzero_ps();
    /* Four k steps a loop, as in gemm_avx512.c (on an Intel Xeon, 64x64x1000 102-104 -> 107 GFLOP/s). */
    UNROLL_K for (size_t p = 0; p < kc; p++) {
        __m256 bv[MAX_VECTORS];
        UNROLL for (int v = 0; v < NV; v++)
            bv[v] = MASKED && v == NV - 1 ? _mm256_maskload_ps(b + LANES * v, mask) : _mm256_loadu_ps(b + LANES * v);
        UNROLL for (int r = 0; r < MR; r++) {
            __m256 av = _mm256_broadcast_ss(a + (size_t)r * a_rs);
            UNROLL for (int v = 0; v < NV; v++)
                acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
        }
        a += a_ks;
        b += b_ks;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    UNROLL for (int r = 0; r < MR; r++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *cp = c + (size_t)r * ldc + LANES * v;
            if (MASKED && v == NV - 1) {
                __m256 w = mode ? _mm256_maskload_ps(cp, mask) : _mm256_setzero_ps();
                _mm256_maskstore_ps(cp, mask, final_value(acc[r][v], w, va, vb, mode));
            } else {
                __m256 w = mode ? _mm256_loadu_ps(cp) : _mm256_setzero_ps();
                _mm256_storeu_ps(cp, final_value(acc[r][v], w, va, vb, mode));
            }
        }
}

typedef void (*tile_fn)(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b, size_t b_ks,
                        size_t tail, float *c, size_t ldc, float alpha, float beta, int mode);

#define TILE(R, V)                                                                                           \
    static void tile_##R##x##V(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,          \
                               size_t b_ks, size_t tail, float *c, size_t ldc, float alpha, float beta,     \
                               int mode)                                                                     \
    {                                                                                                        \
        tile(R, V, 0, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                          \
    }                                                                                                        \
    static void tile_##R##x##V##_masked(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b, \
                                        size_t b_ks, size_t tail, float *c, size_t ldc, float alpha,         \
                                        float beta, int mode)                                                \
    {                                                                                                        \
        tile(R, V, 1, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                          \
    }
#define ROWS_4(X, V) X(1, V) X(2, V) X(3, V) X(4, V)
#define ROWS_6(X, V) ROWS_4(X, V) X(5, V) X(6, V)
#define ROWS_8(X, V) ROWS_6(X, V) X(7, V) X(8, V)
#define ALL_TILES(X) ROWS_8(X, 1) ROWS_6(X, 2) ROWS_4(X, 3)

ALL_TILES(TILE)

#define ENTRY(R, V) [R][V] = tile_##R##x##V,
static const tile_fn tiles[MAX_ROWS + 1][MAX_VECTORS + 1] = {ALL_TILES(ENTRY)};
#define ENTRY_MASKED(R, V) [R][V] = tile_##R##x##V##_masked,
static const tile_fn masked_tiles[MAX_ROWS + 1][MAX_VECTORS + 1] = {ALL_TILES(ENTRY_MASKED)};

/* C[0..rows) x [0..cols) for one k block, walking column panels of `vectors` ymm each. B panel q starts at
 * b + q * b_next (direct from op(B): 8 * vectors; packed: the packed panel's size). */
void nr__gemm_avx2_panel(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                         size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc, float alpha,
                         float beta, int mode)
{
    const size_t width = vectors * LANES;
    for (size_t j = 0; j < cols; j += width, b += b_next, c += width) {
        size_t w = cols - j < width ? cols - j : width;
        size_t nv = (w + LANES - 1) / LANES;
        size_t last = w - (nv - 1) * LANES;
        (last < LANES ? masked_tiles : tiles)[rows][nv](kc, a, a_rs, a_ks, b, b_ks, last, c, ldc, alpha, beta, mode);
    }
}

/* In-register transpose of 8 rows of 8 floats: r[i] lane j becomes r[j] lane i. */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    UNROLL for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL for (int g = 0; g < 2; g++) {
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    /* Now u[4g + j], 128-bit lane L, holds rows 4g..4g+3 of column j + 4L. */
    UNROLL for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* dst[p * dst_ld + x] = src[x * ld + p] for x < rows, p < len: packs a transposed operand in 8 x 8 blocks,
 * reading and writing only inside those bounds. */
void nr__gemm_avx2_transpose(const float *src, size_t ld, size_t rows, size_t len, float *dst, size_t dst_ld)
{
    for (size_t x0 = 0; x0 < rows; x0 += LANES) {
        size_t xs = rows - x0 < LANES ? rows - x0 : LANES;
        const __m256i xmask = _mm256_loadu_si256((const __m256i *)lane_masks[xs]);
        for (size_t p0 = 0; p0 < len; p0 += LANES) {
            size_t ps = len - p0 < LANES ? len - p0 : LANES;
            const __m256i pmask = _mm256_loadu_si256((const __m256i *)lane_masks[ps]);
            __m256 r[8];
            UNROLL for (int i = 0; i < 8; i++)
                r[i] = (size_t)i < xs ? _mm256_maskload_ps(src + (x0 + (size_t)i) * ld + p0, pmask)
                                      : _mm256_setzero_ps();
            transpose8(r);
            UNROLL for (int q = 0; q < 8; q++)
                if ((size_t)q < ps)
                    _mm256_maskstore_ps(dst + (p0 + (size_t)q) * dst_ld + x0, xmask, r[q]);
        }
    }
}

/* c[i] = alpha s[i] + c[i], one FMA per element (see nr__gemm_avx512_add). */
void nr__gemm_avx2_add(size_t n, float alpha, const float *s, float *c)
{
    const __m256 va = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(c + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(s + i), _mm256_loadu_ps(c + i)));
    for (; i < n; i++)
        _mm_store_ss(c + i, _mm_fmadd_ss(_mm_set_ss(alpha), _mm_load_ss(s + i), _mm_load_ss(c + i)));
}

#endif
