/* qgemm.c - the int8 matrix product: packing, the portable reference kernel, the choice among it, AVX2
 * (qgemm_avx2.c) and AVX-512 VNNI (qgemm_vnni.c) at run time, and the split over threads.
 *
 * Integer sums are exact, so every kernel, every thread count and every split gives the same bits; the
 * tests check it on random matrices with every edge (k not a multiple of 4, n not of 16, 255 x -127). A sum
 * cannot overflow: |a b| <= 255 * 127 and the quantizer refuses k above 65536, so |C| < 2^31. */
#include "core/internal.h"
#include "kernels/qgemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int nr__qmatrix_pack(nr__qmatrix *m, const int8_t *b, size_t k, size_t n)
{
    memset(m, 0, sizeof *m);
    m->k = k;
    m->n = n;
    m->groups = (k + 3) / 4;
    m->np = (n + 15) / 16 * 16;
    m->packed = calloc(m->groups * m->np * 4 + 64, 1);
    m->colsum = calloc(m->np, sizeof *m->colsum);
    if (!m->packed || !m->colsum) {
        nr__qmatrix_free(m);
        nr__fail(NR_ENOMEM, "out of memory packing a %zu x %zu int8 matrix", k, n);
        return NR_ENOMEM;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++) {
            m->packed[((i / 4) * m->np + j) * 4 + i % 4] = b[i * n + j];
            m->colsum[j] += b[i * n + j];
        }
    return NR_OK;
}

void nr__qmatrix_free(nr__qmatrix *m)
{
    free(m->packed);
    free(m->colsum);
    memset(m, 0, sizeof *m);
}

/* The reference: one multiply-add at a time, in the packed layout the others read. */
static void qgemm_portable(const uint8_t *a, size_t lda, size_t r0, size_t r1, size_t c0, size_t c1,
                           const nr__qmatrix *b, int32_t *c, size_t ldc)
{
    for (size_t i = r0; i < r1; i++) {
        const uint8_t *row = a + i * lda;
        for (size_t j = c0; j < c1; j++) {
            int32_t s = 0;
            for (size_t p = 0; p < b->k; p++)
                s += (int32_t)row[p] * b->packed[((p / 4) * b->np + j) * 4 + p % 4];
            c[i * ldc + j] = s;
        }
    }
}

/* ---- kernel choice (NEURITE_QGEMM=vnni|avx2|portable, or nr_set_qgemm_backend) ---- */

typedef struct qbackend {
    const char *name;
    nr__qkernel fn;
    int (*available)(void);
} qbackend;

static int always(void) { return 1; }
#if defined(__x86_64__)
static int has_vnni(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }
#endif

static const qbackend qbackends[] = {
#if defined(__x86_64__)
    {"vnni", nr__qgemm_vnni, has_vnni},
    {"avx2", nr__qgemm_avx2, has_avx2},
#endif
    {"portable", qgemm_portable, always},
};
enum { QBACKEND_COUNT = sizeof qbackends / sizeof qbackends[0] };

static _Atomic(const qbackend *) qcurrent;
static pthread_once_t qchoose_once = PTHREAD_ONCE_INIT;

static const qbackend *first_available(void)
{
    for (size_t i = 0; i < QBACKEND_COUNT; i++)
        if (qbackends[i].available())
            return &qbackends[i];
    return &qbackends[QBACKEND_COUNT - 1];
}

static void choose_default(void)
{
    const qbackend *pick = NULL;
    const char *env = getenv("NEURITE_QGEMM");
    for (size_t i = 0; env && i < QBACKEND_COUNT; i++)
        if (strcmp(env, qbackends[i].name) == 0 && qbackends[i].available())
            pick = &qbackends[i];
    atomic_store(&qcurrent, pick ? pick : first_available());
}

static const qbackend *active(void)
{
    pthread_once(&qchoose_once, choose_default);
    return atomic_load_explicit(&qcurrent, memory_order_relaxed);
}

const char *nr_qgemm_backend(void) { return active()->name; }

#if defined(__x86_64__)
int nr__qgemm_avx512(void) { return active()->fn == nr__qgemm_vnni; }
#else
int nr__qgemm_avx512(void) { return 0; }
#endif

nr_status nr_set_qgemm_backend(const char *name)
{
    active();
    if (!name)
        return nr__fail(NR_EINVAL, "nr_set_qgemm_backend: NULL name");
    if (strcmp(name, "auto") == 0) {
        atomic_store(&qcurrent, first_available());
        return NR_OK;
    }
    for (size_t i = 0; i < QBACKEND_COUNT; i++)
        if (strcmp(name, qbackends[i].name) == 0) {
            if (!qbackends[i].available())
                return nr__fail(NR_EINVAL, "int8 kernel '%s' is not supported by this CPU", name);
            atomic_store(&qcurrent, &qbackends[i]);
            return NR_OK;
        }
    return nr__fail(NR_EINVAL, "unknown int8 kernel '%s' (vnni, avx2, portable or auto)", name);
}

/* ---- the split over threads: by rows when there are many, else by blocks of 64 columns ---- */

typedef struct qjob {
    nr__qkernel fn;
    const uint8_t *a;
    size_t lda, m;
    const nr__qmatrix *b;
    int32_t *c;
    size_t ldc;
} qjob;

static void by_rows(void *ctx, size_t begin, size_t end)
{
    const qjob *j = ctx;
    j->fn(j->a, j->lda, begin, end, 0, j->b->n, j->b, j->c, j->ldc);
}

static void by_columns(void *ctx, size_t begin, size_t end)
{
    const qjob *j = ctx;
    size_t c1 = end * 64 < j->b->n ? end * 64 : j->b->n;
    j->fn(j->a, j->lda, 0, j->m, begin * 64, c1, j->b, j->c, j->ldc);
}

void nr__qgemm(const uint8_t *a, size_t lda, size_t m, const nr__qmatrix *b, int32_t *c, size_t ldc)
{
    qjob j = {active()->fn, a, lda, m, b, c, ldc};
    size_t work = b->groups * b->np;  /* multiply-adds per row, in groups of 4 */
    if (m >= 16)
        nr__parallel_for(m, 4 + 65536 / (work + 1), by_rows, &j);
    else
        nr__parallel_for((b->n + 63) / 64, 1 + 16384 / (m * b->groups + 1), by_columns, &j);
}
