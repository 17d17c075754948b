/* io.h - file helpers shared by the readers and writers. */
#ifndef NR_IO_H
#define NR_IO_H

#include "core/internal.h"

#include <stdio.h>

bool nr__host_is_little_endian(void);
uint32_t nr__get_u32le(const unsigned char *p);
uint64_t nr__get_u64le(const unsigned char *p);
void nr__put_u32le(unsigned char *p, uint32_t v);
void nr__put_u64le(unsigned char *p, uint64_t v);
/* Copies `count` little-endian float32 values into host floats. */
void nr__floats_from_le(float *dst, const unsigned char *src, size_t count);

/* Reads a whole file into a malloc'd buffer (free with free()); refuses files over max_bytes. */
nr_status nr__read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len);

/* A file written to "<path>.tmp<pid>" and renamed over `path` only when complete. */
typedef struct nr__atomic {
    FILE *f;
    const char *path;
    bool failed;
    char tmp[4096];
} nr__atomic;

nr_status nr__atomic_open(nr__atomic *a, const char *path);
/* Writes bytes; after a failure further writes do nothing and commit fails. */
nr_status nr__atomic_write(nr__atomic *a, const void *data, size_t len);
/* Writes floats as little-endian float32 whatever the host order. */
nr_status nr__atomic_write_f32le(nr__atomic *a, const float *values, size_t count);
/* Flushes, syncs, closes and renames; on any failure removes the temporary file. */
nr_status nr__atomic_commit(nr__atomic *a);
/* Closes and removes the temporary file. */
void nr__atomic_abort(nr__atomic *a);

#endif
