/* check.h - the tests' tiny harness: CHECK counts one assertion, report() prints "name: N passed, M failed"
 * (the line tests/run.sh adds up) and gives the exit status. */
#ifndef NR_CHECK_H
#define NR_CHECK_H

#include <stdbool.h>
#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                                                      \
    do {                                                                                                      \
        if (cond) {                                                                                           \
            check_passed++;                                                                                   \
        } else {                                                                                              \
            check_failed++;                                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                              \
            fprintf(stderr, __VA_ARGS__);                                                                     \
            fputc('\n', stderr);                                                                              \
        }                                                                                                     \
    } while (0)

/* A call that must succeed; on failure the library's message is shown. */
#define CHECK_OK(call)                                                                                        \
    do {                                                                                                      \
        nr_status check_st_ = (call);                                                                         \
        CHECK(check_st_ == NR_OK, "%s -> %s: %s", #call, nr_status_string(check_st_), nr_error_message());   \
    } while (0)

/* A call that must fail with `code` and leave a message. */
#define CHECK_ERR(call, code)                                                                                 \
    do {                                                                                                      \
        nr_status check_st_ = (call);                                                                         \
        CHECK(check_st_ == (code) && nr_error_message()[0], "%s -> %s (want %s), message '%s'", #call,        \
              nr_status_string(check_st_), nr_status_string(code), nr_error_message());                      \
    } while (0)

static inline int check_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed != 0;
}

#endif
