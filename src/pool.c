/* pool.c - one persistent pool of threads that owns all parallel work of the process.
 *
 * Why one pool: two pools on two cores (say ours and a BLAS's) make everything slower. Why spinning first:
 * a training step issues many parallel loops of tens of microseconds each, and waking a sleeping thread
 * costs about as much; workers spin briefly after each job, then sleep on a condition variable.
 *
 * The caller's thread takes part in every job as worker 0. A job is split into one contiguous chunk per
 * thread; fn must compute each item identically whatever chunk it lands in, which keeps results
 * independent of the thread count. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static struct {
    pthread_mutex_t submit;       /* held while a job runs; a second user thread runs inline instead */
    pthread_mutex_t lock;         /* guards sleeping and waking */
    pthread_cond_t wake, done_cv;
    int nthreads;                 /* including the caller; 0 = not started yet */
    pthread_t threads[MAX_THREADS];
    atomic_uint generation;       /* bumped for each job and to stop */
    atomic_int sleepers;
    atomic_int pending;           /* workers still running the current job */
    atomic_int main_sleeping;
    bool stop;
    /* the current job */
    nr__range_fn fn;
    void *ctx;
    size_t n, grain;
    int parts;
    unsigned start_generation;
} pool = {
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};

static atomic_int requested;  /* 0 = one per core */

int nr_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The [begin, end) of part `t` of `parts`, on multiples of grain. */
static void part_range(size_t n, size_t grain, int parts, int t, size_t *begin, size_t *end)
{
    size_t units = (n + grain - 1) / grain;
    size_t b = units * (size_t)t / (size_t)parts, e = units * (size_t)(t + 1) / (size_t)parts;
    *begin = b * grain < n ? b * grain : n;
    *end = e * grain < n ? e * grain : n;
}

static void run_part(int t)
{
    size_t b, e;
    part_range(pool.n, pool.grain, pool.parts, t, &b, &e);
    if (b < e)
        pool.fn(pool.ctx, b, e);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    /* The generation when the pool started, not now: the first job may already have been posted. */
    unsigned seen = pool.start_generation;
    for (;;) {
        /* Spin for up to ~200 us, then sleep. */
        double t0 = 0;
        for (unsigned spins = 0; atomic_load(&pool.generation) == seen; spins++) {
            cpu_relax();
            if ((spins & 1023) == 1023) {
                double t = seconds();
                if (t0 == 0)
                    t0 = t;
                else if (t - t0 > 200e-6)
                    break;
            }
        }
        if (atomic_load(&pool.generation) == seen) {
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&pool.generation);
        if (pool.stop)
            return NULL;
        if (id < pool.parts)
            run_part(id);
        if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.main_sleeping)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

static void stop_workers(void)
{
    if (pool.nthreads <= 1) {
        pool.nthreads = 0;
        return;
    }
    pool.stop = true;
    atomic_fetch_add(&pool.generation, 1);
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 1; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL);
    pool.stop = false;
    pool.nthreads = 0;
}

/* Starts the workers; called with pool.submit held. Falls back to fewer threads if creation fails. */
static void shutdown_pool(void);

static void start_workers(void)
{
    static bool registered;
    if (!registered) {
        atexit(shutdown_pool);  /* joined at exit, so leak checkers see no live threads */
        registered = true;
    }
    int want = requested > 0 ? requested : nr_cpu_count();
    pool.nthreads = 1;
    pool.start_generation = atomic_load(&pool.generation);
    for (int i = 1; i < want; i++) {
        if (pthread_create(&pool.threads[i], NULL, worker, (void *)(intptr_t)i) != 0)
            break;
        pool.nthreads = i + 1;
    }
}

static void shutdown_pool(void)
{
    pthread_mutex_lock(&pool.submit);
    stop_workers();
    pthread_mutex_unlock(&pool.submit);
}

nr_status nr_set_threads(int threads)
{
    if (threads < 0 || threads > MAX_THREADS)
        return nr__fail(NR_EINVAL, "thread count %d is out of range (0 to %d; 0 = one per core)", threads,
                        MAX_THREADS);
    pthread_mutex_lock(&pool.submit);
    stop_workers();
    requested = threads;
    pthread_mutex_unlock(&pool.submit);
    return NR_OK;
}

int nr_threads(void)
{
    if (pool.nthreads > 0)
        return pool.nthreads;
    return requested > 0 ? requested : nr_cpu_count();
}

void nr__parallel_for(size_t n, size_t grain, nr__range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (grain == 0)
        grain = 1;
    if (n <= grain || (requested == 1) || pthread_mutex_trylock(&pool.submit) != 0) {
        fn(ctx, 0, n);
        return;
    }
    if (pool.nthreads == 0)
        start_workers();
    int parts = pool.nthreads;
    size_t units = (n + grain - 1) / grain;
    if ((size_t)parts > units)
        parts = (int)units;
    if (parts <= 1) {
        pthread_mutex_unlock(&pool.submit);
        fn(ctx, 0, n);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.grain = grain;
    pool.parts = parts;
    atomic_store(&pool.pending, pool.nthreads - 1);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_part(0);
    for (unsigned spins = 0; atomic_load(&pool.pending) > 0; spins++) {
        cpu_relax();
        if (spins > 100000) {
            pthread_mutex_lock(&pool.lock);
            atomic_store(&pool.main_sleeping, 1);
            while (atomic_load(&pool.pending) > 0)
                pthread_cond_wait(&pool.done_cv, &pool.lock);
            atomic_store(&pool.main_sleeping, 0);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    pthread_mutex_unlock(&pool.submit);
}
