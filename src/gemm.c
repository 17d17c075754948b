/* gemm.c - the matrix-product seam: argument checks, backend choice, and the portable reference kernel.
 *
 * Every layer's matrix work goes through nr__gemm. The backends compute the same products; they differ in
 * speed and, within float rounding, in the order of additions. Within one backend the order of additions
 * for an element of C never depends on the number of threads. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#ifdef NR_HAVE_CBLAS
#include <cblas.h>
#endif

typedef void (*gemm_fn)(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                        size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

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

static void gemm_portable(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                          size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    portable_job j = {ta, tb, n, k, lda, ldb, ldc, alpha, beta, a, b, c};
    size_t work_per_row = n * (k ? k : 1);
    size_t grain = work_per_row >= 65536 ? 1 : 65536 / work_per_row;
    nr__parallel_for(m, grain, portable_rows, &j);
}

#ifdef NR_HAVE_CBLAS
static void gemm_blas(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
#endif

/* ---- backend choice ---- */

typedef struct backend {
    const char *name;
    gemm_fn fn;
    int (*available)(void);
} backend;

static int always(void) { return 1; }

static const backend backends[] = {
#ifdef NR_HAVE_CBLAS
    {"blas", gemm_blas, always},
#endif
    {"portable", gemm_portable, always},
};

static const backend *current;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static void choose_default(void)
{
    const char *env = getenv("NEURITE_GEMM");
    if (env)
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            if (strcmp(env, backends[i].name) == 0 && backends[i].available()) {
                current = &backends[i];
                return;
            }
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i].available()) {
            current = &backends[i];
            return;
        }
}

static const backend *active(void)
{
    pthread_once(&choose_once, choose_default);
    return current;
}

const char *nr_gemm_backend(void) { return active()->name; }

nr_status nr_set_gemm_backend(const char *name)
{
    active();
    if (!name)
        return nr__fail(NR_EINVAL, "nr_set_gemm_backend: NULL name");
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (strcmp(name, "auto") == 0 || strcmp(name, backends[i].name) == 0) {
            if (!backends[i].available())
                return nr__fail(NR_EINVAL, "matrix kernel '%s' is not supported by this CPU", name);
            current = &backends[i];
            return NR_OK;
        }
    }
    return nr__fail(NR_EINVAL, "unknown or unavailable matrix kernel '%s'", name);
}

void nr__gemm(nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    active()->fn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
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
