/* layout.h - where an element sits in neurite's channels-last layout and in the NCHW layout of ONNX and
 * PyTorch: the index conversions the ONNX and safetensors readers and writers share. */
#ifndef NR_LAYOUT_H
#define NR_LAYOUT_H

#include <stddef.h>

/* A dense layer's input row for the input element (y, x, ch) of an h x w x c image: neurite flattens channels
 * last, (y * w + x) * c + ch; ONNX flattens NCHW, (ch * h + y) * w + x. */
static inline size_t nr__hwc_row(size_t y, size_t x, size_t ch, size_t w, size_t c) { return (y * w + x) * c + ch; }
static inline size_t nr__chw_row(size_t y, size_t x, size_t ch, size_t h, size_t w) { return (ch * h + y) * w + x; }

/* A convolution weight element: neurite stores (u, v, cin, cout), ONNX (cout, cin, u, v). */
static inline size_t nr__conv_hwio(size_t u, size_t v, size_t ci, size_t co, size_t k, size_t cin, size_t cout)
{
    return ((u * k + v) * cin + ci) * cout + co;
}
static inline size_t nr__conv_oihw(size_t u, size_t v, size_t ci, size_t co, size_t k, size_t cin)
{
    return ((co * cin + ci) * k + u) * k + v;
}

#endif
