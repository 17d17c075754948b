/* gemm_avx512.c - the AVX-512 register-blocked microkernels behind the "avx512" matrix-product backend.
 *
 * gemm.c plans the product (blocking, packing, threads) and hands this file one row panel at a time: up to
 * MR rows of op(A) against a stretch of columns of op(B) over one block of k. Here each tile of C, MR rows
 * by NV vectors of 16 floats, lives in zmm registers for the whole k block: every step broadcasts MR values
 * of A and loads NV vectors of B, then issues MR x NV FMAs. The last vector of a tile is masked, so any
 * width works without scalar edge code and without reading past a row of B or C; a last vector of at most
 * 8 columns is a ymm, half the cost on Zen 4. Transposed tiles serve C narrower than a vector, and a 16 x 16
 * transposer packs transposed operands. Design and measurements: docs/gemm.md.
 *
 * Why these tile sizes: the accumulators, one row of B and a broadcast must fit the 32 zmm registers
 * (6 x 4, 9 x 3, 12 x 2: 21 to 27 accumulators), which hides the 4-cycle FMA latency on both 1x512-bit
 * (Zen 4) and 2x512-bit (Sapphire Rapids) FMA units with about one load per two FMAs. Wide tiles (up to 7
 * vectors, 112 columns) let the narrow layers of small networks be done in one pass over B.
 *
 * Every element is accumulated from zero in the order of k by one FMA per step, then combined with C in
 * one fixed formula, so its value does not depend on which tile, edge or thread computed it. */
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

#define LANES 16
#define MAX_ROWS 12
#define MAX_VECTORS 16 /* one row only; two rows or more go up to 7 */

/* The tallest tile for a width of `vectors` zmm that fits the registers: rows x vectors accumulators, the
 * vectors of one B row and a broadcast, vectors x (rows + 1) + 1 <= 32. Any more and the compiler reloads B
 * from memory for every row, which costs more than the taller tile gains. */
static const int rows_for_vectors[MAX_VECTORS + 1] = {0, 12, 12, 9, 6, 5, 4, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};

int nr__gemm_avx512_rows(size_t vectors)
{
    return vectors >= 1 && vectors <= MAX_VECTORS ? rows_for_vectors[vectors] : 0;
}

/* In-register transpose of 16 rows of 16 floats: r[i] lane j becomes r[j] lane i. Three rounds of shuffles
 * (pairs of floats, pairs of pairs, then 128-bit lanes twice), 64 shuffles for 256 floats. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16];
    UNROLL for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL for (int i = 0; i < 4; i++) {
        __m512d lo = _mm512_castps_pd(t[4 * i]), hi = _mm512_castps_pd(t[4 * i + 1]);
        __m512d lo2 = _mm512_castps_pd(t[4 * i + 2]), hi2 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, lo2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, lo2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi, hi2));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi, hi2));
    }
    /* Now r[4g + j], 128-bit lane L, holds rows 4g..4g+3 of column j + 4L. */
    UNROLL for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    UNROLL for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

/* The final value of one vector of C in `mode` (gemm_kernels.h), C's old value w already loaded (modes 1 to 3).
 * Masked lanes of C are not written. */
static inline __attribute__((always_inline)) void store512_from(float *cp, __mmask16 mask, __m512 acc, __m512 w,
                                                                __m512 va, __m512 vb, int mode)
{
    __m512 out;
    if (mode == 0)
        out = _mm512_mul_ps(va, acc);
    else if (mode == 1)
        out = _mm512_fmadd_ps(va, acc, w);
    else if (mode == 2)
        out = _mm512_fmadd_ps(va, acc, _mm512_mul_ps(vb, w));
    else
        out = _mm512_sub_ps(w, _mm512_mul_ps(va, _mm512_add_ps(acc, _mm512_mul_ps(vb, w))));
    _mm512_mask_storeu_ps(cp, mask, out);
}

/* The same, loading C's old value (masked lanes are not read) only where the mode needs it. */
static inline __attribute__((always_inline)) void store512(float *cp, __mmask16 mask, __m512 acc, __m512 va,
                                                           __m512 vb, int mode)
{
    store512_from(cp, mask, acc, mode == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, cp), va, vb, mode);
}

static inline __attribute__((always_inline)) void store256(float *cp, __mmask8 mask, __m256 acc, __m256 va,
                                                           __m256 vb, int mode)
{
    __m256 out;
    if (mode == 0)
        out = _mm256_mul_ps(va, acc);
    else if (mode == 1)
        out = _mm256_fmadd_ps(va, acc, _mm256_maskz_loadu_ps(mask, cp));
    else if (mode == 2)
        out = _mm256_fmadd_ps(va, acc, _mm256_mul_ps(vb, _mm256_maskz_loadu_ps(mask, cp)));
    else {
        __m256 w = _mm256_maskz_loadu_ps(mask, cp);
        out = _mm256_sub_ps(w, _mm256_mul_ps(va, _mm256_add_ps(acc, _mm256_mul_ps(vb, w))));
    }
    _mm256_mask_storeu_ps(cp, mask, out);
}

/* One tile: C[0..MR) x [0..16 NV) from a k block of length kc, the last vector masked by `tail`. With HALF
 * the last vector is a ymm of 8 lanes: a tail of at most 8 columns then costs half an FMA slot on CPUs
 * that execute 512-bit FMAs as two 256-bit halves (Zen 4), and the same as a zmm elsewhere.
 * A element (r, p) is at a[r * a_rs + p * a_ks]; B row p of the panel starts at b + p * b_ks.
 * With TRANS the tile is C transposed (C^T = op(B)^T op(A)^T, for C of fewer columns than a vector): tile
 * element (r, x) goes to c[x * ldc + r], through an in-register transpose. One function on purpose: the
 * compiler must see the whole register-blocked loop to keep its accumulators in registers. */
static inline __attribute__((always_inline)) void tile(const int MR, const int NV, const int HALF,
                                                       const int TRANS, size_t kc, const float *a, size_t a_rs,
                                                       size_t a_ks, const float *b, size_t b_ks, __mmask16 tail,
                                                       float *c, size_t ldc, float alpha, float beta, int mode)
{
    const int FULL = HALF ? NV - 1 : NV;  /* zmm columns; with HALF the last column is a ymm */
    __m512 acc[MAX_ROWS][MAX_VECTORS];
    __m256 half[MAX_ROWS];
    if (!TRANS && kc >= 16) {
        /* C is touched only after the k loop; asking for it now hides its latency behind the FMAs (for a
         * short k there is nothing to hide it behind, and the prefetches only cost issue slots). */
        UNROLL for (int r = 0; r < MR; r++)
            UNROLL for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(c + (size_t)r * ldc + LANES * v), _MM_HINT_T0);
        /* And the next tile's, which gives it a whole tile of lead time (worth 10% on tall products with short
         * k, whose C streams from memory). A prefetch past the end of C is harmless. */
        UNROLL for (int r = 0; r < MR; r++)
            UNROLL for (int v = 0; v < NV; v++)
                _mm_prefetch((const char *)(c + (size_t)r * ldc + LANES * (NV + v)), _MM_HINT_T1);
    }
    UNROLL for (int r = 0; r < MR; r++) {
        UNROLL for (int v = 0; v < FULL; v++)
            acc[r][v] = _mm512_setzero_ps();
        half[r] = _mm256_setzero_ps();
    }
    /* Four k steps a loop: the loop's own instructions then take fewer of the issue slots that the FMAs need
     * (Intel, two 512-bit FMAs a cycle: 64x64x1000 163-169 -> 171-179 GFLOP/s, the one-row tile 1x256x784
     * 5.7-5.8 -> 5.4 us); the same FMAs in the same order, so the same bits. */
    UNROLL_K for (size_t p = 0; p < kc; p++) {
        __m512 bv[MAX_VECTORS];
        __m256 bh = _mm256_setzero_ps();
        UNROLL for (int v = 0; v < FULL; v++)
            bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, b + LANES * v) : _mm512_loadu_ps(b + LANES * v);
        if (HALF)
            bh = _mm256_maskz_loadu_ps((__mmask8)tail, b + LANES * FULL);
        UNROLL for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[(size_t)r * a_rs]);
            UNROLL for (int v = 0; v < FULL; v++)
                acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
            if (HALF)
                half[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(av), bh, half[r]);
        }
        a += a_ks;
        b += b_ks;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (TRANS) {
        /* Column x of the tile is MR consecutive floats of row x of C. */
        const __mmask16 rmask = (__mmask16)(0xffffu >> (LANES - MR));
        const int lanes = __builtin_popcount(tail);
        UNROLL for (int v = 0; v < NV; v++) {
            __m512 t[16];
            UNROLL for (int r = 0; r < 16; r++)
                t[r] = r >= MR ? _mm512_setzero_ps()
                       : v < FULL ? acc[r][v] : _mm512_zextps256_ps512(half[r]);
            transpose16(t);
            /* Every row of C is read before any is written: rows narrower than a line share lines, and a load
             * behind a masked store to the same line waits for the store to retire (the SGD step on a 100 x 10
             * weight matrix took 2.4 us, twice its FMAs' time; 1.2 us so). */
            __m512 w[16];
            UNROLL for (int x = 0; x < 16; x++)
                w[x] = mode != 0 && (v < NV - 1 || x < lanes)
                           ? _mm512_maskz_loadu_ps(rmask, c + (size_t)(LANES * v + x) * ldc)
                           : _mm512_setzero_ps();
            UNROLL for (int x = 0; x < 16; x++)
                if (v < NV - 1 || x < lanes)
                    store512_from(c + (size_t)(LANES * v + x) * ldc, rmask, t[x], w[x], va, vb, mode);
        }
        return;
    }
    if (mode != 0 && !HALF) {
        /* Row r + 1 of C is loaded before row r is stored, for the same reason where rows are not whole lines
         * (the lecture's 100 columns): its two products that add to C ran ~2 % faster at two threads. */
        __m512 w[2][MAX_VECTORS];
        __mmask16 m[MAX_VECTORS];
        UNROLL for (int v = 0; v < NV; v++) {
            m[v] = v == NV - 1 ? tail : (__mmask16)0xffff;
            w[0][v] = _mm512_maskz_loadu_ps(m[v], c + LANES * v);
        }
        UNROLL for (int r = 0; r < MR; r++) {
            float *cr = c + (size_t)r * ldc;
            if (r + 1 < MR)
                UNROLL for (int v = 0; v < NV; v++)
                    w[(r + 1) & 1][v] = _mm512_maskz_loadu_ps(m[v], cr + ldc + LANES * v);
            UNROLL for (int v = 0; v < NV; v++)
                store512_from(cr + LANES * v, m[v], acc[r][v], w[r & 1][v], va, vb, mode);
        }
        return;
    }
    UNROLL for (int r = 0; r < MR; r++) {
        float *cr = c + (size_t)r * ldc;
        UNROLL for (int v = 0; v < FULL; v++)
            store512(cr + LANES * v, v == NV - 1 ? tail : (__mmask16)0xffff, acc[r][v], va, vb, mode);
        if (HALF)
            store256(cr + LANES * FULL, (__mmask8)tail, half[r], _mm512_castps512_ps256(va),
                     _mm512_castps512_ps256(vb), mode);
    }
}

typedef void (*tile_fn)(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b, size_t b_ks,
                        __mmask16 tail, float *c, size_t ldc, float alpha, float beta, int mode);

#define TILE(R, V)                                                                                           \
    static void tile_##R##x##V(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,          \
                               size_t b_ks, __mmask16 tail, float *c, size_t ldc, float alpha, float beta,  \
                               int mode)                                                                     \
    {                                                                                                        \
        tile(R, V, 0, 0, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                       \
    }                                                                                                        \
    static void tile_##R##x##V##_half(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,   \
                                      size_t b_ks, __mmask16 tail, float *c, size_t ldc, float alpha,        \
                                      float beta, int mode)                                                  \
    {                                                                                                        \
        tile(R, V, 1, 0, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                       \
    }
#define TILE_T(R, V)                                                                                         \
    static void tile_t_##R##x##V(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,        \
                                 size_t b_ks, __mmask16 tail, float *c, size_t ldc, float alpha, float beta, \
                                 int mode)                                                                   \
    {                                                                                                        \
        tile(R, V, 0, 1, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                       \
    }                                                                                                        \
    static void tile_t_##R##x##V##_half(size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b, \
                                        size_t b_ks, __mmask16 tail, float *c, size_t ldc, float alpha,      \
                                        float beta, int mode)                                                \
    {                                                                                                        \
        tile(R, V, 1, 1, kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);                       \
    }
#define ROWS_3(X, V) X(1, V) X(2, V) X(3, V)
#define ROWS_4(X, V) ROWS_3(X, V) X(4, V)
#define ROWS_5(X, V) ROWS_4(X, V) X(5, V)
#define ROWS_6(X, V) ROWS_5(X, V) X(6, V)
#define ROWS_9(X, V) ROWS_6(X, V) X(7, V) X(8, V) X(9, V)
#define ROWS_12(X, V) ROWS_9(X, V) X(10, V) X(11, V) X(12, V)
/* One row of C (inference on one sample) up to 16 vectors wide: a whole row of B per k step, read in one
 * contiguous stretch, where 7-vector panels read it in pieces, one pass of B per panel (MLP-256's first
 * layer at batch 1: 5.1 us against 7.0 us at one thread, 3.9-4.1 against 5.2-5.7 at two). Its FMAs take B
 * from memory, so 16 accumulators and a broadcast fit the registers. */
#define WIDE_ROW(X) X(1, 8) X(1, 9) X(1, 10) X(1, 11) X(1, 12) X(1, 13) X(1, 14) X(1, 15) X(1, 16)
#define ALL_TILES(X)                                                                                         \
    ROWS_12(X, 1) ROWS_12(X, 2) ROWS_9(X, 3) ROWS_6(X, 4) ROWS_5(X, 5) ROWS_4(X, 6) ROWS_3(X, 7) WIDE_ROW(X)

ALL_TILES(TILE)
/* Transposed tiles serve C of at most 15 columns: up to 12 rows of C^T, 2 vectors wide. */
#define TRANS_TILES(X) ROWS_12(X, 1) ROWS_12(X, 2)
TRANS_TILES(TILE_T)

#define ENTRY(R, V) [R][V] = tile_##R##x##V,
#define ENTRY_HALF(R, V) [R][V] = tile_##R##x##V##_half,
static const tile_fn tiles[MAX_ROWS + 1][MAX_VECTORS + 1] = {ALL_TILES(ENTRY)};
static const tile_fn half_tiles[MAX_ROWS + 1][MAX_VECTORS + 1] = {ALL_TILES(ENTRY_HALF)};
#define ENTRY_T(R, V) [R][V] = tile_t_##R##x##V,
#define ENTRY_T_HALF(R, V) [R][V] = tile_t_##R##x##V##_half,
static const tile_fn trans_tiles[MAX_ROWS + 1][3] = {TRANS_TILES(ENTRY_T)};
static const tile_fn trans_half_tiles[MAX_ROWS + 1][3] = {TRANS_TILES(ENTRY_T_HALF)};

/* C[0..rows) x [0..cols) for one k block, walking column panels of `vectors` zmm each. B panel q starts at
 * b + q * b_next (direct from op(B): 16 * vectors; packed: the packed panel's size). With `trans` the
 * panel is of C^T: its element (r, x) is c[x * ldc + r] (then rows <= 12 and vectors <= 2). */
static inline __attribute__((always_inline)) void panel(size_t rows, size_t kc, const float *a, size_t a_rs,
                                                        size_t a_ks, const float *b, size_t b_ks, size_t b_next,
                                                        size_t cols, size_t vectors, float *c, size_t ldc,
                                                        float alpha, float beta, int mode, int trans)
{
    const size_t width = vectors * LANES, c_next = trans ? width * ldc : width;
    for (size_t j = 0; j < cols; j += width, b += b_next, c += c_next) {
        size_t w = cols - j < width ? cols - j : width;
        size_t nv = (w + LANES - 1) / LANES, last = w - (nv - 1) * LANES;
        __mmask16 tail = (__mmask16)(0xffffu >> (LANES - last));
        const tile_fn *row = trans ? (last <= LANES / 2 ? trans_half_tiles : trans_tiles)[rows]
                                   : (last <= LANES / 2 ? half_tiles : tiles)[rows];
        row[nv](kc, a, a_rs, a_ks, b, b_ks, tail, c, ldc, alpha, beta, mode);
    }
}

void nr__gemm_avx512_panel(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                           size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc,
                           float alpha, float beta, int mode)
{
    panel(rows, kc, a, a_rs, a_ks, b, b_ks, b_next, cols, vectors, c, ldc, alpha, beta, mode, 0);
}

void nr__gemm_avx512_panel_t(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                             size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc,
                             float alpha, float beta, int mode)
{
    panel(rows, kc, a, a_rs, a_ks, b, b_ks, b_next, cols, vectors, c, ldc, alpha, beta, mode, 1);
}

/* dst[p * dst_ld + x] = src[x * ld + p] for x < rows, p < len: packs a transposed operand in 16 x 16
 * blocks, reading and writing only inside those bounds. */
void nr__gemm_avx512_transpose(const float *src, size_t ld, size_t rows, size_t len, float *dst, size_t dst_ld)
{
    for (size_t x0 = 0; x0 < rows; x0 += LANES) {
        size_t xs = rows - x0 < LANES ? rows - x0 : LANES;
        __mmask16 xmask = (__mmask16)(0xffffu >> (LANES - xs));
        for (size_t p0 = 0; p0 < len; p0 += LANES) {
            size_t ps = len - p0 < LANES ? len - p0 : LANES;
            __mmask16 pmask = (__mmask16)(0xffffu >> (LANES - ps));
            __m512 r[16];
            UNROLL for (int i = 0; i < 16; i++)
                r[i] = (size_t)i < xs ? _mm512_maskz_loadu_ps(pmask, src + (x0 + (size_t)i) * ld + p0)
                                      : _mm512_setzero_ps();
            transpose16(r);
            UNROLL for (int q = 0; q < 16; q++)
                if ((size_t)q < ps)
                    _mm512_mask_storeu_ps(dst + (p0 + (size_t)q) * dst_ld + x0, xmask, r[q]);
        }
    }
}

/* c[i] = alpha s[i] + c[i], one FMA per element: how a k block's partial product joins C when threads split
 * k (gemm.c), the same formula as mode 1 of the tiles. */
void nr__gemm_avx512_add(size_t n, float alpha, const float *s, float *c)
{
    const __m512 va = _mm512_set1_ps(alpha);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm512_storeu_ps(c + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(s + i), _mm512_loadu_ps(c + i)));
    if (i < n) {
        __mmask16 mask = (__mmask16)(0xffffu >> (LANES - (n - i)));
        __m512 out = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mask, s + i), _mm512_maskz_loadu_ps(mask, c + i));
        _mm512_mask_storeu_ps(c + i, mask, out);
    }
}

#endif
