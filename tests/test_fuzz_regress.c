/* test_fuzz_regress.c - every input that ever crashed or hung a fuzz target (tests/data/fuzz/<target>/), and the
 * committed seed corpus (fuzz/corpus/<target>/), run through the very code the fuzzer runs (fuzz/fuzz_*.c):
 * each must finish, whether the reader accepts the file or refuses it, without a crash, a leak, a sanitizer
 * report or a hang. Each input runs in a child process, so one crash is counted and named and the rest still
 * run. Under the sanitizer build of `make test` this is the fuzzer's own check, minus the fuzzing.
 *
 * Like the fuzzer, the children cannot take much memory: a layer list may describe a network of billions of
 * parameters, and must then fail cleanly, not fill the machine. */
#define FUZZ_NO_MAIN
#include "../fuzz/fuzz_csv.c"
#include "../fuzz/fuzz_idx.c"
#include "../fuzz/fuzz_image.c"
#include "../fuzz/fuzz_model.c"
#include "../fuzz/fuzz_npy.c"
#include "../fuzz/fuzz_onnx.c"
#include "../fuzz/fuzz_safetensors.c"
#include "../fuzz/fuzz_spec.c"
#include "check.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#if defined(__SANITIZE_ADDRESS__)
#define NR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NR_ASAN 1
#endif
#endif

#ifdef NR_ASAN
/* As in fuzz_spec.c: allocations over 64 MB fail instead of being attempted. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=64"; }
#endif

typedef int (*target_fn)(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    target_fn run;
} targets[] = {{"model", fz_model}, {"idx", fz_idx}, {"csv", fz_csv}, {"npy", fz_npy}, {"spec", fz_spec},
               {"image", fz_image}, {"onnx", fz_onnx}, {"safetensors", fz_safetensors}};

/* Runs one input in a child; true if it finished cleanly. */
static bool run_one(target_fn run, const char *path)
{
    size_t len;
    unsigned char *data = fz_slurp(path, &len);
    if (!data) {
        fprintf(stderr, "%s: cannot read\n", path);
        return false;
    }
    /* What the child prints (the library prints nothing; ASan notes refused allocations) is shown only if it
     * fails. */
    FILE *log = tmpfile();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(data);
        if (log)
            fclose(log);
        return false;
    }
    if (pid == 0) {
        if (log)
            dup2(fileno(log), 2);
        fz_dir[0] = 0;  /* the child's own directory, removed when it exits */
#ifndef NR_ASAN
        /* Address space for a network of a few hundred MB at most (ASan needs its own, far larger). */
        struct rlimit lim = {(rlim_t)3 << 30, (rlim_t)3 << 30};
        setrlimit(RLIMIT_AS, &lim);
#endif
        alarm(120);
        run(data, len);
        free(data);
        exit(0);
    }
    free(data);
    int status;
    bool done = waitpid(pid, &status, 0) == pid;
    if (done && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (log)
            fclose(log);
        return true;
    }
    if (log) {
        rewind(log);
        char line[512];
        while (fgets(line, sizeof line, log))
            fputs(line, stderr);
        fclose(log);
    }
    if (!done)
        return false;
    if (WIFSIGNALED(status))
        fprintf(stderr, "%s: killed by signal %d%s\n", path, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (a hang)" : "");
    else
        fprintf(stderr, "%s: exited with status %d\n", path, WEXITSTATUS(status));
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every file of `dir` through the target; returns how many there were. */
static size_t run_dir(const char *dir, const char *target, target_fn run)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK(run_one(run, p), "fuzz_%s: %s did not finish cleanly", target, p);
        free(names[i]);
    }
    free(names);
    return n;
}

int main(void)
{
    size_t regressions = 0, seeds = 0;
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/data/fuzz/%s", targets[t].name);
        regressions += run_dir(dir, targets[t].name, targets[t].run);
        if (strcmp(targets[t].name, "npy") == 0)  /* the one past crash so far: it must still be found */
            CHECK(regressions > 0, "the past crashes in %s are missing (run from the project's root)", dir);
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", targets[t].name);
        size_t found = run_dir(dir, targets[t].name, targets[t].run);
        CHECK(found > 0, "the seed corpus %s is missing (run from the project's root)", dir);
        seeds += found;
    }
    printf("test_fuzz_regress: %zu past crashes and %zu corpus inputs through the fuzz targets\n", regressions, seeds);
    return check_report("test_fuzz_regress");
}
