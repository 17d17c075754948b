/* test_rng.c - the seeded generator: repeatable, in range, with the right distributions, and a logarithm
 * that agrees with the C library's to the last bits. */
#include "../src/core/internal.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>

int main(void)
{
    nr_rng a, b;
    nr_rng_seed(&a, 123);
    nr_rng_seed(&b, 123);
    bool same = true;
    for (int i = 0; i < 1000; i++)
        same &= nr_rng_next(&a) == nr_rng_next(&b);
    CHECK(same, "the same seed gives the same sequence");
    nr_rng_seed(&b, 124);
    CHECK(nr_rng_next(&a) != nr_rng_next(&b), "different seeds give different sequences");

    /* Uniform: range, mean 1/2, variance 1/12 over 200k draws (standard errors ~6e-4 and ~2e-4). */
    nr_rng_seed(&a, 1);
    double sum = 0, sq = 0, lo = 1, hi = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double u = nr_rng_uniform(&a);
        sum += u;
        sq += u * u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    double mean = sum / N, var = sq / N - mean * mean;
    CHECK(lo >= 0 && hi < 1, "uniform in [0, 1): saw [%g, %g]", lo, hi);
    CHECK(fabs(mean - 0.5) < 0.003, "uniform mean %g", mean);
    CHECK(fabs(var - 1.0 / 12) < 0.002, "uniform variance %g", var);

    /* Normal: mean 0, variance 1, and the tails (P(|z| > 2) = 0.0455). */
    sum = sq = 0;
    int tail = 0;
    for (int i = 0; i < N; i++) {
        double z = nr_rng_normal(&a);
        sum += z;
        sq += z * z;
        tail += fabs(z) > 2;
    }
    mean = sum / N;
    var = sq / N - mean * mean;
    CHECK(fabs(mean) < 0.01, "normal mean %g", mean);
    CHECK(fabs(var - 1) < 0.015, "normal variance %g", var);
    CHECK(fabs((double)tail / N - 0.0455) < 0.003, "normal tail mass %g", (double)tail / N);

    /* Bounded integers: every value of [0, 7) about equally often (chi-square, 6 dof, p < 1e-4 at 27.9). */
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = nr_rng_below(&a, 7);
        if (v < 7)
            counts[v]++;
    }
    double chi = 0;
    for (int i = 0; i < 7; i++)
        chi += (counts[i] - 10000.0) * (counts[i] - 10000.0) / 10000.0;
    CHECK(chi < 27.9, "nr_rng_below(7) chi-square %g", chi);
    CHECK(nr_rng_below(&a, 0) == 0 && nr_rng_below(&a, 1) == 0, "bounds 0 and 1 give 0");

    uint32_t items[100];
    for (uint32_t i = 0; i < 100; i++)
        items[i] = i;
    nr_rng_shuffle(&a, items, 100);
    int seen[100] = {0}, moved = 0;
    for (uint32_t i = 0; i < 100; i++) {
        seen[items[i]]++;
        moved += items[i] != i;
    }
    bool perm = true;
    for (int i = 0; i < 100; i++)
        perm &= seen[i] == 1;
    CHECK(perm && moved > 80, "shuffle gives a permutation that moves most items (%d moved)", moved);

    /* Our logarithm against the C library's, over many magnitudes. */
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        double x = exp(60.0 * nr_rng_uniform(&a) - 30.0);
        double ref = log(x), err = fabs(nr__log(x) - ref) / fmax(fabs(ref), 1e-300);
        worst = fmax(worst, err);
    }
    CHECK(worst < 1e-15, "nr__log relative error %g", worst);
    CHECK(nr__log(1.0) == 0.0, "log(1) = %g", nr__log(1.0));
    return check_report("test_rng");
}
