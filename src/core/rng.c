/* rng.c - the seeded random generator: xoshiro256** (Blackman & Vigna), seeded through splitmix64.
 *
 * Everything here is integer arithmetic or IEEE double operations that are exactly rounded (+ - * / sqrt),
 * plus a logarithm of our own, so a seed yields the same numbers on every machine and compiler. Contraction
 * into fused multiply-adds would change the last bits on some machines, so it is off in this file. */
#include "core/internal.h"

#include <math.h>

/* GCC already contracts nothing in ISO C mode (-std=c11); clang needs telling. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nr_rng_seed(nr_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nr_rng_next(nr_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nr_rng_uniform(nr_rng *rng) { return (double)(nr_rng_next(rng) >> 11) * 0x1.0p-53; }

uint64_t nr_rng_below(nr_rng *rng, uint64_t bound)
{
    if (bound == 0)
        return 0;
    /* Reject the few values that would make some residues more likely than others. */
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = nr_rng_next(rng);
        if (r >= threshold)
            return r % bound;
    }
}

void nr_rng_shuffle(nr_rng *rng, uint32_t *items, size_t count)
{
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t)nr_rng_below(rng, i);
        uint32_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

double nr__log(double x)
{
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172,
     * whose odd series converges to double precision in 11 terms. frexp and ldexp are exact. */
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double sum = 1.0 / 23.0;
    for (int k = 10; k >= 0; k--) {
        double t = sum * s2;
        sum = t + 1.0 / (double)(2 * k + 1);
    }
    double log_m = 2.0 * s * sum;
    /* ln 2 split in a part exact in few bits and the rest, so e * ln2_hi is exact. */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double de = (double)e;
    double hi = de * ln2_hi;
    double lo = de * ln2_lo;
    return hi + (lo + log_m);
}

float nr_rng_normal(nr_rng *rng)
{
    /* Marsaglia's polar method; the second value of each pair is dropped so that the generator's whole
     * state stays four words (easy to save and resume). */
    for (;;) {
        double u = 2.0 * nr_rng_uniform(rng) - 1.0;
        double v = 2.0 * nr_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0)
            continue;
        return (float)(u * sqrt(-2.0 * nr__log(s) / s));
    }
}
