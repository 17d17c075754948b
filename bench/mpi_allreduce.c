/* mpi_allreduce.c - what one gradient sum costs on this machine: MPI_Allreduce (the default reduction) and
 * MPI_Allgather of every share (the ordered one) of float buffers the size of each example network's
 * parameters, median of many. `make bench-mpi` runs it at -np 2 and 4 (docs/distributed.md). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *names[] = {"lecture 1000-100-10", "MLP 784-256-10", "CNN (Fashion)", "MLP 784-512-256-10"};
    const int params[] = {101000, 203530, 421642, 535818};
    enum { REPEATS = 200 };
    float *buf = malloc(sizeof(float) * 535818 * 4);
    double t[REPEATS];
    for (size_t i = 0; i < 535818 * 4; i++)
        buf[i] = 1.0f;
    if (rank == 0)
        printf("processes %d: median of %d (warm)\n%-22s %10s %12s %12s %12s\n", size, REPEATS, "network", "MB",
               "allreduce us", "GB/s (bus)", "allgather us");
    for (int k = 0; k < 4; k++) {
        int n = params[k];
        for (int r = -20; r < REPEATS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (r >= 0)
                t[r] = MPI_Wtime() - t0;
        }
        double ar = median(t, REPEATS);
        for (int r = -20; r < REPEATS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, n / size, MPI_FLOAT, MPI_COMM_WORLD);
            if (r >= 0)
                t[r] = MPI_Wtime() - t0;
        }
        double ag = median(t, REPEATS);
        /* The bus bandwidth of an allreduce: 2 (p - 1) / p of the buffer crosses each link. */
        double bus = 2.0 * (size - 1) / size * n * 4 / ar / 1e9;
        if (rank == 0)
            printf("%-22s %10.2f %12.1f %12.2f %12.1f\n", names[k], n * 4 / 1e6, ar * 1e6, bus, ag * 1e6);
    }
    free(buf);
    MPI_Finalize();
    return 0;
}
