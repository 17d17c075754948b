/* alloc.c - aligned, zeroed, overflow-checked allocation. */
#include "core/internal.h"

#include <stdlib.h>

void *nr__alloc(size_t count, size_t size)
{
    size_t bytes;
    if (!nr__mul(count, size, &bytes) || bytes > NR_MAX_FLOATS * sizeof(float))
        return nr__fail(NR_ENOMEM, "cannot allocate %zu x %zu bytes: too large", count, size), NULL;
    /* Round up: aligned_alloc wants a multiple of the alignment, and a zero-byte request stays valid. */
    bytes = (bytes + NR_ALIGN - 1) / NR_ALIGN * NR_ALIGN;
    if (bytes == 0)
        bytes = NR_ALIGN;
    void *p = aligned_alloc(NR_ALIGN, bytes);
    if (!p)
        return nr__fail(NR_ENOMEM, "out of memory allocating %zu bytes", bytes), NULL;
    memset(p, 0, bytes);
    return p;
}

float *nr__floats(size_t count)
{
    if (count > NR_MAX_FLOATS)
        return nr__fail(NR_ENOMEM, "cannot allocate %zu floats: more than the limit of %zu", count,
                        (size_t)NR_MAX_FLOATS), NULL;
    return nr__alloc(count, sizeof(float));
}

void nr__free(void *ptr) { free(ptr); }
