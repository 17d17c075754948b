/* export_quant.c - a quantized network as one self-contained C99 file: int8 weights, 32-bit sums, the same
 * fixed-point requantization and tables as neurite's int8 forward pass (quant/qforward.c), so its outputs
 * are the same bits. There is no float in the layers: floats appear only where the input is turned into
 * bytes, in the final dequantization, and in the optional softmax. It needs <stdint.h> only (and <math.h>
 * for the softmax), no allocation, and runs on 32-bit targets (64-bit products for the requantization).
 *
 * Entry points, for a prefix P:
 *   P_predict_bytes(q, out, work)  inputs already as bytes (P_INPUT_SCALE, P_INPUT_ZERO): integers only
 *   P_logits(x, out, work)         raw inputs, scaled and made bytes, then the integer layers
 *   P_predict(x, out, work)        and the head: softmax for a classifier, target units for a regression */
#include "core/net.h"
#include "quant/quant.h"

#include <stdio.h>

static void put_bytes(FILE *f, const char *px, const char *type, const char *name, size_t i, const void *v, size_t n,
                      bool is_signed)
{
    fprintf(f, "static const %s %s_%s%zu[%zu] = {", type, px, name, i, n);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s%d,", k % 20 ? " " : "\n    ", is_signed ? ((const int8_t *)v)[k] : ((const uint8_t *)v)[k]);
    fprintf(f, "\n};\n");
}

static void put_i32(FILE *f, const char *px, const char *name, size_t i, const int32_t *v, size_t n)
{
    fprintf(f, "static const int32_t %s_%s%zu[%zu] = {", px, name, i, n);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s%ld,", k % 10 ? " " : "\n    ", (long)v[k]);
    fprintf(f, "\n};\n");
}

static void put_f32(FILE *f, const char *px, const char *name, size_t i, const float *v, size_t n)
{
    fprintf(f, "static const float %s_%s%zu[%zu] = {", px, name, i, n);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s%af,", k % 6 ? " " : "\n    ", (double)v[k]);
    fprintf(f, "\n};\n");
}

/* Each layer's constants: weights, sums' offsets, multipliers and shifts (or the last layer's scales), tables. */
static void put_constants(FILE *f, const nr_net *net, const char *px)
{
    const nr__qnet *q = net->q;
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr__qlayer *l = &q->layers[i];
        if (l->kind == NR__Q_TABLE)
            put_bytes(f, px, "uint8_t", "table", i, l->table, 256, false);
        if (l->kind != NR__Q_MATMUL)
            continue;
        put_bytes(f, px, "int8_t", "w", i, l->w, l->k * l->n, true);
        put_i32(f, px, "offset", i, l->bias_zero, l->n);
        if (i + 1 == net->n_layers) {
            fprintf(f, "static const float %s_dequant%zu[%zu] = {", px, i, l->n);
            for (size_t o = 0; o < l->n; o++) {
                float deq = nr__q_in(q, i).scale * l->w_scale[o];  /* as qforward.c computes it */
                fprintf(f, "%s%af,", o % 6 ? " " : "\n    ", (double)deq);
            }
            fprintf(f, "\n};\n");
        } else {
            put_i32(f, px, "mult", i, l->mult, l->n);
            put_i32(f, px, "shift", i, l->shift, l->n);
        }
    }
    if (net->scaling.kind) {
        put_f32(f, px, "input_shift", 0, net->scaling.shift, net->scaling.count);
        put_f32(f, px, "input_scale", 0, net->scaling.scale, net->scaling.count);
    }
}

/* The sums of output o (`sum`, 32 bits) of a matrix product become a byte, or the last layer's float. */
static void put_finish(FILE *f, const char *px, size_t i, bool last, int32_t zero, const char *dst, int indent)
{
    if (last) {
        fprintf(f, "%*s{ float s = (float)(sum + %s_offset%zu[o]); %s = s * %s_dequant%zu[o]; }\n", indent, "", px, i,
                dst, px, i);
        return;
    }
    fprintf(f, "%*s{ int32_t v = (int32_t)%ld + %s_requant(sum + %s_offset%zu[o], %s_mult%zu[o], %s_shift%zu[o]);\n"
               "%*s  %s = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }\n",
            indent, "", (long)zero, px, px, i, px, i, px, i, indent, "", dst);
}

static void put_matmul(FILE *f, const nr_net *net, size_t i, const char *px)
{
    const nr_layer *l = &net->layers[i];
    const nr__qlayer *ql = &net->q->layers[i];
    bool last = i + 1 == net->n_layers;
    const char *dst = last ? "out_final[o]" : "out[o]";
    if (l->ops == &nr__dense_ops) {
        fprintf(f, "    for (int o = 0; o < %zu; o++) {\n        int32_t sum = 0;\n", ql->n);
        fprintf(f, "        for (int k = 0; k < %zu; k++)\n            sum += (int32_t)in[k] * %s_w%zu[k * %zu + o];\n",
                ql->k, px, i, ql->n);
        put_finish(f, px, i, last, ql->out.zero, dst, 8);
        fprintf(f, "    }\n");
        return;
    }
    const size_t h = l->in_shape[0], w = l->in_shape[1], c = l->in_shape[2], oh = l->out_shape[0],
                 ow = l->out_shape[1], k = (size_t)l->ints[1], s = (size_t)l->ints[2], p = (size_t)l->ints[3];
    fprintf(f, "    for (int oy = 0; oy < %zu; oy++)\n      for (int ox = 0; ox < %zu; ox++)\n"
               "        for (int o = 0; o < %zu; o++) {\n            int32_t sum = 0;\n", oh, ow, ql->n);
    fprintf(f, "            for (int u = 0; u < %zu; u++)\n              for (int v = 0; v < %zu; v++) {\n", k, k);
    fprintf(f, "                int y = oy * %zu + u - %zu, x = ox * %zu + v - %zu;\n", s, p, s, p);
    fprintf(f, "                int inside = y >= 0 && y < %zu && x >= 0 && x < %zu;\n", h, w);
    fprintf(f, "                for (int c = 0; c < %zu; c++)\n                    sum += (int32_t)(inside ? "
               "in[(y * %zu + x) * %zu + c] : %d) * %s_w%zu[((u * %zu + v) * %zu + c) * %zu + o];\n",
            c, w, c, (int)nr__q_in(net->q, i).zero, px, i, k, c, ql->n);
    fprintf(f, "              }\n");
    char at[64];
    snprintf(at, sizeof at, "%s[(oy * %zu + ox) * %zu + o]", last ? "out_final" : "out", ow, ql->n);
    put_finish(f, px, i, last, ql->out.zero, at, 12);
    fprintf(f, "        }\n");
}

static void put_pool(FILE *f, const nr_layer *l, bool max)
{
    const size_t w = l->in_shape[1], c = l->in_shape[2], oh = l->out_shape[0], ow = l->out_shape[1];
    const size_t k = (size_t)l->ints[0], s = (size_t)l->ints[1];
    fprintf(f, "    for (int oy = 0; oy < %zu; oy++)\n      for (int ox = 0; ox < %zu; ox++)\n"
               "        for (int c = 0; c < %zu; c++) {\n            uint32_t r = 0;\n", oh, ow, c);
    fprintf(f, "            for (int u = 0; u < %zu; u++)\n              for (int v = 0; v < %zu; v++) {\n"
               "                uint32_t b = in[((oy * %zu + u) * %zu + ox * %zu + v) * %zu + c];\n", k, k, s, w, s, c);
    fprintf(f, "                r = %s;\n              }\n", max ? "b > r ? b : r" : "r + b");
    if (max)
        fprintf(f, "            out[(oy * %zu + ox) * %zu + c] = (uint8_t)r;\n        }\n", ow, c);
    else
        fprintf(f, "            uint32_t mean = r / %zuu, twice_rest = 2u * (r %% %zuu);  /* rounded half to even */\n"
                   "            out[(oy * %zu + ox) * %zu + c] = (uint8_t)(mean + (twice_rest > %zuu || (twice_rest == %zuu "
                   "&& (mean & 1u))));\n        }\n", k * k, k * k, ow, c, k * k, k * k);
}

static void put_layer(FILE *f, const nr_net *net, size_t i, const char *px)
{
    const nr__qlayer *ql = &net->q->layers[i];
    const nr_layer *l = &net->layers[i];
    fprintf(f, "    /* layer %zu: %s */\n", i, l->ops->tag);
    if (ql->kind == NR__Q_MATMUL)
        put_matmul(f, net, i, px);
    else if (ql->kind == NR__Q_MAXPOOL)
        put_pool(f, l, true);
    else if (ql->kind == NR__Q_AVGPOOL)
        put_pool(f, l, false);
    else if (ql->kind == NR__Q_TABLE)
        fprintf(f, "    for (int k = 0; k < %zu; k++)\n        out[k] = %s_table%zu[in[k]];\n", l->out_size, px, i);
    else
        fprintf(f, "    for (int k = 0; k < %zu; k++)\n        out[k] = in[k];\n", l->out_size);
}

/* The head comment, sizes, and the one helper every layer's requantization calls. */
static void put_preamble(FILE *f, const nr_net *net, const char *px, size_t biggest)
{
    const nr__qnet *q = net->q;
    fprintf(f, "/* %s - an int8 neural network exported by neurite %s: %zu inputs, %zu outputs.\n"
               " * Integer layers (int8 weights, 32-bit sums, fixed-point requantization); plain C99, no allocation,\n"
               " * 32-bit targets welcome. Thread-safe as long as each thread passes its own work buffer.\n *\n"
               " *   uint8_t work[%s_WORK]; float out[%s_OUTPUTS];\n"
               " *   %s_predict(x, out, work);         // x: %zu raw inputs, as neurite's data files hold them\n"
               " *   %s_predict_bytes(q, out, work);   // q: inputs already bytes, x / %s_INPUT_SCALE + %s_INPUT_ZERO\n"
               " */\n", px, NR_VERSION_STRING, net->in_size, nr_net_output_size(net), px, px, px, net->in_size, px,
            px, px);
    fprintf(f, "#include <stdint.h>\n#include <math.h>\n\n#define %s_INPUTS %zu\n#define %s_OUTPUTS %zu\n"
               "#define %s_WORK %zu\n#define %s_INPUT_SCALE %af\n#define %s_INPUT_ZERO %d\n\n",
            px, net->in_size, px, nr_net_output_size(net), px, 2 * biggest, px, (double)q->input.scale, px,
            (int)q->input.zero);
    fprintf(f, "/* A program calls the entry point it needs; the others must not warn. */\n#if defined(__GNUC__)\n"
               "#define %s_ENTRY static __attribute__((unused))\n#else\n#define %s_ENTRY static\n#endif\n\n", px, px);
    fprintf(f, "/* sum * mult / 2^(31 + shift), rounded half up (64-bit product; >> of a negative is arithmetic). */\n"
               "static int32_t %s_requant(int32_t sum, int32_t mult, int32_t shift)\n{\n"
               "    int total = 31 + shift;\n    int64_t p = (int64_t)sum * mult;\n"
               "    return (int32_t)((p + ((int64_t)1 << (total - 1))) >> total);\n}\n\n", px);
}

/* The integer layers, between the two halves of the work buffer; the last writes out_final. */
static void put_bytes_fn(FILE *f, const nr_net *net, const char *px, size_t biggest)
{
    fprintf(f, "/* The outputs (before any softmax) of inputs given as bytes. */\n"
               "%s_ENTRY void %s_predict_bytes(const uint8_t *q, float *out_final, uint8_t *work)\n{\n", px, px);
    fprintf(f, "    uint8_t *in = work, *out = work + %zu, *swap;\n    (void)swap;\n", biggest);
    fprintf(f, "    if (q != work)\n        for (int k = 0; k < %zu; k++)\n            in[k] = q[k];\n", net->in_size);
    for (size_t i = 0; i < net->n_layers; i++) {
        put_layer(f, net, i, px);
        if (i + 1 < net->n_layers)
            fprintf(f, "    swap = in;\n    in = out;\n    out = swap;\n");
    }
    size_t last = net->n_layers - 1;
    const nr__qlayer *ql = &net->q->layers[last];
    if (ql->kind != NR__Q_MATMUL)
        fprintf(f, "    for (int k = 0; k < %zu; k++)\n        out_final[k] = %af * (float)((int32_t)out[k] - %d);\n",
                net->layers[last].out_size, (double)ql->out.scale, (int)ql->out.zero);
    fprintf(f, "}\n\n");
}

/* Raw inputs: the model's scaling, then bytes as neurite makes them (quant/qforward.c, nr__q_input). */
static void put_entry_points(FILE *f, const nr_net *net, const char *px)
{
    const nr__scaling *s = &net->scaling;
    size_t outputs = nr_net_output_size(net);
    fprintf(f, "/* The outputs before the head (logits for a classifier) of raw inputs. */\n"
               "%s_ENTRY void %s_logits(const float *x, float *out, uint8_t *work)\n{\n"
               "    for (int k = 0; k < %zu; k++) {\n", px, px, net->in_size);
    if (s->kind)
        fprintf(f, "        float v = (x[k] - %s_input_shift0[%s]) * %s_input_scale0[%s];\n", px, s->count > 1 ? "k" : "0", px,
                s->count > 1 ? "k" : "0");
    else
        fprintf(f, "        float v = x[k];\n");
    fprintf(f, "        float t = v * %af;\n        int32_t r;\n        if (!(t > -512.0f))\n            t = -512.0f;\n"
               "        if (t > 512.0f)\n            t = 512.0f;\n        r = (int32_t)(t >= 0.0f ? t + 0.5f : t - 0.5f) + %d;\n"
               "        work[k] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);\n    }\n    %s_predict_bytes(work, out, work);\n}\n\n",
            (double)(1.0f / net->q->input.scale), (int)net->q->input.zero, px);
    fprintf(f, "/* Writes %zu %s into out. */\n%s_ENTRY void %s_predict(const float *x, float *out, uint8_t *work)\n{\n"
               "    %s_logits(x, out, work);\n", outputs,
            net->head == NR_LOSS_XENT ? "class probabilities" : "outputs", px, px, px);
    if (net->head == NR_LOSS_XENT)
        fprintf(f, "    {\n        float mx = out[0], sum = 0.0f;\n        for (int i = 1; i < %zu; i++)\n"
                   "            mx = out[i] > mx ? out[i] : mx;\n        for (int i = 0; i < %zu; i++)\n"
                   "            sum += out[i] = expf(out[i] - mx);\n        for (int i = 0; i < %zu; i++)\n"
                   "            out[i] /= sum;\n    }\n", outputs, outputs, outputs);
    for (size_t t = 0; t < net->n_targets && net->n_targets == outputs; t++)
        fprintf(f, "    out[%zu] = out[%zu] / %af + %af;\n", t, t, (double)net->target_scale[t],
                (double)net->target_mean[t]);
    fprintf(f, "}\n");
}

nr_status nr__export_quant_c(const nr_net *net, FILE *f, const char *px)
{
    size_t biggest = net->in_size;
    for (size_t i = 0; i < net->n_layers; i++)
        biggest = net->layers[i].out_size > biggest ? net->layers[i].out_size : biggest;
    put_preamble(f, net, px, biggest);
    put_constants(f, net, px);
    fprintf(f, "\n");
    put_bytes_fn(f, net, px, biggest);
    put_entry_points(f, net, px);
    return ferror(f) ? nr__fail(NR_EIO, "write error while exporting") : NR_OK;
}
