/* io.c - whole-file reads, and writes that land whole or not at all (temporary file + rename). */
#include "io/io.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

bool nr__host_is_little_endian(void)
{
    const uint16_t probe = 1;
    unsigned char first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

uint32_t nr__get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t nr__get_u64le(const unsigned char *p)
{
    return (uint64_t)nr__get_u32le(p) | (uint64_t)nr__get_u32le(p + 4) << 32;
}

void nr__put_u32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void nr__put_u64le(unsigned char *p, uint64_t v)
{
    nr__put_u32le(p, (uint32_t)v);
    nr__put_u32le(p + 4, (uint32_t)(v >> 32));
}

void nr__floats_from_le(float *dst, const unsigned char *src, size_t count)
{
    if (nr__host_is_little_endian()) {
        memcpy(dst, src, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t u = nr__get_u32le(src + 4 * i);
        memcpy(dst + i, &u, 4);
    }
}

nr_status nr__read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nr__fail(NR_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return nr__fail(NR_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                free(buf);
                fclose(f);
                return nr__fail(NR_EFORMAT, "%s: larger than the limit of %zu bytes", path, max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return nr__fail(NR_ENOMEM, "%s: out of memory reading %zu bytes", path, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        free(buf);
        return nr__fail(NR_EIO, "%s: cannot read: %s", path, strerror(err));
    }
    *data = buf;
    *len = n;
    return NR_OK;
}

/* Removes "<path>.tmp<pid>" files left by a writer that was killed before it could clean up (kill -9, a power
 * cut): those whose process no longer exists. A live writer's file is left alone, so two processes may save
 * to one path at once. Best effort: any failure here just leaves the file. */
static void remove_stale_temporaries(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp", 4) != 0)
            continue;
        const char *digits = n + blen + 4;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (!isdigit((unsigned char)*digits) || *end || errno || pid <= 0 || pid == (long)getpid() ||
            (pid_t)pid != pid)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char stale[8192];
        if (snprintf(stale, sizeof stale, "%s/%s", dir, n) < (int)sizeof stale)
            remove(stale);
    }
    closedir(d);
}

nr_status nr__atomic_open(nr__atomic *a, const char *path)
{
    a->f = NULL;
    a->failed = false;
    a->path = path;
    int len = snprintf(a->tmp, sizeof a->tmp, "%s.tmp%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof a->tmp)
        return nr__fail(NR_EINVAL, "%s: path too long", path);
    remove_stale_temporaries(path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f)
        return nr__fail(NR_EIO, "%s: cannot write: %s", path, strerror(errno));
    return NR_OK;
}

nr_status nr__atomic_write(nr__atomic *a, const void *data, size_t len)
{
    if (a->failed)
        return NR_EIO;
    if (len && fwrite(data, 1, len, a->f) != len) {
        a->failed = true;
        return nr__fail(NR_EIO, "%s: write failed: %s", a->path, strerror(errno));
    }
    return NR_OK;
}

void nr__atomic_abort(nr__atomic *a)
{
    if (a->f) {
        fclose(a->f);
        remove(a->tmp);
        a->f = NULL;
    }
}

nr_status nr__atomic_commit(nr__atomic *a)
{
    if (a->failed) {
        nr__atomic_abort(a);
        return NR_EIO;
    }
    /* Flush and sync before the rename, so that a crash leaves the old file or the whole new one. */
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int saved = errno;
    bad |= fclose(a->f) != 0;
    a->f = NULL;
    if (bad) {
        remove(a->tmp);
        return nr__fail(NR_EIO, "%s: write failed: %s", a->path, strerror(saved ? saved : errno));
    }
    if (rename(a->tmp, a->path) != 0) {
        saved = errno;
        remove(a->tmp);
        return nr__fail(NR_EIO, "%s: cannot replace: %s", a->path, strerror(saved));
    }
    return NR_OK;
}

nr_status nr__atomic_write_f32le(nr__atomic *a, const float *values, size_t count)
{
    if (nr__host_is_little_endian())
        return nr__atomic_write(a, values, count * sizeof(float));
    unsigned char chunk[4096];
    for (size_t i = 0; i < count;) {
        size_t m = count - i < sizeof chunk / 4 ? count - i : sizeof chunk / 4;
        for (size_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, values + i + j, 4);
            nr__put_u32le(chunk + 4 * j, u);
        }
        nr_status st = nr__atomic_write(a, chunk, 4 * m);
        if (st)
            return st;
        i += m;
    }
    return NR_OK;
}
