/* test_gemm.c - every matrix kernel against a double-precision reference, for all four transpose cases,
 * odd shapes, strided rows, alpha and beta; the threads' splits (nr__split) against one thread, bit for bit;
 * the SGD step folded into a product and one-row products from packed panels against the ways they replace;
 * and the seam's argument checks. */
#include "check.h"
#include "core/internal.h"
#include "neurite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(nr_rng *r, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(2 * nr_rng_uniform(r) - 1);
}

/* One case: returns the worst error relative to the size of the terms. */
static double run_case(nr_rng *r, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k, float alpha, float beta,
                       size_t pad)
{
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    float *a = malloc(ar * lda * sizeof *a), *b = malloc(br * ldb * sizeof *b), *c = malloc(m * ldc * sizeof *c);
    double *ref = malloc(m * n * sizeof *ref), *tol = malloc(m * n * sizeof *tol);
    fill(r, a, ar * lda);
    fill(r, b, br * ldb);
    fill(r, c, m * ldc);
    if (beta == 0)
        for (size_t i = 0; i < m * ldc; i++)
            c[i] = NAN;  /* must not leak into the result */
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (size_t p = 0; p < k; p++) {
                double t = (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
                s += t;
                mag += fabs(t);
            }
            ref[i * n + j] = alpha * s + (beta == 0 ? 0 : beta * (double)c[i * ldc + j]);
            /* float32 rounding of a k-term sum: about sqrt(k) unit roundoffs of the terms' total size */
            tol[i * n + j] = sqrt((double)k) * 6e-8 * mag * fabs(alpha) + 1e-6;
        }
    nr_status st = nr_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double worst = st ? INFINITY : 0;
    for (size_t i = 0; i < m && !st; i++)
        for (size_t j = 0; j < n; j++) {
            double e = fabs(c[i * ldc + j] - ref[i * n + j]) / tol[i * n + j];
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    free(a);
    free(b);
    free(c);
    free(ref);
    free(tol);
    return worst;
}

static void backend(const char *name)
{
    if (nr_set_gemm_backend(name) != NR_OK) {
        printf("test_gemm: backend %s not available here\n", name);
        return;
    }
    nr_rng r;
    nr_rng_seed(&r, 99);
    const size_t sizes[] = {1, 2, 3, 7, 10, 12, 16, 17, 31, 33, 64, 100, 129};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double worst = 0;
            int cases = 0;
            for (size_t i = 0; i < ns; i++)
                for (size_t j = 0; j < ns; j += 2)
                    for (size_t q = 0; q < ns; q += 3) {
                        float alpha = (cases % 3) ? 1.0f : -0.5f, beta = (float[]){0.0f, 1.0f, 0.3f}[cases % 3];
                        double e = run_case(&r, (nr_trans)ta, (nr_trans)tb, sizes[i], sizes[j], sizes[q], alpha, beta,
                                            cases % 2 ? 3 : 0);
                        worst = fmax(worst, e);
                        cases++;
                    }
            CHECK(worst <= 1.0, "%s: trans_a=%d trans_b=%d: worst error %.3g x tolerance over %d cases", name, ta, tb,
                  worst, cases);
        }
    /* Large enough to be split across threads and blocked in k. */
    double e = run_case(&r, NR_NO_TRANS, NR_NO_TRANS, 300, 257, 1100, 1.0f, 0.0f, 0);
    CHECK(e <= 1.0, "%s: 300x257x1100 error %.3g x tolerance", name, e);
    e = run_case(&r, NR_TRANS, NR_NO_TRANS, 1000, 100, 64, 1.0f, 1.0f, 0);
    CHECK(e <= 1.0, "%s: the lecture's x^T g_h shape, error %.3g x tolerance", name, e);
    /* One row, as wide as a layer at batch 1 (the one-row tiles, 8 to 16 vectors, full and masked). */
    const size_t widths[] = {256, 250, 200, 136, 512};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (int tb = 0; tb < 2; tb++) {
            e = run_case(&r, NR_NO_TRANS, (nr_trans)tb, 1, widths[w], 784, w % 2 ? -0.5f : 1.0f, w % 3 ? 0.0f : 0.7f,
                         w % 2);
            CHECK(e <= 1.0, "%s: 1 x %zu x 784 (trans_b %d), error %.3g x tolerance", name, widths[w], tb, e);
        }
}

/* One product under a split at two threads against the same product at one thread: the same bits. */
static bool split_case(nr_rng *r, nr__split split, nr_trans ta, nr_trans tb, size_t m, size_t n, size_t k,
                       float alpha, float beta, size_t pad)
{
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    float *a = malloc(ar * lda * sizeof *a), *b = malloc(br * ldb * sizeof *b);
    float *c1 = malloc(m * ldc * sizeof *c1), *c2 = malloc(m * ldc * sizeof *c2);
    fill(r, a, ar * lda);
    fill(r, b, br * ldb);
    fill(r, c1, m * ldc);
    memcpy(c2, c1, m * ldc * sizeof *c1);
    nr_set_threads(1);
    nr__gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c1, ldc);
    nr_set_threads(2);
    nr__gemm_split(split, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c2, ldc);
    bool same = memcmp(c1, c2, m * ldc * sizeof *c1) == 0;
    free(a);
    free(b);
    free(c1);
    free(c2);
    return same;
}

static void splits(const char *name)
{
    if (nr_set_gemm_backend(name) != NR_OK)
        return;
    nr_rng r;
    nr_rng_seed(&r, 7);
    /* k of 1 to 4 blocks of at most 512 (600 and 2000 split in two runs, 1100 and 1500 have an odd number
     * of blocks and fall back); C wide, narrow (stored transposed) and one row. */
    const size_t ks[] = {16, 600, 1000, 1100, 1500, 2000};
    const size_t shapes[][2] = {{64, 100}, {64, 10}, {33, 257}, {1, 300}, {130, 12}};
    const float betas[] = {0.0f, 1.0f, 0.3f};
    size_t before = nr__gemm_ksplits();
    int cases = 0, same = 0;
    for (int split = NR__SPLIT_M; split <= NR__SPLIT_K; split++)
        for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int t = 0; t < 4; t++) {
                    float alpha = t % 2 ? -0.75f : 1.0f, beta = betas[(q + s + (size_t)t) % 3];
                    same += split_case(&r, (nr__split)split, (nr_trans)(t & 1), (nr_trans)(t >> 1), shapes[s][0],
                                       shapes[s][1], ks[q], alpha, beta, t == 3 ? 5 : 0);
                    cases++;
                }
    CHECK(same == cases, "%s: %d of %d products under a split at 2 threads equal 1 thread bit for bit", name, same,
          cases);
    /* The lecture's forward product and a dense layer's at batch 64 (784 inputs): k split, same bits. */
    size_t lecture = nr__gemm_ksplits();
    CHECK(split_case(&r, NR__SPLIT_K, NR_NO_TRANS, NR_NO_TRANS, 64, 100, 1000, 1.0f, 0.0f, 0) &&
              split_case(&r, NR__SPLIT_K, NR_NO_TRANS, NR_NO_TRANS, 64, 256, 784, 1.0f, 1.0f, 0),
          "%s: k split of the lecture's and an MLP's forward product", name);
    CHECK(nr__gemm_ksplits() - lecture == 2 && lecture > before,
          "%s: the k split ran (%zu products before the lecture's, %zu for it and the MLP's)", name,
          lecture - before, nr__gemm_ksplits() - lecture);
}

/* Selects backend `name` (false if this CPU lacks it) and seeds r; *tiles: whether it has tiled kernels. */
static bool use_backend(const char *name, nr_rng *r, uint64_t seed, bool *tiles)
{
    nr_rng_seed(r, seed);
    *tiles = strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0;
    return nr_set_gemm_backend(name) == NR_OK;
}

/* The SGD step folded into a weight gradient's product (nr__gemm_sgd_step) against the product written out
 * and then the step in float, as the optimizer takes it: the same bits, at 1 and 2 threads, for wide, narrow
 * (stored transposed) and one-row gradients, every transpose case, with and without weight decay. Products
 * of more than one k block, and backends without tiles, must decline and leave the weights alone. */
static void sgd_folds(const char *name)
{
    bool tiles;
    nr_rng r;
    if (!use_backend(name, &r, 9, &tiles))
        return;
    const size_t shapes[][3] = {{1000, 100, 64}, {100, 10, 64}, {784, 256, 1}, {33, 257, 17},
                                {40, 12, 100},   {1, 300, 127}, {5, 3, 2},     {64, 100, 128}};
    int cases = 0, right = 0;
    for (int threads = 1; threads <= 2; threads++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++) {
                size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], pad = t == 3 ? 3 : 0;
                nr_trans ta = (nr_trans)(t & 1), tb = (nr_trans)(t >> 1);
                size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldw = n + pad;
                float *a = malloc((ta ? k : m) * lda * sizeof *a), *b = malloc((tb ? n : k) * ldb * sizeof *b);
                float *w = malloc(m * ldw * sizeof *w), *ref = malloc(m * ldw * sizeof *ref);
                float *g = malloc(m * n * sizeof *g);
                fill(&r, a, (ta ? k : m) * lda);
                fill(&r, b, (tb ? n : k) * ldb);
                fill(&r, w, m * ldw);
                memcpy(ref, w, m * ldw * sizeof *w);
                const float lr = t % 2 ? 0.25f : 1e-3f, decay = t < 2 ? 0.0f : 0.01f;
                nr_set_threads(threads);
                nr__gemm_split(NR__SPLIT_M, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, g, n);
                bool fold = tiles && k < 128;
                for (size_t i = 0; fold && i < m; i++)
                    for (size_t j = 0; j < n; j++) {
                        float wv = ref[i * ldw + j];
                        float wd = decay * wv;
                        float u = g[i * n + j] + wd;
                        float step = lr * u;
                        ref[i * ldw + j] = wv - step;
                    }
                bool folded = nr__gemm_sgd_step(NR__SPLIT_M, ta, tb, m, n, k, a, lda, b, ldb, w, ldw, lr, decay);
                right += folded == fold && memcmp(w, ref, m * ldw * sizeof *w) == 0;
                cases++;
                free(a);
                free(b);
                free(w);
                free(ref);
                free(g);
            }
    CHECK(right == cases, "%s: %d of %d folded SGD steps equal the product then the step, bit for bit", name, right,
          cases);
}

/* One-row products from B prepacked in column panels (nr__gemm_row_packed, for nr_net_prepack) against the
 * same product from B in place (nr__gemm, C set to the bias and beta 1, or beta 0 without one): the same bits
 * at 1 and 2 threads, for rows narrower than a tile, one tile (cut into a panel a thread at two threads) and
 * several (evenly and unevenly many panels), one to three k blocks. A backend without tiles packs nothing,
 * and a width that is not the backend's is declined, C untouched. */
static void packed_rows(const char *name)
{
    bool tiles;
    nr_rng r;
    if (!use_backend(name, &r, 11, &tiles))
        return;
    const size_t ns[] = {5, 16, 200, 256, 257, 300, 512, 768, 1000}, ks[] = {1, 7, 128, 784, 1100};
    int cases = 0, right = 0, packed = 0, one_tile = 0;
    for (int threads = 1; threads <= 2; threads++)
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
            for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
                nr_set_threads(threads);
                size_t n = ns[in], k = ks[ik], ldb = n + 3, width = nr__gemm_panel_width(n);
                bool with_bias = (in + ik) % 2 == 0;
                float *a = malloc(k * sizeof *a), *b = malloc(k * ldb * sizeof *b), *bias = malloc(n * sizeof *bias);
                float *c1 = malloc(n * sizeof *c1), *c2 = malloc(n * sizeof *c2);
                fill(&r, a, k);
                fill(&r, b, k * ldb);
                fill(&r, bias, n);
                fill(&r, c2, n); /* overwritten whole */
                memcpy(c1, bias, n * sizeof *c1);
                nr__gemm(NR_NO_TRANS, NR_NO_TRANS, 1, n, k, 1.0f, a, k, b, ldb, with_bias ? 1.0f : 0.0f, c1, n);
                bool ok = tiles ? width < n || width == 0 : width == 0;
                if (width) {
                    size_t panels = (n + width - 1) / width;
                    float *p = malloc(panels * width * k * sizeof *p);
                    for (size_t i = 0; i < panels * width * k; i++)
                        p[i] = NAN; /* the rows' unused tails must be written (zeros), not left */
                    nr__gemm_pack_panels(k, n, b, ldb, width, p);
                    for (size_t i = 0; i < panels * width * k; i++)
                        ok &= !isnan(p[i]);
                    size_t row = k > 1 ? 1 : 0; /* panel 1 starts at column `width` of B */
                    ok &= p[width * k + row * width] == b[row * ldb + width];
                    ok &= nr__gemm_row_packed(n, k, a, p, width, with_bias ? bias : NULL, c2);
                    ok &= memcmp(c1, c2, n * sizeof *c1) == 0;
                    float *c3 = malloc(n * sizeof *c3);
                    memcpy(c3, c1, n * sizeof *c1);
                    ok &= !nr__gemm_row_packed(n, k, a, p, width + 8, bias, c3);
                    ok &= memcmp(c1, c3, n * sizeof *c1) == 0;
                    free(c3);
                    free(p);
                    packed++;
                    one_tile += n == 256;
                } else {
                    ok &= !nr__gemm_row_packed(n, k, a, b, 256, bias, c2);
                    ok &= !nr__gemm_row_packed(n, k, a, b, 0, bias, c2);
                }
                right += ok;
                cases++;
                free(a);
                free(b);
                free(bias);
                free(c1);
                free(c2);
            }
    CHECK(right == cases, "%s: %d of %d one-row products from packed panels equal the product in place", name, right,
          cases);
    CHECK(!tiles || packed >= 55, "%s: %d of %d one-row products were packed (a tiled backend packs rows wider than "
          "a tile)", name, packed, cases);
    CHECK(strcmp(name, "avx512") != 0 || one_tile == 5, "avx512: a row of one tile was packed %d times (at two "
          "threads only, a panel a thread)", one_tile);
}

int main(void)
{
    const char *split_backends[] = {"avx2", "avx512"};
    for (size_t i = 0; i < 2; i++)
        splits(split_backends[i]);
    const char *fold_backends[] = {"portable", "avx2", "avx512", "blas"};
    for (size_t i = 0; i < 4; i++) {
        sgd_folds(fold_backends[i]);
        packed_rows(fold_backends[i]);
    }
    nr_set_threads(2);
    const char *names[] = {"portable", "avx2", "avx512", "blas"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        backend(names[i]);
    CHECK_OK(nr_set_gemm_backend("auto"));
    printf("test_gemm: default kernel %s\n", nr_gemm_backend());

    float a[4] = {1, 2, 3, 4}, c[4];
    CHECK_ERR(nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, 0, 2, 2, 1, a, 2, a, 2, 0, c, 2), NR_EINVAL);
    CHECK_ERR(nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, 2, 2, 2, 1, NULL, 2, a, 2, 0, c, 2), NR_EINVAL);
    CHECK_ERR(nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, 2, 2, 2, 1, a, 1, a, 2, 0, c, 2), NR_EINVAL);
    CHECK_ERR(nr_sgemm((nr_trans)5, NR_NO_TRANS, 2, 2, 2, 1, a, 2, a, 2, 0, c, 2), NR_EINVAL);
    CHECK_ERR(nr_sgemm(NR_NO_TRANS, NR_NO_TRANS, (size_t)1 << 40, 2, 2, 1, a, 2, a, 2, 0, c, 2), NR_EINVAL);
    CHECK_ERR(nr_set_gemm_backend("cuda"), NR_EINVAL);
    CHECK_ERR(nr_set_threads(-1), NR_EINVAL);
    CHECK_ERR(nr_set_threads(100000), NR_EINVAL);
    return check_report("test_gemm");
}
