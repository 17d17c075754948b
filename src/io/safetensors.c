/* safetensors.c - a network's tensors as the state_dict of the PyTorch nn.Sequential it corresponds to, in
 * the safetensors format (Hugging Face's: an 8-byte header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw little-endian data). docs/interop.md.
 *
 * Module i of the Sequential is neurite's layer i, with an nn.Flatten inserted where a dense layer reads an
 * image directly. PyTorch images are NCHW and neurite's channels-last, so the tensors are rearranged on the
 * way: a convolution's weight from (k, k, cin, cout) to (cout, cin, k, k), a Linear's from (in, out) to
 * (out, in) with, after a flattened image, its columns in channel-major order; a BatchNorm1d on such flattened
 * features likewise. Each tensor is described once (the `entry` list) with the map from its PyTorch element to
 * neurite's parameter; export and import walk the same list in opposite directions. The header also carries
 * the Sequential as Python text and the input scaling, under "__metadata__".
 *
 * The reader's header parser accepts exactly what the format allows (an object of tensor objects and string
 * metadata) and checks every shape and byte range against the file before anything is copied. */
#include "core/net.h"
#include "io/io.h"
#include "io/layout.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#define MAX_HEADER ((size_t)100 << 20)
#define MAX_FILE ((size_t)1 << 34)

/* How a PyTorch element maps to neurite's parameters. */
typedef enum map_kind {
    MAP_PLAIN,      /* the same order */
    MAP_FEATURES,   /* flattened-image features: PyTorch's CHW order to neurite's HWC */
    MAP_LINEAR,     /* (out, in) from neurite's (in, out), columns in CHW order after a flattened image */
    MAP_CONV,       /* (cout, cin, k, k) from (k, k, cin, cout) */
    MAP_COUNTER     /* num_batches_tracked: an int64 PyTorch keeps and neurite has no use for */
} map_kind;

typedef struct entry {
    char name[48];
    int ndim;
    size_t shape[4], count;
    size_t offset;       /* of the neurite tensor in the parameter buffer */
    map_kind map;
    bool chw;            /* the layer reads a flattened image, in PyTorch's CHW order */
    size_t c, h, w;      /* that image's shape */
    size_t in, out, k;   /* Linear and Conv2d sizes */
} entry;

/* ---- the correspondence ---- */

/* The PyTorch element j of an entry: its index in neurite's parameters. */
static size_t neurite_index(const entry *e, size_t j)
{
    switch (e->map) {
    case MAP_FEATURES: {
        size_t ch = j / (e->h * e->w), y = j / e->w % e->h, x = j % e->w;
        return e->offset + nr__hwc_row(y, x, ch, e->w, e->c);
    }
    case MAP_LINEAR: {
        size_t o = j / e->in, r = j % e->in;
        if (e->chw)
            r = nr__hwc_row(r / e->w % e->h, r % e->w, r / (e->h * e->w), e->w, e->c);
        return e->offset + r * e->out + o;
    }
    case MAP_CONV: {
        size_t cin = e->shape[1], cout = e->shape[0], v = j % e->k, u = j / e->k % e->k, ci = j / (e->k * e->k) % cin;
        return e->offset + nr__conv_hwio(u, v, ci, j / (e->k * e->k * cin), e->k, cin, cout);
    }
    default:
        return e->offset + j;
    }
}

static size_t offset_of(const nr_net *net, size_t i, const char *suffix)
{
    const nr_layer *l = &net->layers[i];
    for (int k = 0; k < l->n_tensors; k++)
        if (strcmp(l->tensors[k].suffix, suffix) == 0)
            return l->tensor_offset[k];
    return 0;
}

static entry *add_entry(entry *list, size_t *n, size_t module, const char *what, map_kind map, int ndim,
                        size_t d0, size_t d1, size_t d2, size_t d3)
{
    entry *e = &list[(*n)++];
    *e = (entry){.ndim = ndim, .shape = {d0, d1, d2, d3}, .map = map, .count = 1};
    snprintf(e->name, sizeof e->name, "%zu.%s", module, what);
    for (int d = 0; d < ndim; d++)
        e->count *= e->shape[d];
    return e;
}

/* One layer's tensors as module `module` names them. */
static void layer_entries(const nr_net *net, size_t i, size_t module, const entry *flat, entry *list, size_t *n)
{
    const nr_layer *l = &net->layers[i];
    entry *e;
    if (l->ops == &nr__dense_ops) {
        e = add_entry(list, n, module, "weight", MAP_LINEAR, 2, l->out_size, l->in_size, 0, 0);
        *e = (entry){.name = "", .ndim = 2, .shape = {l->out_size, l->in_size}, .count = l->out_size * l->in_size,
                     .offset = offset_of(net, i, "w"), .map = MAP_LINEAR, .chw = flat->chw, .c = flat->c,
                     .h = flat->h, .w = flat->w, .in = l->in_size, .out = l->out_size};
        snprintf(e->name, sizeof e->name, "%zu.weight", module);
        if (l->ints[1])
            add_entry(list, n, module, "bias", MAP_PLAIN, 1, l->out_size, 0, 0, 0)->offset = offset_of(net, i, "b");
    } else if (l->ops == &nr__conv2d_ops) {
        size_t k = (size_t)l->ints[1];
        e = add_entry(list, n, module, "weight", MAP_CONV, 4, l->out_shape[2], l->in_shape[2], k, k);
        e->offset = offset_of(net, i, "w");
        e->k = k;
        if (l->ints[4])
            add_entry(list, n, module, "bias", MAP_PLAIN, 1, l->out_shape[2], 0, 0, 0)->offset = offset_of(net, i, "b");
    } else if (l->ops == &nr__batchnorm_ops) {
        static const char *const ours[4] = {"gamma", "beta", "mean", "var"},
                                 *theirs[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int k = 0; k < 4; k++) {
            e = add_entry(list, n, module, theirs[k], flat->chw ? MAP_FEATURES : MAP_PLAIN, 1, l->in_shape[2], 0, 0, 0);
            e->offset = offset_of(net, i, ours[k]);
            e->c = flat->c, e->h = flat->h, e->w = flat->w;
        }
        add_entry(list, n, module, "num_batches_tracked", MAP_COUNTER, 0, 0, 0, 0, 0);
    }
}

/* Every tensor of the network, in module order; *modules receives the Sequential's length. At most four
 * tensors (and one inserted Flatten) per layer: `list` holds 5 * n_layers entries. */
static size_t entries(const nr_net *net, entry *list)
{
    size_t n = 0, module = 0;
    entry flat = {.chw = false};  /* the flattened image the next layers see, if any */
    bool image = net->in_shape[0] * net->in_shape[1] > 1;
    for (size_t i = 0; i < net->n_layers; i++, module++) {
        const nr_layer *l = &net->layers[i];
        bool flattens = l->ops == &nr__flatten_ops || l->ops == &nr__dense_ops;
        if (image && flattens) {
            flat = (entry){.chw = true, .c = l->in_shape[2], .h = l->in_shape[0], .w = l->in_shape[1]};
            module += l->ops == &nr__dense_ops;  /* the nn.Flatten inserted before it */
        }
        layer_entries(net, i, module, &flat, list, &n);
        if (l->ops == &nr__dense_ops)
            flat.chw = false;
        image = l->ops == &nr__conv2d_ops || (image && !flattens);
    }
    return n;
}

/* ---- the Sequential as Python ---- */

typedef struct text {
    char *s;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *fmt, ...) NR_PRINTF(2, 3);
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->failed || n < 0)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = 2 * (t->len + (size_t)n + 1);
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = true;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* A float in its shortest decimal form that reads back to it (0.1, not 0.100000001). */
static const char *decimal(float v, char buf[32])
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, 32, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return buf;
}

static void put_module(text *t, const nr_layer *l, bool image)
{
    const nr_layer_ops *ops = l->ops;
    char a[32], b[32];
    if (ops == &nr__dense_ops)
        put(t, "nn.Linear(%zu, %zu%s)", l->in_size, l->out_size, l->ints[1] ? "" : ", bias=False");
    else if (ops == &nr__conv2d_ops)
        put(t, "nn.Conv2d(%zu, %zu, %lld, stride=%lld, padding=%lld%s)", l->in_shape[2], l->out_shape[2],
            (long long)l->ints[1], (long long)l->ints[2], (long long)l->ints[3], l->ints[4] ? "" : ", bias=False");
    else if (ops == &nr__maxpool_ops || ops == &nr__avgpool_ops)
        put(t, "nn.%s(%lld, stride=%lld)", ops == &nr__maxpool_ops ? "MaxPool2d" : "AvgPool2d",
            (long long)l->ints[0], (long long)l->ints[1]);
    else if (ops == &nr__batchnorm_ops)
        put(t, "nn.BatchNorm%dd(%zu, eps=%s, momentum=%s)", image ? 2 : 1, l->in_shape[2], decimal(l->floats[1], a),
            decimal(l->floats[0], b));
    else if (ops == &nr__leaky_relu_ops)
        put(t, "nn.LeakyReLU(%s)", decimal(l->floats[0], a));
    else if (ops == &nr__dropout_ops)
        put(t, "nn.Dropout(%s)", decimal(l->floats[0], a));
    else
        put(t, "%s", ops == &nr__relu_ops ? "nn.ReLU()" : ops == &nr__sigmoid_ops ? "nn.Sigmoid()"
                     : ops == &nr__tanh_ops ? "nn.Tanh()" : ops == &nr__softmax_ops ? "nn.Softmax(dim=1)"
                     : ops == &nr__flatten_ops ? "nn.Flatten()" : "nn.Identity()");
}

/* "nn.Sequential(...)": what load_state_dict needs to be given the file. */
static void put_sequential(text *t, const nr_net *net)
{
    bool image = net->in_shape[0] * net->in_shape[1] > 1;
    put(t, "nn.Sequential(");
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        if (image && l->ops == &nr__dense_ops)
            put(t, "nn.Flatten(), ");
        put_module(t, l, image);
        put(t, "%s", i + 1 < net->n_layers ? ", " : ")");
        image = l->ops == &nr__conv2d_ops || (image && l->ops != &nr__dense_ops && l->ops != &nr__flatten_ops);
    }
}

size_t nr_net_pytorch(const nr_net *net, char *buf, size_t cap)
{
    text t = {0};
    if (net)
        put_sequential(&t, net);
    size_t len = t.failed ? 0 : t.len;
    if (buf && cap)
        snprintf(buf, cap, "%s", t.s && !t.failed ? t.s : "");
    free(t.s);
    return len;
}

/* ---- writing ---- */

static void put_json_string(text *t, const char *s)
{
    put(t, "\"");
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            put(t, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            put(t, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            put(t, "%c", *s);
    put(t, "\"");
}

static void put_header(text *t, const nr_net *net, const entry *list, size_t n)
{
    static const char *const kinds[] = {"none", "unit", "standard"};
    text seq = {0};
    put_sequential(&seq, net);
    put(t, "{\"__metadata__\":{\"format\":\"pt\",\"neurite.sequential\":");
    put_json_string(t, seq.s ? seq.s : "");
    free(seq.s);
    t->failed |= seq.failed;
    const nr__scaling *sc = &net->scaling;
    put(t, ",\"neurite.input\":\"%s NHWC %zu %zu %zu\",\"neurite.scaling\":\"%s", "channels-last",
        net->in_shape[0], net->in_shape[1], net->in_shape[2], kinds[sc->kind >= 0 && sc->kind <= 2 ? sc->kind : 0]);
    for (size_t k = 0; sc->kind && k < sc->count; k++)
        put(t, " %.9g/%.9g", (double)sc->shift[k], (double)sc->scale[k]);
    put(t, "\"");
    for (size_t k = 0; k < net->n_targets; k++)  /* a regression learns (t - mean) * scale */
        put(t, "%s%.9g/%.9g", k ? " " : ",\"neurite.targets\":\"", (double)net->target_mean[k],
            (double)net->target_scale[k]);
    put(t, "%s}", net->n_targets ? "\"" : "");
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const entry *e = &list[i];
        size_t bytes = e->map == MAP_COUNTER ? 8 : 4 * e->count;
        put(t, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", e->name, e->map == MAP_COUNTER ? "I64" : "F32");
        for (int d = 0; d < e->ndim; d++)
            put(t, "%s%zu", d ? "," : "", e->shape[d]);
        put(t, "],\"data_offsets\":[%zu,%zu]}", at, at + bytes);
        at += bytes;
    }
    put(t, "}");
    while (!t->failed && t->len % 8)  /* the data starts 8-byte aligned, as the format recommends */
        put(t, " ");
}

static nr_status write_entry(nr__atomic *a, const nr_net *net, const entry *e)
{
    if (e->map == MAP_COUNTER) {
        unsigned char zero[8] = {0};
        return nr__atomic_write(a, zero, 8);
    }
    float *v = malloc(e->count * sizeof *v);
    if (!v)
        return nr__fail(NR_ENOMEM, "out of memory");
    for (size_t j = 0; j < e->count; j++)
        v[j] = net->params[neurite_index(e, j)];
    nr_status st = nr__atomic_write_f32le(a, v, e->count);
    free(v);
    return st;
}

nr_status nr_safetensors_export(const nr_net *net, const char *path)
{
    if (!net || !path)
        return nr__fail(NR_EINVAL, "nr_safetensors_export: NULL argument");
    entry *list = calloc(5 * net->n_layers + 1, sizeof *list);
    if (!list)
        return nr__fail(NR_ENOMEM, "out of memory");
    size_t n = entries(net, list);
    text header = {0};
    put_header(&header, net, list, n);
    nr__atomic a;
    nr_status st = header.failed ? nr__fail(NR_ENOMEM, "out of memory") : nr__atomic_open(&a, path);
    if (!st) {
        unsigned char len[8];
        nr__put_u64le(len, header.len);
        nr_status wrote = nr__atomic_write(&a, len, 8);
        wrote = wrote ? wrote : nr__atomic_write(&a, header.s, header.len);
        for (size_t i = 0; i < n && !wrote; i++)
            wrote = write_entry(&a, net, &list[i]);
        nr_status committed = nr__atomic_commit(&a);
        st = wrote ? wrote : committed;
    }
    free(header.s);
    free(list);
    return st;
}

/* ---- reading ---- */

/* A tensor the header names. */
typedef struct found {
    char name[128];
    char dtype[8];
    int ndim;
    size_t shape[8];
    size_t begin, end;
} found;

typedef struct reader {
    const char *path;
    const char *p, *end;  /* the header being parsed */
    found *tensors;
    size_t n, cap;
} reader;

static nr_status bad_header(const reader *r, const char *why)
{
    return nr__fail(NR_EFORMAT, "%s: not a safetensors file neurite can read: %s", r->path, why);
}

static void skip_space(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool eat(reader *r, char c)
{
    skip_space(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

/* A JSON string into out (cap bytes; NULL: only checked); escapes \uXXXX of 0x80 and above refuse. */
static bool read_string(reader *r, char *out, size_t cap)
{
    size_t n = 0;
    if (!eat(r, '"'))
        return false;
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p++;
        if (c == '\\') {
            if (r->p >= r->end)
                return false;
            char e = *r->p++;
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            if (e == 'u') {
                unsigned v = 0;
                for (int i = 0; i < 4; i++, r->p++)
                    if (r->p >= r->end || !isxdigit((unsigned char)*r->p))
                        return false;
                    else
                        v = v * 16 + (unsigned)(isdigit((unsigned char)*r->p) ? *r->p - '0'
                                                                               : (tolower((unsigned char)*r->p) - 'a' + 10));
                if (v == 0 || v >= 0x80)
                    return false;
                c = (char)v;
            } else if (e && k) {
                c = to[k - from];
            } else {
                return false;
            }
        } else if ((unsigned char)c < 0x20) {
            return false;
        }
        if (!out)
            continue;
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    if (out)
        out[n] = '\0';
    return r->p++ < r->end;
}

static bool read_size(reader *r, size_t *v)
{
    skip_space(r);
    if (r->p >= r->end || !isdigit((unsigned char)*r->p))
        return false;
    *v = 0;
    while (r->p < r->end && isdigit((unsigned char)*r->p)) {
        if (*v > ((size_t)1 << 50))
            return false;
        *v = *v * 10 + (size_t)(*r->p++ - '0');
    }
    return true;
}

/* [a, b, ...] of sizes, at most cap. */
static bool read_sizes(reader *r, size_t *v, int cap, int *count)
{
    *count = 0;
    if (!eat(r, '['))
        return false;
    if (eat(r, ']'))
        return true;
    do {
        if (*count >= cap || !read_size(r, &v[(*count)++]))
            return false;
    } while (eat(r, ','));
    return eat(r, ']');
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, in any order, each once. */
static nr_status read_tensor(reader *r, found *t)
{
    char key[16];
    unsigned seen = 0;
    if (!eat(r, '{'))
        return bad_header(r, "a tensor is not an object");
    do {
        size_t offsets[2];
        int count = 0, which;
        if (!read_string(r, key, sizeof key) || !eat(r, ':'))
            return bad_header(r, "a tensor's field is not a \"name\": value pair");
        which = !strcmp(key, "dtype") ? 0 : !strcmp(key, "shape") ? 1 : !strcmp(key, "data_offsets") ? 2 : -1;
        if (which < 0 || seen & (1u << which))
            return bad_header(r, "a tensor has an unknown or repeated field");
        seen |= 1u << which;
        bool ok = which == 0   ? read_string(r, t->dtype, sizeof t->dtype)
                  : which == 1 ? read_sizes(r, t->shape, 8, &t->ndim)
                               : read_sizes(r, offsets, 2, &count) && count == 2 && offsets[0] <= offsets[1];
        if (!ok)
            return bad_header(r, which == 0 ? "a dtype is not a short string" : which == 1 ? "a shape is not a list "
                              "of at most 8 sizes" : "data_offsets is not [begin, end] with begin <= end");
        if (which == 2)
            t->begin = offsets[0], t->end = offsets[1];
    } while (eat(r, ','));
    if (!eat(r, '}') || seen != 7)
        return bad_header(r, "a tensor lacks its dtype, shape or data_offsets");
    return NR_OK;
}

/* "__metadata__": an object of strings, which neurite does not need to read back. */
static nr_status skip_metadata(reader *r)
{
    char key[128];
    if (!eat(r, '{'))
        return bad_header(r, "__metadata__ is not an object");
    if (eat(r, '}'))
        return NR_OK;
    do {
        if (!read_string(r, key, sizeof key) || !eat(r, ':') || !read_string(r, NULL, 0))
            return bad_header(r, "__metadata__ holds something other than short strings");
    } while (eat(r, ','));
    return eat(r, '}') ? NR_OK : bad_header(r, "__metadata__ is not closed");
}

static nr_status read_header(reader *r)
{
    if (!eat(r, '{'))
        return bad_header(r, "the header is not a JSON object");
    if (eat(r, '}'))
        return NR_OK;
    do {
        char name[128];
        if (!read_string(r, name, sizeof name) || !eat(r, ':'))
            return bad_header(r, "a name is not a string of at most 127 bytes");
        nr_status st;
        if (!strcmp(name, "__metadata__")) {
            st = skip_metadata(r);
        } else {
            if (r->n == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 64;
                found *t = cap <= 65536 ? realloc(r->tensors, cap * sizeof *t) : NULL;
                if (!t)
                    return cap > 65536 ? bad_header(r, "more than 65536 tensors") : nr__fail(NR_ENOMEM, "out of memory");
                r->tensors = t;
                r->cap = cap;
            }
            found *t = &r->tensors[r->n++];
            *t = (found){.ndim = 0};
            memcpy(t->name, name, sizeof t->name);
            st = read_tensor(r, t);
        }
        if (st)
            return st;
    } while (eat(r, ','));
    skip_space(r);
    if (!eat(r, '}') || (skip_space(r), r->p != r->end))
        return bad_header(r, "the header does not end where its length says");
    return NR_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(((const found *)a)->name, ((const found *)b)->name); }

/* "16x8x3x3" ("a scalar" for none). */
static void shape_text(const size_t *shape, int ndim, char buf[96])
{
    size_t at = 0;
    snprintf(buf, 96, "a scalar");
    for (int d = 0; d < ndim && at < 80; d++)
        at += (size_t)snprintf(buf + at, 96 - at, "%s%zu", d ? "x" : "", shape[d]);
}

/* Checks one tensor of the file against what the network needs, and copies it into params. */
static nr_status take(const reader *r, const entry *e, const found *t, const unsigned char *data, size_t data_len,
                      float *params)
{
    bool f64 = !strcmp(t->dtype, "F64"), counter = e->map == MAP_COUNTER;
    size_t item = counter || f64 ? 8 : 4, bytes;
    bool same = t->ndim == e->ndim || (counter && t->ndim == 1 && t->shape[0] == 1);  /* a scalar, or [1] */
    for (int d = 0; same && d < e->ndim; d++)
        same = t->shape[d] == e->shape[d];
    if (counter ? strcmp(t->dtype, "I64") != 0 : !f64 && strcmp(t->dtype, "F32") != 0)
        return nr__fail(NR_EFORMAT, "%s: tensor '%s' is %s; neurite reads %s", r->path, t->name, t->dtype,
                        counter ? "I64" : "F32 or F64");
    if (!same) {
        char file[96], ours[96];
        shape_text(t->shape, t->ndim, file);
        shape_text(e->shape, e->ndim, ours);
        return nr__fail(NR_EFORMAT, "%s: tensor '%s' is %s, the network's is %s (`neurite info` shows the "
                                    "network as a PyTorch Sequential)", r->path, t->name, file, ours);
    }
    if (!nr__mul(e->count, item, &bytes) || t->end - t->begin != bytes || t->end > data_len)
        return nr__fail(NR_EFORMAT, "%s: tensor '%s' has data_offsets [%zu, %zu] for %zu bytes of a %zu-byte data "
                                    "section", r->path, t->name, t->begin, t->end, bytes, data_len);
    for (size_t j = 0; !counter && j < e->count; j++) {
        const unsigned char *at = data + t->begin + j * item;
        double v;
        float f;
        if (f64) {
            uint64_t u = nr__get_u64le(at);
            memcpy(&v, &u, 8);
        } else {
            nr__floats_from_le(&f, at, 1);
            v = f;
        }
        if (!isfinite(v) || fabs(v) > FLT_MAX)
            return nr__fail(NR_EFORMAT, "%s: tensor '%s' holds %s at element %zu", r->path, t->name,
                            isnan(v) ? "NaN" : "an infinity or a value beyond float", j);
        params[neurite_index(e, j)] = (float)v;
    }
    return NR_OK;
}

/* Every tensor of the network from the file, and nothing else in it (num_batches_tracked may be absent). */
static nr_status match(reader *r, const entry *list, size_t n, const unsigned char *data, size_t data_len,
                       float *params)
{
    if (r->n)  /* a header of no tensors has no array: qsort and bsearch take no NULL, even for 0 items */
        qsort(r->tensors, r->n, sizeof *r->tensors, by_name);
    for (size_t i = 1; i < r->n; i++)
        if (!strcmp(r->tensors[i].name, r->tensors[i - 1].name))
            return bad_header(r, "a tensor is named twice");
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        found key;
        memcpy(key.name, list[i].name, sizeof list[i].name);
        key.name[sizeof list[i].name - 1] = '\0';
        const found *t = r->n ? bsearch(&key, r->tensors, r->n, sizeof *r->tensors, by_name) : NULL;
        if (!t && list[i].map == MAP_COUNTER)
            continue;
        if (!t)
            return nr__fail(NR_EFORMAT, "%s: tensor '%s' is missing (`neurite info` shows the network as the "
                                        "PyTorch Sequential whose state_dict it reads)", r->path, list[i].name);
        nr_status st = take(r, &list[i], t, data, data_len, params);
        if (st)
            return st;
        used++;
    }
    for (size_t i = 0; used < r->n && i < r->n; i++) {
        bool known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = !strcmp(list[k].name, r->tensors[i].name);
        if (!known)
            return nr__fail(NR_EFORMAT, "%s: tensor '%s' is not one of the network's (is it the same "
                                        "architecture?)", r->path, r->tensors[i].name);
    }
    return NR_OK;
}

nr_status nr_safetensors_import(nr_net *net, const char *path)
{
    if (!net || !path)
        return nr__fail(NR_EINVAL, "nr_safetensors_import: NULL argument");
    unsigned char *file;
    size_t len;
    nr_status st = nr__read_file(path, MAX_FILE, &file, &len);
    if (st)
        return st;
    reader r = {.path = path};
    uint64_t header = len >= 8 ? nr__get_u64le(file) : 0;
    entry *list = calloc(5 * net->n_layers + 1, sizeof *list);
    float *params = malloc((net->n_params ? net->n_params : 1) * sizeof *params);
    if (!list || !params)
        st = nr__fail(NR_ENOMEM, "out of memory");
    else if (len < 8 || header < 2 || header > MAX_HEADER || header > len - 8)
        st = nr__fail(NR_EFORMAT, "%s: not a safetensors file (its header length %llu does not fit its %zu bytes)",
                      path, (unsigned long long)header, len);
    if (!st) {
        r.p = (const char *)file + 8;
        r.end = r.p + header;
        st = read_header(&r);
    }
    if (!st) {
        memcpy(params, net->params, net->n_params * sizeof *params);
        st = match(&r, list, entries(net, list), file + 8 + header, len - 8 - (size_t)header, params);
    }
    if (!st) {
        nr__net_weights_changed(net);
        memcpy(net->params, params, net->n_params * sizeof *params);
    }
    free(r.tensors);
    free(params);
    free(list);
    free(file);
    return st;
}
