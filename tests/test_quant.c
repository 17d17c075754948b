/* test_quant.c - int8 inference: every int8 kernel (VNNI, AVX2, portable) bit-exact against a plain 64-bit
 * reference on every edge of shape and value, at 1 and 2 threads; the fixed-point requantization and input
 * rounding; quantized networks of every layer kind close to their float originals, identical at every thread
 * count and with every kernel, identical after a save and a load, and about a quarter of the file; and the
 * refusals. */
#include "check.h"
#include "kernels/qgemm.h"
#include "neurite.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kernels[] = {"vnni", "avx2", "portable"};

/* ---- the kernels ---- */

static void gemm_case(nr_rng *r, size_t m, size_t k, size_t n, int extreme)
{
    uint8_t *a = malloc(m * k + 1);
    int8_t *b = malloc(k * n + 1);
    int32_t *c = malloc(m * n * sizeof *c + 4);
    int64_t *ref = malloc(m * n * sizeof *ref + 8);
    for (size_t i = 0; i < m * k; i++)
        a[i] = extreme ? 255 : (uint8_t)(nr_rng_below(r, 8) == 0 ? 255 : nr_rng_below(r, 256));
    for (size_t i = 0; i < k * n; i++)
        b[i] = extreme ? (int8_t)-127 : (int8_t)(nr_rng_below(r, 8) == 0 ? -127 : (int)nr_rng_below(r, 255) - 127);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int64_t s = 0;
            for (size_t p = 0; p < k; p++)
                s += (int64_t)a[i * k + p] * b[p * n + j];
            ref[i * n + j] = s;
        }
    nr__qmatrix q;
    CHECK(nr__qmatrix_pack(&q, b, k, n) == 0, "pack %zu x %zu", k, n);
    for (size_t kern = 0; kern < 3; kern++) {
        if (nr_set_qgemm_backend(kernels[kern]) != NR_OK)
            continue;
        for (int threads = 1; threads <= 2; threads++) {
            nr_set_threads(threads);
            memset(c, 0x55, m * n * sizeof *c);
            nr__qgemm(a, k, m, &q, c, n);
            size_t bad = 0;
            for (size_t i = 0; i < m * n; i++)
                bad += c[i] != ref[i];
            CHECK(bad == 0, "int8 %s, %d threads, %zu x %zu x %zu%s: %zu of %zu sums differ from the reference",
                  kernels[kern], threads, m, k, n, extreme ? " (all 255 x -127)" : "", bad, m * n);
        }
    }
    nr_set_qgemm_backend("auto");
    nr__qmatrix_free(&q);
    free(a);
    free(b);
    free(c);
    free(ref);
}

static void test_kernels(void)
{
    nr_rng r;
    nr_rng_seed(&r, 11);
    static const size_t shapes[][3] = {{1, 1, 1},   {1, 3, 5},    {3, 5, 17},   {4, 4, 16},  {5, 7, 64},
                                       {7, 784, 256}, {16, 31, 65}, {17, 9, 33}, {33, 100, 10}, {1, 3136, 128},
                                       {2, 130, 130}, {64, 288, 64}, {1, 784, 10}, {20, 1, 70}, {1, 785, 300},
                                       {3, 63, 513}, {6, 8, 256}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        gemm_case(&r, shapes[s][0], shapes[s][1], shapes[s][2], 0);
    gemm_case(&r, 2, 32768, 18, 1);  /* the largest k the quantizer allows, every product at its extreme */
    gemm_case(&r, 1, 32768, 256, 1); /* ... through the one-row kernel that takes 256 columns at once */
    printf("test_quant: int8 kernels in use: %s\n", nr_qgemm_backend());
}

/* ---- requantization and rounding ---- */

static void test_arithmetic(void)
{
    nr_rng r;
    nr_rng_seed(&r, 3);
    int bad_mult = 0, bad_scale = 0;
    for (int t = 0; t < 20000; t++) {
        double m = exp((nr_rng_uniform(&r) * 26 - 20) * log(2.0));  /* 2^-20 to 2^6 */
        int32_t mult, shift;
        nr__q_multiplier(m, &mult, &shift);
        double back = ldexp((double)mult, -31 - shift);
        bad_mult += !(mult >= (1 << 30) && fabs(back - m) <= m * ldexp(1, -30));
        int32_t sum = (int32_t)(nr_rng_below(&r, 1u << 30) - (1u << 29)) >> (int)nr_rng_below(&r, 20);
        /* sum * mult / 2^(31 + shift) rounded half up, by exact 128-bit division rather than a shift */
        __int128 num = (__int128)sum * mult + ((__int128)1 << (30 + shift)), den = (__int128)1 << (31 + shift);
        __int128 want = num / den - (num % den != 0 && num < 0);
        bad_scale += nr__q_scale(sum, mult, shift) != (int32_t)want;
    }
    CHECK(bad_mult == 0, "%d multipliers are not within 2^-30 of the real multiplier", bad_mult);
    CHECK(bad_scale == 0, "%d requantized sums are not the exact product rounded half up", bad_scale);
    int32_t mult, shift;
    nr__q_multiplier(1e-12, &mult, &shift);
    CHECK(mult == 0 && nr__q_scale(1 << 30, mult, shift) == 0, "a negligible multiplier gives 0");
    CHECK(nr__q_input(2.5f, 1.0f, 10) == 13 && nr__q_input(-2.5f, 1.0f, 10) == 7, "inputs round half away from 0");
    CHECK(nr__q_input(1e30f, 1.0f, 0) == 255 && nr__q_input(-1e30f, 1.0f, 200) == 0 && nr__q_input(NAN, 1.0f, 5) == 0,
          "inputs are clamped to bytes (NaN to the lowest)");
    CHECK(nr__q_input(37.0f / 255.0f, 1.0f / (1.0f / 255.0f), 0) == 37, "a pixel / 255 comes back as the pixel");
}

/* The AVX-512 requantization and input conversion give the scalar code's bytes, on random values and the
 * edges: extreme multipliers and shifts, sums at the int32 limits of a layer, NaN, infinities, ties, -0. */
static void test_epilogues(void)
{
    if (nr_set_qgemm_backend("vnni") != NR_OK) {
        printf("test_quant: no AVX-512 VNNI here: the AVX-512 requantization is not checked\n");
        return;
    }
    nr_rng r;
    nr_rng_seed(&r, 11);
    enum { ROWS = 3, N = 37, COUNT = 4099 };
    int32_t sums[ROWS * N], bias[N], mult[N], shift[N];
    uint8_t got[ROWS * N];
    int bad = 0;
    for (int t = 0; t < 2000; t++) {
        for (int o = 0; o < N; o++) {
            double m = exp((nr_rng_uniform(&r) * 40 - 34) * log(2.0));  /* 2^-34 to 2^6, some rounding to 0 */
            nr__q_multiplier(m, &mult[o], &shift[o]);
            bias[o] = (int32_t)nr_rng_below(&r, 1u << 30) - (1 << 29);
        }
        for (int i = 0; i < ROWS * N; i++)
            sums[i] = t % 7 == 0 ? (i % 2 ? 1060000000 : -1060000000)
                                 : (int32_t)(nr_rng_below(&r, 1u << 31) - (1u << 30)) >> (int)nr_rng_below(&r, 24);
        int32_t zero = (int32_t)nr_rng_below(&r, 256);
        nr__qrequant_avx512(sums, ROWS, N, bias, mult, shift, zero, got);
        for (int i = 0; i < ROWS * N; i++) {
            int32_t v = zero + nr__q_scale(sums[i] + bias[i % N], mult[i % N], shift[i % N]);
            bad += got[i] != (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    CHECK(bad == 0, "the AVX-512 requantization differs from the scalar one in %d bytes", bad);
    static float x[COUNT];
    static uint8_t bytes[COUNT];
    const float edges[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 0.5f, -0.5f, 1.5f, -2.5f, 511.5f, -511.5f, 1e30f};
    bad = 0;
    for (int t = 0; t < 50; t++) {
        float inv = (float)(0.5 + 200 * nr_rng_uniform(&r));
        int32_t zero = (int32_t)nr_rng_below(&r, 256);
        for (int i = 0; i < COUNT; i++)
            x[i] = i % 5 == 0 ? edges[(size_t)i / 5 % (sizeof edges / sizeof edges[0])] / (i % 2 ? 1.0f : inv)
                              : (float)(nr_rng_uniform(&r) * 8 - 4);
        nr__qinput_avx512(x, COUNT - (size_t)t, inv, zero, bytes);
        for (int i = 0; i < COUNT - t; i++)
            bad += bytes[i] != nr__q_input(x[i], inv, zero);
    }
    CHECK(bad == 0, "the AVX-512 input conversion differs from the scalar one in %d bytes", bad);
    nr_set_qgemm_backend("auto");
}

/* ---- networks ---- */

static nr_net *network(const char *input, const char *spec, uint64_t seed)
{
    size_t h = 1, w = 1, c;
    nr_net *net = sscanf(input, "%zux%zux%zu", &h, &w, &c) == 3 ? nr_net_new_image(h, w, c)
                                                                 : nr_net_new((size_t)atoi(input));
    CHECK(net && nr_net_add_spec(net, spec, NR_ACT_IDENTITY) == NR_OK, "%s builds: %s", spec, nr_error_message());
    nr_rng r;
    nr_rng_seed(&r, seed);
    nr_net_init(net, NR_INIT_AUTO, &r);
    nr_net_set_head(net, NR_LOSS_XENT);
    /* batch normalisation with statistics of its own, so that folding it is tested */
    for (size_t i = 0; i < nr_net_tensor_count(net); i++) {
        nr_tensor_info t;
        nr_net_tensor(net, i, &t);
        float *v = nr_net_params(net) + t.offset;
        bool bn = strncmp(t.name, "batchnorm", 9) == 0;
        for (size_t k = 0; bn && k < t.size; k++)
            v[k] = strstr(t.name, ".var") ? 0.5f + (float)nr_rng_uniform(&r) : (float)(nr_rng_uniform(&r) - 0.3);
    }
    return net;
}

static nr_dataset *data(size_t n, size_t features, uint64_t seed)
{
    float *x = malloc(n * features * sizeof *x);
    int32_t *y = calloc(n, sizeof *y);
    nr_rng r;
    nr_rng_seed(&r, seed);
    for (size_t i = 0; i < n * features; i++)
        x[i] = (float)(nr_rng_uniform(&r) * 2 - 0.5);
    nr_dataset *d = NULL;
    CHECK_OK(nr_data_from_arrays(x, y, n, features, &d));
    free(x);
    free(y);
    return d;
}

/* Float and int8 outputs (logits) of n samples: how far apart, relative to the outputs' spread. */
static double gap(nr_net *a, nr_net *b, const float *x, size_t n, double *agree)
{
    size_t d = nr_net_output_size(a);
    const float *ya, *yb;
    float *copy = malloc(n * d * sizeof *copy);
    CHECK_OK(nr_net_forward(a, x, n, 0, &ya));
    memcpy(copy, ya, n * d * sizeof *copy);
    CHECK_OK(nr_net_forward(b, x, n, 0, &yb));
    double worst = 0, spread = 1e-9;
    size_t same = 0;
    for (size_t s = 0; s < n; s++) {
        size_t ia = 0, ib = 0;
        for (size_t j = 0; j < d; j++) {
            worst = fmax(worst, fabs(copy[s * d + j] - yb[s * d + j]));
            spread = fmax(spread, fabs(copy[s * d + j]));
            ia = copy[s * d + j] > copy[s * d + ia] ? j : ia;
            ib = yb[s * d + j] > yb[s * d + ib] ? j : ib;
        }
        same += ia == ib;
    }
    free(copy);
    *agree = (double)same / (double)n;
    return worst / spread;
}

static bool same_outputs(nr_net *q, const float *x, size_t n, const float *want)
{
    const float *y;
    return nr_net_forward(q, x, n, 0, &y) == NR_OK &&
           memcmp(y, want, n * nr_net_output_size(q) * sizeof(float)) == 0;
}

static void test_network(const char *input, const char *spec, double tolerance)
{
    nr_net *net = network(input, spec, 5);
    nr_dataset *calib = data(300, nr_net_input_size(net), 6), *test = data(200, nr_net_input_size(net), 7);
    nr_net *q = NULL;
    nr_status st = nr_net_quantize(net, calib, NULL, &q);
    CHECK(st == NR_OK, "%s quantizes: %s", spec, nr_error_message());
    if (st) {
        nr_net_free(net);
        nr_data_free(calib);
        nr_data_free(test);
        return;
    }
    size_t in = nr_net_input_size(net), n = 200, d = nr_net_output_size(q);
    float *x = malloc(n * in * sizeof *x), *ref = malloc(n * d * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < in; j++)
            x[i * in + j] = (float)((i * 7 + j * 3) % 23) / 11.0f - 0.5f;
    double agree, g = gap(net, q, x, n, &agree);
    CHECK(g <= tolerance && agree >= 0.9, "%s: int8 outputs off by %.3g of their range (at most %g), the same class "
          "for %.0f%%", spec, g, tolerance, 100 * agree);
    printf("test_quant: %-44s int8 within %.3f of the float outputs' range, same class for %.0f%%\n", spec, g,
           100 * agree);
    const float *y;
    CHECK_OK(nr_net_forward(q, x, n, 0, &y));
    memcpy(ref, y, n * d * sizeof *ref);
    for (int threads = 1; threads <= 2; threads++) {
        nr_set_threads(threads);
        for (size_t k = 0; k < 3; k++)
            if (nr_set_qgemm_backend(kernels[k]) == NR_OK)
                CHECK(same_outputs(q, x, n, ref), "%s: %s kernel at %d threads gives other bits", spec, kernels[k],
                      threads);
    }
    nr_set_qgemm_backend("auto");
    CHECK(same_outputs(q, x, 1, ref), "%s: a batch of one gives other bits", spec);
    CHECK_OK(nr_net_prepack(q, 1)); /* int8 keeps its own layout: nothing changes */
    CHECK(same_outputs(q, x, 1, ref), "%s: prepacked, a batch of one gives other bits", spec);
    char path[64];
    snprintf(path, sizeof path, "/tmp/neurite-test-quant-%d.nrm", (int)getpid());
    CHECK_OK(nr_model_save(q, path));
    nr_net *back = NULL;
    CHECK_OK(nr_model_load(path, &back));
    CHECK(back && nr_net_quantization(back, NULL) && same_outputs(back, x, n, ref),
          "%s: saved and loaded, the int8 model gives other bits", spec);
    CHECK_ERR(nr_net_forward(q, x, 2, 1, &y), NR_EINVAL);  /* training */
    nr_net *twice = NULL;
    CHECK_ERR(nr_net_quantize(q, calib, NULL, &twice), NR_EINVAL);
    remove(path);
    nr_net_free(back);
    nr_net_free(q);
    nr_net_free(net);
    nr_data_free(calib);
    nr_data_free(test);
    free(x);
    free(ref);
}

static void test_size(void)
{
    nr_net *net = network("784", "512-relu-256-relu-10", 1);
    nr_dataset *calib = data(100, 784, 2);
    nr_net *q = NULL;
    CHECK_OK(nr_net_quantize(net, calib, &(nr_quant_options){50, NR_CALIB_PERCENTILE, 99.9}, &q));
    CHECK_OK(nr_model_save(net, "/tmp/neurite-test-quant-f.nrm"));
    CHECK_OK(nr_model_save(q, "/tmp/neurite-test-quant-q.nrm"));
    struct stat a, b;
    stat("/tmp/neurite-test-quant-f.nrm", &a);
    stat("/tmp/neurite-test-quant-q.nrm", &b);
    double ratio = (double)b.st_size / (double)a.st_size;
    CHECK(ratio <= 0.27, "the int8 file is %.1f%% of the float one (at most 27%%)", 100 * ratio);
    nr_quant_options o;
    CHECK(nr_net_quantization(q, &o) && o.samples == 50 && o.method == NR_CALIB_PERCENTILE && o.percentile == 99.9,
          "the calibration is recorded");
    printf("test_quant: 784-512-256-10: the int8 file is %.1f%% of the float file\n", 100 * ratio);
    remove("/tmp/neurite-test-quant-f.nrm");
    remove("/tmp/neurite-test-quant-q.nrm");
    nr_net_free(q);
    nr_net_free(net);
    nr_data_free(calib);
}

static void test_refusals(void)
{
    nr_dataset *calib = data(10, 12, 1), *narrow = data(10, 5, 1);
    static const char *const refused[] = {"bn-8-4", "8-softmax-4", "8-relu-bn-4"};
    for (size_t i = 0; i < 3; i++) {
        nr_net *net = network("12", refused[i], 1), *q = NULL;
        CHECK_ERR(nr_net_quantize(net, calib, NULL, &q), NR_EINVAL);
        CHECK(q == NULL, "a refused quantization returns no network");
        nr_net_free(net);
    }
    nr_net *net = network("12", "8-4", 1), *q = NULL;
    CHECK_ERR(nr_net_quantize(net, narrow, NULL, &q), NR_ESHAPE);
    CHECK_ERR(nr_net_quantize(net, calib, &(nr_quant_options){10, NR_CALIB_PERCENTILE, 20}, &q), NR_EINVAL);
    nr_net_free(net);
    nr_data_free(calib);
    nr_data_free(narrow);
}

int main(void)
{
    test_kernels();
    test_arithmetic();
    test_epilogues();
    test_network("20", "16-relu-12-sigmoid-8-tanh-6-leaky0.1-5", 0.05);
    test_network("30", "24-bn-relu-drop0.3-10", 0.05);
    test_network("8x8x2", "conv6k3-bn-relu-pool2-conv8k3-leaky-avgpool2-flatten-fc7", 0.05);
    test_network("9x9x3", "conv4k3s2p1-tanh-conv5k1-relu-fc6-sigmoid", 0.05);
    test_size();
    test_refusals();
    nr_set_threads(1);
    return check_report("test_quant");
}
