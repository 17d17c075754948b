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
    if (s->mem && len)
        memcpy(s->mem + s->length, data, len);
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
    if (!s->file && !s->mem) {
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
    if (net->q)
        nr__put_quant_section(s, net);
    else
        nr__put_section(s, "TENS", put_tensors, net);
    nr__put_data_sections(s, net);
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
    nr__sink s = {.file = &a};
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

/* The head of ARCH: the input shape, the loss, and a layer count the section can hold. */
typedef struct arch_head {
    uint32_t h, w, c, head, n_layers;
} arch_head;

static bool read_arch_head(nr__reader *r, arch_head *a)
{
    if (!nr__get_u32(r, &a->h) || !nr__get_u32(r, &a->w) || !nr__get_u32(r, &a->c) || !nr__get_u32(r, &a->head) ||
        !nr__get_u32(r, &a->n_layers))
        return false;
    if (a->h == 0 || a->w == 0 || a->c == 0 || (uint64_t)a->h * a->w * a->c > MAX_INPUT)
        return nr__reader_fail(r, "input shape %ux%ux%u is not valid", a->h, a->w, a->c);
    if (a->head > NR_LOSS_XENT)
        return nr__reader_fail(r, "unknown loss %u", a->head);
    if (a->n_layers == 0 || a->n_layers > NR__MAX_LAYERS)
        return nr__reader_fail(r, "%u layers is not a valid count (1 to %d)", a->n_layers, NR__MAX_LAYERS);
    /* Each layer takes at least 3 bytes: refuse a count the section cannot hold before allocating for it. */
    if ((size_t)(r->end - r->p) / 3 < a->n_layers)
        return nr__reader_fail(r, "%u layers cannot fit in the section", a->n_layers);
    return true;
}

/* One layer's kind and settings. */
static bool read_layer(nr__reader *r, uint32_t i, nr_layer *l, char tag[256])
{
    uint8_t len, n_ints, n_floats;
    if (!nr__get_u8(r, &len) || !nr__get(r, tag, len))
        return false;
    tag[len] = 0;
    if (!(l->ops = nr__layer_ops_by_tag(tag)))
        return nr__reader_fail(r, "layer %u: unknown kind '%.40s' (made by a newer neurite?)", i, tag);
    if (!nr__get_u8(r, &n_ints))
        return false;
    if (n_ints > NR_LAYER_INTS)
        return nr__reader_fail(r, "layer %u: %u settings, at most %d", i, n_ints, NR_LAYER_INTS);
    for (int k = 0; k < n_ints; k++)
        if (!nr__get_u64(r, (uint64_t *)&l->ints[k]))
            return false;
    if (!nr__get_u8(r, &n_floats))
        return false;
    if (n_floats > NR_LAYER_FLOATS)
        return nr__reader_fail(r, "layer %u: %u real settings, at most %d", i, n_floats, NR_LAYER_FLOATS);
    for (int k = 0; k < n_floats; k++) {
        if (!nr__get_f32(r, &l->floats[k]))
            return false;
        if (!isfinite(l->floats[k]))
            return nr__reader_fail(r, "layer %u: a setting is not finite", i);
    }
    return true;
}

/* Every layer read and set up for the shape before it (allocating nothing), the parameters they imply checked
 * against the bytes that remain in the file, and their activations against a sane limit; sets *params. */
static bool read_layers(nr__reader *r, const arch_head *a, nr_layer *layers, size_t bytes_left, size_t *params)
{
    size_t shape[3] = {a->h, a->w, a->c}, activations = 0;
    *params = 0;
    for (uint32_t i = 0; i < a->n_layers; i++) {
        nr_layer *l = &layers[i];
        char tag[256];
        if (!read_layer(r, i, l, tag))
            return false;
        if (nr__layer_prepare(shape, l)) {
            nr__prefix(NR_EFORMAT, "%s: ARCH: layer %u (%s)", r->path, i, tag);
            r->st = NR_EFORMAT;
            return false;
        }
        memcpy(shape, l->out_shape, sizeof shape);
        *params += l->param_count;
        activations += l->out_size;
        if (*params > bytes_left)  /* a byte each at least (int8; float32 are 4) */
            return nr__reader_fail(r, "the layers need %zu parameters but the file holds at most %zu", *params,
                                   bytes_left);
        if (activations > MAX_ACTIVATIONS)
            return nr__reader_fail(r, "the layers would need over %zu activations per sample", MAX_ACTIVATIONS);
    }
    return true;
}

/* The network the layers describe, built through the same code as from the API. */
static nr_net *build_net(nr__reader *r, const arch_head *a, const nr_layer *layers, size_t params)
{
    nr_net *net = nr_net_new_image(a->h, a->w, a->c);
    if (net)
        nr__net_reserve(net, params);  /* one allocation; on failure the appends below say so */
    for (uint32_t i = 0; net && i < a->n_layers; i++)
        if (nr__net_append(net, &layers[i])) {
            nr_net_free(net);
            net = NULL;
        }
    if (!net)
        r->st = NR_ENOMEM;
    else
        net->head = (nr_loss)a->head;
    return net;
}

/* Reads ARCH and builds the network, checking the parameters it implies against the bytes that remain. */
static nr_net *read_arch(nr__reader *r, size_t bytes_left)
{
    arch_head a;
    if (!read_arch_head(r, &a))
        return NULL;
    nr_layer *layers = calloc(a.n_layers, sizeof *layers);
    if (!layers)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    size_t params;
    nr_net *net = read_layers(r, &a, layers, bytes_left, &params) ? build_net(r, &a, layers, params) : NULL;
    free(layers);
    return net;
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

/* The header and the trailer: magic, a version this reader knows, the stated length, the checksum. */
static nr_status check_file(const char *path, const unsigned char *data, size_t len, uint32_t *flags)
{
    if (len < 28 || memcmp(data, magic, 8) != 0)
        return nr__fail(NR_EFORMAT, "%s: not a neurite model (%s)", path, len < 8 ? "too short" : "bad magic");
    uint32_t version = nr__get_u32le(data + 8);
    uint64_t stated = nr__get_u64le(data + 16);
    *flags = nr__get_u32le(data + 12);
    if (version == 0 || version > NR__FORMAT_VERSION)
        return nr__fail(NR_EFORMAT, "%s: model format version %u; this neurite reads versions 1 to %d (a newer "
                                    "neurite wrote it?)", path, version, NR__FORMAT_VERSION);
    if (stated != len)
        return nr__fail(NR_EFORMAT, "%s: %s: the header says %llu bytes, the file has %zu", path,
                        stated > len ? "truncated" : "trailing bytes", (unsigned long long)stated, len);
    uint32_t want = nr__get_u32le(data + len - 4), got = nr__crc32(0, data, len - 4);
    if (want != got)
        return nr__fail(NR_EFORMAT, "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged", path,
                        want, got);
    return NR_OK;
}

/* What the sections read so far have given. */
typedef struct model_parts {
    nr_net *net;
    bool have_scaling, have_tensors;  /* tensors: TENS, or QUNT for a quantized network */
} model_parts;

static bool is_model_section(const char *tag)
{
    return strcmp(tag, "ARCH") == 0 || strcmp(tag, "SCAL") == 0 || strcmp(tag, "TENS") == 0 ||
           strcmp(tag, "QUNT") == 0;
}

/* One section: ARCH, SCAL and TENS here, the others to `extra` (checkpoints) or skipped if optional. */
static void read_section(nr__reader *r, nr__reader *sec, const char *tag, const nr__extra *extra, model_parts *m)
{
    if (strcmp(tag, "ARCH") == 0) {
        if (m->net)
            nr__reader_fail(sec, "appears twice");
        else
            m->net = read_arch(sec, (size_t)(r->end - r->p));
        if (!m->net && !sec->st)
            sec->st = NR_ENOMEM;
    } else if (strcmp(tag, "SCAL") == 0 || strcmp(tag, "TENS") == 0 || strcmp(tag, "QUNT") == 0) {
        if (!m->net)
            nr__reader_fail(sec, "comes before ARCH");
        else if (tag[0] == 'S')
            m->have_scaling = read_scaling(sec, m->net);
        else if (m->have_tensors)
            nr__reader_fail(sec, "a second set of weights (TENS and QUNT are one or the other)");
        else
            m->have_tensors = tag[0] == 'T' ? read_tensors(sec, m->net) : nr__read_quant(sec, m->net);
    } else if (m->net && nr__read_data_section(sec, tag, m->net)) {
        /* read (or refused) there */
    } else if (extra && extra->read) {
        if (!m->net)
            nr__reader_fail(sec, "comes before ARCH");
        else
            extra->read(sec, tag, extra->read_ctx);
    } else if (tag[0] >= 'A' && tag[0] <= 'Z') {
        /* Upper-case sections are required reading (like PNG's critical chunks); lower-case may be skipped. */
        nr__reader_fail(sec, "unknown required section (made by a newer neurite?)");
    }
    if (!sec->st && sec->p != sec->end && is_model_section(tag))
        nr__reader_fail(sec, "%td unexpected bytes at its end", sec->end - sec->p);
}

/* The sections between the header and the trailer, in order; then every required one must have come. */
static nr_status read_sections(nr__reader *r, const nr__extra *extra, model_parts *m)
{
    while (r->p < r->end && !r->st) {
        char tag[5] = {0};
        uint64_t size;
        r->where = NULL;
        if (!nr__get(r, tag, 4) || !nr__get_u64(r, &size))
            break;
        if (size > (uint64_t)(r->end - r->p)) {
            nr__reader_fail(r, "section %s of %llu bytes runs past the end", tag, (unsigned long long)size);
            break;
        }
        nr__reader sec = {r->p, r->p + size, r->path, tag, NR_OK};
        r->p += size;
        read_section(r, &sec, tag, extra, m);
        r->st = sec.st;
    }
    if (!r->st && (!m->net || !m->have_scaling || !m->have_tensors))
        r->st = nr__fail(NR_EFORMAT, "%s: incomplete model: the %s section is missing", r->path,
                         !m->net ? "ARCH" : !m->have_scaling ? "SCAL" : "TENS (or QUNT)");
    return r->st;
}

nr_status nr__model_read(const char *path, nr_net **out, const nr__extra *extra, uint32_t *flags_out)
{
    if (!path || !out)
        return nr__fail(NR_EINVAL, "nr_model_load: NULL argument");
    *out = NULL;
    unsigned char *data;
    size_t len;
    uint32_t flags = 0;
    nr_status st = nr__read_file(path, MAX_FILE, &data, &len);
    if (st)
        return st;
    model_parts m = {0};
    if (!(st = check_file(path, data, len, &flags))) {
        nr__reader r = {data + 24, data + len - 4, path, NULL, NR_OK};
        st = read_sections(&r, extra, &m);
    }
    if (!st) {
        *out = m.net;
        m.net = NULL;
        if (flags_out)
            *flags_out = flags;
    }
    nr_net_free(m.net);
    free(data);
    return st;
}

nr_status nr_model_load(const char *path, nr_net **out) { return nr__model_read(path, out, NULL, NULL); }
