/* pool.c - one persistent pool of threads that owns all parallel work of the process.
 *
 * Why one pool: two pools on two cores (say ours and a BLAS's) make everything slower. Why spinning first:
 * a training step issues many parallel loops of tens of microseconds each, and waking a sleeping thread
 * costs about as much; workers spin briefly after each job, then sleep on a condition variable.
 *
 * The caller's thread takes part in every job as worker 0. A job is split into one contiguous chunk per
 * thread; fn must compute each item identically whatever chunk it lands in, which keeps results
 * independent of the thread count.
 *
 * Each chunk is claimed before it runs, by its worker or, once the caller has finished its own chunk, by the
 * caller. A worker that the operating system has not scheduled (other programs on the cores) then costs
 * the caller one chunk's work instead of a wait for the scheduler, which on a busy machine made two
 * threads several times slower than one. */
#include "core/internal.h"

#include <pthread.h>
#include <sched.h>
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
    atomic_int nthreads;          /* including the caller; 0 = not started yet (read by nr_threads anywhere) */
    pthread_t threads[MAX_THREADS];
    atomic_uint generation;       /* bumped for each job and to stop */
    atomic_int sleepers;
    atomic_int running;           /* workers between waking for a job and finishing or giving up a chunk */
    atomic_int main_sleeping;
    atomic_bool stop;             /* atomic: a worker late for a job may read it while the pool stops */
    /* the current job */
    nr__range_fn fn;
    void *ctx;
    size_t n, grain;
    int parts;
    unsigned start_generation;
    /* claim[t] is 2g while chunk t of job g (g = its generation) waits, 2g + 1 once someone has taken it;
     * the tag makes a late worker's claim on an older job fail. */
    atomic_uint claim[MAX_THREADS];
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

static _Thread_local int current_part = -1;

int nr__pool_part(void) { return current_part; }

static void run_part(int t)
{
    size_t b, e;
    part_range(pool.n, pool.grain, pool.parts, t, &b, &e);
    if (b < e) {
        int outer = current_part;
        current_part = t;
        pool.fn(pool.ctx, b, e);
        current_part = outer;
    }
}

/* Takes chunk t of job `generation` if nobody has; false if it is taken or belongs to another job. */
static bool claim_part(int t, unsigned generation)
{
    unsigned waiting = 2 * generation;
    return atomic_compare_exchange_strong(&pool.claim[t], &waiting, 2 * generation + 1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    /* The generation when the pool started, not now: the first job may already have been posted. */
    unsigned seen = pool.start_generation;
    for (;;) {
        /* Spin for up to ~200 us, then sleep. After the first thousand pauses (~30 us) it yields the core
         * between checks: a new job is still seen within a microsecond, and on a machine busy with other
         * programs the core goes to whoever has work, often the very thread about to post that job
         * (measured: `neurite seed` on two threads with other jobs running, 3.9-4.5 s before, 2.2-2.5 s after). */
        double t0 = 0;
        for (unsigned spins = 0; atomic_load(&pool.generation) == seen; spins++) {
            if (spins < 1024)
                cpu_relax();
            else
                sched_yield();
            if ((spins & 1023) == 1023 || spins >= 1024) {
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
        if (atomic_load(&pool.stop))
            return NULL;
        /* Announce first, claim second: the caller waits for `running` to drop to zero before the job's
         * fields may change, so they are read only under a claim that the caller cannot have missed. */
        atomic_fetch_add(&pool.running, 1);
        if (claim_part(id, seen))
            run_part(id);
        if (atomic_fetch_sub(&pool.running, 1) == 1 && atomic_load(&pool.main_sleeping)) {
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
    atomic_store(&pool.stop, true);
    atomic_fetch_add(&pool.generation, 1);
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 1; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL);
    atomic_store(&pool.stop, false);
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
    /* Only a holder of pool.submit changes the generation, so the next one is known before it is posted. */
    unsigned generation = atomic_load(&pool.generation) + 1;
    for (int t = 1; t < parts; t++)
        atomic_store(&pool.claim[t], 2 * generation);
    atomic_store(&pool.generation, generation);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_part(0);
    for (int t = 1; t < parts; t++)
        if (claim_part(t, generation))
            run_part(t);
    /* Wait for the workers: spin briefly (a worker on a core of its own finishes within microseconds of us),
     * then yield the core (a worker that the scheduler had set aside may be waiting for exactly this one),
     * then sleep. */
    for (unsigned spins = 0; atomic_load(&pool.running) > 0; spins++) {
        if (spins < 1024)
            cpu_relax();
        else if (spins < 1024 + 4096)
            sched_yield();
        else {
            pthread_mutex_lock(&pool.lock);
            atomic_store(&pool.main_sleeping, 1);
            while (atomic_load(&pool.running) > 0)
                pthread_cond_wait(&pool.done_cv, &pool.lock);
            atomic_store(&pool.main_sleeping, 0);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    pthread_mutex_unlock(&pool.submit);
}
