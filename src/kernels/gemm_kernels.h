/* gemm_kernels.h - the SIMD microkernels gemm.c drives, one set per instruction set (gemm_avx512.c,
 * gemm_avx2.c). Each file is compiled with its instruction set; gemm.c calls it only on a CPU that has it.
 *
 * rows(v): the tile height for v vectors per row. transpose: packs `rows` x `len` of a transposed operand.
 * panel: up to MR rows of op(A) (strides a_rs per row, a_ks per k) times a stretch of op(B) (b_ks per k,
 * b_next between column panels) over one k block of kc, into C; panel_t: the same stored transposed, for C
 * narrower than a vector. add: c = alpha s + c, one FMA per element (a k block's partial product joining C).
 *
 * mode, how a tile's sum acc over its k block becomes C: 0: C = alpha acc (C is not read); 1: C = alpha acc
 * + C; 2: C = alpha acc + beta C; NR__MODE_SGD: C holds weights and acc is their gradient, C = C - alpha
 * (acc + beta C), rounded after each operation as the optimizer's SGD step does (alpha the learning rate,
 * beta the weight decay): the step fused into the gradient's product. */
#ifndef NR_GEMM_KERNELS_H
#define NR_GEMM_KERNELS_H

#include <stddef.h>

enum { NR__MODE_SGD = 3 };

int nr__gemm_avx512_rows(size_t vectors);
void nr__gemm_avx512_transpose(const float *src, size_t ld, size_t rows, size_t len, float *dst, size_t dst_ld);
void nr__gemm_avx512_panel(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                           size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc,
                           float alpha, float beta, int mode);
void nr__gemm_avx512_panel_t(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                             size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc,
                             float alpha, float beta, int mode);
void nr__gemm_avx512_add(size_t n, float alpha, const float *s, float *c);

int nr__gemm_avx2_rows(size_t vectors);
void nr__gemm_avx2_transpose(const float *src, size_t ld, size_t rows, size_t len, float *dst, size_t dst_ld);
void nr__gemm_avx2_panel(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                         size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc,
                         float alpha, float beta, int mode);
void nr__gemm_avx2_add(size_t n, float alpha, const float *s, float *c);

#endif
