/* model_quant.c - the QUNT section of a model file (format version 3, docs/format.md): a quantized network's
 * int8 layers, in place of the float tensors (TENS). Per layer its kind and output scale and zero point; a
 * matrix product adds its int8 weights, per-output weight scales, 32-bit biases, multipliers and shifts; an
 * element-wise layer its table of 256 bytes. Everything is read as hostile: every size against the
 * architecture and the section's length, every scale finite and positive, every shift in range, and each
 * layer's kind against its architecture's layer. The float weights are then the dequantized bytes. */
#include "io/model.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>

static void put_i32s(nr__sink *s, const int32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nr__put_u32(s, (uint32_t)v[i]);
}

static void put_quant(nr__sink *s, const void *ctx)
{
    const nr_net *net = ctx;
    const nr__qnet *q = net->q;
    nr__put_u32(s, (uint32_t)q->method);
    nr__put_u64(s, q->samples);
    nr__put_f64(s, q->percentile);
    nr__put_f32(s, q->input.scale);
    nr__put_u32(s, (uint32_t)q->input.zero);
    nr__put_u64(s, net->n_layers);
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr__qlayer *l = &q->layers[i];
        nr__put_u8(s, (uint8_t)l->kind);
        nr__put_f32(s, l->out.scale);
        nr__put_u32(s, (uint32_t)l->out.zero);
        if (l->kind == NR__Q_MATMUL) {
            nr__put_u64(s, l->k);
            nr__put_u64(s, l->n);
            nr__put(s, l->w, l->k * l->n);
            nr__put_floats(s, l->w_scale, l->n);
            put_i32s(s, l->bias, l->n);
            put_i32s(s, l->mult, l->n);
            put_i32s(s, l->shift, l->n);
        } else if (l->kind == NR__Q_TABLE) {
            nr__put(s, l->table, 256);
        }
    }
}

void nr__put_quant_section(nr__sink *s, const nr_net *net) { nr__put_section(s, "QUNT", put_quant, net); }

/* ---- reading ---- */

static bool get_params(nr__reader *r, nr__qparams *p, const char *what, size_t i)
{
    uint32_t zero;
    if (!nr__get_f32(r, &p->scale) || !nr__get_u32(r, &zero))
        return false;
    p->zero = (int32_t)zero;
    if (!(isfinite(p->scale) && p->scale > 0) || zero > 255)
        return nr__reader_fail(r, "%s %zu: scale %g, zero point %u (a positive scale and 0 to 255)", what, i,
                               (double)p->scale, zero);
    return true;
}

static bool get_i32s(nr__reader *r, int32_t **v, size_t n)
{
    if (!(*v = malloc(n * sizeof **v))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (!nr__get_u32(r, &u))
            return false;
        (*v)[i] = (int32_t)u;
    }
    return true;
}

/* The kind a layer of the architecture may have in int8. */
static bool kind_fits(const nr_layer *l, int kind)
{
    const nr_layer_ops *o = l->ops;
    if (o == &nr__dense_ops || o == &nr__conv2d_ops)
        return kind == NR__Q_MATMUL;
    if (o == &nr__maxpool_ops)
        return kind == NR__Q_MAXPOOL;
    if (o == &nr__avgpool_ops)
        return kind == NR__Q_AVGPOOL;
    if (o == &nr__relu_ops || o == &nr__leaky_relu_ops || o == &nr__sigmoid_ops || o == &nr__tanh_ops ||
        o == &nr__identity_ops)
        return kind == NR__Q_TABLE || kind == NR__Q_COPY;
    return o == &nr__flatten_ops && kind == NR__Q_COPY;
}

static bool read_matmul(nr__reader *r, const nr_layer *l, nr__qlayer *ql, size_t i)
{
    uint64_t k, n;
    bool dense = l->ops == &nr__dense_ops;
    size_t want_n = dense ? l->out_size : l->out_shape[2];
    size_t want_k = dense ? l->in_size : (size_t)(l->ints[1] * l->ints[1]) * l->in_shape[2];
    if (!nr__get_u64(r, &k) || !nr__get_u64(r, &n))
        return false;
    if (k != want_k || n != want_n || k > (uint64_t)(r->end - r->p) / (n ? n : 1))
        return nr__reader_fail(r, "layer %zu: %llu x %llu weights, the architecture has %zu x %zu", i,
                               (unsigned long long)k, (unsigned long long)n, want_k, want_n);
    ql->k = (size_t)k;
    ql->n = (size_t)n;
    if (!(ql->w = malloc(ql->k * ql->n)) || !(ql->w_scale = malloc(ql->n * sizeof(float)))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    if (!nr__get(r, ql->w, ql->k * ql->n) || !nr__get_floats(r, ql->w_scale, ql->n) || !get_i32s(r, &ql->bias, ql->n) ||
        !get_i32s(r, &ql->mult, ql->n) || !get_i32s(r, &ql->shift, ql->n))
        return false;
    for (size_t o = 0; o < ql->n; o++)
        if (!(isfinite(ql->w_scale[o]) && ql->w_scale[o] > 0) || ql->mult[o] < 0 || ql->shift[o] < -30 ||
            ql->shift[o] > 31 || ql->bias[o] < -(1 << 29) || ql->bias[o] > (1 << 29))
            return nr__reader_fail(r, "layer %zu, output %zu: weight scale %g, multiplier %d, shift %d, bias %d out "
                                      "of range", i, o, (double)ql->w_scale[o], ql->mult[o], ql->shift[o],
                                   ql->bias[o]);
    for (size_t p = 0; p < ql->k * ql->n; p++)
        if (ql->w[p] == -128)
            return nr__reader_fail(r, "layer %zu: a weight of -128 (int8 weights are -127 to 127)", i);
    return true;
}

/* The float tensors of layer i: what its bytes stand for. */
static void dequantize(nr_net *net, size_t i)
{
    const nr__qlayer *ql = &net->q->layers[i];
    const nr_layer *l = &net->layers[i];
    float in = nr__q_in(net->q, i).scale;
    for (int t = 0; t < l->n_tensors; t++) {
        float *v = net->params + l->tensor_offset[t];
        bool w = strcmp(l->tensors[t].suffix, "w") == 0;
        for (size_t p = 0; w && p < ql->k * ql->n; p++)
            v[p] = ql->w_scale[p % ql->n] * ql->w[p];
        for (size_t o = 0; !w && o < ql->n; o++)
            v[o] = (float)(ql->bias[o] * ((double)in * ql->w_scale[o]));
    }
}

static bool read_layers(nr__reader *r, nr_net *net)
{
    nr__qnet *q = net->q;
    for (size_t i = 0; i < net->n_layers; i++) {
        nr__qlayer *ql = &q->layers[i];
        uint8_t kind;
        if (!nr__get_u8(r, &kind) || !get_params(r, &ql->out, "layer", i))
            return false;
        if (!kind_fits(&net->layers[i], kind))
            return nr__reader_fail(r, "layer %zu (%s) cannot be of int8 kind %u", i, net->layers[i].ops->tag, kind);
        ql->kind = (nr__qkind)kind;
        if (kind == NR__Q_TABLE && !nr__get(r, ql->table, 256))
            return false;
        if (kind == NR__Q_MATMUL) {
            bool bias = net->layers[i].ops == &nr__dense_ops ? net->layers[i].ints[1] : net->layers[i].ints[4];
            if (!bias)
                return nr__reader_fail(r, "layer %zu: an int8 matrix product without a bias in the architecture", i);
            if (!read_matmul(r, &net->layers[i], ql, i))
                return false;
            dequantize(net, i);
        }
    }
    return true;
}

bool nr__read_quant(nr__reader *r, nr_net *net)
{
    uint32_t method;
    uint64_t samples, layers;
    double percentile;
    nr__qparams input;
    if (!nr__get_u32(r, &method) || !nr__get_u64(r, &samples) || !nr__get_f64(r, &percentile) ||
        !get_params(r, &input, "input", 0) || !nr__get_u64(r, &layers))
        return false;
    if (method > NR_CALIB_PERCENTILE || !(percentile >= 0 && percentile <= 100) || layers != net->n_layers)
        return nr__reader_fail(r, "calibration method %u, percentile %g, %llu layers for %zu", method, percentile,
                               (unsigned long long)layers, net->n_layers);
    if (net->q)
        return nr__reader_fail(r, "appears twice");
    if (!(net->q = calloc(1, sizeof *net->q)) || !(net->q->layers = calloc(net->n_layers, sizeof(nr__qlayer)))) {
        r->st = nr__fail(NR_ENOMEM, "out of memory");
        return false;
    }
    *net->q = (nr__qnet){.method = (int)method, .samples = (size_t)samples, .percentile = percentile,
                         .input = input, .layers = net->q->layers, .n_layers = net->n_layers};
    if (!read_layers(r, net))
        return false;
    nr_status st = nr__qnet_prepare(net);
    if (st)
        r->st = st;
    return st == NR_OK;
}
