/* fma_probe.c - the machine's float32 peak, measured: chains of fused multiply-adds with enough independent
 * accumulators to keep every FMA pipe busy, in AVX-512 and in AVX2, chosen at run time from what the CPU
 * supports. Each kernel runs on one core, then on one thread per core at once.
 *
 *   build/bench/fma_probe [seconds per measurement (0.25)]
 *
 * Prints a line per kernel and, last, one machine-readable line:
 *   RESULT {"cores": 2, "avx512": {"core": 117.1, "all": 233.9}, "avx2": {...}, "best_core": ..., "best_all": ...}
 * in GFLOP/s (an FMA counts as 2 floating-point operations). A kernel the CPU lacks is reported as null.
 *
 * The accumulators follow a = a * m + c with m < 1, so they settle at c / (1 - m): no overflow, no
 * subnormal numbers, and the compiler cannot drop the work because the sums are printed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PROBE_X86 1
#else
#define PROBE_X86 0
#endif

/* Independent chains per kernel. An FMA has a latency of 4 cycles on current x86 cores and up to 2 issue
 * per cycle, so at least 8 chains are needed; 12 leaves room, and 12 + 2 constants fit in 16 registers. */
enum { CHAINS = 12 };

typedef float (*kernel_fn)(long iters);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if PROBE_X86
__attribute__((target("avx512f,fma"))) static float kernel_avx512(long iters)
{
    const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
    __m512 a0 = _mm512_set1_ps(0.10f), a1 = _mm512_set1_ps(0.11f), a2 = _mm512_set1_ps(0.12f);
    __m512 a3 = _mm512_set1_ps(0.13f), a4 = _mm512_set1_ps(0.14f), a5 = _mm512_set1_ps(0.15f);
    __m512 a6 = _mm512_set1_ps(0.16f), a7 = _mm512_set1_ps(0.17f), a8 = _mm512_set1_ps(0.18f);
    __m512 a9 = _mm512_set1_ps(0.19f), a10 = _mm512_set1_ps(0.20f), a11 = _mm512_set1_ps(0.21f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c);
        a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c);
        a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c);
        a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c);
        a11 = _mm512_fmadd_ps(a11, m, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float kernel_avx2(long iters)
{
    const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f), a2 = _mm256_set1_ps(0.12f);
    __m256 a3 = _mm256_set1_ps(0.13f), a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f);
    __m256 a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f), a8 = _mm256_set1_ps(0.18f);
    __m256 a9 = _mm256_set1_ps(0.19f), a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float sum = 0;
    for (int i = 0; i < 8; i++)
        sum += lanes[i];
    return sum;
}

static int has_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"); }
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

typedef struct probe {
    const char *name;
    kernel_fn fn;
    int lanes;  /* float32 lanes per vector */
    int available;
} probe;

/* One thread of a multi-core run: waits at the barrier so all start together, then runs the kernel. */
typedef struct worker {
    kernel_fn fn;
    long iters;
    pthread_barrier_t *start;
    float result;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    w->result = w->fn(w->iters);
    return NULL;
}

static float sink;  /* every kernel's result lands here, so no kernel call is dead code */

/* GFLOP/s of `threads` threads each running `iters` iterations; the best of `tries` runs. */
static double measure(const probe *p, long iters, int threads, int tries)
{
    double flops = 2.0 * CHAINS * p->lanes * (double)iters * threads, best = 0;
    for (int t = 0; t < tries; t++) {
        double seconds;
        if (threads == 1) {
            double t0 = now();
            sink += p->fn(iters);
            seconds = now() - t0;
        } else {
            pthread_t *ids = malloc((size_t)threads * sizeof *ids);
            worker *ws = malloc((size_t)threads * sizeof *ws);
            pthread_barrier_t start;
            if (!ids || !ws || pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0) {
                fprintf(stderr, "fma_probe: out of memory\n");
                exit(1);
            }
            int started = 0;
            for (int i = 0; i < threads; i++) {
                ws[i] = (worker){p->fn, iters, &start, 0};
                if (pthread_create(&ids[i], NULL, worker_main, &ws[i]) != 0) {
                    fprintf(stderr, "fma_probe: cannot start thread %d\n", i);
                    exit(1);
                }
                started++;
            }
            double t0 = now();
            pthread_barrier_wait(&start);
            for (int i = 0; i < started; i++) {
                pthread_join(ids[i], NULL);
                sink += ws[i].result;
            }
            seconds = now() - t0;
            pthread_barrier_destroy(&start);
            free(ids);
            free(ws);
        }
        double rate = flops / seconds * 1e-9;
        best = rate > best ? rate : best;
    }
    return best;
}

/* Iterations that take about `seconds` on one core: grows a trial run until it takes 20 ms, then scales. */
static long calibrate(const probe *p, double seconds)
{
    long iters = 1 << 16;
    for (;;) {
        double t0 = now();
        sink += p->fn(iters);
        double dt = now() - t0;
        if (dt > 0.02 || iters > (1L << 40))
            return (long)((double)iters * seconds / dt) + 1;
        iters *= 4;
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.25;
    if (!(seconds > 0 && seconds < 60)) {
        fprintf(stderr, "usage: fma_probe [seconds per measurement, 0 < s < 60]\n");
        return 2;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cores = online > 0 && online < 4096 ? (int)online : 1;
#if PROBE_X86
    probe probes[] = {{"avx512", kernel_avx512, 16, has_avx512()}, {"avx2", kernel_avx2, 8, has_avx2()}};
#else
    probe probes[] = {{"avx512", NULL, 16, 0}, {"avx2", NULL, 8, 0}};
#endif
    enum { PROBES = sizeof probes / sizeof probes[0] };
    double core[PROBES] = {0}, all[PROBES] = {0}, best_core = 0, best_all = 0;
    printf("fma_probe: float32 FMA throughput, %d chains per thread, %d core%s (one thread per core)\n", CHAINS,
           cores, cores == 1 ? "" : "s");
    for (int i = 0; i < PROBES; i++) {
        if (!probes[i].available) {
            printf("  %-7s not supported by this CPU\n", probes[i].name);
            continue;
        }
        long iters = calibrate(&probes[i], seconds);
        measure(&probes[i], iters / 4, 1, 1);  /* warm-up: let the clock settle at the vector frequency */
        core[i] = measure(&probes[i], iters, 1, 3);
        all[i] = measure(&probes[i], iters, cores, 3);
        printf("  %-7s 1 core %7.1f GFLOP/s   %d cores %7.1f GFLOP/s\n", probes[i].name, core[i], cores, all[i]);
        best_core = core[i] > best_core ? core[i] : best_core;
        best_all = all[i] > best_all ? all[i] : best_all;
    }
    printf("RESULT {\"cores\": %d", cores);
    for (int i = 0; i < PROBES; i++) {
        if (probes[i].available)
            printf(", \"%s\": {\"core\": %.2f, \"all\": %.2f}", probes[i].name, core[i], all[i]);
        else
            printf(", \"%s\": null", probes[i].name);
    }
    printf(", \"best_core\": %.2f, \"best_all\": %.2f, \"checksum\": %.3g}\n", best_core, best_all, (double)sink);
    return best_all > 0 ? 0 : 1;
}
