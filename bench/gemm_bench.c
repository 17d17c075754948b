/* gemm_bench.c - GFLOP/s of every matrix-product backend on the shapes that decide neurite's speed, at 1 and
 * 2 threads, next to this machine's FMA peak.
 *
 *   make bench-gemm                      builds build/bench/gemm_bench and runs it
 *   gemm_bench [--quick] [--backends avx512,blas] [--threads 1,2] [--only lecture] [--repeats 7]
 *
 * Each figure is the median of several timed samples; a sample repeats the product until it has run for a
 * few milliseconds, so that short products are not lost in the clock's resolution. The "lecture loop" line
 * is the five products of one iteration of `neurite seed`, timed together as they occur. */
#include "neurite.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef NR_HAVE_CBLAS
/* OpenBLAS keeps its own threads; the bench pins them to the thread count under test. */
void openblas_set_num_threads(int threads);
#endif

typedef struct shape {
    const char *group, *name;
    nr_trans ta, tb;
    size_t m, n, k;
} shape;

static const shape shapes[] = {
    {"lecture", "NN 64x100 k1000 (x.w1)", NR_NO_TRANS, NR_NO_TRANS, 64, 100, 1000},
    {"lecture", "NN 64x10 k100 (h.w2)", NR_NO_TRANS, NR_NO_TRANS, 64, 10, 100},
    {"lecture", "TN 100x10 k64 (h^T.g)", NR_TRANS, NR_NO_TRANS, 100, 10, 64},
    {"lecture", "NT 64x100 k10 (g.w2^T)", NR_NO_TRANS, NR_TRANS, 64, 100, 10},
    {"lecture", "TN 1000x100 k64 (x^T.g_h)", NR_TRANS, NR_NO_TRANS, 1000, 100, 64},
    {"mlp", "NN 64x256 k784", NR_NO_TRANS, NR_NO_TRANS, 64, 256, 784},
    {"mlp", "TN 784x256 k64", NR_TRANS, NR_NO_TRANS, 784, 256, 64},
    {"mlp", "NT 64x784 k256", NR_NO_TRANS, NR_TRANS, 64, 784, 256},
    {"mlp", "NN 64x10 k256", NR_NO_TRANS, NR_NO_TRANS, 64, 10, 256},
    {"mlp", "NN 64x512 k784", NR_NO_TRANS, NR_NO_TRANS, 64, 512, 784},
    {"mlp", "TN 784x512 k64", NR_TRANS, NR_NO_TRANS, 784, 512, 64},
    {"mlp", "NN 64x256 k512", NR_NO_TRANS, NR_NO_TRANS, 64, 256, 512},
    {"mlp", "TN 512x256 k64", NR_TRANS, NR_NO_TRANS, 512, 256, 64},
    {"mlp", "NT 64x512 k256", NR_NO_TRANS, NR_TRANS, 64, 512, 256},
    {"cnn", "NN 50176x32 k9 (conv1)", NR_NO_TRANS, NR_NO_TRANS, 50176, 32, 9},
    {"cnn", "NN 12544x64 k288 (conv2)", NR_NO_TRANS, NR_NO_TRANS, 12544, 64, 288},
    {"cnn", "TN 288x64 k12544 (conv2 dW)", NR_TRANS, NR_NO_TRANS, 288, 64, 12544},
    {"cnn", "NT 12544x288 k64 (conv2 dX)", NR_NO_TRANS, NR_TRANS, 12544, 288, 64},
    {"cnn", "NN 1x256 k784 (batch 1)", NR_NO_TRANS, NR_NO_TRANS, 1, 256, 784},
    {"square", "NN 512^3", NR_NO_TRANS, NR_NO_TRANS, 512, 512, 512},
    {"square", "NN 2048^3", NR_NO_TRANS, NR_NO_TRANS, 2048, 2048, 2048},
};
enum { SHAPES = sizeof shapes / sizeof shapes[0], LECTURE = 5 };

/* --cpu-time: time samples by this process's CPU time instead of the wall clock, which is immune to other
 * programs taking turns on the cores (single-thread tuning on a shared machine; meaningless with threads
 * that spin while they wait). */
static clockid_t sample_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(sample_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the FMA peak of one core: independent FMA chains, enough to cover the latency ---- */

#if defined(__x86_64__)
/* Twelve named accumulators (not an array, which compilers may keep in memory) cover a 4-cycle latency at
 * up to three FMAs per cycle. */
#define PEAK_PROBE(NAME, TARGET, VEC, SET1, FMA, LANES, FIRST)                                              \
    __attribute__((target(TARGET))) static double NAME(long iters)                                          \
    {                                                                                                       \
        VEC x = SET1(1.0000001f), y = SET1(0.9999999f);                                                     \
        VEC a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);             \
        VEC a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);         \
        double t0 = now();                                                                                  \
        for (long it = 0; it < iters; it++) {                                                               \
            a0 = FMA(a0, x, y), a1 = FMA(a1, x, y), a2 = FMA(a2, x, y), a3 = FMA(a3, x, y);                 \
            a4 = FMA(a4, x, y), a5 = FMA(a5, x, y), a6 = FMA(a6, x, y), a7 = FMA(a7, x, y);                 \
            a8 = FMA(a8, x, y), a9 = FMA(a9, x, y), a10 = FMA(a10, x, y), a11 = FMA(a11, x, y);             \
            __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));              \
        }                                                                                                   \
        double t = now() - t0;                                                                              \
        float sink = FIRST(a0) + FIRST(a1) + FIRST(a2) + FIRST(a3) + FIRST(a4) + FIRST(a5) + FIRST(a6) +    \
                     FIRST(a7) + FIRST(a8) + FIRST(a9) + FIRST(a10) + FIRST(a11);                           \
        if (sink == 42.0f)                                                                                  \
            puts("");                                                                                       \
        return (double)iters * 12 * LANES * 2 / t * 1e-9;                                                   \
    }
PEAK_PROBE(peak_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16, _mm512_cvtss_f32)
PEAK_PROBE(peak_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8, _mm256_cvtss_f32)
#endif

#if defined(__x86_64__)
typedef struct probe {
    double (*fn)(long);
    double gflops;
} probe;

static void *probe_thread(void *arg)
{
    probe *p = arg;
    p->gflops = p->fn(20000000);
    return NULL;
}

/* The FMA peak with `threads` threads probing at once (all cores busy can mean lower clocks). */
static double peak_of(double (*fn)(long), int threads)
{
    double v[5];
    for (int r = 0; r < 5; r++) {
        probe p[64] = {{fn, 0}};
        pthread_t t[64];
        int started = 1;
        for (int i = 1; i < threads && i < 64; i++) {
            p[i] = (probe){fn, 0};
            if (pthread_create(&t[i], NULL, probe_thread, &p[i]) != 0)
                break;
            started = i + 1;
        }
        probe_thread(&p[0]);
        v[r] = p[0].gflops;
        for (int i = 1; i < started; i++) {
            pthread_join(t[i], NULL);
            v[r] += p[i].gflops;
        }
    }
    return median(v, 5);
}
#endif

static void print_peak(void)
{
#if defined(__x86_64__)
    double (*fn)(long) = NULL;
    const char *isa = "";
    if (__builtin_cpu_supports("avx512f")) {
        fn = peak_avx512;
        isa = "AVX-512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fn = peak_avx2;
        isa = "AVX2";
    }
    if (fn) {
        int cores = nr_cpu_count();
        printf("FMA peak (%s): %.1f GFLOP/s on one core, %.1f on all %d cores\n\n", isa, peak_of(fn, 1),
               peak_of(fn, cores), cores);
    } else {
        printf("FMA peak: no AVX2 or AVX-512 on this CPU\n\n");
    }
#else
    printf("FMA peak: not measured on this architecture\n\n");
#endif
}

/* ---- timing ---- */

typedef struct operands {
    float *a, *b, *c;
} operands;

static void fill(float *v, size_t n, nr_rng *r)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(nr_rng_uniform(r) - 0.5);
}

static int make_operands(const shape *s, operands *o, nr_rng *r)
{
    size_t an = s->m * s->k, bn = s->k * s->n, cn = s->m * s->n;
    o->a = malloc(an * sizeof(float));
    o->b = malloc(bn * sizeof(float));
    o->c = malloc(cn * sizeof(float));
    if (!o->a || !o->b || !o->c)
        return -1;
    fill(o->a, an, r);
    fill(o->b, bn, r);
    fill(o->c, cn, r);
    return 0;
}

static void free_operands(operands *o)
{
    free(o->a);
    free(o->b);
    free(o->c);
}

static void run(const shape *s, const operands *o, float beta)
{
    size_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    nr_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, o->a, lda, o->b, ldb, beta, o->c, s->n);
}

/* Seconds per call of `count` shapes run back to back: the median of `repeats` samples. */
static double time_calls(const shape *list, const operands *ops, int count, int repeats, double sample_seconds)
{
    int best = 0;
    for (int i = 0; i < count; i++)
        run(&list[i], &ops[i], 0.0f);  /* warm caches, the pool and the scratch buffers */
    double t0 = now();
    long calls = 0;
    do {
        for (int i = 0; i < count; i++)
            run(&list[i], &ops[i], 1.0f);
        calls++;
    } while (now() - t0 < sample_seconds / 4);
    double per = (now() - t0) / (double)calls;
    long reps = (long)(sample_seconds / per);
    if (reps < 1)
        reps = 1;
    double v[31];
    if (repeats < 0) {  /* --best: the fastest sample, for tuning on a machine others are using */
        repeats = -repeats;
        best = 1;
    }
    if (repeats > 31)
        repeats = 31;
    if (per > 0.2 && repeats > 3)
        repeats = 3;  /* the slow kernels on the big squares: a few samples are plenty */
    for (int r = 0; r < repeats; r++) {
        double t = now();
        for (long c = 0; c < reps; c++)
            for (int i = 0; i < count; i++)
                run(&list[i], &ops[i], 1.0f);
        v[r] = (now() - t) / (double)reps;
    }
    if (best) {
        qsort(v, (size_t)repeats, sizeof *v, by_value);
        return v[0];
    }
    return median(v, repeats);
}

/* CPU seconds used by the whole machine (from /proc/stat) minus those used by this process: how much other
 * programs competed with the measurement. Negative if /proc/stat cannot be read. */
static double machine_busy_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int got = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                         &v[5], &v[6], &v[7])
                : 0;
    if (f)
        fclose(f);
    if (got != 8)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
}

static double own_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static double flops_of(const shape *s) { return 2.0 * (double)s->m * (double)s->n * (double)s->k; }

/* ---- options ---- */

static int in_list(const char *list, const char *word)
{
    if (!list)
        return 1;
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *backend_list = NULL, *only = NULL;
    int threads[8] = {1, 2}, nthreads = 2, repeats = 7, best = 0;
    double sample = 0.02;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            repeats = 3;
            sample = 0.005;
        } else if (strcmp(argv[i], "--cpu-time") == 0) {
            sample_clock = CLOCK_PROCESS_CPUTIME_ID;
        } else if (strcmp(argv[i], "--best") == 0) {
            best = 1;
        } else if (strcmp(argv[i], "--backends") == 0 && i + 1 < argc) {
            backend_list = argv[++i];
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]);
            if (repeats < 1)
                repeats = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            nthreads = 0;
            for (char *p = argv[++i]; *p && nthreads < 8; p++) {
                threads[nthreads++] = (int)strtol(p, &p, 10);
                if (!*p)
                    break;
            }
        } else {
            fprintf(stderr, "usage: gemm_bench [--quick] [--backends a,b] [--threads 1,2] [--only group,...] "
                            "[--repeats N] [--best] [--cpu-time]\n");
            return 2;
        }
    }
    const char *all[] = {"avx512", "avx2", "blas", "portable"};
    const char *names[4];
    int nb = 0;
    for (int i = 0; i < 4; i++)
        if (in_list(backend_list, all[i]) && nr_set_gemm_backend(all[i]) == NR_OK)
            names[nb++] = all[i];
    nr_set_gemm_backend("auto");
    printf("neurite %s, GEMM GFLOP/s (row-major C = op(A) op(B), %s of %d samples); default kernel: %s\n",
           NR_VERSION_STRING, best ? "best" : "medians", repeats, nr_gemm_backend());
    double busy0 = machine_busy_seconds(), own0 = own_cpu_seconds(), wall0 = now();
    print_peak();

    printf("%-30s", "shape");
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < nthreads; t++) {
            char head[32];
            snprintf(head, sizeof head, "%s/%d", names[b], threads[t]);
            printf(" %11s", head);
        }
    printf("\n");

    nr_rng rng;
    nr_rng_seed(&rng, 1);
    operands ops[SHAPES];
    for (int s = 0; s < SHAPES; s++)
        if (make_operands(&shapes[s], &ops[s], &rng)) {
            fprintf(stderr, "gemm_bench: out of memory\n");
            return 1;
        }
    /* The lecture loop first: its five products timed together, then every shape alone. */
    for (int s = -1; s < SHAPES; s++) {
        const char *group = s < 0 ? "lecture" : shapes[s].group;
        if (only && !in_list(only, group))
            continue;
        double flops = 0;
        if (s < 0)
            for (int i = 0; i < LECTURE; i++)
                flops += flops_of(&shapes[i]);
        else
            flops = flops_of(&shapes[s]);
        printf("%-30s", s < 0 ? "lecture loop (5 products)" : shapes[s].name);
        fflush(stdout);
        for (int b = 0; b < nb; b++) {
            nr_set_gemm_backend(names[b]);
            for (int t = 0; t < nthreads; t++) {
                nr_set_threads(threads[t]);
#ifdef NR_HAVE_CBLAS
                openblas_set_num_threads(threads[t]);
#endif
                int reps = best ? -repeats : repeats;
                double sec = s < 0 ? time_calls(shapes, ops, LECTURE, reps, sample)
                                   : time_calls(&shapes[s], &ops[s], 1, reps, sample);
                printf(" %11.1f", flops / sec * 1e-9);
                fflush(stdout);
            }
        }
        printf("\n");
    }
    double busy = machine_busy_seconds() - busy0, own = own_cpu_seconds() - own0, wall = now() - wall0;
    if (busy0 >= 0 && wall > 0)
        printf("\nOther processes used %.0f%% of the machine's %d cores during the run%s\n",
               100 * (busy - own) / (wall * nr_cpu_count()), nr_cpu_count(),
               busy - own > 0.05 * wall * nr_cpu_count() ? ": the figures are disturbed, run again when idle" : ".");
    for (int s = 0; s < SHAPES; s++)
        free_operands(&ops[s]);
    return 0;
}
