/* tensor.c - dense float32 arrays. */
#include "core/internal.h"

#include <stdlib.h>

nr_tensor *nr_tensor_new(int ndim, const size_t *shape)
{
    if (ndim < 1 || ndim > NR_MAX_DIMS || !shape)
        return nr__fail(NR_EINVAL, "a tensor has 1 to %d dimensions, not %d", NR_MAX_DIMS, ndim), NULL;
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            return nr__fail(NR_EINVAL, "tensor dimension %d is zero", i), NULL;
        if (!nr__mul(size, shape[i], &size) || size > NR_MAX_FLOATS)
            return nr__fail(NR_EINVAL, "tensor shape is too large"), NULL;
    }
    nr_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    t->data = nr__floats(size);
    if (!t->data) {
        free(t);
        return NULL;
    }
    t->ndim = ndim;
    t->size = size;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    return t;
}

void nr_tensor_free(nr_tensor *t)
{
    if (!t)
        return;
    nr__free(t->data);
    free(t);
}
