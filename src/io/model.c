/* model.c - model files (format in docs/format.md).
 *
 *   header:   "NEURITE\0", u32 version, u32 flags, u64 file length
 *   sections: 4-byte tag, u64 payload length, payload        (ARCH, SCAL, TENS; checkpoints add more)
 *   trailer:  u32 CRC-32 of every byte before it
 *
 * All integers little-endian and fixed-width; floats IEEE float32 little-endian. The reader checks the
 * length and the checksum before it parses anything, then every count against the bytes that remain before
 * it allocates, then rebuilds the network through the same code that builds it from the API, so a file can
 * describe nothing the API would refuse. */
#include "io/model.h"

#include <math.h>
#include <stdlib.h>

static const unsigned char magic[8] = {'N', 'E', 'U', 'R', 'I', 'T', 'E', 0};

/* The largest file the reader takes: a model of NR_MAX_FLOATS parameters and its state. */
#define MAX_FILE ((size_t)1 << 40)
/* Per-sample limits for a loaded network, so a damaged file cannot make a forward pass exhaust memory. */
#define MAX_INPUT ((size_t)1 << 28)
#define MAX_ACTIVATIONS ((size_t)1 << 30)

/* ---- writing ---- */

void nr__put(nr__sink *s, const void *data, size_t len)
{
    s->length += len;
    if (s->file) {
        s->crc = nr__crc32(s->crc, data, len);
        nr__atomic_write(s->file, data, len);
    }
}

void nr__put_u8(nr__sink *s, uint8_t v) { nr__put(s, &v, 1); }

void nr__put_u32(nr__sink *s, uint32_t v)
{
    unsigned char b[4];
    nr__put_u32le(b, v);
    nr__put(s, b, 4);
}

void nr__put_u64(nr__sink *s, uint64_t v)
{
    unsigned char b[8];
    nr__put_u64le(b, v);
    nr__put(s, b, 8);
}

void nr__put_f32(nr__sink *s, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    nr__put_u32(s, u);
}

void nr__put_f64(nr__sink *s, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    nr__put_u64(s, u);
}

void nr__put_floats(nr__sink *s, const float *v, size_t count)
{
    if (!s->file) {
        s->length += count * 4;
        return;
    }
    if (nr__host_is_little_endian()) {
        nr__put(s, v, count * 4);
        return;
    }
    for (size_t i = 0; i < count; i++)
        nr__put_f32(s, v[i]);
}

void nr__put_section(nr__sink *s, const char tag[4], void (*fn)(nr__sink *s, const void *ctx), const void *ctx)
{
    nr__sink measure = {0};
    fn(&measure, ctx);
    nr__put(s, tag, 4);
    nr__put_u64(s, measure.length);
    fn(s, ctx);
}

static void put_arch(nr__sink *s, const void *ctx)
{
    const nr_net *net = ctx;
    for (int i = 0; i < 3; i++)
        nr__put_u32(s, (uint32_t)net->in_shape[i]);
    nr__put_u32(s, (uint32_t)net->head);
    nr__put_u32(s, (uint32_t)net->n_layers);
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        size_t len = strlen(l->ops->tag);
        nr__put_u8(s, (uint8_t)len);
        nr__put(s, l->ops->tag, len);
        nr__put_u8(s, NR_LAYER_INTS);
        for (int k = 0; k < NR_LAYER_INTS; k++)
            nr__put_u64(s, (uint64_t)l->ints[k]);
        nr__put_u8(s, NR_LAYER_FLOATS);
        for (int k = 0; k < NR_LAYER_FLOATS; k++)
            nr__put_f32(s, l->floats[k]);
    }
}

static void put_scaling(nr__sink *s, const void *ctx)
{
    const nr__scaling *sc = &((const nr_net *)ctx)->scaling;
    nr__put_u32(s, (uint32_t)sc->kind);
    nr__put_u64(s, sc->kind ? sc->count : 0);
    if (sc->kind) {
        nr__put_floats(s, sc->shift, sc->count);
        nr__put_floats(s, sc->scale, sc->count);
    }
}

static void put_tensors(nr__sink *s, const void *ctx)
{
    const nr_net *net = ctx;
    nr__put_u64(s, net->n_tensors);
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *t = &net->tensors[i];
        size_t len = strlen(t->name);
        nr__put_u8(s, (uint8_t)len);
        nr__put(s, t->name, len);
        nr__put_u8(s, (uint8_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            nr__put_u64(s, t->shape[d]);
        nr__put_floats(s, net->params + t->offset, t->size);
    }
}

static void put_all(nr__sink *s, const nr_net *net, const nr__extra *extra, uint64_t total)
{
    nr__put(s, magic, 8);
    nr__put_u32(s, NR__FORMAT_VERSION);
    nr__put_u32(s, extra && extra->write ? NR__FLAG_CHECKPOINT : 0);
    nr__put_u64(s, total);
    nr__put_section(s, "ARCH", put_arch, net);
    nr__put_section(s, "SCAL", put_scaling, net);
    nr__put_section(s, "TENS", put_tensors, net);
    if (extra && extra->write)
        extra->write(s, extra->ctx);
}

nr_status nr__model_write(const nr_net *net, const char *path, const nr__extra *extra)
{
    if (!net || !path)
        return nr__fail(NR_EINVAL, "nr_model_save: NULL argument");
    if (net->n_layers == 0)
        return nr__fail(NR_EINVAL, "%s: the network has no layers to save", path);
    /* A NaN or an infinity makes every prediction meaningless, and the reader refuses it: say so now. */
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *t = &net->tensors[i];
        for (size_t k = 0; k < t->size; k++)
            if (!isfinite(net->params[t->offset + k]))
                return nr__fail(NR_ENUMERIC, "%s: not saved: tensor %s holds %g (value %zu)", path, t->name,
                                (double)net->params[t->offset + k], k);
    }
    nr__sink measure = {0};
    put_all(&measure, net, extra, 0);
    uint64_t total = measure.length + 4;
    nr__atomic a;
    nr_status st = nr__atomic_open(&a, path);
    if (st)
        return st;
    nr__sink s = {&a, 0, 0};
    put_all(&s, net, extra, total);
    unsigned char crc[4];
    nr__put_u32le(crc, s.crc);
    nr__atomic_write(&a, crc, 4);
    return nr__atomic_commit(&a);
}

nr_status nr_model_save(const nr_net *net, const char *path) { return nr__model_write(net, path, NULL); }

uint32_t nr_net_checksum(const nr_net *net)
{
    if (!net || !net->n_params)
        return 0;
    /* Over the little-endian bytes, as in a model file, so the number is the same on every machine. */
    if (nr__host_is_little_endian())
        return nr__crc32(0, net->params, net->n_params * sizeof(float));
    uint32_t crc = 0;
    unsigned char chunk[4096];
    for (size_t i = 0; i < net->n_params;) {
        size_t m = net->n_params - i < sizeof chunk / 4 ? net->n_params - i : sizeof chunk / 4;
        for (size_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &net->params[i + j], 4);
            nr__put_u32le(chunk + 4 * j, u);
        }
        crc = nr__crc32(crc, chunk, 4 * m);
        i += m;
    }
    return crc;
}

/* ---- reading ---- */

bool nr__reader_fail(nr__reader *r, const char *fmt, ...)
{
    if (r->st)
        return false;
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->st = nr__fail(NR_EFORMAT, "%s: %s%s%s", r->path, r->where ? r->where : "", r->where ? ": " : "", what);
    return false;
}

bool nr__get(nr__reader *r, void *out, size_t len)
{
    if (r->st)
        return false;
    if ((size_t)(r->end - r->p) < len)
        return nr__reader_fail(r, "truncated (needs %zu more bytes, %td remain)", len, r->end - r->p);
    memcpy(out, r->p, len);
    r->p += len;
    return true;
}

bool nr__get_u8(nr__reader *r, uint8_t *v) { return nr__get(r, v, 1); }

bool nr__get_u32(nr__reader *r, uint32_t *v)
{
    unsigned char b[4];
    if (!nr__get(r, b, 4))
        return false;
    *v = nr__get_u32le(b);
    return true;
}

bool nr__get_u64(nr__reader *r, uint64_t *v)
{
    unsigned char b[8];
    if (!nr__get(r, b, 8))
        return false;
    *v = nr__get_u64le(b);
    return true;
}

bool nr__get_f32(nr__reader *r, float *v)
{
    uint32_t u;
    if (!nr__get_u32(r, &u))
        return false;
    memcpy(v, &u, 4);
    return true;
}

bool nr__get_f64(nr__reader *r, double *v)
{
    uint64_t u;
    if (!nr__get_u64(r, &u))
        return false;
    memcpy(v, &u, 8);
    return true;
}

bool nr__get_floats(nr__reader *r, float *v, size_t count)
{
    if (r->st)
        return false;
    if ((size_t)(r->end - r->p) / 4 < count)
        return nr__reader_fail(r, "truncated (%zu floats expected, room for %td)", count, (r->end - r->p) / 4);
    nr__floats_from_le(v, r->p, count);
    r->p += count * 4;
    return true;
}

/* Reads ARCH and builds the network, checking the parameters it implies against the bytes that remain. */
static nr_net *read_arch(nr__reader *r, size_t bytes_left)
{
    uint32_t h, w, c, head, n_layers;
    if (!nr__get_u32(r, &h) || !nr__get_u32(r, &w) || !nr__get_u32(r, &c) || !nr__get_u32(r, &head) ||
        !nr__get_u32(r, &n_layers))
        return NULL;
    if (h == 0 || w == 0 || c == 0 || (uint64_t)h * w * c > MAX_INPUT)
        return nr__reader_fail(r, "input shape %ux%ux%u is not valid", h, w, c), NULL;
    if (head > NR_LOSS_XENT)
        return nr__reader_fail(r, "unknown loss %u", head), NULL;
    if (n_layers == 0 || n_layers > NR__MAX_LAYERS)
        return nr__reader_fail(r, "%u layers is not a valid count (1 to %d)", n_layers, NR__MAX_LAYERS), NULL;
    /* Each layer takes at least 3 bytes: refuse a count the section cannot hold before allocating for it. */
    if ((size_t)(r->end - r->p) / 3 < n_layers)
        return nr__reader_fail(r, "%u layers cannot fit in the section", n_layers), NULL;
    nr_layer *layers = calloc(n_layers, sizeof *layers);
    if (!layers)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    size_t shape[3] = {h, w, c}, params = 0, activations = 0;
    nr_net *net = NULL;
    for (uint32_t i = 0; i < n_layers; i++) {
        nr_layer *l = &layers[i];
        uint8_t len, n_ints, n_floats;
        char tag[256];
        if (!nr__get_u8(r, &len) || !nr__get(r, tag, len))
            goto fail;
        tag[len] = 0;
        l->ops = nr__layer_ops_by_tag(tag);
        if (!l->ops) {
            nr__reader_fail(r, "layer %u: unknown kind '%.40s' (made by a newer neurite?)", i, tag);
            goto fail;
        }
        if (!nr__get_u8(r, &n_ints))
            goto fail;
        if (n_ints > NR_LAYER_INTS) {
            nr__reader_fail(r, "layer %u: %u settings, at most %d", i, n_ints, NR_LAYER_INTS);
            goto fail;
        }
        for (int k = 0; k < n_ints; k++)
            if (!nr__get_u64(r, (uint64_t *)&l->ints[k]))
                goto fail;
        if (!nr__get_u8(r, &n_floats))
            goto fail;
        if (n_floats > NR_LAYER_FLOATS) {
            nr__reader_fail(r, "layer %u: %u real settings, at most %d", i, n_floats, NR_LAYER_FLOATS);
            goto fail;
        }
        for (int k = 0; k < n_floats; k++) {
            if (!nr__get_f32(r, &l->floats[k]))
                goto fail;
            if (!isfinite(l->floats[k])) {
                nr__reader_fail(r, "layer %u: a setting is not finite", i);
                goto fail;
            }
        }
        nr_status st = nr__layer_prepare(shape, l);
        if (st) {
            nr__prefix(NR_EFORMAT, "%s: ARCH: layer %u (%s)", r->path, i, tag);
            r->st = NR_EFORMAT;
            goto fail;
        }
        memcpy(shape, l->out_shape, sizeof shape);
        params += l->param_count;
        activations += l->out_size;
        if (params > bytes_left / 4) {
            nr__reader_fail(r, "the layers need %zu parameters but the file holds at most %zu", params,
                            bytes_left / 4);
            goto fail;
        }
        if (activations > MAX_ACTIVATIONS) {
            nr__reader_fail(r, "the layers would need over %zu activations per sample", MAX_ACTIVATIONS);
            goto fail;
        }
    }
    net = nr_net_new_image(h, w, c);
    if (net)
        nr__net_reserve(net, params);  /* one allocation; on failure the appends below say so */
    for (uint32_t i = 0; net && i < n_layers; i++)
        if (nr__net_append(net, &layers[i])) {
            nr_net_free(net);
            net = NULL;
            r->st = NR_ENOMEM;
        }
    if (net)
        net->head = (nr_loss)head;
    free(layers);
    return net;
fail:
    free(layers);
    return NULL;
}

static bool read_scaling(nr__reader *r, nr_net *net)
{
    uint32_t kind;
    uint64_t count;
    if (!nr__get_u32(r, &kind) || !nr__get_u64(r, &count))
        return false;
    if (kind > NR_SCALE_STANDARD)
        return nr__reader_fail(r, "unknown scaling %u", kind);
    if (kind == NR_SCALE_NONE)
        return count == 0 || nr__reader_fail(r, "no scaling, yet %llu values", (unsigned long long)count);
    if (count != 1 && count != net->in_size)
        return nr__reader_fail(r, "%llu values for an input of %zu", (unsigned long long)count, net->in_size);
    if ((size_t)(r->end - r->p) / 8 < count)
        return nr__reader_fail(r, "truncated");
    float *shift = malloc(count * sizeof *shift), *scale = malloc(count * sizeof *scale);
    if (!shift || !scale) {
        free(shift);
        free(scale);
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    nr__get_floats(r, shift, count);
    nr__get_floats(r, scale, count);
    for (size_t i = 0; i < count; i++)
        if (!isfinite(shift[i]) || !isfinite(scale[i]) || scale[i] == 0.0f) {
            free(shift);
            free(scale);
            return nr__reader_fail(r, "value %zu is not usable", i);
        }
    free(net->scaling.shift);
    free(net->scaling.scale);
    net->scaling = (nr__scaling){(int)kind, count, shift, scale};
    return true;
}

static bool read_tensors(nr__reader *r, nr_net *net)
{
    uint64_t count;
    if (!nr__get_u64(r, &count))
        return false;
    if (count != net->n_tensors)
        return nr__reader_fail(r, "%llu tensors, the architecture has %zu", (unsigned long long)count,
                               net->n_tensors);
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *t = &net->tensors[i];
        uint8_t len, ndim;
        char name[256];
        if (!nr__get_u8(r, &len) || !nr__get(r, name, len) || !nr__get_u8(r, &ndim))
            return false;
        name[len] = 0;
        if (strcmp(name, t->name) != 0)
            return nr__reader_fail(r, "tensor %zu is '%.40s', the architecture expects '%s'", i, name, t->name);
        if (ndim != t->ndim)
            return nr__reader_fail(r, "tensor %s has %u dimensions, expected %d", t->name, ndim, t->ndim);
        for (int d = 0; d < ndim; d++) {
            uint64_t v;
            if (!nr__get_u64(r, &v))
                return false;
            if (v != t->shape[d])
                return nr__reader_fail(r, "tensor %s: dimension %d is %llu, expected %zu", t->name, d,
                                       (unsigned long long)v, t->shape[d]);
        }
        if (!nr__get_floats(r, net->params + t->offset, t->size))
            return false;
        for (size_t k = 0; k < t->size; k++)
            if (!isfinite(net->params[t->offset + k]))
                return nr__reader_fail(r, "tensor %s: value %zu is %g; a model's weights are finite numbers", t->name,
                                       k, (double)net->params[t->offset + k]);
    }
    return true;
}

nr_status nr__model_read(const char *path, nr_net **out, const nr__extra *extra, uint32_t *flags_out)
{
    if (!path || !out)
        return nr__fail(NR_EINVAL, "nr_model_load: NULL argument");
    *out = NULL;
    unsigned char *data;
    size_t len;
    nr_status st = nr__read_file(path, MAX_FILE, &data, &len);
    if (st)
        return st;
    nr_net *net = NULL;
    nr__reader r = {data, data + len, path, NULL, NR_OK};
    if (len < 28 || memcmp(data, magic, 8) != 0) {
        st = nr__fail(NR_EFORMAT, "%s: not a neurite model (%s)", path, len < 8 ? "too short" : "bad magic");
        goto done;
    }
    uint32_t version = nr__get_u32le(data + 8), flags = nr__get_u32le(data + 12);
    uint64_t stated = nr__get_u64le(data + 16);
    if (version == 0 || version > NR__FORMAT_VERSION) {
        st = nr__fail(NR_EFORMAT, "%s: model format version %u; this neurite reads versions 1 to %d (a newer "
                                  "neurite wrote it?)", path, version, NR__FORMAT_VERSION);
        goto done;
    }
    if (stated != len) {
        st = nr__fail(NR_EFORMAT, "%s: %s: the header says %llu bytes, the file has %zu", path,
                      stated > len ? "truncated" : "trailing bytes", (unsigned long long)stated, len);
        goto done;
    }
    uint32_t want = nr__get_u32le(data + len - 4), got = nr__crc32(0, data, len - 4);
    if (want != got) {
        st = nr__fail(NR_EFORMAT, "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged", path,
                      want, got);
        goto done;
    }
    r.p = data + 24;
    r.end = data + len - 4;
    bool have_scaling = false, have_tensors = false;
    while (r.p < r.end && !r.st) {
        char tag[5] = {0};
        uint64_t size;
        r.where = NULL;
        if (!nr__get(&r, tag, 4) || !nr__get_u64(&r, &size))
            break;
        if (size > (uint64_t)(r.end - r.p)) {
            nr__reader_fail(&r, "section %s of %llu bytes runs past the end", tag, (unsigned long long)size);
            break;
        }
        nr__reader sec = {r.p, r.p + size, path, tag, NR_OK};
        r.p += size;
        if (strcmp(tag, "ARCH") == 0) {
            if (net)
                nr__reader_fail(&sec, "appears twice");
            else
                net = read_arch(&sec, (size_t)(r.end - r.p));
            if (!net && !sec.st)
                sec.st = NR_ENOMEM;
        } else if (strcmp(tag, "SCAL") == 0 || strcmp(tag, "TENS") == 0) {
            if (!net)
                nr__reader_fail(&sec, "comes before ARCH");
            else if (tag[0] == 'S')
                have_scaling = read_scaling(&sec, net);
            else
                have_tensors = read_tensors(&sec, net);
        } else if (extra && extra->read) {
            if (!net)
                nr__reader_fail(&sec, "comes before ARCH");
            else
                extra->read(&sec, tag, extra->read_ctx);
        } else if (tag[0] >= 'A' && tag[0] <= 'Z') {
            /* Upper-case sections are required reading (like PNG's critical chunks); lower-case may be skipped. */
            nr__reader_fail(&sec, "unknown required section (made by a newer neurite?)");
        }
        if (!sec.st && sec.p != sec.end && (strcmp(tag, "ARCH") == 0 || strcmp(tag, "SCAL") == 0 ||
                                            strcmp(tag, "TENS") == 0))
            nr__reader_fail(&sec, "%td unexpected bytes at its end", sec.end - sec.p);
        r.st = sec.st;
    }
    if (!r.st && (!net || !have_scaling || !have_tensors))
        r.st = nr__fail(NR_EFORMAT, "%s: incomplete model: the %s section is missing", path,
                        !net ? "ARCH" : !have_scaling ? "SCAL" : "TENS");
    st = r.st;
    if (!st) {
        *out = net;
        net = NULL;
        if (flags_out)
            *flags_out = flags;
    }
done:
    nr_net_free(net);
    free(data);
    return st;
}

nr_status nr_model_load(const char *path, nr_net **out) { return nr__model_read(path, out, NULL, NULL); }
