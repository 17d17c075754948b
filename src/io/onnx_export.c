/* onnx_export.c - a network as an ONNX model (docs/interop.md), opset 13, for ONNX Runtime, OpenCV, TensorRT
 * and the rest of the ONNX world.
 *
 * The graph reads what nr_net_predict reads: raw inputs, flat (N, F) or channels-last images (N, H, W, C),
 * with N free. The input scaling becomes Sub and Mul; an image is transposed once to ONNX's NCHW for the
 * convolutions; where neurite flattens an image, the graph transposes it back to channels-last first, so
 * every dense layer's weights are written exactly as neurite holds them; a classifier ends in Softmax (or
 * gives its logits), a regression in Div and Add that bring its targets back to their units. The importer
 * (onnx_import.c) reads all of this back to the same network, weights bit for bit. An int8 network
 * (docs/quantization.md) is written in QDQ form: its bytes, scales and zero points as QuantizeLinear and
 * DequantizeLinear around the float operators, weights as int8 constants, biases as int32, which ONNX
 * Runtime and TensorRT turn into their own int8 kernels. The message is built with protobuf-c and written
 * whole or not at all. */
#include "io/model.h"
#include "io/onnx.h"
#include "quant/quant.h"

#include <stdarg.h>
#include <stdlib.h>

#ifndef NR_HAVE_ONNX

nr_status nr_onnx_export(const nr_net *net, const char *path, int logits)
{
    (void)net;
    (void)logits;
    return nr__fail(NR_EINVAL, "%s: this neurite was built without ONNX support (install libprotobuf-c-dev, "
                               "protobuf-c-compiler and python3-onnx, and rebuild)", path ? path : "");
}

#else

#define OPSET 13
#define IR_VERSION 7 /* the IR of opset 13, so that older runtimes read the file */

/* The model as it is built: every node and constant, and every allocation, freed together at the end. */
typedef struct builder {
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **consts;
    size_t n_consts, cap_consts;
    void **owned;
    size_t n_owned, cap_owned;
    bool failed;        /* out of memory somewhere: the model is not written */
    const char *value;  /* the name of the value that carries the activation */
    bool image;         /* that value is an NCHW image */
    size_t h, w, c, features;
    int serial;         /* makes names unique */
} builder;

static bool grow(void ***items, size_t *cap, size_t n)
{
    if (n < *cap)
        return true;
    size_t next = *cap ? 2 * *cap : 16;
    void **p = realloc(*items, next * sizeof *p);
    if (!p)
        return false;
    *items = p;
    *cap = next;
    return true;
}

/* Takes ownership of `p` (freed with the builder); NULL marks the build failed. */
static void *own(builder *b, void *p)
{
    if (!p || !grow(&b->owned, &b->cap_owned, b->n_owned)) {
        free(p);
        b->failed = true;
        return NULL;
    }
    return b->owned[b->n_owned++] = p;
}

static void *alloc(builder *b, size_t bytes) { return own(b, calloc(1, bytes ? bytes : 1)); }

static char *text(builder *b, const char *fmt, ...) NR_PRINTF(2, 3);
static char *text(builder *b, const char *fmt, ...)
{
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = alloc(b, strlen(buf) + 1);
    return s ? strcpy(s, buf) : NULL;
}

/* ---- constants ---- */

static Onnx__TensorProto *new_const(builder *b, const char *name, int type, const int64_t *dims, size_t ndims,
                                    size_t bytes)
{
    Onnx__TensorProto *t = alloc(b, sizeof *t);
    int64_t *d = alloc(b, ndims * sizeof *d);
    uint8_t *raw = alloc(b, bytes);
    if (!t || !d || !raw || !name || !grow((void ***)&b->consts, &b->cap_consts, b->n_consts))
        return b->failed = true, NULL;
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    if (ndims)
        memcpy(d, dims, ndims * sizeof *d);
    t->n_dims = ndims;
    t->dims = d;
    t->has_data_type = true;
    t->data_type = type;
    t->name = text(b, "%s", name);
    t->has_raw_data = true;
    t->raw_data = (ProtobufCBinaryData){bytes, raw};
    return b->consts[b->n_consts++] = t;
}

/* A float constant: `count` values, stored little-endian as ONNX's raw_data says. */
static const char *floats(builder *b, const char *name, const int64_t *dims, size_t ndims, const float *v,
                          size_t count)
{
    Onnx__TensorProto *t = new_const(b, name, ONNX_FLOAT, dims, ndims, 4 * count);
    if (!t)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        nr__put_u32le(t->raw_data.data + 4 * i, u);
    }
    return t->name;
}

static const char *int64s(builder *b, const char *name, const int64_t *v, size_t count)
{
    int64_t dims[1] = {(int64_t)count};
    Onnx__TensorProto *t = new_const(b, name, ONNX_INT64, dims, 1, 8 * count);
    for (size_t i = 0; t && i < count; i++)
        nr__put_u64le(t->raw_data.data + 8 * i, (uint64_t)v[i]);
    return t ? t->name : NULL;
}

/* ---- nodes ---- */

/* A node of operator `op` on the current value and `extra` further inputs (NULL ends them); its output
 * becomes the current value. */
static Onnx__NodeProto *node(builder *b, const char *op, const char *label, ...)
{
    Onnx__NodeProto *n = alloc(b, sizeof *n);
    char **in = alloc(b, 6 * sizeof *in), **out = alloc(b, sizeof *out);
    if (!n || !in || !out || !label || !grow((void ***)&b->nodes, &b->cap_nodes, b->n_nodes))
        return b->failed = true, NULL;
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    in[n->n_input++] = (char *)b->value;
    va_list ap;
    va_start(ap, label);
    for (const char *s; n->n_input < 6 && (s = va_arg(ap, const char *));)
        in[n->n_input++] = (char *)s;
    va_end(ap);
    n->input = in;
    n->output = out;
    n->n_output = 1;
    n->op_type = (char *)op;
    n->name = text(b, "%s", label);
    out[0] = text(b, "%s_out", label);
    b->value = out[0];
    return b->nodes[b->n_nodes++] = n;
}

static Onnx__AttributeProto *new_attr(builder *b, Onnx__NodeProto *n, const char *name)
{
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    Onnx__AttributeProto **list = alloc(b, (n ? n->n_attribute + 1 : 1) * sizeof *list);
    if (!a || !list || !n)
        return b->failed = true, NULL;
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    if (n->n_attribute)
        memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

static void attr_int(builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(b, n, name);
    if (a) {
        a->has_type = true;
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = true;
        a->i = v;
    }
}

static void attr_float(builder *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = new_attr(b, n, name);
    if (a) {
        a->has_type = true;
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = true;
        a->f = v;
    }
}

static void attr_ints(builder *b, Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count)
{
    Onnx__AttributeProto *a = new_attr(b, n, name);
    int64_t *copy = alloc(b, count * sizeof *copy);
    if (a && copy) {
        a->has_type = true;
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        memcpy(copy, v, count * sizeof *copy);
        a->n_ints = count;
        a->ints = copy;
    }
}

static void transpose(builder *b, const char *label, int64_t p1, int64_t p2, int64_t p3)
{
    const int64_t perm[4] = {0, p1, p2, p3};
    attr_ints(b, node(b, "Transpose", label, NULL), "perm", perm, 4);
}

/* An NCHW image back to channels-last and flat, as neurite flattens it: (N, H*W*C). */
static void flatten_channels_last(builder *b, size_t i, bool as_flatten)
{
    transpose(b, text(b, "to_channels_last_%zu", i), 2, 3, 1);
    if (as_flatten) {
        attr_int(b, node(b, "Flatten", text(b, "flatten_%zu", i), NULL), "axis", 1);
    } else {
        static const int64_t shape[2] = {0, -1};
        node(b, "Reshape", text(b, "reshape_%zu", i), int64s(b, text(b, "shape_%zu", i), shape, 2), NULL);
    }
    b->image = false;
    b->features = b->h * b->w * b->c;
}

/* ---- int8 networks: QDQ ---- */

/* A constant of `count` int8 or uint8 bytes, or int32 values (`type`). */
static const char *int_const(builder *b, const char *name, int type, const int64_t *dims, size_t ndims,
                             const void *v, size_t count)
{
    size_t width = type == ONNX_INT32 ? 4 : 1;
    Onnx__TensorProto *t = new_const(b, name, type, dims, ndims, width * count);
    if (t && width == 1)
        memcpy(t->raw_data.data, v, count);
    for (size_t i = 0; t && width == 4 && i < count; i++)
        nr__put_u32le(t->raw_data.data + 4 * i, (uint32_t)((const int32_t *)v)[i]);
    return t ? t->name : NULL;
}

/* DequantizeLinear of a constant, one scale per index of `axis`; the activation stays where it was. */
static const char *dequantize_const(builder *b, const char *label, const char *q, const char *scale,
                                    const char *zero, int64_t axis)
{
    const char *activation = b->value;
    b->value = q;
    Onnx__NodeProto *n = node(b, "DequantizeLinear", label, scale, zero, NULL);
    if (n)
        attr_int(b, n, "axis", axis);
    const char *out = b->value;
    b->value = activation;
    return n ? out : NULL;
}

/* The activation made bytes and back, where neurite holds it as bytes with these parameters. */
static void put_qdq(builder *b, const char *label, nr__qparams p)
{
    const uint8_t zero = (uint8_t)p.zero;
    const char *s = floats(b, text(b, "%s.scale", label), NULL, 0, &p.scale, 1);
    const char *z = int_const(b, text(b, "%s.zero_point", label), ONNX_UINT8, NULL, 0, &zero, 1);
    node(b, "QuantizeLinear", text(b, "%s_quantize", label), s, z, NULL);
    node(b, "DequantizeLinear", text(b, "%s_dequantize", label), s, z, NULL);
}

/* Layer i's int8 weights `w8` (in ONNX's layout, the output axis first for a convolution, last for Gemm) and
 * 32-bit bias, each with its DequantizeLinear: the bias's scale is the input's times the weight's. */
static void int8_weights(builder *b, const nr_net *net, size_t i, const char *kind, const int8_t *w8,
                         const int64_t *wd, size_t ndims, const char **w, const char **bias)
{
    const nr__qlayer *ql = &net->q->layers[i];
    const float in = nr__q_in(net->q, i).scale;
    const int64_t nd[1] = {(int64_t)ql->n};
    int8_t *w_zero = alloc(b, ql->n);
    int32_t *b_zero = alloc(b, ql->n * sizeof *b_zero);
    float *b_scale = alloc(b, ql->n * sizeof *b_scale);
    *w = *bias = NULL;
    if (!w_zero || !b_zero || !b_scale)
        return;
    for (size_t o = 0; o < ql->n; o++)
        b_scale[o] = in * ql->w_scale[o];
    const char *wq = int_const(b, text(b, "%s_%zu.weight_quantized", kind, i), ONNX_INT8, wd, ndims, w8, ql->k * ql->n);
    const char *ws = floats(b, text(b, "%s_%zu.weight_scale", kind, i), nd, 1, ql->w_scale, ql->n);
    const char *wz = int_const(b, text(b, "%s_%zu.weight_zero_point", kind, i), ONNX_INT8, nd, 1, w_zero, ql->n);
    *w = dequantize_const(b, text(b, "%s_%zu.weight", kind, i), wq, ws, wz, ndims == 2 ? 1 : 0);
    const char *bq = int_const(b, text(b, "%s_%zu.bias_quantized", kind, i), ONNX_INT32, nd, 1, ql->bias, ql->n);
    const char *bs = floats(b, text(b, "%s_%zu.bias_scale", kind, i), nd, 1, b_scale, ql->n);
    const char *bz = int_const(b, text(b, "%s_%zu.bias_zero_point", kind, i), ONNX_INT32, nd, 1, b_zero, ql->n);
    *bias = dequantize_const(b, text(b, "%s_%zu.bias", kind, i), bq, bs, bz, 0);
}

/* Whether neurite holds layer i's output as new bytes, which the graph then quantizes: not a copy (except the
 * ReLU a matrix product's bytes already obey), not the last matrix product (its sums are the outputs), and
 * not a matrix product whose ReLU comes next (the bytes are made after the ReLU, as ONNX Runtime fuses it). */
static bool makes_bytes(const nr_net *net, size_t i)
{
    const nr__qnet *q = net->q;
    bool relu_next = i + 1 < net->n_layers && net->layers[i + 1].ops == &nr__relu_ops &&
                     q->layers[i + 1].kind == NR__Q_COPY;
    if (q->layers[i].kind == NR__Q_MATMUL)
        return i + 1 < net->n_layers && !relu_next;
    if (q->layers[i].kind == NR__Q_COPY)
        return i > 0 && net->layers[i].ops == &nr__relu_ops && q->layers[i - 1].kind == NR__Q_MATMUL;
    return true;
}

/* ---- layers ---- */

static const float *tensor_of(const nr_net *net, size_t i, const char *suffix)
{
    const nr_layer *l = &net->layers[i];
    for (int k = 0; k < l->n_tensors; k++)
        if (strcmp(l->tensors[k].suffix, suffix) == 0)
            return net->params + l->tensor_offset[k];
    return NULL;
}

static void put_dense(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    if (b->image)
        flatten_channels_last(b, i, false);
    const int64_t wd[2] = {(int64_t)l->in_size, (int64_t)l->out_size}, bd[1] = {(int64_t)l->out_size};
    const char *w, *bias = NULL;
    if (net->q) {
        int8_weights(b, net, i, "dense", net->q->layers[i].w, wd, 2, &w, &bias);
    } else {
        w = floats(b, text(b, "dense_%zu.weight", i), wd, 2, tensor_of(net, i, "w"), l->in_size * l->out_size);
        if (l->ints[1])
            bias = floats(b, text(b, "dense_%zu.bias", i), bd, 1, tensor_of(net, i, "b"), l->out_size);
    }
    node(b, "Gemm", text(b, "dense_%zu", i), w, bias, NULL);
}

static void put_conv(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    const size_t k = (size_t)l->ints[1], cin = l->in_shape[2], cout = l->out_shape[2];
    float *oihw = alloc(b, k * k * cin * cout * sizeof *oihw);
    int8_t *oihw8 = net->q ? alloc(b, k * k * cin * cout) : NULL;
    const float *hwio = tensor_of(net, i, "w");
    const int8_t *hwio8 = net->q ? net->q->layers[i].w : NULL;
    for (size_t u = 0; oihw && u < k; u++)
        for (size_t v = 0; v < k; v++)
            for (size_t ci = 0; ci < cin; ci++)
                for (size_t co = 0; co < cout; co++) {
                    size_t to = nr__conv_oihw(u, v, ci, co, k, cin), from = nr__conv_hwio(u, v, ci, co, k, cin, cout);
                    oihw[to] = hwio[from];
                    if (oihw8)
                        oihw8[to] = hwio8[from];
                }
    const int64_t wd[4] = {(int64_t)cout, (int64_t)cin, (int64_t)k, (int64_t)k}, bd[1] = {(int64_t)cout};
    const char *w = NULL, *bias = NULL;
    if (net->q && oihw8)
        int8_weights(b, net, i, "conv", oihw8, wd, 4, &w, &bias);
    else if (!net->q && oihw)
        w = floats(b, text(b, "conv_%zu.weight", i), wd, 4, oihw, k * k * cin * cout);
    if (!net->q && l->ints[4])
        bias = floats(b, text(b, "conv_%zu.bias", i), bd, 1, tensor_of(net, i, "b"), cout);
    Onnx__NodeProto *n = node(b, "Conv", text(b, "conv_%zu", i), w, bias, NULL);
    const int64_t kernel[2] = {(int64_t)k, (int64_t)k}, strides[2] = {l->ints[2], l->ints[2]},
                  pads[4] = {l->ints[3], l->ints[3], l->ints[3], l->ints[3]};
    attr_ints(b, n, "kernel_shape", kernel, 2);
    attr_ints(b, n, "strides", strides, 2);
    attr_ints(b, n, "pads", pads, 4);
}

static void put_pool(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    bool max = l->ops == &nr__maxpool_ops;
    Onnx__NodeProto *n = node(b, max ? "MaxPool" : "AveragePool", text(b, "%s_%zu", max ? "maxpool" : "avgpool", i),
                              NULL);
    const int64_t kernel[2] = {l->ints[0], l->ints[0]}, strides[2] = {l->ints[1], l->ints[1]};
    attr_ints(b, n, "kernel_shape", kernel, 2);
    attr_ints(b, n, "strides", strides, 2);
}

static void put_batchnorm(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    static const char *const parts[4] = {"gamma", "beta", "mean", "var"};
    const char *names[4];
    const int64_t d[1] = {(int64_t)l->in_shape[2]};
    for (int k = 0; k < 4; k++)
        names[k] = floats(b, text(b, "batchnorm_%zu.%s", i, parts[k]), d, 1, tensor_of(net, i, parts[k]),
                          l->in_shape[2]);
    Onnx__NodeProto *n = node(b, "BatchNormalization", text(b, "batchnorm_%zu", i), names[0], names[1], names[2],
                              names[3], NULL);
    attr_float(b, n, "epsilon", l->floats[1]);
    attr_float(b, n, "momentum", 1.0f - l->floats[0]);  /* ONNX weighs the running value, neurite the batch */
}

/* Activations, dropout, flatten: false for a layer kind ONNX export does not know. */
static bool put_simple(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    const nr_layer_ops *ops = l->ops;
    static const struct { const nr_layer_ops *ops; const char *op; } acts[] = {
        {&nr__relu_ops, "Relu"}, {&nr__sigmoid_ops, "Sigmoid"}, {&nr__tanh_ops, "Tanh"},
        {&nr__identity_ops, "Identity"}};
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++)
        if (ops == acts[k].ops)
            return node(b, acts[k].op, text(b, "%s_%zu", acts[k].op, i), NULL), true;
    if (ops == &nr__leaky_relu_ops)
        attr_float(b, node(b, "LeakyRelu", text(b, "LeakyRelu_%zu", i), NULL), "alpha", l->floats[0]);
    else if (ops == &nr__dropout_ops)
        node(b, "Dropout", text(b, "dropout_%zu", i), floats(b, text(b, "dropout_%zu.ratio", i), NULL, 0,
                                                             &l->floats[0], 1), NULL);
    else if (ops == &nr__flatten_ops && b->image)
        flatten_channels_last(b, i, true);
    else if (ops == &nr__flatten_ops)
        attr_int(b, node(b, "Flatten", text(b, "flatten_%zu", i), NULL), "axis", 1);
    else
        return false;
    return true;
}

static nr_status put_layer(builder *b, const nr_net *net, size_t i)
{
    const nr_layer *l = &net->layers[i];
    if (l->ops == &nr__dense_ops)
        put_dense(b, net, i);
    else if (l->ops == &nr__conv2d_ops)
        put_conv(b, net, i);
    else if (l->ops == &nr__maxpool_ops || l->ops == &nr__avgpool_ops)
        put_pool(b, net, i);
    else if (l->ops == &nr__batchnorm_ops)
        put_batchnorm(b, net, i);
    else if (l->ops == &nr__softmax_ops && !b->image)
        attr_int(b, node(b, "Softmax", text(b, "softmax_%zu", i), NULL), "axis", -1);
    else if (!put_simple(b, net, i))
        return nr__fail(NR_EINVAL, "layer %zu (%s) has no ONNX form neurite writes", i, l->ops->tag);
    b->image = b->image && l->ops != &nr__dense_ops && l->ops != &nr__flatten_ops;
    b->h = l->out_shape[0];
    b->w = l->out_shape[1];
    b->c = l->out_shape[2];
    b->features = l->out_size;
    return NR_OK;
}

/* ---- the graph ---- */

/* A float tensor's type: (N, dims...) with N named, so any batch size runs. */
static Onnx__ValueInfoProto *value_info(builder *b, const char *name, const size_t *dims, size_t ndims)
{
    Onnx__ValueInfoProto *v = alloc(b, sizeof *v);
    Onnx__TypeProto *t = alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *shape = alloc(b, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **d = alloc(b, (ndims + 1) * sizeof *d);
    for (size_t k = 0; d && k <= ndims; k++)
        if ((d[k] = alloc(b, sizeof *d[k]))) {
            *d[k] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
            d[k]->value_case = k ? ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                                 : ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            if (k)
                d[k]->dim_value = (int64_t)dims[k - 1];
            else
                d[k]->dim_param = "N";
        }
    if (b->failed)
        return NULL;
    *shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape->n_dim = ndims + 1;
    shape->dim = d;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = true;
    tt->elem_type = ONNX_FLOAT;
    tt->shape = shape;
    *t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = (char *)name;
    v->type = t;
    return v;
}

/* The input scaling, (x - shift) * scale, on the raw input (channels-last, as the file holds it). */
static void put_scaling(builder *b, const nr_net *net)
{
    const nr__scaling *s = &net->scaling;
    if (!s->kind)
        return;
    int64_t dims[3] = {(int64_t)net->in_shape[0], (int64_t)net->in_shape[1], (int64_t)net->in_shape[2]};
    size_t ndims = s->count == 1 ? 0 : b->image ? 3 : 1;
    if (ndims == 1)
        dims[0] = (int64_t)net->in_size;
    node(b, "Sub", "input_shift", floats(b, "input.shift", dims, ndims, s->shift, s->count), NULL);
    node(b, "Mul", "input_scale", floats(b, "input.scale", dims, ndims, s->scale, s->count), NULL);
}

/* After the last layer: outputs flat in neurite's order, a classifier's Softmax, a regression's units. */
static nr_status put_head(builder *b, const nr_net *net, bool logits)
{
    if (b->image)  /* a Reshape, not a Flatten: the importer reads a Flatten as a layer the network lacks */
        flatten_channels_last(b, net->n_layers, false);
    if (net->head == NR_LOSS_XENT && !logits)
        attr_int(b, node(b, "Softmax", "probabilities", NULL), "axis", -1);
    if (net->n_targets) {
        const int64_t d[1] = {(int64_t)net->n_targets};
        node(b, "Div", "targets_scale", floats(b, "targets.scale", d, 1, net->target_scale, net->n_targets), NULL);
        node(b, "Add", "targets_mean", floats(b, "targets.mean", d, 1, net->target_mean, net->n_targets), NULL);
    }
    return NR_OK;
}

/* Whether the network reads images: more than one pixel (even when a dense layer flattens them at once: the
 * model keeps its input's shape, for images given to predict), or a layer that needs an image (a 1 x 1 x C
 * input would otherwise pass for C features). */
static bool reads_images(const nr_net *net)
{
    bool spatial = net->in_shape[0] * net->in_shape[1] > 1;
    for (size_t i = 0; i < net->n_layers && !spatial; i++) {
        const nr_layer_ops *ops = net->layers[i].ops;
        if (ops == &nr__dense_ops || ops == &nr__flatten_ops)
            break;
        spatial = ops == &nr__conv2d_ops || ops == &nr__maxpool_ops || ops == &nr__avgpool_ops;
    }
    return spatial;
}

static nr_status build_graph(builder *b, const nr_net *net, bool logits, Onnx__GraphProto *g)
{
    b->image = reads_images(net);
    b->value = "input";
    const size_t flat[1] = {net->in_size};
    Onnx__ValueInfoProto *in = value_info(b, "input", b->image ? net->in_shape : flat, b->image ? 3 : 1);
    put_scaling(b, net);
    if (net->q)
        put_qdq(b, "input_bytes", net->q->input);
    if (b->image)
        transpose(b, "to_nchw", 3, 1, 2);
    b->h = net->in_shape[0];
    b->w = net->in_shape[1];
    b->c = net->in_shape[2];
    nr_status st = NR_OK;
    for (size_t i = 0; i < net->n_layers && !st; i++)
        if (!(st = put_layer(b, net, i)) && net->q && makes_bytes(net, i))
            put_qdq(b, text(b, "layer_%zu", i), net->q->layers[i].out);
    if (!st)
        st = put_head(b, net, logits);
    if (!st && b->n_nodes)  /* name the graph's output "output" */
        b->nodes[b->n_nodes - 1]->output[0] = (char *)(b->value = "output");
    const size_t out_dims[1] = {b->features};
    Onnx__ValueInfoProto *out = value_info(b, "output", out_dims, 1), **ins = alloc(b, sizeof *ins),
                         **outs = alloc(b, sizeof *outs);
    if (st || b->failed)
        return st ? st : nr__fail(NR_ENOMEM, "out of memory while building the ONNX model");
    ins[0] = in;
    outs[0] = out;
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    g->name = "neurite";
    g->n_node = b->n_nodes;
    g->node = b->nodes;
    g->n_initializer = b->n_consts;
    g->initializer = b->consts;
    g->n_input = 1;
    g->input = ins;
    g->n_output = 1;
    g->output = outs;
    return NR_OK;
}

/* Base64 of `len` bytes, for a metadata string (protobuf strings must be UTF-8). */
static char *base64(builder *b, const unsigned char *data, size_t len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = alloc(b, 4 * ((len + 2) / 3) + 1), *o = out;
    for (size_t i = 0; out && i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0) |
                     (i + 2 < len ? data[i + 2] : 0);
        *o++ = digits[v >> 18];
        *o++ = digits[v >> 12 & 63];
        *o++ = i + 1 < len ? digits[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? digits[v & 63] : '=';
    }
    if (out)
        *o = '\0';
    return out;
}

/* What ONNX has no place for but neurite's importer reads back: the kind of input scaling, and what the
 * network knows of its data (a table's columns, a regression's target names, the class names) as the
 * sections of neurite's own model file, in base64. */
static void put_metadata(builder *b, const nr_net *net, Onnx__ModelProto *m)
{
    static const char *const kinds[] = {"none", "unit", "standard"};
    nr__sink measure = {0};
    nr__put_data_sections(&measure, net);
    unsigned char *sections = measure.length ? alloc(b, (size_t)measure.length) : NULL;
    nr__sink fill = {.mem = sections};
    if (sections)
        nr__put_data_sections(&fill, net);
    Onnx__StringStringEntryProto **props = alloc(b, 2 * sizeof *props);
    for (size_t k = 0; props && k < (sections ? 2u : 1u); k++) {
        if (!(props[k] = alloc(b, sizeof *props[k])))
            return;
        *props[k] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        props[k]->key = k ? "neurite.data" : "neurite.scaling";
        props[k]->value = k ? base64(b, sections, (size_t)fill.length)
                            : (char *)kinds[net->scaling.kind >= 0 && net->scaling.kind <= 2 ? net->scaling.kind : 0];
        m->n_metadata_props = k + 1;
    }
    m->metadata_props = props;
}

static nr_status write_model(const Onnx__ModelProto *m, const char *path)
{
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return nr__fail(NR_ENOMEM, "out of memory for a %zu-byte ONNX model", len);
    onnx__model_proto__pack(m, buf);
    nr__atomic a;
    nr_status st = nr__atomic_open(&a, path);
    if (!st) {
        nr_status wrote = nr__atomic_write(&a, buf, len), committed = nr__atomic_commit(&a);
        st = wrote ? wrote : committed;
    }
    free(buf);
    return st;
}

nr_status nr_onnx_export(const nr_net *net, const char *path, int logits)
{
    if (!net || !path)
        return nr__fail(NR_EINVAL, "nr_onnx_export: NULL argument");
    if (net->n_layers == 0)
        return nr__fail(NR_EINVAL, "the network has no layers to export");
    builder b = {0};
    Onnx__GraphProto g;
    nr_status st = build_graph(&b, net, logits != 0, &g);
    if (!st) {
        Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
        opset.domain = "";
        opset.has_version = true;
        opset.version = OPSET;
        Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
        m.has_ir_version = true;
        m.ir_version = IR_VERSION;
        m.producer_name = "neurite";
        m.producer_version = NR_VERSION_STRING;
        m.n_opset_import = 1;
        m.opset_import = opsets;
        m.graph = &g;
        put_metadata(&b, net, &m);
        st = b.failed ? nr__fail(NR_ENOMEM, "out of memory while building the ONNX model") : write_model(&m, path);
    }
    for (size_t i = 0; i < b.n_owned; i++)
        free(b.owned[i]);
    free(b.owned);
    free(b.nodes);
    free(b.consts);
    return st;
}

#endif
