/* onnx_import.c - a network from an ONNX model (docs/interop.md).
 *
 * The model is read with libprotobuf-c (code generated from Debian's onnx.proto), then its graph is walked in
 * order as a chain: every operator takes the value the previous one made (the activation) and constants
 * (initializers, Constant nodes). Each operator becomes neurite layers, its weights converted from ONNX's
 * NCHW to neurite's channels-last: a convolution's (cout, cin, k, k) to (k, k, cin, cout), and the rows of a
 * dense layer that reads a flattened image from channel-major to channel-last order. A few patterns are
 * understood whole: Sub and Mul of constants before the first layer are the input scaling; a leading
 * Transpose (0, 3, 1, 2) means the model takes channels-last images (neurite's own exports); MatMul then Add
 * is a dense layer; a final Softmax (or LogSoftmax) makes a classifier; a final Div and Add of constants undo a
 * regression's target scaling. Anything else is refused, naming the node, its operator and the opset. */
#include "io/model.h"
#include "io/onnx.h"

#include <math.h>
#include <stdlib.h>

#ifndef NR_HAVE_ONNX

const char *nr_onnx_support(void) { return NULL; }

nr_status nr_onnx_import(const char *path, nr_net **out)
{
    (void)out;
    return nr__fail(NR_EINVAL, "%s: this neurite was built without ONNX support (install libprotobuf-c-dev, "
                               "protobuf-c-compiler and python3-onnx, and rebuild)", path ? path : "");
}

#else

const char *nr_onnx_support(void) { return "libprotobuf-c"; }

/* The largest model file read, and the most values one tensor may hold. */
#define MAX_ONNX_FILE ((size_t)1 << 31)
#define MAX_TENSOR ((size_t)1 << 30)

typedef struct importer {
    const char *path;
    int64_t opset;
    const Onnx__GraphProto *g;
    const Onnx__NodeProto *node;      /* the node being read, for messages */
    struct named_tensor {
        const char *name;
        const Onnx__TensorProto *t;
    } *consts;                        /* initializers and Constant nodes' values, by the names the graph uses */
    size_t n_consts;
    const char *current;              /* the value that carries the activation */
    bool image;                       /* it is an image, C x H x W in ONNX's terms */
    size_t in_shape[3];               /* the network's input: height, width, channels (1, 1, F: features) */
    size_t c, h, w, features;
    bool flattened;                   /* an image was flattened for the next dense layer (rows CHW-ordered) */
    bool channels_last;               /* a Transpose (0, 2, 3, 1) made the image NHWC for the Flatten after it */
    int64_t pending_pad;              /* a Pad of zeros the next convolution takes as its padding */
    size_t fc, fh, fw;
    bool open_dense;                  /* a MatMul made a dense layer whose bias an Add may bring */
    nr_net *net;
    float *shift, *scale;             /* input scaling seen before the first layer */
    size_t scaling_count;
    bool head_xent;                   /* a final Softmax */
    const Onnx__TensorProto *target_div, *target_add;
} importer;

/* ---- messages ---- */

static nr_status refuse(const importer *im, const char *why)
{
    const Onnx__NodeProto *n = im->node;
    return nr__fail(NR_EFORMAT, "%s: node '%s' (op '%s', opset %lld): %s", im->path, n && n->name ? n->name : "",
                    n && n->op_type ? n->op_type : "?", (long long)im->opset, why);
}

/* ---- attributes and constants ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : fallback;
}

static float attr_float(const Onnx__NodeProto *n, const char *name, float fallback)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : fallback;
}

/* An ints attribute whose values are all `v` (or absent: then `fallback`); the value into *out. */
static bool attr_same_ints(const Onnx__NodeProto *n, const char *name, int64_t fallback, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(n, name);
    *out = fallback;
    if (!a || a->n_ints == 0)
        return true;
    *out = a->ints[0];
    for (size_t i = 1; i < a->n_ints; i++)
        if (a->ints[i] != a->ints[0])
            return false;
    return true;
}

static const Onnx__TensorProto *constant(const importer *im, const char *name)
{
    for (size_t i = 0; name && i < im->n_consts; i++)
        if (im->consts[i].name && strcmp(im->consts[i].name, name) == 0)
            return im->consts[i].t;
    return NULL;
}

/* The number of values a tensor's dimensions make; 0 if absurd. */
static size_t tensor_size(const Onnx__TensorProto *t)
{
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        if (t->dims[i] < 0 || !nr__mul(n, (size_t)t->dims[i], &n) || n > MAX_TENSOR)
            return 0;
    return n;
}

/* A float tensor's values as float32 (float or double data, inline or raw little-endian), exactly `count` of
 * them; NULL with the message set otherwise. Free the result. */
static float *tensor_floats(const importer *im, const Onnx__TensorProto *t, size_t count)
{
    int type = t->has_data_type ? t->data_type : 0;
    size_t n = tensor_size(t), item = type == ONNX_DOUBLE ? 8 : 4;
    if ((type != ONNX_FLOAT && type != ONNX_DOUBLE) || n != count || count == 0 ||
        (t->has_data_location && t->data_location != 0))
        return refuse(im, "a constant is not float data of the shape the operator needs (or is stored outside the "
                          "file)"), NULL;
    bool raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw ? t->raw_data.len != count * item : (type == ONNX_FLOAT ? t->n_float_data : t->n_double_data) != count)
        return refuse(im, "a constant holds another number of values than its shape says"), NULL;
    float *v = malloc(count * sizeof *v);
    if (!v)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < count; i++) {
        double d;
        if (!raw) {
            d = type == ONNX_FLOAT ? t->float_data[i] : t->double_data[i];
        } else if (type == ONNX_FLOAT) {
            nr__floats_from_le(v + i, t->raw_data.data + 4 * i, 1);
            d = v[i];
        } else {
            uint64_t u = nr__get_u64le(t->raw_data.data + 8 * i);
            memcpy(&d, &u, 8);
        }
        v[i] = (float)d;
        if (!isfinite(v[i])) {
            free(v);
            return refuse(im, "a constant holds a NaN or an infinity"), NULL;
        }
    }
    return v;
}

/* An int64 constant's values (at most `cap`); -1 if it is not one. */
static long int64_values(const Onnx__TensorProto *t, int64_t *out, size_t cap)
{
    size_t n = tensor_size(t);
    if (!t->has_data_type || t->data_type != ONNX_INT64 || n > cap || (t->n_dims && n == 0))
        return -1;
    bool raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw ? t->raw_data.len != n * 8 : t->n_int64_data != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = raw ? (int64_t)nr__get_u64le(t->raw_data.data + 8 * i) : t->int64_data[i];
    return (long)n;
}

/* ---- the network, as it is built ---- */

/* The network, made at the first layer from the input's shape. */
static nr_status ensure_net(importer *im)
{
    if (im->net)
        return NR_OK;
    im->net = nr_net_new_image(im->in_shape[0], im->in_shape[1], im->in_shape[2]);
    return im->net ? NR_OK : NR_ENOMEM;
}

/* The last layer's tensor named `suffix` ("w", "b", "gamma", ...), in the parameter buffer. */
static float *last_tensor(const importer *im, const char *suffix)
{
    const nr_layer *l = &im->net->layers[im->net->n_layers - 1];
    for (int k = 0; k < l->n_tensors; k++)
        if (strcmp(l->tensors[k].suffix, suffix) == 0)
            return im->net->params + l->tensor_offset[k];
    return NULL;
}

/* After a layer: the activation's shape is the layer's output (a dense layer or a flatten ends an image, a
 * convolution makes one, the others keep what they were given). */
static void took_layer(importer *im, const Onnx__NodeProto *n)
{
    const nr_layer *l = &im->net->layers[im->net->n_layers - 1];
    im->image = l->ops == &nr__conv2d_ops || (im->image && l->ops != &nr__dense_ops && l->ops != &nr__flatten_ops);
    im->h = l->out_shape[0];
    im->w = l->out_shape[1];
    im->c = l->out_shape[2];
    im->features = l->out_size;
    im->current = n->output[0];
}

static nr_status layer_failed(importer *im, nr_status st)
{
    char why[300];
    snprintf(why, sizeof why, "%s", nr_error_message());
    return st == NR_ENOMEM ? st : refuse(im, why);
}

/* A dense layer of `out` units: W given as ONNX stores it (in x out, or out x in with `trans`), its rows in
 * channel-major order if an image was flattened for it; bias may be NULL. */
static nr_status add_dense(importer *im, const Onnx__NodeProto *n, const float *w, bool trans, size_t out,
                           const float *bias, float alpha, float beta)
{
    if (im->image && !im->flattened)
        return refuse(im, "a product on an image that was not flattened");
    size_t in = im->features;
    nr_status st = ensure_net(im);
    if (!st && (st = nr_net_dense(im->net, out, bias != NULL)))
        return layer_failed(im, st);
    if (st)
        return st;
    float *dst = last_tensor(im, "w"), *b = last_tensor(im, "b");
    for (size_t r = 0; r < in; r++) {
        /* the file's row for neurite's row r: the same, or its place in the channel-major flattening */
        size_t y = im->flattened ? r / im->fc / im->fw : 0, x = im->flattened ? r / im->fc % im->fw : 0;
        size_t src = im->flattened ? nr__chw_row(y, x, r % im->fc, im->fh, im->fw) : r;
        for (size_t o = 0; o < out; o++)
            dst[r * out + o] = alpha * w[trans ? o * in + src : src * out + o];
    }
    for (size_t o = 0; bias && o < out; o++)
        b[o] = beta * bias[o];
    im->flattened = false;
    took_layer(im, n);
    return NR_OK;
}

/* The bias of a dense layer: a constant of `out` values (or one, broadcast); NULL (and *st set) if not. */
static float *bias_values(importer *im, const char *name, size_t out, nr_status *st)
{
    const Onnx__TensorProto *t = constant(im, name);
    *st = NR_OK;
    if (!t)
        return *st = refuse(im, "the bias is not a constant"), NULL;
    size_t n = tensor_size(t);
    float *one = n == 1 ? tensor_floats(im, t, 1) : NULL, *v = n == 1 ? malloc(out * sizeof *v) : NULL;
    if (n != 1)
        v = tensor_floats(im, t, out);
    for (size_t o = 0; one && v && o < out; o++)
        v[o] = one[0];
    free(one);
    if (!v)
        *st = NR_EFORMAT;
    return v;
}

/* ---- the operators ---- */

/* The next node, if it takes this one's output. */
static const Onnx__NodeProto *next_reader(const importer *im, size_t i)
{
    const Onnx__NodeProto *n = im->g->node[i], *next = i + 1 < im->g->n_node ? im->g->node[i + 1] : NULL;
    return next && next->n_input >= 1 && n->n_output >= 1 && next->input[0] && n->output[0] &&
                   strcmp(next->input[0], n->output[0]) == 0
               ? next : NULL;
}

static nr_status op_gemm(importer *im, size_t i)
{
    const Onnx__NodeProto *n = im->g->node[i];
    const Onnx__TensorProto *b = n->n_input >= 2 ? constant(im, n->input[1]) : NULL;
    if (attr_int(n, "transA", 0) || !b || b->n_dims != 2)
        return refuse(im, "only x * W with a constant 2-D W is supported (no transA)");
    bool trans = attr_int(n, "transB", 0) != 0;
    size_t out = (size_t)b->dims[trans ? 0 : 1], in = (size_t)b->dims[trans ? 1 : 0];
    if (in != im->features)
        return refuse(im, "its weights do not fit the input");
    nr_status st = NR_OK;
    float *w = tensor_floats(im, b, in * out), *bias = NULL;
    if (w && n->n_input >= 3 && n->input[2] && n->input[2][0])
        bias = bias_values(im, n->input[2], out, &st);
    if (w && !st)
        st = add_dense(im, n, w, trans, out, bias, attr_float(n, "alpha", 1.0f), attr_float(n, "beta", 1.0f));
    free(w);
    free(bias);
    return w ? st : NR_EFORMAT;
}

/* MatMul by a constant, and the Add of a constant bias right after it (one dense layer). */
static nr_status op_matmul(importer *im, size_t *i)
{
    const Onnx__NodeProto *n = im->g->node[*i], *add = next_reader(im, *i);
    const Onnx__TensorProto *b = n->n_input == 2 ? constant(im, n->input[1]) : NULL;
    if (!b || b->n_dims != 2 || (size_t)b->dims[0] != im->features)
        return refuse(im, "only x * W with a constant 2-D W that fits the input is supported");
    size_t in = (size_t)b->dims[0], out = (size_t)b->dims[1];
    bool biased = add && add->op_type && strcmp(add->op_type, "Add") == 0 && add->n_input == 2 &&
                  constant(im, add->input[1]) && add->n_output == 1;
    nr_status st = NR_OK;
    float *w = tensor_floats(im, b, in * out), *bias = NULL;
    if (w && biased) {
        im->node = add;
        bias = bias_values(im, add->input[1], out, &st);
    }
    if (w && !st)
        st = add_dense(im, biased ? add : n, w, false, out, bias, 1.0f, 1.0f);
    *i += biased;
    free(w);
    free(bias);
    return w ? st : NR_EFORMAT;
}

/* Conv, group 1, dilation 1, a square kernel, one stride and one padding on every side. */
static nr_status op_conv(importer *im, const Onnx__NodeProto *n)
{
    const Onnx__TensorProto *w = n->n_input >= 2 ? constant(im, n->input[1]) : NULL;
    int64_t stride, pad, dilation;
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    bool plain_pad = !ap || !ap->has_s || (ap->s.len == 6 && memcmp(ap->s.data, "NOTSET", 6) == 0) ||
                     (ap->s.len == 5 && memcmp(ap->s.data, "VALID", 5) == 0);
    if (!im->image || !w || w->n_dims != 4 || attr_int(n, "group", 1) != 1 || !plain_pad ||
        !attr_same_ints(n, "strides", 1, &stride) || !attr_same_ints(n, "pads", 0, &pad) ||
        !attr_same_ints(n, "dilations", 1, &dilation) || dilation != 1 || w->dims[2] != w->dims[3] ||
        (size_t)w->dims[1] != im->c || stride < 1 || pad < 0)
        return refuse(im, "only a group-1 convolution of an image with a constant square kernel, one stride, one "
                          "padding on every side and no dilation is supported");
    if (im->pending_pad && pad)
        return refuse(im, "a Pad before a convolution that pads too");
    pad += im->pending_pad;
    im->pending_pad = 0;
    size_t cout = (size_t)w->dims[0], k = (size_t)w->dims[2], cin = im->c;
    nr_status st = NR_OK;
    float *v = tensor_floats(im, w, cout * cin * k * k), *bias = NULL;
    if (v && n->n_input >= 3 && n->input[2] && n->input[2][0])
        bias = bias_values(im, n->input[2], cout, &st);
    if (v && !st && !(st = ensure_net(im)) &&
        (st = nr_net_conv2d(im->net, cout, k, (size_t)stride, (size_t)pad, bias != NULL)))
        st = layer_failed(im, st);
    if (v && !st) {
        float *dst = last_tensor(im, "w"), *b = last_tensor(im, "b");
        for (size_t u = 0; u < k; u++)
            for (size_t x = 0; x < k; x++)
                for (size_t ci = 0; ci < cin; ci++)
                    for (size_t co = 0; co < cout; co++)
                        dst[nr__conv_hwio(u, x, ci, co, k, cin, cout)] = v[nr__conv_oihw(u, x, ci, co, k, cin)];
        for (size_t co = 0; bias && co < cout; co++)
            b[co] = bias[co];
        took_layer(im, n);
    }
    free(v);
    free(bias);
    return v ? st : NR_EFORMAT;
}

/* MaxPool and AveragePool over square windows without padding; GlobalAveragePool over a square image. */
static nr_status op_pool(importer *im, const Onnx__NodeProto *n)
{
    bool global = strcmp(n->op_type, "GlobalAveragePool") == 0, max = n->op_type[0] == 'M';
    int64_t k = (int64_t)im->h, stride = k, pad, dilation;
    const Onnx__AttributeProto *ks = attr(n, "kernel_shape");
    if (!global && (!ks || ks->n_ints != 2 || ks->ints[0] != ks->ints[1]))
        return refuse(im, "only square pooling windows are supported");
    if (!global) {
        k = ks->ints[0];
        if (!attr_same_ints(n, "strides", 1, &stride) || !attr_same_ints(n, "pads", 0, &pad) || pad != 0 ||
            !attr_same_ints(n, "dilations", 1, &dilation) || dilation != 1 || attr_int(n, "ceil_mode", 0) ||
            attr_int(n, "storage_order", 0))
            return refuse(im, "only pooling with one stride, no padding, no dilation and ceil_mode 0 is supported");
    }
    if (!im->image || (global && im->h != im->w) || k < 1 || stride < 1)
        return refuse(im, global ? "global pooling of an image that is not square" : "pooling of what is not an image");
    nr_status st = ensure_net(im);
    if (!st && (st = (max ? nr_net_maxpool : nr_net_avgpool)(im->net, (size_t)k, (size_t)stride)))
        return layer_failed(im, st);
    if (!st)
        took_layer(im, n);
    return st;
}

/* ONNX's momentum weighs the running value; neurite's (as PyTorch's) the batch's: 1 - m. Of the floats whose
 * 1 - m is the file's value, the one with the shortest decimal form (0.1, not 0.100000024), so that a model
 * neurite exported comes back as it was. */
static float batch_momentum(float onnx)
{
    float m = 1.0f - onnx;
    for (int digits = 1; digits <= 9; digits++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.*g", digits, 1.0 - (double)onnx);
        float candidate = strtof(buf, NULL);
        if (1.0f - candidate == onnx) {
            m = candidate;
            break;
        }
    }
    return m;
}

/* BatchNormalization as inference computes it: per channel (per feature for vectors). */
static nr_status op_batchnorm(importer *im, const Onnx__NodeProto *n)
{
    size_t ch = im->image ? im->c : im->features;
    if (n->n_input != 5 || attr_int(n, "training_mode", 0) || n->n_output > 1)
        return refuse(im, "only the inference form (5 inputs, one output, no training mode) is supported");
    static const char *const names[4] = {"gamma", "beta", "mean", "var"};
    float *v[4] = {NULL};
    nr_status st = NR_OK;
    for (int k = 0; k < 4 && !st; k++) {
        const Onnx__TensorProto *t = constant(im, n->input[k + 1]);
        if (!t || !(v[k] = tensor_floats(im, t, ch)))
            st = t ? NR_EFORMAT : refuse(im, "its scale, bias, mean and variance must be constants");
    }
    for (size_t i = 0; !st && i < ch; i++)
        if (!(v[3][i] >= 0))
            st = refuse(im, "a negative variance");
    float momentum = batch_momentum(attr_float(n, "momentum", 0.9f)), eps = attr_float(n, "epsilon", 1e-5f);
    if (!st && !(st = ensure_net(im)) && (st = nr_net_batchnorm(im->net, momentum > 0 && momentum < 1 ? momentum : 0.1f,
                                                                eps)))
        st = layer_failed(im, st);
    for (int k = 0; k < 4 && !st; k++)
        memcpy(last_tensor(im, names[k]), v[k], ch * sizeof(float));
    if (!st)
        took_layer(im, n);
    for (int k = 0; k < 4; k++)
        free(v[k]);
    return st;
}

static nr_status op_activation(importer *im, const Onnx__NodeProto *n)
{
    nr_status st = ensure_net(im);
    const char *op = n->op_type;
    if (!st && strcmp(op, "LeakyRelu") == 0)
        st = nr_net_leaky_relu(im->net, attr_float(n, "alpha", 0.01f));
    else if (!st)
        st = nr_net_act(im->net, strcmp(op, "Relu") == 0 ? NR_ACT_RELU : strcmp(op, "Sigmoid") == 0 ? NR_ACT_SIGMOID
                                                                                                   : NR_ACT_TANH);
    if (st)
        return layer_failed(im, st);
    took_layer(im, n);
    return NR_OK;
}

static bool is_graph_output(const importer *im, const char *name)
{
    return im->g->n_output >= 1 && im->g->output[0]->name && name && strcmp(im->g->output[0]->name, name) == 0;
}

/* Softmax over the features of each sample; the graph's last one makes the model a classifier instead. */
static nr_status op_softmax(importer *im, const Onnx__NodeProto *n)
{
    int64_t axis = attr_int(n, "axis", im->opset >= 13 ? -1 : 1);
    bool last = is_graph_output(im, n->output[0]), log = n->op_type[0] == 'L';
    if (im->image || (axis != 1 && axis != -1))
        return refuse(im, "only a softmax over the features of flat samples is supported");
    if (log && !last)
        return refuse(im, "a LogSoftmax is supported only as the model's last operator");
    if (last) {
        im->head_xent = true;
        im->current = n->output[0];
        return NR_OK;
    }
    nr_status st = ensure_net(im);
    if (!st && (st = nr_net_act(im->net, NR_ACT_SOFTMAX)))
        return layer_failed(im, st);
    if (!st)
        took_layer(im, n);
    return st;
}

/* Flatten an image for the dense layer after it (its rows are in ONNX's channel-major order). Flatten adds
 * neurite's flatten layer; Reshape and Squeeze, which only flatten here, leave the dense layer to do it. */
static nr_status flatten(importer *im, const Onnx__NodeProto *n, bool layer)
{
    im->current = n->output[0];
    if (!im->image)
        return NR_OK;
    im->flattened = !im->channels_last;  /* channels-last: already neurite's order */
    im->channels_last = false;
    im->fc = im->c;
    im->fh = im->h;
    im->fw = im->w;
    im->image = false;
    im->features = im->c * im->h * im->w;
    if (!layer)
        return NR_OK;
    nr_status st = ensure_net(im);
    if (!st && (st = nr_net_flatten(im->net)))
        return layer_failed(im, st);
    return st;
}

static nr_status op_flatten(importer *im, const Onnx__NodeProto *n)
{
    if (attr_int(n, "axis", 1) != 1)
        return refuse(im, "only a flatten after the batch axis (axis 1) is supported");
    return flatten(im, n, true);
}

/* Reshape to (N, -1), (0, -1) or (N, C*H*W), and Squeeze of the 1 x 1 of an image: flattening only. */
static nr_status op_reshape(importer *im, const Onnx__NodeProto *n)
{
    int64_t shape[8];
    size_t total = im->image ? im->c * im->h * im->w : im->features;
    if (strcmp(n->op_type, "Squeeze") == 0) {
        if (!im->image || im->h != 1 || im->w != 1)
            return refuse(im, "only a Squeeze of an image's 1 x 1 is supported");
        return flatten(im, n, false);
    }
    const Onnx__TensorProto *t = n->n_input == 2 ? constant(im, n->input[1]) : NULL;
    long count = t ? int64_values(t, shape, 8) : -1;
    if (count != 2 || (shape[0] != 0 && shape[0] != -1 && shape[0] < 1) ||
        (shape[1] != -1 && shape[1] != (int64_t)total) || (shape[0] == -1 && shape[1] == -1))
        return refuse(im, "only a Reshape that flattens each sample (to N x -1) is supported");
    return flatten(im, n, false);
}

/* Sub and Mul of constants before the first layer: the input scaling, (x - shift) * scale, one value or one
 * per input. */
static nr_status op_scale_input(importer *im, const Onnx__NodeProto *n)
{
    bool sub = n->op_type[0] == 'S';
    const Onnx__TensorProto *t = n->n_input == 2 ? constant(im, n->input[1]) : NULL;
    size_t count = t ? tensor_size(t) : 0, per = im->image ? im->c * im->h * im->w : im->features;
    if (im->net || !t || (count != 1 && count != per) || (sub ? im->shift || im->scale : im->scale != NULL) ||
        (im->scaling_count && count != im->scaling_count))
        return refuse(im, "only a Sub then a Mul of constants before the first layer (an input scaling) is "
                          "supported");
    float *v = tensor_floats(im, t, count);
    if (!v)
        return NR_EFORMAT;
    for (size_t k = 0; !sub && k < count; k++)
        if (v[k] == 0.0f) {
            free(v);
            return refuse(im, "an input scaling by 0");
        }
    *(sub ? &im->shift : &im->scale) = v;
    im->scaling_count = count;
    im->current = n->output[0];
    return NR_OK;
}

/* Div then Add of constants after the last layer: a regression's outputs back in their targets' units. */
static nr_status op_unscale(importer *im, const Onnx__NodeProto *n)
{
    bool div = n->op_type[0] == 'D';
    const Onnx__TensorProto *t = n->n_input == 2 ? constant(im, n->input[1]) : NULL;
    if (!t && n->n_input == 2)
        return refuse(im, "it combines two results of the graph (a residual connection?): only a chain of "
                          "operators is supported");
    if (!im->net || im->image || !t || tensor_size(t) != im->features || (div ? im->target_div != NULL
                                                                             : !im->target_div || im->target_add))
        return refuse(im, "only a Div then an Add of constants after the last layer (a regression's target "
                          "scaling) is supported here");
    *(div ? &im->target_div : &im->target_add) = t;
    im->current = n->output[0];
    return NR_OK;
}

/* Transpose (0, 3, 1, 2) of the input: the model takes channels-last images, as neurite does. Transpose
 * (0, 2, 3, 1) of an image just before it is flattened: flattened in neurite's order (neurite's exports). */
static nr_status op_transpose(importer *im, const Onnx__NodeProto *n, const int64_t dims[4])
{
    const Onnx__AttributeProto *p = attr(n, "perm");
    bool perm4 = p && p->n_ints == 4 && p->ints[0] == 0;
    if (perm4 && im->image && p->ints[1] == 2 && p->ints[2] == 3 && p->ints[3] == 1 && !im->channels_last) {
        im->channels_last = true;
        im->current = n->output[0];
        return NR_OK;
    }
    if (im->net || im->channels_last || !im->image || !perm4 || p->ints[1] != 3 || p->ints[2] != 1 ||
        p->ints[3] != 2)
        return refuse(im, "only a Transpose (0, 3, 1, 2) of the input image, or (0, 2, 3, 1) before a Flatten, is "
                          "supported");
    im->h = im->in_shape[0] = (size_t)dims[1];
    im->w = im->in_shape[1] = (size_t)dims[2];
    im->c = im->in_shape[2] = (size_t)dims[3];
    im->current = n->output[0];
    return NR_OK;
}

/* Pad with zeros: none at all is nothing (PyTorch puts one before every AveragePool); the same on the four
 * sides of an image, just before a convolution without padding of its own, is that convolution's padding. */
static nr_status op_pad(importer *im, size_t i)
{
    const Onnx__NodeProto *n = im->g->node[i], *next = next_reader(im, i);
    const Onnx__AttributeProto *mode = attr(n, "mode");
    int64_t pads[8] = {0}, unused;
    long count = -1;
    float value = attr_float(n, "value", 0.0f);
    if (im->opset < 11) {
        const Onnx__AttributeProto *a = attr(n, "pads");
        count = a && a->n_ints <= 8 ? (long)a->n_ints : -1;
        for (long k = 0; k < count; k++)
            pads[k] = a->ints[k];
    } else if (n->n_input >= 2 && constant(im, n->input[1])) {
        count = int64_values(constant(im, n->input[1]), pads, 8);
    }
    if (im->opset >= 11 && n->n_input >= 3 && n->input[2] && n->input[2][0]) {
        const Onnx__TensorProto *t = constant(im, n->input[2]);
        float *v = t ? tensor_floats(im, t, 1) : NULL;
        value = v ? v[0] : 1.0f;
        free(v);
    }
    size_t rank = im->image ? 4 : 2;
    bool zeros = count == (long)(2 * rank) && value == 0.0f &&
                 (!mode || !mode->has_s || (mode->s.len == 8 && memcmp(mode->s.data, "constant", 8) == 0));
    bool nothing = zeros, square = zeros && im->image && !pads[0] && !pads[1] && !pads[4] && !pads[5] &&
                                   pads[2] == pads[3] && pads[2] == pads[6] && pads[2] == pads[7] && pads[2] > 0;
    for (size_t k = 0; nothing && k < 2 * rank; k++)
        nothing = pads[k] == 0;
    if (!nothing && !(square && next && next->op_type && !strcmp(next->op_type, "Conv") &&
                      attr_same_ints(next, "pads", 0, &unused) && unused == 0))
        return refuse(im, "only a Pad of nothing, or of zeros on the four sides of an image just before a "
                          "convolution, is supported");
    im->pending_pad = nothing ? 0 : pads[2];
    im->current = n->output[0];
    return NR_OK;
}

/* Dropout, which inference skips: kept as neurite's dropout layer with its rate, for training on. */
static nr_status op_dropout(importer *im, const Onnx__NodeProto *n)
{
    float rate = attr_float(n, "ratio", 0.5f);
    const Onnx__TensorProto *t = n->n_input >= 2 && n->input[1] && n->input[1][0] ? constant(im, n->input[1]) : NULL;
    if (n->n_input >= 2 && n->input[1] && n->input[1][0] && !t)
        return refuse(im, "its ratio is not a constant");
    if (n->n_input >= 3 || n->n_output > 1)
        return refuse(im, "only the inference form (no training_mode input, no mask output) is supported");
    float *v = t ? tensor_floats(im, t, 1) : NULL;
    if (t && !v)
        return NR_EFORMAT;
    rate = v ? v[0] : rate;
    free(v);
    nr_status st = ensure_net(im);
    if (!st && (st = nr_net_dropout(im->net, rate)))
        return layer_failed(im, st);
    if (!st)
        took_layer(im, n);
    return st;
}

static nr_status op_constant(importer *im, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *v = attr(n, "value");
    if (!v || !v->t || n->n_output != 1)
        return refuse(im, "only a Constant with a tensor value is supported");
    im->consts[im->n_consts++] = (struct named_tensor){n->output[0], v->t};
    return NR_OK;
}

/* One node: its operator's handler (some take the next node with them: *i moves on). */
static nr_status read_node(importer *im, size_t *i, const int64_t dims[4])
{
    const Onnx__NodeProto *n = im->g->node[*i];
    const char *op = n->op_type ? n->op_type : "";
    im->node = n;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return refuse(im, "operators of other domains are not supported");
    if (strcmp(op, "Constant") == 0)
        return op_constant(im, n);
    if (n->n_input < 1 || n->n_output < 1 || !n->input[0] || !n->output[0] || strcmp(n->input[0], im->current) != 0)
        return refuse(im, "it does not take the previous operator's result: only a chain of operators is supported");
    if (im->channels_last && strcmp(op, "Flatten") != 0 && strcmp(op, "Reshape") != 0)
        return refuse(im, "a Transpose to channels-last is supported only just before a Flatten or Reshape");
    if (!strcmp(op, "Gemm"))
        return op_gemm(im, *i);
    if (!strcmp(op, "MatMul"))
        return op_matmul(im, i);
    if (!strcmp(op, "Conv"))
        return op_conv(im, n);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") || !strcmp(op, "GlobalAveragePool"))
        return op_pool(im, n);
    if (!strcmp(op, "BatchNormalization"))
        return op_batchnorm(im, n);
    if (!strcmp(op, "Relu") || !strcmp(op, "LeakyRelu") || !strcmp(op, "Sigmoid") || !strcmp(op, "Tanh"))
        return op_activation(im, n);
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return op_softmax(im, n);
    if (!strcmp(op, "Flatten"))
        return op_flatten(im, n);
    if (!strcmp(op, "Reshape") || !strcmp(op, "Squeeze"))
        return op_reshape(im, n);
    if (!strcmp(op, "Dropout"))
        return op_dropout(im, n);
    if (!strcmp(op, "Pad"))
        return op_pad(im, *i);
    if (!strcmp(op, "Identity")) {
        im->current = n->output[0];
        return NR_OK;
    }
    if (!strcmp(op, "Sub") || !strcmp(op, "Mul"))
        return op_scale_input(im, n);
    if (!strcmp(op, "Div") || !strcmp(op, "Add"))
        return op_unscale(im, n);
    if (!strcmp(op, "Transpose"))
        return op_transpose(im, n, dims);
    return refuse(im, "this operator is not supported (docs/interop.md lists those that are)");
}

/* ---- the model ---- */

/* The opset of the default domain: 9 to 21. */
static nr_status read_opset(importer *im, const Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)
            im->opset = o->has_version ? o->version : 0;
    }
    if (im->opset < 9 || im->opset > 21)
        return nr__fail(NR_EFORMAT, "%s: opset %lld; neurite reads opsets 9 to 21", im->path, (long long)im->opset);
    return NR_OK;
}

/* The graph's one input that is not a constant: float, (N, F) or (N, C, H, W) (or N, H, W, C with a leading
 * Transpose), N free. dims[] receives its four dimensions (N, then three). */
static nr_status read_input(importer *im, int64_t dims[4])
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < im->g->n_input; i++)
        if (!constant(im, im->g->input[i]->name)) {
            if (in)
                return nr__fail(NR_EFORMAT, "%s: the graph has several inputs; neurite reads models of one", im->path);
            in = im->g->input[i];
        }
    const Onnx__TypeProto *t = in ? in->type : NULL;
    const Onnx__TensorShapeProto *shape = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                                                  t->tensor_type ? t->tensor_type->shape : NULL;
    if (!shape || !in->name || (shape->n_dim != 2 && shape->n_dim != 4) || t->tensor_type->elem_type != ONNX_FLOAT)
        return nr__fail(NR_EFORMAT, "%s: the input is not a float tensor of 2 or 4 dimensions", im->path);
    for (size_t d = 1; d < shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = shape->dim[d];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            return nr__fail(NR_EFORMAT, "%s: the input's dimension %zu is not a fixed size (only the batch, the "
                                        "first, may be free)", im->path, d);
        if (dim->dim_value < 1 || dim->dim_value > (1 << 24))
            return nr__fail(NR_EFORMAT, "%s: the input's dimension %zu is %lld, not 1 to %d", im->path, d,
                            (long long)dim->dim_value, 1 << 24);
        dims[d] = dim->dim_value;
    }
    im->current = in->name;
    im->image = shape->n_dim == 4;
    if (im->image && (uint64_t)dims[1] * (uint64_t)dims[2] * (uint64_t)dims[3] > ((uint64_t)1 << 28))
        return nr__fail(NR_EFORMAT, "%s: an input of %lld x %lld x %lld is too large", im->path, (long long)dims[1],
                        (long long)dims[2], (long long)dims[3]);
    im->c = im->image ? (size_t)dims[1] : 1;
    im->h = im->image ? (size_t)dims[2] : 1;
    im->w = im->image ? (size_t)dims[3] : 1;
    im->features = im->image ? im->c * im->h * im->w : (size_t)dims[1];
    im->in_shape[0] = im->h;
    im->in_shape[1] = im->w;
    im->in_shape[2] = im->image ? im->c : im->features;
    return NR_OK;
}

/* What the network keeps besides its layers: a classifier's head, the input scaling, a regression's target
 * scaling. */
static nr_status finish_net(importer *im)
{
    nr_net *net = im->net;
    for (size_t i = 0; i < net->n_params; i++)  /* finite in the file, but alpha * w or beta * b may not be */
        if (!isfinite(net->params[i]))
            return nr__fail(NR_EFORMAT, "%s: parameter %zu is %g once Gemm's alpha or beta is applied", im->path, i,
                            (double)net->params[i]);
    if (!is_graph_output(im, im->current))
        return nr__fail(NR_EFORMAT, "%s: the graph's output is not the last operator's result", im->path);
    net->head = im->head_xent ? NR_LOSS_XENT : NR_LOSS_MSE;
    if (im->shift || im->scale) {
        size_t count = im->scaling_count;
        float *shift = im->shift ? im->shift : calloc(count, sizeof *shift), *scale = im->scale;
        if (!scale && (scale = malloc(count * sizeof *scale)))
            for (size_t k = 0; k < count; k++)
                scale[k] = 1.0f;
        net->scaling = (nr__scaling){NR_SCALE_STANDARD, count, shift, scale};
        im->shift = im->scale = NULL;
        if (!shift || !scale)
            return nr__fail(NR_ENOMEM, "out of memory");
    }
    if (im->target_div && !im->target_add)
        return nr__fail(NR_EFORMAT, "%s: a Div after the last layer without the Add of a target scaling", im->path);
    if (!im->target_div)
        return NR_OK;
    size_t t = nr_net_output_size(net);
    float *div = tensor_floats(im, im->target_div, t), *mean = tensor_floats(im, im->target_add, t);
    float *scale = div ? malloc(t * sizeof *scale) : NULL;
    for (size_t k = 0; scale && k < t; k++)
        scale[k] = div[k];
    free(div);
    if (!mean || !scale) {
        free(mean);
        free(scale);
        return NR_EFORMAT;
    }
    net->n_targets = t;
    net->target_mean = mean;
    net->target_scale = scale;
    return NR_OK;
}

/* Base64 text into bytes; false if it is not base64. */
static bool unbase64(const char *text, unsigned char *out, size_t *len)
{
    uint32_t v = 0;
    int bits = 0;
    *len = 0;
    for (const char *p = text; *p && *p != '='; p++) {
        const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *d = strchr(digits, *p);
        if (!d)
            return false;
        v = v << 6 | (uint32_t)(d - digits);
        if ((bits += 6) >= 8)
            out[(*len)++] = (unsigned char)(v >> (bits -= 8));
    }
    return true;
}

/* The sections of neurite's model file the exporter put in "neurite.data", read as a model file's are. */
static nr_status read_data_sections(importer *im, const char *text)
{
    size_t len;
    unsigned char *bytes = malloc(strlen(text) / 4 * 3 + 3);
    if (!bytes)
        return nr__fail(NR_ENOMEM, "out of memory");
    if (!unbase64(text, bytes, &len)) {
        free(bytes);
        return nr__fail(NR_EFORMAT, "%s: its neurite.data metadata is not base64", im->path);
    }
    /* These sections say it all: what the Div and Add after the last layer said is replaced. */
    nr_net *net = im->net;
    free(net->target_mean);
    free(net->target_scale);
    net->target_mean = net->target_scale = NULL;
    net->n_targets = 0;
    nr__reader r = {bytes, bytes + len, im->path, "neurite.data", NR_OK};
    while (!r.st && r.p < r.end) {
        char tag[4];
        uint64_t n;
        if (!nr__get(&r, tag, 4) || !nr__get_u64(&r, &n))
            break;
        if (n > (uint64_t)(r.end - r.p)) {
            nr__reader_fail(&r, "a section runs past its end");
            break;
        }
        nr__reader section = {r.p, r.p + n, im->path, "neurite.data", NR_OK};
        if (!nr__read_data_section(&section, tag, net))
            nr__reader_fail(&section, "an unknown section");
        r.st = section.st;
        r.p += n;
    }
    free(bytes);
    return r.st;
}

/* neurite's own notes (onnx_export.c): the input scaling's kind and what the network knows of its data. */
static nr_status read_metadata(importer *im, const Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const char *key = m->metadata_props[i]->key, *value = m->metadata_props[i]->value;
        if (key && value && !strcmp(key, "neurite.scaling") && im->net->scaling.kind)
            im->net->scaling.kind = !strcmp(value, "unit") ? NR_SCALE_UNIT : NR_SCALE_STANDARD;
        if (key && value && !strcmp(key, "neurite.data")) {
            nr_status st = read_data_sections(im, value);
            if (st)
                return st;
        }
    }
    return NR_OK;
}

static nr_status import_graph(importer *im)
{
    const Onnx__GraphProto *g = im->g;
    if (!(im->consts = calloc(g->n_initializer + g->n_node + 1, sizeof *im->consts)))
        return nr__fail(NR_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_initializer; i++)
        im->consts[im->n_consts++] = (struct named_tensor){g->initializer[i]->name, g->initializer[i]};
    int64_t dims[4] = {0};
    nr_status st = read_input(im, dims);
    for (size_t i = 0; !st && i < g->n_node; i++)
        st = read_node(im, &i, dims);
    im->node = NULL;
    if (!st && !im->net)
        st = nr__fail(NR_EFORMAT, "%s: the graph has no layer neurite can build", im->path);
    return st ? st : finish_net(im);
}

nr_status nr_onnx_import(const char *path, nr_net **out)
{
    if (!path || !out)
        return nr__fail(NR_EINVAL, "nr_onnx_import: NULL argument");
    *out = NULL;
    unsigned char *data;
    size_t len;
    nr_status st = nr__read_file(path, MAX_ONNX_FILE, &data, &len);
    if (st)
        return st;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
    free(data);
    if (!m || !m->graph)
        st = nr__fail(NR_EFORMAT, "%s: not an ONNX model (its protobuf does not read as a ModelProto with a graph)",
                      path);
    importer im = {.path = path};
    if (!st && !(st = read_opset(&im, m))) {
        im.g = m->graph;
        if (!(st = import_graph(&im)))
            st = read_metadata(&im, m);
    }
    if (!st) {
        *out = im.net;
        im.net = NULL;
    }
    nr_net_free(im.net);
    free(im.shift);
    free(im.scale);
    free(im.consts);
    if (m)
        onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

#endif
