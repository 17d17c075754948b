/* error.c - status codes and the per-thread message behind nr_error_message. */
#include "core/internal.h"

#include <stdio.h>

/* Per thread, so that two threads using two networks cannot overwrite each other's message. */
static _Thread_local char message[512];

const char *nr_error_message(void) { return message; }

nr_status nr__fail(nr_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return code;
}

nr_status nr_error_set(nr_status status, const char *message_text)
{
    snprintf(message, sizeof message, "%s", message_text ? message_text : "");
    return status;
}

nr_status nr__prefix(nr_status code, const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return code;
    size_t plen = strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    /* Shift the old message right to make room; the tail is cut if the whole does not fit. */
    size_t old = strlen(message);
    if (plen + old >= sizeof message)
        old = sizeof message - 1 - plen;
    memmove(message + plen, message, old);
    message[plen + old] = 0;
    memcpy(message, prefix, plen);
    return code;
}

const char *nr_status_string(nr_status status)
{
    switch (status) {
    case NR_OK: return "ok";
    case NR_EINVAL: return "invalid argument";
    case NR_ESHAPE: return "shape mismatch";
    case NR_ENOMEM: return "out of memory";
    case NR_EIO: return "input/output error";
    case NR_EFORMAT: return "bad format";
    case NR_ENUMERIC: return "non-finite number";
    case NR_ESTOPPED: return "stopped";
    }
    return "unknown status";
}
