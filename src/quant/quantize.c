/* quantize.c - post-training static quantization (docs/quantization.md): a float network and a few hundred of
 * its training samples in, an int8 network out.
 *
 * 1. The float network is copied with batch normalisation folded into the dense or convolution layer before
 *    it (w * gamma / sqrt(var + eps) per output, and the bias to match) and dropout left out, as inference
 *    sees them.
 * 2. Calibration: the copy runs on the samples; each activation's range is recorded (its minimum and
 *    maximum, or with NR_CALIB_PERCENTILE the range holding that share of the values, from a histogram), and
 *    widened to hold 0, so that 0, the padding of a convolution, is a byte exactly.
 * 3. Every activation gets a scale and zero point (unsigned bytes); a matrix product followed by ReLU takes
 *    the ReLU's range, so its bytes start at 0 and none is spent on negatives. Weights get one scale per
 *    output (symmetric, -127 to 127), biases become 32-bit, and each output a fixed-point multiplier.
 *    Element-wise layers become tables of 256 bytes; pooling, flatten and copies keep their input's scale.
 * 4. The copy's float weights are replaced by the dequantized ones, so the model saved and loaded again is
 *    the one in memory. */
#include "data/data.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>

#define MAX_K 32768     /* inputs per output: keeps every 32-bit sum exact (255 * 127 * 32768 < 2^30) */
#define BIAS_LIMIT (1 << 29)
#define BINS 4096

/* ---- 1. the folded float copy ---- */

static bool is_matmul(const nr_layer *l) { return l->ops == &nr__dense_ops || l->ops == &nr__conv2d_ops; }

static const float *tensor(const nr_net *net, size_t i, const char *suffix)
{
    const nr_layer *l = &net->layers[i];
    for (int k = 0; k < l->n_tensors; k++)
        if (strcmp(l->tensors[k].suffix, suffix) == 0)
            return net->params + l->tensor_offset[k];
    return NULL;
}

static float *tensor_mut(nr_net *net, size_t i, const char *suffix) { return (float *)tensor(net, i, suffix); }

/* A dense or convolution layer, with a bias always (batch normalisation gives it one), its weights folded
 * with the batch normalisation at layer bn (or none). */
static nr_status copy_matmul(nr_net *f, const nr_net *net, size_t i, size_t bn)
{
    const nr_layer *l = &net->layers[i];
    bool dense = l->ops == &nr__dense_ops;
    nr_status st = dense ? nr_net_dense(f, l->out_size, 1)
                         : nr_net_conv2d(f, l->out_shape[2], (size_t)l->ints[1], (size_t)l->ints[2],
                                         (size_t)l->ints[3], 1);
    if (st)
        return st;
    size_t outs = dense ? l->out_size : l->out_shape[2], rows = (dense ? l->in_size * l->out_size
                                                                       : (size_t)(l->ints[1] * l->ints[1]) *
                                                                             l->in_shape[2] * outs) / outs;
    const float *w = tensor(net, i, "w"), *b = tensor(net, i, "b");
    float *fw = tensor_mut(f, f->n_layers - 1, "w"), *fb = tensor_mut(f, f->n_layers - 1, "b");
    const float *g = bn ? tensor(net, bn, "gamma") : NULL, *be = bn ? tensor(net, bn, "beta") : NULL,
                *mean = bn ? tensor(net, bn, "mean") : NULL, *var = bn ? tensor(net, bn, "var") : NULL;
    for (size_t o = 0; o < outs; o++) {
        float a = bn ? g[o] / sqrtf(var[o] + net->layers[bn].floats[1]) : 1.0f, bias = b ? b[o] : 0.0f;
        for (size_t r = 0; r < rows; r++)
            fw[r * outs + o] = w[r * outs + o] * a;
        fb[o] = bn ? (bias - mean[o]) * a + be[o] : bias;
    }
    return NR_OK;
}

static nr_status copy_layers(nr_net *f, const nr_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        bool folds = i + 1 < net->n_layers && net->layers[i + 1].ops == &nr__batchnorm_ops;
        nr_status st = NR_OK;
        if (is_matmul(l)) {
            st = copy_matmul(f, net, i, folds ? i + 1 : 0);
            i += folds;
        } else if (l->ops == &nr__batchnorm_ops) {
            return nr__fail(NR_EINVAL, "layer %zu (batchnorm) does not follow a dense or convolution layer, so it "
                                       "cannot be folded into one; int8 has no batch normalisation of its own", i);
        } else if (l->ops == &nr__softmax_ops) {
            return nr__fail(NR_EINVAL, "layer %zu is a softmax inside the network; int8 inference keeps softmax for "
                                       "the head only", i);
        } else if (l->ops != &nr__dropout_ops) {  /* dropout is nothing at inference */
            nr_layer proto = {.ops = l->ops};
            memcpy(proto.ints, l->ints, sizeof proto.ints);
            memcpy(proto.floats, l->floats, sizeof proto.floats);
            st = nr__net_append(f, &proto);
        }
        if (st)
            return st;
    }
    return NR_OK;
}

/* What the network knows besides its layers: scaling, head, table columns, classes, targets. */
static nr_status copy_knowledge(nr_net *f, const nr_net *net)
{
    const nr__scaling *s = &net->scaling;
    f->head = net->head;
    if (s->kind) {
        f->scaling = (nr__scaling){s->kind, s->count, malloc(s->count * sizeof(float)), malloc(s->count * sizeof(float))};
        if (!f->scaling.shift || !f->scaling.scale)
            return nr__fail(NR_ENOMEM, "out of memory");
        memcpy(f->scaling.shift, s->shift, s->count * sizeof(float));
        memcpy(f->scaling.scale, s->scale, s->count * sizeof(float));
    }
    if ((net->encoding && !(f->encoding = nr__encoding_copy(net->encoding))) ||
        (net->class_names && !(f->class_names = nr__copy_strings(net->class_names, net->n_class_names))))
        return NR_ENOMEM;
    f->n_class_names = net->n_class_names;
    if (net->n_targets) {
        size_t t = net->n_targets;
        f->target_mean = malloc(t * sizeof(float));
        f->target_scale = malloc(t * sizeof(float));
        f->target_names = net->target_names ? nr__copy_strings(net->target_names, t) : NULL;
        f->n_targets = t;
        if (!f->target_mean || !f->target_scale || (net->target_names && !f->target_names))
            return nr__fail(NR_ENOMEM, "out of memory");
        memcpy(f->target_mean, net->target_mean, t * sizeof(float));
        memcpy(f->target_scale, net->target_scale, t * sizeof(float));
    }
    return NR_OK;
}

/* ---- 2. calibration ---- */

typedef struct range {
    float lo, hi;
    uint64_t *hist;  /* BINS counts over [lo, hi], for the percentile method */
} range;

typedef struct calib {
    nr_net *f;
    const nr_dataset *d;
    size_t samples, batch;
    uint32_t *idx;
    float *x;
    range *ranges;   /* [0] the input, [i + 1] layer i's output */
} calib;

static void observe(range *r, const float *v, size_t count, bool histogram)
{
    for (size_t k = 0; k < count; k++) {
        if (!histogram) {
            r->lo = v[k] < r->lo ? v[k] : r->lo;
            r->hi = v[k] > r->hi ? v[k] : r->hi;
        } else if (r->hi > r->lo) {
            double t = (v[k] - r->lo) / (r->hi - r->lo) * (BINS - 1);
            r->hist[t < 0 ? 0 : t > BINS - 1 ? BINS - 1 : (size_t)t]++;
        }
    }
}

/* One pass over the samples: ranges, or (histogram) counts within them. */
static nr_status calib_pass(calib *c, bool histogram)
{
    nr_net *f = c->f;
    for (size_t i = 0; i < c->samples; i += c->batch) {
        size_t m = c->samples - i < c->batch ? c->samples - i : c->batch;
        nr__data_gather(c->d, c->idx + i, m, &f->scaling, c->x, NULL, NULL, 0, NULL);
        nr_status st = nr_net_forward(f, c->x, m, 0, NULL);
        if (st)
            return st;
        observe(&c->ranges[0], c->x, m * f->in_size, histogram);
        for (size_t l = 0; l < f->n_layers; l++)
            observe(&c->ranges[l + 1], f->out[l], m * f->layers[l].out_size, histogram);
    }
    return NR_OK;
}

/* The range holding `share` of the values (the rest split between the two tails), from the histogram. */
static void narrow(range *r, double share)
{
    uint64_t total = 0, seen = 0;
    for (size_t b = 0; b < BINS; b++)
        total += r->hist[b];
    double tail = (1.0 - share) / 2 * (double)total, width = (r->hi - r->lo) / (BINS - 1);
    size_t lo = 0, hi = BINS - 1;
    for (; lo < BINS - 1 && (double)(seen + r->hist[lo]) <= tail; lo++)
        seen += r->hist[lo];
    for (seen = 0; hi > lo && (double)(seen + r->hist[hi]) <= tail; hi--)
        seen += r->hist[hi];
    float new_lo = r->lo + (float)(lo * width), new_hi = r->lo + (float)((hi + 1) * width);
    r->lo = new_lo > r->lo ? new_lo : r->lo;
    r->hi = new_hi < r->hi ? new_hi : r->hi;
}

static nr_status calibrate(calib *c, const nr_quant_options *o)
{
    for (size_t i = 0; i <= c->f->n_layers; i++)
        c->ranges[i] = (range){INFINITY, -INFINITY, NULL};
    nr_status st = calib_pass(c, false);
    if (st || o->method != NR_CALIB_PERCENTILE)
        return st;
    for (size_t i = 0; i <= c->f->n_layers; i++)
        if (!(c->ranges[i].hist = calloc(BINS, sizeof(uint64_t))))
            return nr__fail(NR_ENOMEM, "out of memory");
    if ((st = calib_pass(c, true)))
        return st;
    for (size_t i = 1; i <= c->f->n_layers; i++)  /* the input keeps its whole range */
        narrow(&c->ranges[i], o->percentile / 100.0);
    return NR_OK;
}

/* ---- 3. the int8 layers ---- */

/* Scale and zero point for a range (widened to hold 0). */
static nr__qparams params_for(range r)
{
    float lo = r.lo < 0.0f ? r.lo : 0.0f, hi = r.hi > 0.0f ? r.hi : 0.0f;
    if (!(hi - lo > 1e-30f))
        return (nr__qparams){1.0f, 0};
    float scale = (hi - lo) / 255.0f;
    long zero = lroundf(-lo / scale);
    return (nr__qparams){scale, (int32_t)(zero < 0 ? 0 : zero > 255 ? 255 : zero)};
}

static float activate(const nr_layer *l, float v)
{
    if (l->ops == &nr__relu_ops)
        return v > 0.0f ? v : 0.0f;
    if (l->ops == &nr__leaky_relu_ops)
        return v > 0.0f ? v : l->floats[0] * v;
    if (l->ops == &nr__sigmoid_ops)
        return v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
    if (l->ops == &nr__tanh_ops)
        return tanhf(v);
    return v;
}

static nr_status quantize_matmul(nr_net *f, size_t i, nr__qparams in, nr__qlayer *ql)
{
    const nr_layer *l = &f->layers[i];
    bool dense = l->ops == &nr__dense_ops;
    ql->kind = NR__Q_MATMUL;
    ql->n = dense ? l->out_size : l->out_shape[2];
    ql->k = dense ? l->in_size : (size_t)(l->ints[1] * l->ints[1]) * l->in_shape[2];
    if (ql->k > MAX_K)
        return nr__fail(NR_EINVAL, "layer %zu has %zu inputs per output; int8 takes at most %d", i, ql->k, MAX_K);
    ql->w = malloc(ql->k * ql->n);
    ql->w_scale = malloc(ql->n * sizeof(float));
    ql->bias = malloc(ql->n * sizeof(int32_t));
    ql->mult = malloc(ql->n * sizeof(int32_t));
    ql->shift = malloc(ql->n * sizeof(int32_t));
    if (!ql->w || !ql->w_scale || !ql->bias || !ql->mult || !ql->shift)
        return nr__fail(NR_ENOMEM, "out of memory");
    float *w = tensor_mut(f, i, "w"), *b = tensor_mut(f, i, "b");
    for (size_t o = 0; o < ql->n; o++) {
        float top = 0.0f;
        for (size_t r = 0; r < ql->k; r++)
            top = fabsf(w[r * ql->n + o]) > top ? fabsf(w[r * ql->n + o]) : top;
        ql->w_scale[o] = top > 0.0f ? top / 127.0f : 1.0f;
        for (size_t r = 0; r < ql->k; r++) {  /* then the float weights become what the bytes say */
            long v = lroundf(w[r * ql->n + o] / ql->w_scale[o]);
            ql->w[r * ql->n + o] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
            w[r * ql->n + o] = ql->w_scale[o] * ql->w[r * ql->n + o];
        }
        double unit = (double)in.scale * ql->w_scale[o], v = nearbyint(b[o] / unit);
        ql->bias[o] = (int32_t)(v < -BIAS_LIMIT ? -BIAS_LIMIT : v > BIAS_LIMIT ? BIAS_LIMIT : v);
        b[o] = (float)(ql->bias[o] * unit);
        nr__q_multiplier(unit / ql->out.scale, &ql->mult[o], &ql->shift[o]);
    }
    return NR_OK;
}

/* Layer i's int8 form; `ranges` as calibrated ([i + 1]: its output). */
static nr_status quantize_layer(nr_net *f, size_t i, const range *ranges)
{
    nr__qnet *q = f->q;
    nr__qlayer *ql = &q->layers[i];
    const nr_layer *l = &f->layers[i];
    const nr__qparams in = nr__q_in(q, i);
    bool relu_next = i + 1 < f->n_layers && f->layers[i + 1].ops == &nr__relu_ops;
    if (is_matmul(l)) {
        ql->out = params_for(ranges[i + 1 + relu_next]);
        return quantize_matmul(f, i, in, ql);
    }
    bool table = l->ops == &nr__leaky_relu_ops || l->ops == &nr__sigmoid_ops || l->ops == &nr__tanh_ops ||
                 (l->ops == &nr__relu_ops && in.zero > 0);
    ql->out = table && l->ops != &nr__relu_ops ? params_for(ranges[i + 1]) : in;
    ql->kind = table ? NR__Q_TABLE : l->ops == &nr__maxpool_ops ? NR__Q_MAXPOOL
               : l->ops == &nr__avgpool_ops                     ? NR__Q_AVGPOOL
                                                                : NR__Q_COPY;
    for (int v = 0; table && v < 256; v++) {
        float y = activate(l, in.scale * (float)(v - in.zero));
        ql->table[v] = nr__q_input(y, 1.0f / ql->out.scale, ql->out.zero);
    }
    return NR_OK;
}

/* ---- the whole ---- */

static nr_status quantize_copy(nr_net *f, const nr_dataset *d, const nr_quant_options *o)
{
    calib c = {f, d, d->n < o->samples ? d->n : o->samples, 256, NULL, NULL, NULL};
    c.idx = malloc(c.samples * sizeof *c.idx);
    c.x = nr__floats(c.batch * f->in_size);
    c.ranges = calloc(f->n_layers + 1, sizeof *c.ranges);
    f->q = calloc(1, sizeof *f->q);
    nr_status st = !c.idx || !c.x || !c.ranges || !f->q || !(f->q->layers = calloc(f->n_layers, sizeof(nr__qlayer)))
                       ? nr__fail(NR_ENOMEM, "out of memory for calibration")
                       : NR_OK;
    for (size_t i = 0; !st && i < c.samples; i++)  /* spread over the set: files are often sorted by class */
        c.idx[i] = (uint32_t)(i * d->n / c.samples);
    nr__qnet *q = f->q;
    f->q = NULL;  /* calibration runs the float copy */
    if (!st)
        st = calibrate(&c, o);
    f->q = q;
    if (!st) {
        q->n_layers = f->n_layers;
        q->method = o->method;
        q->samples = c.samples;
        q->percentile = o->method == NR_CALIB_PERCENTILE ? o->percentile : 0.0;
        bool exact_pixels = d->u8 && f->scaling.kind == NR_SCALE_UNIT && f->scaling.count == 1;
        q->input = exact_pixels ? (nr__qparams){f->scaling.scale[0], 0} : params_for(c.ranges[0]);
    }
    for (size_t i = 0; !st && i < f->n_layers; i++)
        st = quantize_layer(f, i, c.ranges);
    for (size_t i = 0; c.ranges && i <= f->n_layers; i++)
        free(c.ranges[i].hist);
    free(c.ranges);
    free(c.idx);
    nr__free(c.x);
    return st ? st : nr__qnet_prepare(f);
}

nr_status nr_net_quantize(const nr_net *net, const nr_dataset *calibration, const nr_quant_options *options,
                          nr_net **out)
{
    if (!net || !calibration || !out)
        return nr__fail(NR_EINVAL, "nr_net_quantize: NULL argument");
    *out = NULL;
    nr_quant_options o = options ? *options : (nr_quant_options){0};
    o.samples = o.samples ? o.samples : 1000;
    o.percentile = o.percentile > 0 ? o.percentile : 99.99;
    if (net->q)
        return nr__fail(NR_EINVAL, "the network is already quantized");
    if (o.method != NR_CALIB_MINMAX && o.method != NR_CALIB_PERCENTILE)
        return nr__fail(NR_EINVAL, "unknown calibration method %d", (int)o.method);
    if (!(o.percentile > 50 && o.percentile <= 100) || o.samples > ((size_t)1 << 31))
        return nr__fail(NR_EINVAL, "calibration: percentile %g (50 to 100) or %zu samples is out of range",
                        o.percentile, o.samples);
    if (calibration->features != net->in_size || calibration->n == 0)
        return nr__fail(NR_ESHAPE, "the calibration data has %zu features per sample, the network takes %zu",
                        calibration->features, net->in_size);
    nr_net *f = nr_net_new_image(net->in_shape[0], net->in_shape[1], net->in_shape[2]);
    nr_status st = f ? copy_layers(f, net) : NR_ENOMEM;
    if (!st && f->n_layers == 0)
        st = nr__fail(NR_EINVAL, "the network has no layer to quantize");
    if (!st)
        st = copy_knowledge(f, net);
    if (!st)
        st = quantize_copy(f, calibration, &o);
    if (st) {
        nr_net_free(f);
        return st;
    }
    *out = f;
    return NR_OK;
}

int nr_net_quantization(const nr_net *net, nr_quant_options *options)
{
    if (!net || !net->q)
        return 0;
    if (options)
        *options = (nr_quant_options){net->q->samples, (nr_calibration)net->q->method, net->q->percentile};
    return 1;
}
