/* bw_probe.c - the machine's read bandwidth, measured, as fma_probe measures its compute: a buffer that fits
 * the L2 (half of it), one that fits the L3 but not the L2, and one far larger than every cache, each read
 * over and over with the widest loads the CPU has (AVX-512, else AVX2, else 8 bytes), on one core and then on
 * one thread per core at once (each thread its own buffer).
 *
 *   build/bench/bw_probe [seconds per measurement (0.2)] [BYTES ...]
 *
 * Each BYTES adds a measurement at that size: one core reading BYTES, and every core at once reading its
 * share (BYTES / cores) - the working set of batch-1 inference on a network of BYTES of weights, whose
 * threads each read their share once per image.
 *
 * Prints a line per level and, last, one machine-readable line:
 *   RESULT {"cores": 2, "l2": {"bytes": ..., "core": 120.5, "all": 240.1}, "l3": {...}, "dram": {...},
 *           "loads": "avx512", "round_trip_ns": 90, "sized": [{"bytes": ..., "core": ..., "share": ...}, ...]}
 * in GB/s (10^9 bytes a second). bench/bench.py turns the sized figures into the bound on batch-1 inference
 * (every weight read once per image, each thread its share). The cache sizes come from sysconf
 * where the C library knows them, else 1 MiB of L2 and 32 MiB of L3 are assumed; the L3 buffer is at most
 * 16 MiB (a virtual machine may report the whole host's L3, of which one core reaches one slice), and the
 * memory buffer is 1 GiB. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PROBE_X86 1
#else
#define PROBE_X86 0
#endif

typedef uint64_t (*reader_fn)(const void *buf, size_t bytes, long passes);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every reader folds what it reads into a value that is printed, so no load can be dropped. */
static uint64_t read_scalar(const void *buf, size_t bytes, long passes)
{
    const uint64_t *p = buf;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (long r = 0; r < passes; r++)
        for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
            a ^= p[i];
            b ^= p[i + 1];
            c ^= p[i + 2];
            d ^= p[i + 3];
        }
    return a ^ b ^ c ^ d;
}

#if PROBE_X86
__attribute__((target("avx2"))) static uint64_t read_avx2(const void *buf, size_t bytes, long passes)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (long r = 0; r < passes; r++)
        for (const char *p = buf, *end = p + bytes; p + 128 <= end; p += 128) {
            a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)p));
            b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + 32)));
            c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + 64)));
            d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + 96)));
        }
    __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(x, 0) ^ (uint64_t)_mm256_extract_epi64(x, 3);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const void *buf, size_t bytes, long passes)
{
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (long r = 0; r < passes; r++)
        for (const char *p = buf, *end = p + bytes; p + 256 <= end; p += 256) {
            a = _mm512_xor_si512(a, _mm512_load_si512((const void *)p));
            b = _mm512_xor_si512(b, _mm512_load_si512((const void *)(p + 64)));
            c = _mm512_xor_si512(c, _mm512_load_si512((const void *)(p + 128)));
            d = _mm512_xor_si512(d, _mm512_load_si512((const void *)(p + 192)));
        }
    __m512i x = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    return (uint64_t)_mm512_reduce_add_epi64(x);
}
#endif

typedef struct job {
    reader_fn fn;
    size_t bytes;
    double seconds;
    pthread_barrier_t *start;
    double gbps;
    uint64_t sink;
} job;

/* Reads its own buffer for about `seconds`, after one untimed pass that brings it into the cache. */
static void *measure(void *arg)
{
    job *j = arg;
    void *buf = aligned_alloc(4096, j->bytes);
    if (!buf) {
        j->gbps = 0;
        return NULL;
    }
    memset(buf, 1, j->bytes);
    j->sink = j->fn(buf, j->bytes, 1);
    if (j->start)
        pthread_barrier_wait(j->start);
    long passes = 1;
    double t0 = now(), t;
    for (;;) {
        j->sink ^= j->fn(buf, j->bytes, passes);
        t = now() - t0;
        if (t >= j->seconds)
            break;
        passes *= 2;
        t0 = now();
    }
    j->gbps = (double)j->bytes * (double)passes / t * 1e-9;
    free(buf);
    return NULL;
}

/* Core-to-core latency: two threads hand a flag back and forth (a cache line that moves between two cores
 * twice per round). It decides what a parallel loop costs when one core reads what the other just wrote:
 * on a virtual machine whose two vCPUs sit on different dies of the host, it is several times what it is
 * within one die. Nanoseconds per round trip; 0 with one core. */
static _Atomic int ping_flag;
enum { PING_ROUNDS = 100000 };

static void *pong(void *arg)
{
    (void)arg;
    for (int i = 0; i < PING_ROUNDS; i++) {
        while (atomic_load_explicit(&ping_flag, memory_order_acquire) != 1)
            ;
        atomic_store_explicit(&ping_flag, 0, memory_order_release);
    }
    return NULL;
}

static double round_trip_ns(long cores)
{
    pthread_t t;
    if (cores < 2 || pthread_create(&t, NULL, pong, NULL) != 0)
        return 0;
    double t0 = now();
    for (int i = 0; i < PING_ROUNDS; i++) {
        atomic_store_explicit(&ping_flag, 1, memory_order_release);
        while (atomic_load_explicit(&ping_flag, memory_order_acquire) != 0)
            ;
    }
    double dt = now() - t0;
    pthread_join(t, NULL);
    return dt / PING_ROUNDS * 1e9;
}

/* GB/s of one thread, and of `cores` threads together (the sum). */
static void level(reader_fn fn, size_t bytes, double seconds, int cores, double *one, double *all, uint64_t *sink)
{
    job j = {fn, bytes, seconds, NULL, 0, 0};
    measure(&j);
    *one = j.gbps;
    *sink ^= j.sink;
    pthread_t threads[64];
    job jobs[64];
    pthread_barrier_t start;
    cores = cores > 64 ? 64 : cores;
    pthread_barrier_init(&start, NULL, (unsigned)cores);
    for (int c = 0; c < cores; c++) {
        jobs[c] = (job){fn, bytes, seconds, &start, 0, 0};
        if (c)
            pthread_create(&threads[c], NULL, measure, &jobs[c]);
    }
    measure(&jobs[0]);
    *all = jobs[0].gbps;
    for (int c = 1; c < cores; c++) {
        pthread_join(threads[c], NULL);
        *all += jobs[c].gbps;
        *sink ^= jobs[c].sink;
    }
    pthread_barrier_destroy(&start);
}

static size_t cache_bytes(int name, size_t fallback)
{
#ifdef _SC_LEVEL2_CACHE_SIZE
    long v = sysconf(name);
    return v > 0 ? (size_t)v : fallback;
#else
    (void)name;
    return fallback;
#endif
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    if (!(seconds > 0 && seconds < 60)) {
        fprintf(stderr, "usage: bw_probe [seconds per measurement, 0 to 60] [BYTES ...]\n");
        return 2;
    }
    enum { MAX_SIZED = 8 };
    size_t sized[MAX_SIZED];
    int n_sized = 0;
    for (int i = 2; i < argc && n_sized < MAX_SIZED; i++) {
        char *end;
        unsigned long long v = strtoull(argv[i], &end, 10);
        if (*end || v < 4096 || v > (1ull << 32)) {
            fprintf(stderr, "bw_probe: %s is not a size in bytes from 4096 to 4 GiB\n", argv[i]);
            return 2;
        }
        sized[n_sized++] = (size_t)v;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores < 1 ? 1 : cores;
    reader_fn fn = read_scalar;
    const char *loads = "scalar";
#if PROBE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fn = read_avx512;
        loads = "avx512";
    } else if (__builtin_cpu_supports("avx2")) {
        fn = read_avx2;
        loads = "avx2";
    }
#endif
    size_t l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, 1 << 20), l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 32u << 20);
    const struct {
        const char *name;
        size_t bytes;
    } levels[3] = {{"l2", l2 / 2}, {"l3", l3 / 4 < (16u << 20) ? l3 / 4 : 16u << 20}, {"dram", 1u << 30}};
    double one[3], all[3];
    uint64_t sink = 0;
    for (int i = 0; i < 3; i++) {
        level(fn, levels[i].bytes, seconds, (int)cores, &one[i], &all[i], &sink);
        printf("%-4s %9zu KiB: %7.1f GB/s on one core, %7.1f GB/s on %ld cores (%s loads)\n", levels[i].name,
               levels[i].bytes >> 10, one[i], all[i], cores, loads);
    }
    double sized_one[MAX_SIZED], sized_share[MAX_SIZED];
    for (int i = 0; i < n_sized; i++) {
        double unused;
        level(fn, sized[i], seconds, 1, &sized_one[i], &unused, &sink);
        level(fn, sized[i] / (size_t)cores, seconds, (int)cores, &unused, &sized_share[i], &sink);
        printf("%9zu KiB: %7.1f GB/s on one core; %ld cores each reading %zu KiB: %7.1f GB/s\n", sized[i] >> 10,
               sized_one[i], cores, sized[i] / (size_t)cores >> 10, sized_share[i]);
    }
    double ping = round_trip_ns(cores);
    printf("core to core: %.0f ns a round trip (a cache line there and back)\n", ping);
    printf("RESULT {\"cores\": %ld, \"loads\": \"%s\", \"round_trip_ns\": %.0f, \"sink\": %llu", cores, loads, ping,
           (unsigned long long)(sink & 1));
    for (int i = 0; i < 3; i++)
        printf(", \"%s\": {\"bytes\": %zu, \"core\": %.1f, \"all\": %.1f}", levels[i].name, levels[i].bytes, one[i],
               all[i]);
    printf(", \"sized\": [");
    for (int i = 0; i < n_sized; i++)
        printf("%s{\"bytes\": %zu, \"core\": %.1f, \"share\": %.1f}", i ? ", " : "", sized[i], sized_one[i],
               sized_share[i]);
    printf("]}\n");
    return 0;
}
