/* gemm.c - the matrix-product seam: argument checks, backend choice, the portable reference kernel, and the
 * driver of the SIMD kernels (gemm_avx512.c, gemm_avx2.c). Design and measurements: docs/gemm.md.
 *
 * Every layer's matrix work goes through nr__gemm. The backends compute the same products; they differ in
 * speed and, within float rounding, in the order of additions. Within one backend the order of additions
 * for an element of C never depends on the number of threads. */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#ifdef NR_HAVE_CBLAS
#include <dlfcn.h>
#endif

typedef void (*gemm_fn)(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* ---- the portable kernel ----
 * Plain C that compilers vectorise: C rows are computed as sums of scaled rows of op(B), or as dot
 * products when B is transposed. Rows of C are split across threads. */

typedef struct portable_job {
    nr_trans ta, tb;
    size_t n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} portable_job;

enum { KBLOCK = 256 };

static void portable_rows(void *ctx, size_t i0, size_t i1)
{
    const portable_job *j = ctx;
    const size_t n = j->n, k = j->k;
    for (size_t i = i0; i < i1; i++) {
        float *restrict crow = j->c + i * j->ldc;
        if (j->beta == 0.0f)
            memset(crow, 0, n * sizeof(float));
        else if (j->beta != 1.0f)
            for (size_t x = 0; x < n; x++)
                crow[x] *= j->beta;
        if (j->tb == NR_NO_TRANS) {
            for (size_t p0 = 0; p0 < k; p0 += KBLOCK) {
                size_t p1 = p0 + KBLOCK < k ? p0 + KBLOCK : k;
                for (size_t p = p0; p < p1; p++) {
                    float av = j->alpha * (j->ta == NR_NO_TRANS ? j->a[i * j->lda + p] : j->a[p * j->lda + i]);
                    const float *restrict brow = j->b + p * j->ldb;
                    for (size_t x = 0; x < n; x++)
                        crow[x] += av * brow[x];
                }
            }
        } else {
            for (size_t x = 0; x < n; x++) {
                const float *restrict brow = j->b + x * j->ldb;
                float s = 0.0f;
                if (j->ta == NR_NO_TRANS) {
                    const float *restrict arow = j->a + i * j->lda;
                    for (size_t p = 0; p < k; p++)
                        s += arow[p] * brow[p];
                } else {
                    for (size_t p = 0; p < k; p++)
                        s += j->a[p * j->lda + i] * brow[p];
                }
                crow[x] += j->alpha * s;
            }
        }
    }
}

static void gemm_portable(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                          const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    (void)split;
    portable_job j = {ta, tb, n, k, lda, ldb, ldc, alpha, beta, a, b, c};
    size_t work_per_row = n * (k ? k : 1);
    size_t grain = work_per_row >= 65536 ? 1 : 65536 / work_per_row;
    nr__parallel_for(m, grain, portable_rows, &j);
}

#ifdef NR_HAVE_CBLAS
/* OpenBLAS, loaded when the "blas" backend is first asked for, never before. Linked in, it starts its own
 * threads as the program loads, and they spin for their first ~0.1 s on the cores our pool works on (the
 * lecture at two threads: 0.49-0.54 s with them, 0.48 s without); on x86-64 with AVX2 the backend is
 * never chosen by default, so every run paid for threads it did not use. */
typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                               int lda, const float *b, int ldb, float beta, float *c, int ldc);
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };  /* the CBLAS standard's values */
static cblas_sgemm_fn blas_sgemm;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void)
{
    const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !blas_sgemm; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (lib)  /* kept open for the life of the process */
            *(void **)&blas_sgemm = dlsym(lib, "cblas_sgemm");
    }
}

static int has_blas(void)
{
    pthread_once(&blas_once, blas_load);
    return blas_sgemm != NULL;
}

static void gemm_blas(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    (void)split;
    blas_sgemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)m,
               (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
#endif

/* ---- the SIMD backends ----
 * A Goto/BLIS-style driver shared by the AVX-512 and AVX2 kernels (gemm_avx512.c, gemm_avx2.c), which
 * supply only the register-blocked tiles. Loop nest of one thread's block of C:
 *
 *   for each column block of up to NC columns       (B block kc x NC stays in L2)
 *     for each k block of kc                          (fixed by k alone: the order of additions)
 *       pack the B block if needed
 *       for each row panel of MR rows                 (A panel MR x kc stays in L1)
 *         pack the A panel if needed
 *         for each column panel: one MR x NV tile     (C tile in registers for the whole k block)
 *
 * Packing is skipped whenever the operand can be read in place: the kernels read A through two strides (so
 * a row-major op(A) and a transposed one are both direct) and B a row at a time, so only a transposed op(B)
 * must be packed (transposed in 16 x 16 or 8 x 8 register blocks). Small products, which matter most here,
 * thus pay nothing for packing; see simd_block for when packing does pay.
 *
 * Threads split C into row blocks (or column blocks when C has few rows), or, when the caller asks for it,
 * split k along its blocks (see "k split" below); kc depends on k alone and each k block joins C by one
 * fixed formula, so every element is summed in the same order at any thread count and any split.
 *
 * x86-64 only, like the kernels. */

#if defined(__x86_64__)
#include "kernels/gemm_kernels.h"

typedef void (*panel_fn)(size_t rows, size_t kc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                         size_t b_ks, size_t b_next, size_t cols, size_t vectors, float *c, size_t ldc, float alpha,
                         float beta, int mode);

typedef struct simd_kernels {
    size_t lanes;        /* floats per vector */
    size_t max_vectors;  /* the widest tile, in vectors */
    int (*rows)(size_t vectors);
    /* dst[p * dst_ld + x] = src[x * ld + p] for x < rows, p < len */
    void (*transpose)(const float *src, size_t ld, size_t rows, size_t len, float *dst, size_t dst_ld);
    panel_fn panel;
    /* The same for a panel of C^T stored transposed (NULL if the kernels have none), up to
     * trans_vectors wide: for C narrower than a vector. */
    panel_fn panel_t;
    size_t trans_vectors;
    void (*add)(size_t n, float alpha, const float *s, float *c);  /* c = alpha s + c */
} simd_kernels;

enum {
    KC_MAX = 512,                /* longest k block: an A panel of 4 to 12 rows x 512 stays in L1 */
    B_BLOCK_FLOATS = 128 * 1024, /* kc x NC of B kept in L2 (512 KiB: half of the smallest L2 we tune for) */
    MIN_TASK_MACS = 128 * 1024,  /* a thread's least share (~2 us): below it a second thread saves too little */
    SKINNY_ROWS = 4,             /* C this short streams B once for (almost) nothing: memory-bound */
    SKINNY_DIVISOR = 8,          /* ... so the least share is 16 K MACs, 64 KiB of B (~2 us from L2) */
    KSPLIT_MIN_K = 128,          /* from here on k comes in two blocks or more (see gemm_simd) */
};

/* ---- scratch for packing ----
 * Packing buffers are kept between calls in a small table of slots claimed with an atomic flag, so that
 * any number of threads (pool workers, or user threads running a product inline) each get their own
 * without locks or allocation in steady state. Part t of a pool job takes slot t: a part needs the same
 * size whichever thread runs it, so once each product of a step has run, later steps allocate nothing,
 * whether a worker was on time or the caller ran its part too (when threads took whatever slot was free,
 * a step where the worker first kept up grew a second buffer). Everything else (a product outside the
 * pool, or a part's second buffer) takes the smallest free slot of the rest that is big enough, else
 * grows the largest free one. If every slot is taken, the caller gets a one-off allocation. The buffers
 * are freed at exit. */

enum { PART_SLOTS = 32, SCRATCH_SLOTS = PART_SLOTS + 32 };

typedef struct scratch_slot {
    _Alignas(64) atomic_int busy; /* one slot per cache line: claiming one does not disturb its neighbours */
    atomic_size_t cap;            /* written by the slot's holder, read by anyone looking for a free slot */
    float *buf;
} scratch_slot;

static scratch_slot scratch_slots[SCRATCH_SLOTS];
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free_all(void)
{
    /* Each idle slot is claimed for good before its buffer is freed, so nothing can use it afterwards. */
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        if (!atomic_exchange(&scratch_slots[i].busy, 1)) {
            free(scratch_slots[i].buf);
            scratch_slots[i].buf = NULL;
            atomic_store(&scratch_slots[i].cap, 0);
        }
}

static void scratch_register(void) { atexit(scratch_free_all); }

static float *aligned_floats(size_t count)
{
    void *p = NULL;
    return posix_memalign(&p, NR_ALIGN, count * sizeof(float)) == 0 ? p : NULL;
}

/* A free shared slot to try: the smallest holding `count` floats, else the largest (to grow); -1 if none. */
static int scratch_pick(size_t count)
{
    int fit = -1, grow = -1;
    size_t fit_cap = SIZE_MAX, grow_cap = 0;
    for (int i = PART_SLOTS; i < SCRATCH_SLOTS; i++) {
        scratch_slot *s = &scratch_slots[i];
        if (atomic_load_explicit(&s->busy, memory_order_relaxed))
            continue;
        size_t cap = atomic_load_explicit(&s->cap, memory_order_relaxed);
        if (cap >= count && cap < fit_cap)
            fit = i, fit_cap = cap;
        else if (cap < count && (grow < 0 || cap > grow_cap))
            grow = i, grow_cap = cap;
    }
    return fit >= 0 ? fit : grow;
}

/* The claimed slot i's buffer, grown to `count` floats if smaller; NULL (slot released) if out of memory. */
static float *scratch_fill(int i, size_t count)
{
    scratch_slot *s = &scratch_slots[i];
    if (atomic_load_explicit(&s->cap, memory_order_relaxed) < count) {
        free(s->buf);
        s->buf = aligned_floats(count);
        atomic_store_explicit(&s->cap, s->buf ? count : 0, memory_order_relaxed);
        if (!s->buf)
            atomic_store_explicit(&s->busy, 0, memory_order_release);
    }
    return s->buf;
}

/* A buffer of at least `count` floats, 64-byte aligned; *slot says where to give it back. NULL if out of
 * memory (the library reports nothing from here: the caller falls back to a path without buffers). */
static float *scratch_get(size_t count, int *slot)
{
    pthread_once(&scratch_once, scratch_register);
    int part = nr__pool_part(), i = -1;
    if (part >= 0 && part < PART_SLOTS && !atomic_exchange_explicit(&scratch_slots[part].busy, 1, memory_order_acquire))
        i = part;
    /* Another thread may claim the chosen shared slot first; then look again (each retry follows a claim). */
    for (int pick; i < 0 && (pick = scratch_pick(count)) >= 0;)
        if (!atomic_exchange_explicit(&scratch_slots[pick].busy, 1, memory_order_acquire))
            i = pick;
    *slot = i;
    return i < 0 ? aligned_floats(count) : scratch_fill(i, count);
}

static void scratch_put(float *buf, int slot)
{
    if (slot < 0)
        free(buf);
    else
        atomic_store_explicit(&scratch_slots[slot].busy, 0, memory_order_release);
}

/* ---- the plan of one product ---- */

typedef struct simd_job {
    const simd_kernels *kern;
    nr_trans ta, tb;
    size_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    size_t kc;          /* k block; the last may be shorter */
    size_t vectors;     /* vectors per column panel */
    size_t mr;          /* rows per row panel */
    bool split_cols;    /* threads take column blocks (units of one vector) instead of row blocks */
    bool trans_c;       /* the job computes C^T = op(B)^T op(A)^T: m, n, a, b and their flags are swapped */
    bool sgd;           /* C holds weights, the product their gradient: NR__MODE_SGD (one k block only) */
    size_t b_panels;    /* B prepacked in column panels (nr__gemm_pack_panels): floats from one panel to the
                         * next, ldb the panel's width; 0: B is read in place */
    const float *bias;  /* one-row C starts as this row (beta 1): each thread copies its own columns */
} simd_job;

/* Estimated cycles per k step per row of C for a tile of r rows and v vectors: FMAs at two per cycle,
 * loads (r broadcasts + v vectors) at two per cycle, at least one FMA latency (4 cycles) per step; plus a
 * small charge for the loads so that taller tiles win ties (they stream B fewer times). */
static double tile_cost(size_t r, size_t v)
{
    double fma = (double)(r * v) / 2, loads = (double)(r + v) / 2, t = fma > loads ? fma : loads;
    if (t < 4)
        t = 4;
    return (t + 0.1 * (double)(r + v)) / (double)r;
}

/* Chooses the panel width for rows of `cols` columns, `rows` rows at most per panel. */
static size_t search_vectors(const simd_kernels *kern, size_t cols, size_t rows)
{
    size_t nvec = (cols + kern->lanes - 1) / kern->lanes, best = 1;
    double best_cost = 0;
    for (size_t v = 1; v <= kern->max_vectors; v++) {
        size_t r = (size_t)kern->rows(v);
        if (r > rows)
            r = rows;
        double cost = 0;
        for (size_t left = nvec; left > 0;) {
            size_t w = left < v ? left : v;
            cost += tile_cost(r, w);
            left -= w;
        }
        if (v == 1 || cost <= best_cost) {
            best = v;
            best_cost = cost;
        }
        if (v >= nvec)
            break;
    }
    return best;
}

/* search_vectors, remembered: it costs ~0.2 us, 3 % of a one-sample pass through MLP-256, and depends only on
 * the kernels, the vectors of a row and the rows up to the tallest tile. Racing threads store the same value. */
enum { MEMO_ROWS = 12, MEMO_VECTORS = 64 };
static _Atomic unsigned char vector_memo[2][MEMO_ROWS + 1][MEMO_VECTORS + 1];

static size_t choose_vectors(const simd_kernels *kern, size_t cols, size_t rows)
{
    size_t nvec = (cols + kern->lanes - 1) / kern->lanes, r = rows < MEMO_ROWS ? rows : MEMO_ROWS;
    if (nvec > MEMO_VECTORS)
        return search_vectors(kern, cols, rows);
    _Atomic unsigned char *slot = &vector_memo[kern->lanes == 16][r][nvec];
    size_t v = atomic_load_explicit(slot, memory_order_relaxed);
    if (v == 0) {
        v = search_vectors(kern, nvec * kern->lanes, r);
        atomic_store_explicit(slot, (unsigned char)v, memory_order_relaxed);
    }
    return v;
}

/* Whether a leading dimension puts consecutive rows in the same few cache sets. */
static bool bad_stride(size_t ld) { return ld % 256 == 0; }

static void pack_a(const simd_job *j, size_t i, size_t rows, size_t p0, size_t kb, float *dst)
{
    /* k-major: the rows of one k step side by side, as the kernels' broadcasts read them. */
    if (j->ta == NR_NO_TRANS) {
        j->kern->transpose(j->a + i * j->lda + p0, j->lda, rows, kb, dst, rows);
    } else {
        /* A handful of floats per step: a loop, not a call to memcpy per step. */
        for (size_t p = 0; p < kb; p++) {
            const float *src = j->a + (p0 + p) * j->lda + i;
            for (size_t r = 0; r < rows; r++)
                dst[p * rows + r] = src[r];
        }
    }
}

/* Packs op(B)[p0, p0 + kb) x [j0, j0 + cols) into panels of `width` columns, each kb rows of `width`. */
static void pack_b(const simd_job *j, size_t p0, size_t kb, size_t j0, size_t cols, size_t width, float *dst)
{
    for (size_t q = 0; q < cols; q += width, dst += kb * width) {
        size_t w = cols - q < width ? cols - q : width;
        if (j->tb == NR_NO_TRANS) {
            for (size_t p = 0; p < kb; p++)
                memcpy(dst + p * width, j->b + (p0 + p) * j->ldb + j0 + q, w * sizeof(float));
        } else {
            j->kern->transpose(j->b + (j0 + q) * j->ldb + p0, j->ldb, w, kb, dst, width);
        }
    }
}

/* The last resort when no packing buffer can be had: each element summed in exactly the kernels' order
 * (one correctly rounded FMA per k step from zero per k block, then the same combination with C), so the
 * result is bit for bit the same, only slower. */
static void block_scalar(const simd_job *j, size_t i0, size_t i1, size_t j0, size_t j1)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t x = j0; x < j1; x++) {
            float *cp = j->trans_c ? j->c + x * j->ldc + i : j->c + i * j->ldc + x;
            for (size_t p0 = 0; p0 < j->k; p0 += j->kc) {
                size_t p1 = p0 + j->kc < j->k ? p0 + j->kc : j->k;
                float acc = 0.0f;
                for (size_t p = p0; p < p1; p++) {
                    float av = j->ta ? j->a[p * j->lda + i] : j->a[i * j->lda + p];
                    float bv = j->tb ? j->b[x * j->ldb + p] : j->b[p * j->ldb + x];
                    acc = fmaf(av, bv, acc);
                }
                if (j->sgd)
                    *cp = *cp - j->alpha * (acc + j->beta * *cp);
                else if (p0 > 0 || j->beta == 1.0f)
                    *cp = fmaf(j->alpha, acc, *cp);
                else if (j->beta == 0.0f)
                    *cp = j->alpha * acc;
                else
                    *cp = fmaf(j->alpha, acc, j->beta * *cp);
            }
        }
}

/* Rows [i0, i1) x columns [j0, j1) of C: one thread's share. Kept whole (it is the blocking loop nest of the
 * design note in docs/gemm.md, column blocks > k blocks > row panels > tiles): split into functions, its
 * blocking would hide behind the calls. */
static void simd_block(const simd_job *j, size_t i0, size_t i1, size_t j0, size_t j1)
{
    const simd_kernels *kern = j->kern;
    const size_t width = j->vectors * kern->lanes, mr = j->mr;
    const size_t rows = i1 - i0, cols = j1 - j0;
    const size_t panels = (cols + width - 1) / width;
    /* Column block: as many panels as keep kc x NC of B within the L2 budget. */
    size_t nc_panels = B_BLOCK_FLOATS / (j->kc * width);
    if (nc_panels < 1)
        nc_panels = 1;
    if (nc_panels > panels)
        nc_panels = panels;
    const size_t nc = nc_panels * width;
    /* Read in place whenever possible: measured, packing a row-major A never paid for itself here (an A
     * panel stays in L1 across the column panels anyway) unless its rows are more than the L1's 8 ways
     * and fall into the same sets; packing B pays only for tall blocks with such a stride (2048^3: +14%;
     * 64 rows: -6%). */
    bool pack_a_panels = nc_panels >= 2 && mr > 8 && bad_stride(j->lda);
    bool pack_b_block = !j->b_panels && (j->tb == NR_TRANS || (rows >= 256 && bad_stride(j->ldb)));
    float *buf = NULL, *abuf = NULL, *bbuf = NULL;
    int slot = -1;
    if (pack_a_panels || pack_b_block) {
        size_t a_floats = pack_a_panels ? (mr * j->kc + 16) & ~(size_t)15 : 0;
        size_t b_floats = pack_b_block ? j->kc * nc : 0;
        buf = scratch_get(a_floats + b_floats, &slot);
        if (!buf) {
            block_scalar(j, i0, i1, j0, j1);
            return;
        }
        abuf = pack_a_panels ? buf : NULL;
        bbuf = pack_b_block ? buf + a_floats : NULL;
    }
    for (size_t jc = j0; jc < j1; jc += nc) {
        size_t ncols = j1 - jc < nc ? j1 - jc : nc;
        for (size_t p0 = 0; p0 < j->k; p0 += j->kc) {
            size_t kb = j->k - p0 < j->kc ? j->k - p0 : j->kc;
            int mode = j->sgd ? NR__MODE_SGD : p0 > 0 || j->beta == 1.0f ? 1 : j->beta == 0.0f ? 0 : 2;
            const float *b;
            size_t b_ks, b_next;
            if (bbuf) {
                pack_b(j, p0, kb, jc, ncols, width, bbuf);
                b = bbuf;
                b_ks = width;
                b_next = kb * width;
            } else if (j->b_panels) {
                b = j->b + jc / width * j->b_panels + p0 * j->ldb; /* jc is a whole number of panels */
                b_ks = j->ldb;
                b_next = j->b_panels;
            } else {
                b = j->b + p0 * j->ldb + jc;
                b_ks = j->ldb;
                b_next = width;
            }
            for (size_t i = i0; i < i1; i += mr) {
                size_t r = i1 - i < mr ? i1 - i : mr;
                const float *a;
                size_t a_rs, a_ks;
                if (abuf) {
                    pack_a(j, i, r, p0, kb, abuf);
                    a = abuf;
                    a_rs = 1;
                    a_ks = r;
                } else if (j->ta == NR_TRANS) {
                    a = j->a + p0 * j->lda + i;
                    a_rs = 1;
                    a_ks = j->lda;
                } else {
                    a = j->a + i * j->lda + p0;
                    a_rs = j->lda;
                    a_ks = 1;
                }
                if (j->trans_c)
                    kern->panel_t(r, kb, a, a_rs, a_ks, b, b_ks, b_next, ncols, j->vectors,
                                  j->c + jc * j->ldc + i, j->ldc, j->alpha, j->beta, mode);
                else
                    kern->panel(r, kb, a, a_rs, a_ks, b, b_ks, b_next, ncols, j->vectors, j->c + i * j->ldc + jc,
                                j->ldc, j->alpha, j->beta, mode);
            }
        }
    }
    if (buf)
        scratch_put(buf, slot);
}

static void simd_range(void *ctx, size_t begin, size_t end)
{
    const simd_job *j = ctx;
    if (j->split_cols) {
        size_t j0 = begin * j->kern->lanes, j1 = end * j->kern->lanes < j->n ? end * j->kern->lanes : j->n;
        if (j->bias)
            memcpy(j->c + j0, j->bias + j0, (j1 - j0) * sizeof(float));
        simd_block(j, 0, j->m, j0, j1);
    } else {
        simd_block(j, begin, end, 0, j->n);
    }
}

static void scale_c(size_t m, size_t n, float beta, float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f)
            memset(row, 0, n * sizeof(float));
        else if (beta != 1.0f)
            for (size_t x = 0; x < n; x++)
                row[x] *= beta;
    }
}

/* ---- k split ----
 * Thread t multiplies op(A) by its own k blocks (rows of op(B)); chunk 0's blocks go straight into C, each
 * later block into a partial product of its own, and the partials are then added to C in k order. A k
 * block joins C as C = alpha acc + C in the kernels too, so the bits are those of one thread. Used for a
 * dense layer's forward pass in training: the thread that updates a slice of W's rows in the optimizer
 * step is the one that reads them in the next forward pass. */
typedef struct ksplit_job {
    const simd_job *j;
    size_t blocks;      /* k blocks */
    size_t first;       /* blocks [0, first) went into C directly (set by chunk 0) */
    size_t partial0;    /* the first block with a partial product */
    float *partials;    /* (blocks - partial0) products of C's stored shape */
    size_t rows, cols;  /* C as stored: transposed when j->trans_c */
} ksplit_job;

/* The job restricted to k blocks [b0, b1). */
static simd_job k_blocks(const simd_job *j, size_t b0, size_t b1)
{
    simd_job s = *j;
    size_t p0 = b0 * j->kc, p1 = b1 * j->kc < j->k ? b1 * j->kc : j->k;
    s.a = j->ta == NR_NO_TRANS ? j->a + p0 : j->a + p0 * j->lda;
    s.b = j->tb == NR_NO_TRANS ? j->b + p0 * j->ldb : j->b + p0;
    s.k = p1 - p0;
    return s;
}

static void ksplit_range(void *ctx, size_t begin, size_t end)
{
    ksplit_job *kj = ctx;
    if (begin == 0) {
        simd_job s = k_blocks(kj->j, 0, end);
        simd_block(&s, 0, s.m, 0, s.n);
        kj->first = end;
        return;
    }
    for (size_t blk = begin; blk < end; blk++) {
        simd_job s = k_blocks(kj->j, blk, blk + 1);
        s.alpha = 1.0f;
        s.beta = 0.0f;
        s.c = kj->partials + (blk - kj->partial0) * kj->rows * kj->cols;
        s.ldc = kj->cols;
        simd_block(&s, 0, s.m, 0, s.n);
    }
}

static void ksplit_add_range(void *ctx, size_t r0, size_t r1)
{
    const ksplit_job *kj = ctx;
    const simd_job *j = kj->j;
    for (size_t r = r0; r < r1; r++)
        for (size_t blk = kj->first; blk < kj->blocks; blk++)
            j->kern->add(kj->cols, j->alpha, kj->partials + ((blk - kj->partial0) * kj->rows + r) * kj->cols,
                         j->c + r * j->ldc);
}

static atomic_size_t ksplit_count;
size_t nr__gemm_ksplits(void) { return atomic_load_explicit(&ksplit_count, memory_order_relaxed); }
static atomic_size_t pair_count;
size_t nr__gemm_row_pairs(void) { return atomic_load_explicit(&pair_count, memory_order_relaxed); }

/* Runs the job split along k in `parts` equal runs of blocks; false (nothing done) without scratch. */
static bool gemm_ksplit(const simd_job *j, size_t blocks, size_t parts)
{
    atomic_fetch_add_explicit(&ksplit_count, 1, memory_order_relaxed);
    ksplit_job kj = {j, blocks, blocks, blocks / parts, NULL, j->trans_c ? j->n : j->m, j->trans_c ? j->m : j->n};
    int slot;
    kj.partials = scratch_get((blocks - kj.partial0) * kj.rows * kj.cols, &slot);
    if (!kj.partials)
        return false;
    nr__parallel_for(blocks, kj.partial0, ksplit_range, &kj);
    /* Each thread adds the partials of its own rows of C (the adds are a small fraction of the product). */
    size_t adds = (blocks - kj.first) * kj.rows * kj.cols;
    if (adds > 0)
        nr__parallel_for(kj.rows, adds >= 16384 ? (kj.rows + parts - 1) / parts : kj.rows, ksplit_add_range, &kj);
    scratch_put(kj.partials, slot);
    return true;
}

/* Equal k blocks of at most KC_MAX, and at least two from KSPLIT_MIN_K on, so that two threads can split k (a
 * dense layer of 128 to 512 inputs otherwise had its weights read by both cores: with 500 inputs, two threads
 * were slower than one). A function of k alone, so that the bits do not depend on the thread count. */
static size_t k_block_count(size_t k)
{
    size_t blocks = (k + KC_MAX - 1) / KC_MAX;
    return blocks < 2 && k >= KSPLIT_MIN_K ? 2 : blocks;
}

/* With sgd set (one k block; see nr__gemm_sgd_step), C holds weights, alpha is the learning rate and beta the
 * weight decay. With b_panels, B is prepacked (nr__gemm_row_packed): ldb is the panel width and b_panels the
 * floats between panels. */
static void gemm_simd(const simd_kernels *kern, nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k,
                      float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                      size_t ldc, bool sgd, size_t b_panels, const float *bias)
{
    if (!sgd && (k == 0 || alpha == 0.0f)) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    simd_job j = {kern, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, 0, 0, 0, false, false, sgd,
                  b_panels, bias};
    /* C narrower than a vector (the output layer of a classifier) wastes most lanes of every FMA; computed as
     * C^T = op(B)^T op(A)^T its long side runs along the vectors instead. Each element is still one FMA
     * chain over k from zero (a b and b a round alike), so the values are those of the direct way. */
    if (n < kern->lanes && n > kern->lanes / 2 && m >= 2 * kern->lanes && k >= 16 && kern->panel_t && !b_panels) {
        j = (simd_job){kern, tb == NR_TRANS ? NR_NO_TRANS : NR_TRANS, ta == NR_TRANS ? NR_NO_TRANS : NR_TRANS,
                       n, m, k, ldb, lda, ldc, alpha, beta, b, a, c, 0, 0, 0, false, true, sgd, 0, NULL};
        m = j.m;
        n = j.n;
        ta = j.ta;
        tb = j.tb;
    }
    size_t kblocks = k_block_count(k);
    j.kc = (k + kblocks - 1) / kblocks;
    /* Threads take row blocks, unless C is too short for every thread to get a full row panel, or op(B) is
     * transposed and C short: each thread would then transpose all of B for a few rows, where with
     * column blocks each packs only its own columns. */
    bool few_rows = m < 2 * (size_t)kern->rows(1) || (tb == NR_TRANS && m <= 256);
    /* Row blocks also make every thread read all of op(B), column blocks all of op(A): columns win too when
     * they divide evenly and read at most 3/4 as much. A dense layer's forward pass at batch 64 (64 x 512,
     * k 784) then reads half of W per thread instead of all of it: MLP-512 epochs 9% faster at 2 threads.
     * At batch 256 the two are close, and row blocks measured faster. */
    size_t p = (size_t)nr_threads(), vec = (n + kern->lanes - 1) / kern->lanes;
    bool cols_read_less = p >= 2 && vec % p == 0 && 4 * (m * k + k * n / p) <= 3 * (m / p * k + k * n);
    j.split_cols = (few_rows && n >= 2 * kern->lanes) || cols_read_less;
    /* The caller's split, when the shape allows it (the job's m and n are C's swapped when trans_c). */
    if (split == NR__SPLIT_M || split == NR__SPLIT_N) {
        bool cols = (split == NR__SPLIT_N) != j.trans_c;
        if (!cols || n >= 2 * kern->lanes)
            j.split_cols = cols;
    }
    j.vectors = b_panels ? ldb / kern->lanes : choose_vectors(kern, n, m);
    if (j.trans_c && j.vectors > kern->trans_vectors)
        j.vectors = kern->trans_vectors;
    j.mr = (size_t)kern->rows(j.vectors);
    /* Units are vectors of columns or single rows. As many threads as get MIN_TASK_MACS each, with equal
     * chunks (a grain from the work alone would leave the last thread a scrap); one runs inline. */
    size_t units = j.split_cols ? (n + kern->lanes - 1) / kern->lanes : m;
    /* A product of a few rows (inference on one sample) reads each element of B for one or two multiply-adds:
     * it is bound by the memory it streams, not by the FMAs, and a thread's share of B costs several times
     * what its MACs suggest, so a smaller share is already worth a second core. */
    size_t min_macs = m <= SKINNY_ROWS ? MIN_TASK_MACS / SKINNY_DIVISOR : MIN_TASK_MACS;
    size_t parts = m * n * k / min_macs;
    if (parts > units)
        parts = units;
    if (parts >= 2) {
        size_t threads = (size_t)nr_threads();
        parts = parts < threads ? parts : threads;
    } else {
        parts = 1;
    }
    /* k blocks in equal runs, one per thread, when asked for and when there are as many runs as threads. A
     * product of a few rows takes the k split by itself: each thread then streams whole rows of B (contiguous,
     * every cache set in use) where with column blocks it streams half of each row, which maps B into half of
     * the L2's sets (MLP-256's first layer at batch 1, 400 KB a thread: 4.3 us a thread with column blocks,
     * 3.7-4.0 with the k split), and the partial product is a row or two. */
    bool want_k = split == NR__SPLIT_K || (split == NR__SPLIT_AUTO && m <= SKINNY_ROWS && !j.trans_c);
    bool use_k = want_k && !sgd && parts >= 2 && kblocks % parts == 0;
    if (j.bias && (use_k || !j.split_cols)) { /* only column chunks (simd_range) copy their own part of it */
        memcpy(c, j.bias, n * sizeof(float));
        j.bias = NULL;
    }
    if (use_k && gemm_ksplit(&j, kblocks, parts))
        return;
    size_t grain = (units + parts - 1) / parts;
    if (b_panels && j.split_cols) /* every thread starts at a panel's first column */
        grain = (grain + j.vectors - 1) / j.vectors * j.vectors;
    nr__parallel_for(units, grain, simd_range, &j);
}

static const simd_kernels avx512_kernels = {16,
                                           16,
                                           nr__gemm_avx512_rows,
                                           nr__gemm_avx512_transpose,
                                           nr__gemm_avx512_panel,
                                           nr__gemm_avx512_panel_t,
                                           2,
                                           nr__gemm_avx512_add};
static const simd_kernels avx2_kernels = {
    8, 3, nr__gemm_avx2_rows, nr__gemm_avx2_transpose, nr__gemm_avx2_panel, NULL, 0, nr__gemm_avx2_add};

static void gemm_avx512(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    gemm_simd(&avx512_kernels, split, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false, 0, NULL);
}

static void gemm_avx2(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    gemm_simd(&avx2_kernels, split, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false, 0, NULL);
}

static int has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
}

static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

/* ---- backend choice ---- */

typedef struct backend {
    const char *name;
    gemm_fn fn;
    int (*available)(void);
} backend;

static int always(void) { return 1; }

/* In order of preference: "auto" takes the first one available. */
static const backend backends[] = {
#if defined(__x86_64__)
    {"avx512", gemm_avx512, has_avx512},
    {"avx2", gemm_avx2, has_avx2},
#endif
#ifdef NR_HAVE_CBLAS
    {"blas", gemm_blas, has_blas},
#endif
    {"portable", gemm_portable, always},
};

enum { BACKEND_COUNT = sizeof backends / sizeof backends[0] };

static _Atomic(const backend *) current;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static const backend *first_available(void)
{
    for (size_t i = 0; i < BACKEND_COUNT; i++)
        if (backends[i].available())
            return &backends[i];
    return &backends[BACKEND_COUNT - 1];
}

static void choose_default(void)
{
    const backend *pick = NULL;
    const char *env = getenv("NEURITE_GEMM");
    if (env)
        for (size_t i = 0; i < BACKEND_COUNT; i++)
            if (strcmp(env, backends[i].name) == 0 && backends[i].available())
                pick = &backends[i];
    atomic_store(&current, pick ? pick : first_available());
}

static const backend *active(void)
{
    pthread_once(&choose_once, choose_default);
    return atomic_load_explicit(&current, memory_order_relaxed);
}

const char *nr_gemm_backend(void) { return active()->name; }

nr_status nr_set_gemm_backend(const char *name)
{
    active();
    if (!name)
        return nr__fail(NR_EINVAL, "nr_set_gemm_backend: NULL name");
    if (strcmp(name, "auto") == 0) {
        atomic_store(&current, first_available());
        return NR_OK;
    }
    for (size_t i = 0; i < BACKEND_COUNT; i++) {
        if (strcmp(name, backends[i].name) == 0) {
            if (!backends[i].available())
                return nr__fail(NR_EINVAL, "matrix kernel '%s' is not supported by this CPU", name);
            atomic_store(&current, &backends[i]);
            return NR_OK;
        }
    }
    return nr__fail(NR_EINVAL, "unknown or unavailable matrix kernel '%s'", name);
}

void nr__gemm_split(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha,
                    const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    active()->fn(split, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if defined(__x86_64__)
/* The tiled kernels of the active backend; NULL for the portable and BLAS ones. */
static const simd_kernels *active_kernels(void)
{
    const backend *b_end = active();
    return b_end->fn == gemm_avx512 ? &avx512_kernels : b_end->fn == gemm_avx2 ? &avx2_kernels : NULL;
}
#endif

size_t nr__gemm_panel_width(size_t n)
{
#if defined(__x86_64__)
    const simd_kernels *kern = active_kernels();
    if (!kern)
        return 0;
    size_t width = choose_vectors(kern, n, 1) * kern->lanes, threads = (size_t)nr_threads();
    /* A row that fits one tile is cut into a panel a thread, of 128 columns or more: then no partial product
     * crosses between the cores (MLP-256's first layer at batch 1 and two threads: ~5 % faster than the k
     * split). */
    if (threads >= 2 && n <= width) {
        size_t share = (n + threads - 1) / threads;
        share = (share + kern->lanes - 1) / kern->lanes * kern->lanes;
        if (share >= 128 && share < n)
            width = share;
    }
    return n > width ? width : 0;
#else
    (void)n;
    return 0;
#endif
}

void nr__gemm_pack_panels(size_t k, size_t n, const float *b, size_t ldb, size_t width, float *dst)
{
    for (size_t j0 = 0; j0 < n; j0 += width) {
        size_t cols = n - j0 < width ? n - j0 : width;
        for (size_t p = 0; p < k; p++) {
            memcpy(dst + p * width, b + p * ldb + j0, cols * sizeof(float));
            memset(dst + p * width + cols, 0, (width - cols) * sizeof(float));
        }
        dst += k * width;
    }
}

bool nr__gemm_row_packed(size_t n, size_t k, const float *a, const float *packed, size_t width, const float *bias,
                         float *c)
{
#if defined(__x86_64__)
    if (n == 0 || k == 0 || width == 0 || width != nr__gemm_panel_width(n))
        return false;
    /* Threads take whole panels when they divide evenly (each streams one contiguous block and no partial
     * product crosses between cores: MLP-512 batch 1 at two threads ~6 % faster than the k split), else
     * the product's own choice. The bits are the same either way. */
    size_t panels = (n + width - 1) / width;
    nr__split split = panels % (size_t)nr_threads() == 0 ? NR__SPLIT_N : NR__SPLIT_AUTO;
    gemm_simd(active_kernels(), split, NR_NO_TRANS, NR_NO_TRANS, 1, n, k, 1.0f, a, k, packed, width,
              bias ? 1.0f : 0.0f, c, n, false, k * width, bias);
    return true;
#else
    (void)n, (void)k, (void)a, (void)packed, (void)width, (void)bias, (void)c;
    return false;
#endif
}

/* ---- one sample through two dense layers in one pool job ---- */

typedef struct pair_job {
    simd_job first;  /* h = x W1 + b1 from W1's panels: thread t computes columns [t cols, (t + 1) cols) */
    simd_job second; /* y = act(h) W2 (+ b2 already in y): thread t computes k block t, rows [t cols, ...) */
    size_t cols;     /* the first product's columns per thread, the second's k block */
    size_t w2_row;   /* floats from one row of W2 to the next (its panel width, or n2 in place) */
    const float *bias1;
    nr__elementwise_fn act;
    const void *act_ctx;
    float *hact, *partials; /* act(h); k blocks 1.. of the second product, a row of n2 each */
} pair_job;

static void pair_range(void *ctx, size_t begin, size_t end)
{
    const pair_job *pj = ctx;
    for (size_t t = begin; t < end; t++) {
        size_t c0 = t * pj->cols, c1 = c0 + pj->cols < pj->first.n ? c0 + pj->cols : pj->first.n;
        if (pj->bias1)
            memcpy(pj->first.c + c0, pj->bias1 + c0, (c1 - c0) * sizeof(float));
        simd_block(&pj->first, 0, 1, c0, c1);
        pj->act(pj->act_ctx, pj->first.c + c0, pj->hact + c0, c1 - c0);
        simd_job j = pj->second;
        j.k = j.kc = c1 - c0;
        j.a = pj->hact + c0;
        j.b += c0 * pj->w2_row;
        if (t > 0) { /* a partial product, added to y in block order once every thread is done */
            j.c = pj->partials + (t - 1) * j.n;
            j.beta = 0.0f;
        }
        simd_block(&j, 0, 1, 0, j.n);
    }
}

bool nr__gemm_row_pair(size_t k1, size_t n1, const float *x, const float *w1, size_t width1, const float *b1,
                       nr__elementwise_fn act, const void *act_ctx, float *h, float *hact, size_t n2,
                       const float *w2, size_t width2, const float *b2, float *y)
{
#if defined(__x86_64__)
    const simd_kernels *kern = active_kernels();
    size_t threads = (size_t)nr_threads();
    if (!kern || threads < 2 || k1 == 0 || n1 == 0 || n2 == 0 || width1 == 0 || width1 != nr__gemm_panel_width(n1) ||
        (width2 && width2 != nr__gemm_panel_width(n2)))
        return false;
    /* Each thread's columns of the first product must be whole panels and exactly the rows of W2 that one k
     * block of the second product reads, so that nothing but that block's partial row crosses the cores. */
    size_t panels = (n1 + width1 - 1) / width1, cols = panels / threads * width1;
    size_t kblocks = k_block_count(n1);
    if (panels % threads != 0 || kblocks != threads || (n1 + kblocks - 1) / kblocks != cols)
        return false;
    int slot = -1;
    float *partials = scratch_get((threads - 1) * n2, &slot);
    if (!partials)
        return false;
    size_t kblocks1 = k_block_count(k1);
    pair_job pj = {
        .first = {kern, NR_NO_TRANS, NR_NO_TRANS, 1, n1, k1, k1, width1, n1, 1.0f, b1 ? 1.0f : 0.0f, x, w1, h,
                  (k1 + kblocks1 - 1) / kblocks1, width1 / kern->lanes, 1, true, false, false, k1 * width1, NULL},
        .second = {kern, NR_NO_TRANS, NR_NO_TRANS, 1, n2, cols, cols, width2 ? width2 : n2, n2, 1.0f,
                   b2 ? 1.0f : 0.0f, NULL, w2, y, cols, width2 ? width2 / kern->lanes : choose_vectors(kern, n2, 1),
                   1, true, false, false, width2 ? n1 * width2 : 0, NULL},
        .cols = cols, .w2_row = width2 ? width2 : n2, .bias1 = b1, .act = act, .act_ctx = act_ctx, .hact = hact,
        .partials = partials};
    if (b2)
        memcpy(y, b2, n2 * sizeof(float));
    atomic_fetch_add_explicit(&pair_count, 1, memory_order_relaxed);
    nr__parallel_for(threads, 1, pair_range, &pj);
    for (size_t t = 1; t < threads; t++) /* y = alpha acc + y per block, in k order, as the tiles store it */
        kern->add(n2, 1.0f, partials + (t - 1) * n2, y);
    scratch_put(partials, slot);
    return true;
#else
    (void)k1, (void)n1, (void)x, (void)w1, (void)width1, (void)b1, (void)act, (void)act_ctx, (void)h, (void)hact;
    (void)n2, (void)w2, (void)width2, (void)b2, (void)y;
    return false;
#endif
}

bool nr__gemm_sgd_step(nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, const float *a,
                       size_t lda, const float *b, size_t ldb, float *w, size_t ldw, float lr, float decay)
{
    /* One k block: the tile's sum is then the whole gradient when it is stored (gemm_simd's k blocks). */
    if (m == 0 || n == 0 || k == 0 || k >= KSPLIT_MIN_K || k > KC_MAX)
        return false;
#if defined(__x86_64__)
    const simd_kernels *kern = active_kernels();
    if (kern) {
        gemm_simd(kern, split, ta, tb, m, n, k, lr, a, lda, b, ldb, decay, w, ldw, true, 0, NULL);
        return true;
    }
#else
    (void)split, (void)ta, (void)tb, (void)a, (void)lda, (void)b, (void)ldb, (void)w, (void)ldw, (void)lr, (void)decay;
#endif
    return false;
}

void nr__gemm(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    nr__gemm_split(NR__SPLIT_AUTO, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

nr_status nr_sgemm(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if ((ta != NR_NO_TRANS && ta != NR_TRANS) || (tb != NR_NO_TRANS && tb != NR_TRANS))
        return nr__fail(NR_EINVAL, "nr_sgemm: transpose flags must be NR_NO_TRANS or NR_TRANS");
    if (m == 0 || n == 0 || k == 0)
        return nr__fail(NR_EINVAL, "nr_sgemm: zero dimension (m=%zu n=%zu k=%zu)", m, n, k);
    if (!a || !b || !c)
        return nr__fail(NR_EINVAL, "nr_sgemm: NULL matrix");
    size_t a_cols = ta ? m : k, b_cols = tb ? k : n;
    if (lda < a_cols || ldb < b_cols || ldc < n)
        return nr__fail(NR_EINVAL, "nr_sgemm: a row stride is smaller than the row (lda=%zu ldb=%zu ldc=%zu)",
                        lda, ldb, ldc);
    size_t mk, kn, mn;
    if (!nr__mul(m, k, &mk) || !nr__mul(k, n, &kn) || !nr__mul(m, n, &mn) || mk > NR_MAX_FLOATS ||
        kn > NR_MAX_FLOATS || mn > NR_MAX_FLOATS || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return nr__fail(NR_EINVAL, "nr_sgemm: matrices too large (m=%zu n=%zu k=%zu)", m, n, k);
    nr__gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return NR_OK;
}
