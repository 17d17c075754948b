/* export.c - a trained network as one self-contained C file: its weights as constant arrays and a predict
 * function in plain loops, no neurite, no allocation, no libm beyond expf/tanhf. For microcontrollers and
 * programs that must not link a library. The numbers are the same as neurite's to float rounding (the loops
 * add in a different order than the matrix kernels). */
#include "core/net.h"
#include "quant/quant.h"

#include <ctype.h>
#include <stdio.h>

/* Writes an array of floats as exact hexadecimal literals, 6 to a line. */
static void put_array(FILE *f, const char *prefix, const char *name, const float *v, size_t n)
{
    fprintf(f, "static const float %s_%s[%zu] = {", prefix, name, n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%af,", i % 6 ? " " : "\n    ", (double)v[i]);
    fprintf(f, "\n};\n");
}

static bool valid_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return strlen(s) < 48;
}

/* Names and shapes the emitters of one layer share. */
typedef struct emit {
    FILE *f;
    const nr_layer *l;
    size_t i;
    const char *px;
    char w[64], b[64];           /* the layer's weight and bias arrays */
} emit;

static void put_dense(const emit *e)
{
    const nr_layer *l = e->l;
    fprintf(e->f, "    for (int j = 0; j < %zu; j++)\n        out[j] = 0.0f;\n", l->out_size);
    fprintf(e->f, "    for (int i = 0; i < %zu; i++)\n        for (int j = 0; j < %zu; j++)\n"
                  "            out[j] += in[i] * %s[i * %zu + j];\n", l->in_size, l->out_size, e->w, l->out_size);
    if (l->ints[1])
        fprintf(e->f, "    for (int j = 0; j < %zu; j++)\n        out[j] += %s[j];\n", l->out_size, e->b);
}

static void put_conv(const emit *e)
{
    const nr_layer *l = e->l;
    FILE *f = e->f;
    const size_t h = l->in_shape[0], w = l->in_shape[1], c = l->in_shape[2];
    const size_t oh = l->out_shape[0], ow = l->out_shape[1], oc = l->out_shape[2];
    const long k = (long)l->ints[1], s = (long)l->ints[2], pad = (long)l->ints[3];
    fprintf(f, "    for (int oy = 0; oy < %zu; oy++)\n      for (int ox = 0; ox < %zu; ox++)\n"
               "        for (int f = 0; f < %zu; f++) {\n", oh, ow, oc);
    fprintf(f, "            float acc = 0.0f;\n");
    fprintf(f, "            for (int u = 0; u < %ld; u++)\n              for (int v = 0; v < %ld; v++) {\n", k, k);
    fprintf(f, "                int y = oy * %ld + u - %ld, x = ox * %ld + v - %ld;\n", s, pad, s, pad);
    fprintf(f, "                if (y < 0 || y >= %zu || x < 0 || x >= %zu)\n                    continue;\n", h, w);
    fprintf(f, "                for (int ch = 0; ch < %zu; ch++)\n", c);
    fprintf(f, "                    acc += in[(y * %zu + x) * %zu + ch] * %s[((u * %ld + v) * %zu + ch) * %zu + f];\n",
            w, c, e->w, k, c, oc);
    fprintf(f, "              }\n");
    if (l->ints[4])
        fprintf(f, "            acc += %s[f];\n", e->b);
    fprintf(f, "            out[(oy * %zu + ox) * %zu + f] = acc;\n        }\n", ow, oc);
}

static void put_pool(const emit *e)
{
    const nr_layer *l = e->l;
    FILE *f = e->f;
    const size_t w = l->in_shape[1], c = l->in_shape[2], oh = l->out_shape[0], ow = l->out_shape[1];
    const long k = (long)l->ints[0], s = (long)l->ints[1];
    const bool mx = l->ops == &nr__maxpool_ops;
    fprintf(f, "    for (int oy = 0; oy < %zu; oy++)\n      for (int ox = 0; ox < %zu; ox++)\n"
               "        for (int ch = 0; ch < %zu; ch++) {\n", oh, ow, c);
    fprintf(f, "            float r = %s;\n", mx ? "-INFINITY" : "0.0f");
    fprintf(f, "            for (int u = 0; u < %ld; u++)\n              for (int v = 0; v < %ld; v++) {\n", k, k);
    fprintf(f, "                float t = in[((oy * %ld + u) * %zu + ox * %ld + v) * %zu + ch];\n", s, w, s, c);
    fprintf(f, mx ? "                r = t > r ? t : r;\n" : "                r += t;\n");
    if (mx)
        fprintf(f, "              }\n            out[(oy * %zu + ox) * %zu + ch] = r;\n        }\n", ow, c);
    else
        fprintf(f, "              }\n            out[(oy * %zu + ox) * %zu + ch] = r * %af;\n        }\n", ow, c,
                (double)(1.0f / (float)(k * k)));
}

static void put_batchnorm(const emit *e)
{
    const nr_layer *l = e->l;
    const char *px = e->px;
    const size_t i = e->i;
    fprintf(e->f, "    for (int i = 0; i < %zu; i++) {\n        int ch = i %% %zu;\n", l->in_size, l->in_shape[2]);
    fprintf(e->f, "        out[i] = (in[i] - %s_mean%zu[ch]) / sqrtf(%s_var%zu[ch] + %af) * %s_gamma%zu[ch] + "
                  "%s_beta%zu[ch];\n    }\n", px, i, px, i, (double)l->floats[1], px, i, px, i);
}

/* Element-wise layers: one expression of in[i] each; false for a layer that is not element-wise. */
static bool put_elementwise(const emit *e)
{
    const nr_layer *l = e->l;
    const char *expr;
    char leaky[96];
    if (l->ops == &nr__flatten_ops || l->ops == &nr__dropout_ops || l->ops == &nr__identity_ops)
        expr = "in[i]";
    else if (l->ops == &nr__relu_ops)
        expr = "in[i] > 0.0f ? in[i] : 0.0f";
    else if (l->ops == &nr__leaky_relu_ops) {
        snprintf(leaky, sizeof leaky, "in[i] > 0.0f ? in[i] : %af * in[i]", (double)l->floats[0]);
        expr = leaky;
    } else if (l->ops == &nr__sigmoid_ops)
        expr = "in[i] >= 0.0f ? 1.0f / (1.0f + expf(-in[i])) : expf(in[i]) / (1.0f + expf(in[i]))";
    else if (l->ops == &nr__tanh_ops)
        expr = "tanhf(in[i])";
    else
        return false;
    fprintf(e->f, "    for (int i = 0; i < %zu; i++)\n        out[i] = %s;\n", l->in_size, expr);
    return true;
}

/* The code of one layer: reads `in` (its input shape), writes `out`. */
static nr_status put_layer(FILE *f, const nr_net *net, size_t i, const char *px)
{
    emit e = {.f = f, .l = &net->layers[i], .i = i, .px = px};
    snprintf(e.w, sizeof e.w, "%s_w%zu", px, i);
    snprintf(e.b, sizeof e.b, "%s_b%zu", px, i);
    const nr_layer_ops *ops = e.l->ops;
    fprintf(f, "    /* layer %zu: %s */\n", i, ops->tag);
    if (ops == &nr__dense_ops)
        put_dense(&e);
    else if (ops == &nr__conv2d_ops)
        put_conv(&e);
    else if (ops == &nr__maxpool_ops || ops == &nr__avgpool_ops)
        put_pool(&e);
    else if (ops == &nr__batchnorm_ops)
        put_batchnorm(&e);
    else if (ops == &nr__softmax_ops)  /* over the whole sample */
        fprintf(f, "    %s_softmax(in, out, %zu);\n", px, e.l->in_size);
    else if (!put_elementwise(&e))
        return nr__fail(NR_EINVAL, "layer %zu (%s) cannot be exported", i, ops->tag);
    return NR_OK;
}

/* The file's head comment, includes and size constants. */
static void put_preamble(FILE *f, const nr_net *net, const char *prefix, size_t biggest)
{
    size_t outputs = nr_net_output_size(net);
    fprintf(f, "/* %s - a neural network exported by neurite %s: %zu inputs, %zu outputs, %zu parameters.\n"
               " * Plain C99, no allocation; thread-safe as long as each thread passes its own work buffer.\n"
               " *\n"
               " *   float work[%s_WORK], out[%s_OUTPUTS];\n"
               " *   %s_predict(x, out, work);   // x: %zu raw inputs, scaled as in training\n"
               " */\n", prefix, NR_VERSION_STRING, net->in_size, outputs, net->n_params, prefix, prefix, prefix,
            net->in_size);
    fprintf(f, "#include <math.h>\n\n#define %s_INPUTS %zu\n#define %s_OUTPUTS %zu\n#define %s_WORK %zu\n\n", prefix,
            net->in_size, prefix, outputs, prefix, 2 * biggest);
}

/* Weights named by layer, the input scaling, and the softmax the head and softmax layers call. */
static void put_constants(FILE *f, const nr_net *net, const char *prefix)
{
    for (size_t t = 0; t < net->n_tensors; t++) {
        const nr__net_tensor *e = &net->tensors[t];
        const char *dot = strchr(e->name, '.');
        char name[64];
        snprintf(name, sizeof name, "%s%zu", dot ? dot + 1 : "t", e->layer);
        put_array(f, prefix, name, net->params + e->offset, e->size);
    }
    if (net->scaling.kind) {
        put_array(f, prefix, "shift", net->scaling.shift, net->scaling.count);
        put_array(f, prefix, "scale", net->scaling.scale, net->scaling.count);
    }
    fprintf(f, "\nstatic void %s_softmax(const float *in, float *out, int n)\n{\n"
               "    float mx = in[0], sum = 0.0f;\n    for (int i = 1; i < n; i++)\n        mx = in[i] > mx ? in[i] : mx;\n"
               "    for (int i = 0; i < n; i++)\n        sum += out[i] = expf(in[i] - mx);\n"
               "    for (int i = 0; i < n; i++)\n        out[i] /= sum;\n}\n\n", prefix);
}

/* The predict function: scaling, every layer between two halves of the work buffer, the head. */
static nr_status put_predict(FILE *f, const nr_net *net, const char *prefix, size_t biggest)
{
    size_t outputs = nr_net_output_size(net);
    fprintf(f, "/* Writes %zu %s into out; work holds %s_WORK floats. */\n", outputs,
            net->head == NR_LOSS_XENT ? "class probabilities" : "outputs", prefix);
    fprintf(f, "static void %s_predict(const float *x, float *out_final, float *work)\n{\n", prefix);
    fprintf(f, "    float *in = work, *out = work + %zu, *swap;\n    (void)swap;\n", biggest);
    if (net->scaling.kind)
        fprintf(f, "    for (int i = 0; i < %zu; i++)\n        in[i] = (x[i] - %s_shift[%s]) * %s_scale[%s];\n",
                net->in_size, prefix, net->scaling.count > 1 ? "i" : "0", prefix, net->scaling.count > 1 ? "i" : "0");
    else
        fprintf(f, "    for (int i = 0; i < %zu; i++)\n        in[i] = x[i];\n", net->in_size);
    for (size_t i = 0; i < net->n_layers; i++) {
        nr_status st = put_layer(f, net, i, prefix);
        if (st)
            return st;
        fprintf(f, "    swap = in;\n    in = out;\n    out = swap;\n");
    }
    if (net->head == NR_LOSS_XENT)
        fprintf(f, "    %s_softmax(in, out_final, %zu);\n}\n", prefix, outputs);
    else
        fprintf(f, "    for (int i = 0; i < %zu; i++)\n        out_final[i] = in[i];\n}\n", outputs);
    return NR_OK;
}

nr_status nr_model_export_c(const nr_net *net, FILE *f, const char *prefix)
{
    if (!net || !f)
        return nr__fail(NR_EINVAL, "nr_model_export_c: NULL argument");
    if (!prefix)
        prefix = "model";
    if (!valid_name(prefix))
        return nr__fail(NR_EINVAL, "'%s' is not a C identifier (letters, digits, _; at most 47)", prefix);
    if (net->n_layers == 0)
        return nr__fail(NR_EINVAL, "the network has no layers to export");
    if (net->q)
        return nr__export_quant_c(net, f, prefix);
    size_t biggest = net->in_size;
    for (size_t i = 0; i < net->n_layers; i++)
        biggest = net->layers[i].out_size > biggest ? net->layers[i].out_size : biggest;
    put_preamble(f, net, prefix, biggest);
    put_constants(f, net, prefix);
    nr_status st = put_predict(f, net, prefix, biggest);
    if (st)
        return st;
    return ferror(f) ? nr__fail(NR_EIO, "write error while exporting") : NR_OK;
}
