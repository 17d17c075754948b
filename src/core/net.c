/* net.c - a network: a list of layers, its flat parameter and gradient buffers with their named table, and
 * the memory plan for activations.
 *
 * Memory: parameters and gradients are two flat buffers that grow as layers are added. Activations, their
 * gradients and each layer's scratch share one arena planned for a batch capacity; a forward pass with a
 * larger batch replans once, and every later step at that size or smaller allocates nothing. */
#include "core/net.h"
#include "quant/quant.h"

#include <stdio.h>
#include <stdlib.h>

static nr_net *net_alloc(size_t h, size_t w, size_t c)
{
    size_t size;
    if (h == 0 || w == 0 || c == 0 || !nr__mul(h, w, &size) || !nr__mul(size, c, &size) || size > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "input shape %zux%zux%zu is not a valid size", h, w, c), NULL;
    nr_net *net = calloc(1, sizeof *net);
    if (!net)
        return nr__fail(NR_ENOMEM, "out of memory"), NULL;
    net->in_shape[0] = h;
    net->in_shape[1] = w;
    net->in_shape[2] = c;
    net->in_size = size;
    nr_rng_seed(&net->rng, 0);
    return net;
}

nr_net *nr_net_new(size_t features) { return net_alloc(1, 1, features); }

nr_net *nr_net_new_image(size_t height, size_t width, size_t channels)
{
    return net_alloc(height, width, channels);
}

static void free_plan(nr_net *net)
{
    nr__free(net->arena);
    free(net->out);
    free(net->dout);
    net->arena = NULL;
    net->out = net->dout = NULL;
    net->input = net->input_grad = NULL;
    net->cap = 0;
    net->batch = 0;
    net->state = NR__NET_IDLE;
}

void nr_net_free(nr_net *net)
{
    if (!net)
        return;
    free_plan(net);
    nr__free(net->params);
    nr__free(net->grads);
    free(net->layers);
    free(net->tensors);
    free(net->scaling.shift);
    free(net->scaling.scale);
    nr__encoding_free(net->encoding);
    nr__free_strings(net->class_names, net->n_class_names);
    nr__free_strings(net->target_names, net->n_targets);
    free(net->target_mean);
    free(net->target_scale);
    nr__free(net->predict_buf);
    nr__qnet_free(net->q);
    nr__free(net->pack_buf);
    free(net);
}

static const size_t *current_shape(const nr_net *net)
{
    return net->n_layers ? net->layers[net->n_layers - 1].out_shape : net->in_shape;
}

nr_status nr__layer_prepare(const size_t in_shape[3], nr_layer *l)
{
    memcpy(l->in_shape, in_shape, sizeof l->in_shape);
    l->in_size = in_shape[0] * in_shape[1] * in_shape[2];
    l->n_tensors = 0;
    l->scratch = NULL;
    nr_status st = l->ops->setup(l);
    if (st)
        return st;
    size_t out_size;
    if (!nr__mul(l->out_shape[0], l->out_shape[1], &out_size) || !nr__mul(out_size, l->out_shape[2], &out_size) ||
        out_size == 0 || out_size > NR_MAX_FLOATS)
        return nr__fail(NR_ESHAPE, "%s layer: output shape %zux%zux%zu is not a valid size", l->ops->tag,
                        l->out_shape[0], l->out_shape[1], l->out_shape[2]);
    l->out_size = out_size;
    l->param_count = 0;
    for (int t = 0; t < l->n_tensors; t++) {
        size_t size = 1;
        for (int d = 0; d < l->tensors[t].ndim; d++)
            if (!nr__mul(size, l->tensors[t].shape[d], &size))
                return nr__fail(NR_EINVAL, "%s layer: tensor too large", l->ops->tag);
        if (!nr__add(l->param_count, size, &l->param_count) || l->param_count > NR_MAX_FLOATS)
            return nr__fail(NR_EINVAL, "%s layer: too many parameters", l->ops->tag);
    }
    return NR_OK;
}

nr_status nr__net_reserve(nr_net *net, size_t total)
{
    if (total <= net->param_cap)
        return NR_OK;
    float *params = nr__floats(total), *grads = nr__floats(total);
    if (!params || !grads) {
        nr__free(params);
        nr__free(grads);
        return NR_ENOMEM;
    }
    if (net->n_params) {
        memcpy(params, net->params, net->n_params * sizeof(float));
        memcpy(grads, net->grads, net->n_params * sizeof(float));
    }
    nr__free(net->params);
    nr__free(net->grads);
    nr__net_weights_changed(net);
    net->params = params;
    net->grads = grads;
    net->param_cap = total;
    return NR_OK;
}

nr_status nr__net_append(nr_net *net, const nr_layer *proto)
{
    if (!net || !proto || !proto->ops)
        return nr__fail(NR_EINVAL, "NULL network or layer");
    if (net->n_layers >= NR__MAX_LAYERS)
        return nr__fail(NR_EINVAL, "a network has at most %d layers", NR__MAX_LAYERS);
    nr_layer l = *proto;
    nr_status st = nr__layer_prepare(current_shape(net), &l);
    if (st)
        return st;
    /* Place the layer's tensors after the existing ones. */
    size_t total = net->n_params;
    for (int t = 0; t < l.n_tensors; t++) {
        l.tensor_offset[t] = total;
        size_t size = 1;
        for (int d = 0; d < l.tensors[t].ndim; d++)
            size *= l.tensors[t].shape[d];
        if (!nr__add(total, size, &total) || total > NR_MAX_FLOATS)
            return nr__fail(NR_EINVAL, "%s layer: the network would have too many parameters", l.ops->tag);
    }
    /* Allocate everything first, so a failure leaves the network as it was. */
    nr_layer *layers = realloc(net->layers, (net->n_layers + 1) * sizeof *layers);
    if (!layers)
        return nr__fail(NR_ENOMEM, "out of memory");
    net->layers = layers;
    nr__net_tensor *tensors = realloc(net->tensors, (net->n_tensors + (size_t)l.n_tensors + 1) * sizeof *tensors);
    if (!tensors)
        return nr__fail(NR_ENOMEM, "out of memory");
    net->tensors = tensors;
    if ((st = nr__net_reserve(net, total)))
        return st;
    /* Room reserved earlier may hold values from layers a failed nr_net_add_spec took back. */
    if (total > net->n_params) {
        memset(net->params + net->n_params, 0, (total - net->n_params) * sizeof(float));
        memset(net->grads + net->n_params, 0, (total - net->n_params) * sizeof(float));
    }
    size_t index = net->n_layers;
    for (int t = 0; t < l.n_tensors; t++) {
        nr__net_tensor *e = &net->tensors[net->n_tensors++];
        snprintf(e->name, sizeof e->name, "%s%zu.%s", l.ops->tag, index, l.tensors[t].suffix);
        e->ndim = l.tensors[t].ndim;
        memset(e->shape, 0, sizeof e->shape);
        e->size = 1;
        for (int d = 0; d < e->ndim; d++) {
            e->shape[d] = l.tensors[t].shape[d];
            e->size *= e->shape[d];
        }
        e->offset = l.tensor_offset[t];
        e->flags = l.tensors[t].flags;
        e->layer = index;
    }
    net->n_params = total;
    net->layers[net->n_layers++] = l;
    nr__net_weights_changed(net);
    free_plan(net);
    return NR_OK;
}

nr_status nr_net_dense(nr_net *net, size_t units, int bias)
{
    if (units > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "dense layer: %zu units is too many", units);
    nr_layer l = {.ops = &nr__dense_ops, .ints = {(int64_t)units, bias ? 1 : 0}};
    return nr__net_append(net, &l);
}

nr_status nr_net_act(nr_net *net, nr_act act)
{
    const nr_layer_ops *ops = nr__act_ops_for(act);
    if (!ops)
        return nr__fail(NR_EINVAL, "unknown activation %d", (int)act);
    nr_layer l = {.ops = ops, .ints = {act}, .floats = {act == NR_ACT_LEAKY_RELU ? 0.01f : 0.0f}};
    return nr__net_append(net, &l);
}

nr_status nr_net_leaky_relu(nr_net *net, float slope)
{
    nr_layer l = {.ops = &nr__leaky_relu_ops, .ints = {NR_ACT_LEAKY_RELU}, .floats = {slope}};
    return nr__net_append(net, &l);
}

/* The activation right after layer i, for NR_INIT_AUTO. */
static nr_act next_act(const nr_net *net, size_t i)
{
    for (size_t j = 0; j < nr__act_count; j++)
        if (i + 1 < net->n_layers && net->layers[i + 1].ops == nr__act_ops_for((nr_act)j))
            return (nr_act)j;
    return NR_ACT_IDENTITY;
}

nr_status nr_net_init(nr_net *net, nr_init init, nr_rng *rng)
{
    if (!net || !rng)
        return nr__fail(NR_EINVAL, "nr_net_init: NULL argument");
    if (init < NR_INIT_AUTO || init > NR_INIT_HE_NORMAL)
        return nr__fail(NR_EINVAL, "unknown initialiser %d", (int)init);
    nr__net_weights_changed(net);
    if (net->n_params)
        memset(net->params, 0, net->n_params * sizeof(float));
    for (size_t i = 0; i < net->n_layers; i++) {
        nr_layer *l = &net->layers[i];
        if (l->ops->init)
            l->ops->init(l, net->params, init, next_act(net, i), rng);
    }
    return NR_OK;
}

size_t nr_net_input_size(const nr_net *net) { return net ? net->in_size : 0; }

void nr_net_input_shape(const nr_net *net, size_t shape[3])
{
    for (int i = 0; shape && i < 3; i++)
        shape[i] = net ? net->in_shape[i] : 0;
}
size_t nr_net_output_size(const nr_net *net)
{
    if (!net)
        return 0;
    return net->n_layers ? net->layers[net->n_layers - 1].out_size : net->in_size;
}
size_t nr_net_layer_count(const nr_net *net) { return net ? net->n_layers : 0; }
size_t nr_net_param_count(const nr_net *net) { return net ? net->n_params : 0; }
float *nr_net_params(nr_net *net)
{
    /* The caller may write through the pointer: prepacked copies are remade at the next inference pass. */
    nr__net_weights_changed(net);
    return net ? net->params : NULL;
}

void nr__net_weights_changed(nr_net *net)
{
    if (!net || !net->packs_valid)
        return;
    net->packs_valid = false;
    for (size_t i = 0; i < net->n_layers; i++)
        net->layers[i].packed = NULL;
}

/* The panel width for dense layer l's weights, 0 if it is not packed (nr__gemm_panel_width). */
static size_t pack_width(const nr_layer *l) { return l->ops == &nr__dense_ops ? nr__gemm_panel_width(l->out_size) : 0; }

/* Floats of layer l's weights in panels of `width`: whole panels, the last one's rows padded. */
static size_t packed_floats(const nr_layer *l, size_t width)
{
    return (l->out_size + width - 1) / width * width * l->in_size;
}

static nr_status make_packs(nr_net *net)
{
    size_t total = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        size_t width = pack_width(l);
        if (width)
            total += packed_floats(l, width);
    }
    if (total > net->pack_cap) {
        nr__free(net->pack_buf);
        net->pack_cap = 0;
        if (!(net->pack_buf = nr__floats(total)))
            return NR_ENOMEM;
        net->pack_cap = total;
    }
    float *dst = net->pack_buf;
    for (size_t i = 0; i < net->n_layers; i++) {
        nr_layer *l = &net->layers[i];
        size_t width = pack_width(l);
        if (!width)
            continue;
        nr__gemm_pack_panels(l->in_size, l->out_size, net->params + l->tensor_offset[0], l->out_size, width, dst);
        l->packed = dst;
        l->packed_width = width;
        dst += packed_floats(l, width);
    }
    net->packs_valid = true;
    net->pack_threads = nr_threads();
    net->pack_backend = nr_gemm_backend();
    return NR_OK;
}

nr_status nr_net_prepack(nr_net *net, int on)
{
    if (!net)
        return nr__fail(NR_EINVAL, "nr_net_prepack: NULL network");
    nr__net_weights_changed(net);
    net->prepack = on != 0 && !net->q;
    if (!net->prepack) {
        nr__free(net->pack_buf);
        net->pack_buf = NULL;
        net->pack_cap = 0;
        return NR_OK;
    }
    nr_status st = make_packs(net);
    if (st)
        net->prepack = false;
    return st;
}
void nr__net_settle_grads(nr_net *net)
{
    if (net->grads_stale && net->n_params)
        memset(net->grads, 0, net->n_params * sizeof(float));
    net->grads_stale = false;
}

float *nr_net_grads(nr_net *net)
{
    if (!net)
        return NULL;
    nr__net_settle_grads(net);
    return net->grads;
}
size_t nr_net_tensor_count(const nr_net *net) { return net ? net->n_tensors : 0; }
nr_rng *nr_net_rng(nr_net *net) { return net ? &net->rng : NULL; }

nr_status nr_net_layer_info(const nr_net *net, size_t index, nr_layer_info *info)
{
    if (!net || !info)
        return nr__fail(NR_EINVAL, "nr_net_layer_info: NULL argument");
    if (index >= net->n_layers)
        return nr__fail(NR_EINVAL, "layer %zu does not exist (the network has %zu)", index, net->n_layers);
    const nr_layer *l = &net->layers[index];
    info->tag = l->ops->tag;
    if (l->ops->describe)
        l->ops->describe(l, info->desc, sizeof info->desc);
    else
        snprintf(info->desc, sizeof info->desc, "%s", l->ops->tag);
    memcpy(info->out_shape, l->out_shape, sizeof info->out_shape);
    info->out_size = l->out_size;
    info->param_count = l->param_count;
    return NR_OK;
}

static void shape_text(const size_t *s, char *buf, size_t cap)
{
    if (s[0] == 1 && s[1] == 1)
        snprintf(buf, cap, "%zu", s[2]);
    else
        snprintf(buf, cap, "%zux%zux%zu", s[0], s[1], s[2]);
}

nr_status nr_net_print_summary(const nr_net *net, FILE *f)
{
    if (!net || !f)
        return nr__fail(NR_EINVAL, "nr_net_print_summary: NULL argument");
    char shape[64];
    shape_text(net->in_shape, shape, sizeof shape);
    fprintf(f, "  %-3s %-28s %-14s %12s\n", "#", "layer", "output", "parameters");
    fprintf(f, "  %-3s %-28s %-14s %12s\n", "", "input", shape, "");
    for (size_t i = 0; i < net->n_layers; i++) {
        nr_layer_info info;
        nr_net_layer_info(net, i, &info);
        shape_text(info.out_shape, shape, sizeof shape);
        fprintf(f, "  %-3zu %-28s %-14s %12zu\n", i, info.desc, shape, info.param_count);
    }
    fprintf(f, "  %-3s %-28s %-14s %12zu  (%.1f KiB of float32)\n", "", "total", "", net->n_params,
            (double)net->n_params * 4.0 / 1024.0);
    return NR_OK;
}

nr_status nr_net_tensor(const nr_net *net, size_t index, nr_tensor_info *info)
{
    if (!net || !info)
        return nr__fail(NR_EINVAL, "nr_net_tensor: NULL argument");
    if (index >= net->n_tensors)
        return nr__fail(NR_EINVAL, "tensor %zu does not exist (the network has %zu)", index, net->n_tensors);
    const nr__net_tensor *e = &net->tensors[index];
    info->name = e->name;
    info->ndim = e->ndim;
    memcpy(info->shape, e->shape, sizeof info->shape);
    info->offset = e->offset;
    info->size = e->size;
    info->flags = e->flags;
    return NR_OK;
}

nr_status nr_net_find_tensor(const nr_net *net, const char *name, nr_tensor_info *info)
{
    if (!net || !name || !info)
        return nr__fail(NR_EINVAL, "nr_net_find_tensor: NULL argument");
    for (size_t i = 0; i < net->n_tensors; i++)
        if (strcmp(net->tensors[i].name, name) == 0)
            return nr_net_tensor(net, i, info);
    return nr__fail(NR_EINVAL, "the network has no tensor named '%s'", name);
}

/* ---- the memory plan ---- */

static size_t round_up(size_t n) { return (n + 15) / 16 * 16; }  /* whole 64-byte lines */

static nr_status plan(nr_net *net, size_t n)
{
    if (n <= net->cap)
        return NR_OK;
    free_plan(net);
    size_t total = 0, s;
    bool ok = true;
    /* the input gradient */
    ok &= nr__mul(n, net->in_size, &s) && nr__add(total, round_up(s), &total);
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        ok &= nr__mul(n, l->out_size, &s) && nr__add(total, 2 * round_up(s), &total);
        if (l->ops->scratch)
            ok &= nr__add(total, round_up(l->ops->scratch(l, n)), &total);
    }
    if (!ok || total > NR_MAX_FLOATS)
        return nr__fail(NR_ENOMEM, "a batch of %zu samples needs too much memory for this network", n);
    net->out = calloc(net->n_layers, sizeof *net->out);
    net->dout = calloc(net->n_layers, sizeof *net->dout);
    net->arena = nr__floats(total);
    if (!net->out || !net->dout || !net->arena) {
        free_plan(net);
        return nr__fail(NR_ENOMEM, "out of memory planning a batch of %zu samples (%zu MiB)", n,
                        total * sizeof(float) >> 20);
    }
    float *p = net->arena;
    net->input_grad = p;
    p += round_up(n * net->in_size);
    for (size_t i = 0; i < net->n_layers; i++) {
        nr_layer *l = &net->layers[i];
        net->out[i] = p;
        p += round_up(n * l->out_size);
        net->dout[i] = p;
        p += round_up(n * l->out_size);
        if (l->ops->scratch) {
            l->scratch = p;
            p += round_up(l->ops->scratch(l, n));
        }
    }
    net->cap = n;
    return NR_OK;
}

/* ---- forward, loss, backward ---- */

nr_status nr__net_check_batch(const nr_net *net, const void *x, size_t n)
{
    if (!net || !x)
        return nr__fail(NR_EINVAL, "NULL network or input");
    if (net->n_layers == 0)
        return nr__fail(NR_EINVAL, "the network has no layers");
    size_t s;
    if (n == 0 || n > NR__MAX_BATCH || !nr__mul(n, net->in_size, &s) || s > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "batch size %zu is out of range (1 to %d)", n, NR__MAX_BATCH);
    return NR_OK;
}

/* One sample through layers i (dense, prepacked), i + 1 (element-wise activation) and i + 2 (dense) in one
 * pool job where the shapes allow it (nr__gemm_row_pair): one hand-off to the other core instead of two, and
 * only a partial output row crosses back. Every layer's output is the one it would have written itself. */
static bool fused_pair(nr_net *net, size_t i, const float *x)
{
    if (i + 2 >= net->n_layers)
        return false;
    const nr_layer *d1 = &net->layers[i], *act = &net->layers[i + 1], *d2 = &net->layers[i + 2];
    if (!d1->packed || d2->ops != &nr__dense_ops || act->ops == &nr__softmax_ops ||
        nr__act_ops_for((nr_act)act->ints[0]) != act->ops || d2->in_size != d1->out_size)
        return false;
    const float *p = net->params;
    return nr__gemm_row_pair(d1->in_size, d1->out_size, x, d1->packed, d1->packed_width,
                             d1->ints[1] ? p + d1->tensor_offset[1] : NULL, nr__act_elementwise, act, net->out[i],
                             net->out[i + 1], d2->out_size, d2->packed ? d2->packed : p + d2->tensor_offset[0],
                             d2->packed ? d2->packed_width : 0, d2->ints[1] ? p + d2->tensor_offset[1] : NULL,
                             net->out[i + 2]);
}

nr_status nr_net_forward(nr_net *net, const float *x, size_t n, int training, const float **out)
{
    nr_status st = nr__net_check_batch(net, x, n);
    if (st)
        return st;
    if ((st = plan(net, n)))
        return st;
    if (net->q && training)
        return nr__fail(NR_EINVAL, "this network is quantized (int8): it runs inference only; train its float "
                                   "original");
    if (net->q)
        return nr__qnet_forward(net, x, n, out);
    if (training)
        nr__net_weights_changed(net); /* a training pass comes before a step (and batch norm's statistics) */
    else if (net->prepack &&
             (!net->packs_valid || net->pack_threads != nr_threads() || net->pack_backend != nr_gemm_backend())) {
        nr__net_weights_changed(net); /* the panel widths depend on both */
        make_packs(net);              /* without memory, the weights are read in place */
    }
    nr_pass pass = {net->params, net->grads, training != 0, &net->rng, false, NULL};
    const float *src = x;
    net->input = training ? x : NULL;
    for (size_t i = 0; i < net->n_layers; i++) {
        if (n == 1 && !training && fused_pair(net, i, src)) {
            i += 2;
        } else {
            nr_layer *l = &net->layers[i];
            l->ops->forward(l, &pass, src, net->out[i], n);
        }
        src = net->out[i];
    }
    net->batch = n;
    net->state = training ? NR__NET_FORWARD_TRAINING : NR__NET_FORWARD;
    if (out)
        *out = net->out[net->n_layers - 1];
    return NR_OK;
}

nr_status nr_net_loss(nr_net *net, nr_loss loss, const float *targets, const int32_t *labels, double *value)
{
    if (!net)
        return nr__fail(NR_EINVAL, "nr_net_loss: NULL network");
    if (net->state == NR__NET_IDLE || net->n_layers == 0)
        return nr__fail(NR_EINVAL, "nr_net_loss: run nr_net_forward first");
    size_t last = net->n_layers - 1, d = net->layers[last].out_size;
    double v = 0.0;
    nr_status st = nr__loss(loss, net->out[last], targets, labels, net->batch, d, &v, net->dout[last]);
    if (st)
        return st;
    if (net->state == NR__NET_FORWARD_TRAINING)
        net->state = NR__NET_LOSS_READY;
    if (value)
        *value = v;
    return NR_OK;
}

nr_status nr_net_backward(nr_net *net) { return nr__net_backward(net, NULL); }

nr_status nr__net_backward(nr_net *net, nr_optimizer *fused_step)
{
    if (!net)
        return nr__fail(NR_EINVAL, "nr_net_backward: NULL network");
    if (net->state != NR__NET_LOSS_READY)
        return nr__fail(NR_EINVAL, "nr_net_backward: needs a training forward pass and nr_net_loss first");
    /* After nr_net_zero_grad the layers write their gradients rather than add them: the same numbers
     * without a pass over the whole gradient buffer first. */
    nr_pass pass = {net->params, net->grads, 1, &net->rng, net->grads_stale, fused_step};
    net->grads_stale = false;
    if (fused_step)
        nr__net_weights_changed(net);
    size_t n = net->batch;
    for (size_t i = net->n_layers; i-- > 0;) {
        nr_layer *l = &net->layers[i];
        const float *x = i ? net->out[i - 1] : net->input;
        float *dx = i ? net->dout[i - 1] : (net->want_input_grad ? net->input_grad : NULL);
        if (dx && !l->ops->writes_dx)
            memset(dx, 0, n * l->in_size * sizeof(float));
        l->ops->backward(l, &pass, x, net->out[i], net->dout[i], dx, n);
        if (net->grads_ready)
            net->grads_ready(net->grads_ready_ctx, i);
    }
    net->state = NR__NET_BACKWARD_DONE;
    return NR_OK;
}

void nr_net_zero_grad(nr_net *net)
{
    if (net)
        net->grads_stale = true;
}

const float *nr_net_layer_output(const nr_net *net, size_t index)
{
    if (!net || index >= net->n_layers || net->state == NR__NET_IDLE)
        return NULL;
    return net->out[index];
}

const float *nr_net_layer_grad(const nr_net *net, size_t index)
{
    if (!net || index >= net->n_layers || net->state != NR__NET_BACKWARD_DONE)
        return NULL;
    return net->dout[index];
}

void nr_net_want_input_grad(nr_net *net, int enable)
{
    if (net)
        net->want_input_grad = enable != 0;
}

const float *nr_net_input_grad(const nr_net *net)
{
    if (!net || !net->want_input_grad || net->state != NR__NET_BACKWARD_DONE)
        return NULL;
    return net->input_grad;
}
