/* comm_mpi.c - the neurite command's processes talk through MPI (OpenMPI's mpirun starts them). The library
 * knows nothing of MPI: it is handed an nr_comm whose sums and gathers are MPI collectives here. Built when
 * mpicc is found (make MPI=1); without it every run is one process. */
#include "cli.h"

#include <stdlib.h>

#ifdef NR_HAVE_MPI
#include <limits.h>
#include <mpi.h>

static nr_comm world;
static bool started;

/* One line from an MPI error code, as the library's own message. */
static nr_status mpi_failure(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING], line[MPI_MAX_ERROR_STRING + 64];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", code);
    snprintf(line, sizeof line, "MPI %s failed: %s", what, text);
    return nr_error_set(NR_EIO, line);
}

/* MPI counts are ints: large buffers go in pieces. */
enum { PIECE = INT_MAX / 8 };

static nr_status sum_floats(void *ctx, float *values, size_t count)
{
    (void)ctx;
    for (size_t i = 0; i < count; i += PIECE) {
        int n = (int)(count - i < PIECE ? count - i : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, values + i, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_failure(rc, "allreduce");
    }
    return NR_OK;
}

static nr_status sum_doubles(void *ctx, double *values, size_t count)
{
    (void)ctx;
    for (size_t i = 0; i < count; i += PIECE) {
        int n = (int)(count - i < PIECE ? count - i : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, values + i, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_failure(rc, "allreduce");
    }
    return NR_OK;
}

static nr_status gather_floats(void *ctx, float *all, size_t count)
{
    (void)ctx;
    if (count > PIECE)
        return nr_error_set(NR_EINVAL, "a gather of more than 268 million floats per process");
    int rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, (int)count, MPI_FLOAT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? NR_OK : mpi_failure(rc, "allgather");
}

/* Sums started and not yet waited for. */
static MPI_Request *pending;
static size_t n_pending, cap_pending;

static nr_status sum_start(void *ctx, float *values, size_t count)
{
    (void)ctx;
    for (size_t i = 0; i < count; i += PIECE) {
        if (n_pending == cap_pending) {
            size_t cap = cap_pending ? 2 * cap_pending : 64;
            MPI_Request *grown = realloc(pending, cap * sizeof *grown);
            if (!grown)
                return nr_error_set(NR_ENOMEM, "out of memory for MPI requests");
            pending = grown;
            cap_pending = cap;
        }
        int n = (int)(count - i < PIECE ? count - i : PIECE);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, values + i, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                &pending[n_pending]);
        if (rc != MPI_SUCCESS)
            return mpi_failure(rc, "iallreduce");
        n_pending++;
    }
    return NR_OK;
}

static nr_status sum_wait(void *ctx)
{
    (void)ctx;
    int rc = n_pending ? MPI_Waitall((int)n_pending, pending, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    n_pending = 0;
    return rc == MPI_SUCCESS ? NR_OK : mpi_failure(rc, "waitall");
}

/* Started by mpirun (OpenMPI, or a PMI launcher)? A plain run never initialises MPI. */
static bool under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int cli_comm_start(int *argc, char ***argv)
{
    if (!under_mpirun())
        return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "neurite: MPI_Init failed\n");
        return EXIT_WORK;
    }
    started = true;
    /* Failures come back as codes, so every process ends with its own line instead of MPI's abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    world.sum = sum_floats;
    world.sum_f64 = sum_doubles;
    world.gather = gather_floats;
    world.sum_start = sum_start;
    world.sum_wait = sum_wait;
    return 0;
}

void cli_comm_stop(void)
{
    if (started)
        MPI_Finalize();
    started = false;
    free(pending);
    pending = NULL;
    n_pending = cap_pending = 0;
}

const nr_comm *cli_comm(void) { return started && world.size > 1 ? &world : NULL; }

const char *cli_comm_kind(void) { return "MPI"; }

#else

int cli_comm_start(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (getenv("OMPI_COMM_WORLD_SIZE") && atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
        fprintf(stderr, "neurite: started by mpirun, but built without MPI (install libopenmpi-dev and rebuild)\n");
        return EXIT_USAGE;
    }
    return 0;
}

void cli_comm_stop(void) {}

const nr_comm *cli_comm(void) { return NULL; }

const char *cli_comm_kind(void) { return NULL; }

#endif

int cli_rank(void) { return cli_comm() ? cli_comm()->rank : 0; }

int cli_agree(int rc)
{
    const nr_comm *c = cli_comm();
    if (!c)
        return rc;
    double v[2] = {rc != 0, rc != 0 ? c->rank + 1 : 0};
    if (c->sum_f64(c->ctx, v, 2) != NR_OK)
        return rc ? rc : cli_fail("train", NR_EIO);
    if (rc || v[0] == 0)
        return rc;
    if (v[0] == 1)
        return cli_error("train", EXIT_WORK, "process %.0f failed (its own line says why); every process stops",
                         v[1] - 1);
    return cli_error("train", EXIT_WORK, "%.0f processes failed (their own lines say why); every process stops",
                     v[0]);
}
