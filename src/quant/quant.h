/* quant.h - the int8 form of a network (docs/quantization.md), shared by the quantizer (quantize.c), the
 * int8 forward pass (qforward.c), the model file (io/model_quant.c) and the exports (io/export_quant.c,
 * io/onnx_export.c).
 *
 * An activation is stored as unsigned bytes q with real value scale * (q - zero). A dense or convolution
 * layer holds signed bytes w with real value w_scale[o] * w (one scale per output, symmetric), 32-bit biases
 * in units of in.scale * w_scale[o], and per output the fixed-point multiplier that takes its 32-bit sums to
 * the next activation's bytes. Element-wise layers are a table of 256 bytes. The network's float layers stay
 * beside it (shapes, configuration, the dequantized weights for `info`). */
#ifndef NR_QUANT_H
#define NR_QUANT_H

#include "core/net.h"
#include "kernels/qgemm.h"

#include <stdio.h>

typedef struct nr__qparams {
    float scale;
    int32_t zero;  /* 0 to 255 */
} nr__qparams;

typedef enum nr__qkind { NR__Q_MATMUL, NR__Q_TABLE, NR__Q_MAXPOOL, NR__Q_AVGPOOL, NR__Q_COPY } nr__qkind;

typedef struct nr__qlayer {
    nr__qkind kind;
    nr__qparams out;       /* the bytes it writes (the last layer's, if it is not a matrix product) */
    /* NR__Q_MATMUL (dense, or convolution as im2col): K inputs, N outputs */
    size_t k, n;
    int8_t *w;             /* K x N, as neurite holds float weights (conv: (u, v, cin) x cout) */
    float *w_scale;        /* N */
    int32_t *bias;         /* N */
    int32_t *mult, *shift; /* N: out = zero + (sum * mult) >> (31 + shift), rounded; unused for the last */
    nr__qmatrix packed;    /* w packed for the kernels (made at load) */
    int32_t *bias_zero;    /* N: bias - in.zero * column sum (made at load) */
    /* NR__Q_TABLE */
    uint8_t table[256];
} nr__qlayer;

typedef struct nr__qnet {
    int method;            /* nr_calibration */
    size_t samples;
    double percentile;
    nr__qparams input;     /* of the scaled input */
    nr__qlayer *layers;    /* one per layer of the network */
    size_t n_layers;
    /* working memory for a batch */
    size_t cap;
    uint8_t *bytes[2];
    uint8_t *cols;         /* im2col */
    int32_t *sums;
    size_t cols_cap, sums_cap, bytes_cap;
} nr__qnet;

/* The activation's parameters before layer i (the input's for i = 0). */
static inline nr__qparams nr__q_in(const nr__qnet *q, size_t i) { return i ? q->layers[i - 1].out : q->input; }

/* Real multiplier m (> 0) as mult * 2^-(31 + shift) with mult in [2^30, 2^31): shift in [-30, 31]; a
 * multiplier too small for that is 0. */
void nr__q_multiplier(double m, int32_t *mult, int32_t *shift);
/* (sum * mult) >> (31 + shift), rounded half up: the requantization every implementation shares. */
static inline int32_t nr__q_scale(int32_t sum, int32_t mult, int32_t shift)
{
    int total = 31 + shift;
    int64_t p = (int64_t)sum * mult;
    return (int32_t)((p + ((int64_t)1 << (total - 1))) >> total);
}

/* The mean of n bytes summing to sum, rounded half to even (as ONNX's QuantizeLinear rounds, so that an
 * exported average pool agrees with ONNX Runtime's). */
static inline uint32_t nr__q_mean(uint32_t sum, uint32_t n)
{
    uint32_t q = sum / n, twice_rest = 2 * (sum % n);
    return q + (twice_rest > n || (twice_rest == n && (q & 1)));
}

/* Made once the layers' bytes are in place (after quantizing or loading): packed weights and folded zero
 * points. */
nr_status nr__qnet_prepare(nr_net *net);
void nr__qnet_free(nr__qnet *q);
/* The int8 forward pass of n scaled inputs; the last layer's float outputs in net->out[last]. */
nr_status nr__qnet_forward(nr_net *net, const float *x, size_t n, const float **out);
/* The int8 network as one C99 file (io/export_quant.c; nr_model_export_c calls it). */
nr_status nr__export_quant_c(const nr_net *net, FILE *f, const char *prefix);
/* The byte an input value becomes: x / scale (as x times 1/scale) clamped to +-512 (NaN to -512), rounded
 * half away from zero, plus the zero point, clamped to a byte. Written without branches so that the loops
 * that call it vectorize: the input of every batch goes through it. */
static inline uint8_t nr__q_input(float x, float inv_scale, int32_t zero)
{
    float t = x * inv_scale;
    t = t > -512.0f ? t : -512.0f;
    t = t < 512.0f ? t : 512.0f;
    int32_t r = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f)) + zero;
    r = r < 0 ? 0 : r;
    return (uint8_t)(r > 255 ? 255 : r);
}

#endif
