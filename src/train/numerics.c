/* numerics.c - where a NaN or an infinity started, and per-layer health, for --check-numerics and for the
 * message a failed step ends with. */
#include "train/trainer.h"

#include <math.h>

static bool all_finite(const float *v, size_t n)
{
    /* Summing is cheaper than testing each value and a NaN or Inf anywhere makes the sum non-finite; the
     * rare finite overflow of the sum itself is told apart by testing each value. */
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += v[i] * 0.0f;
    if (s == 0.0f)
        return true;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static void layer_name(const nr_net *net, size_t i, char *buf, size_t cap)
{
    nr_layer_info info;
    nr_net_layer_info(net, i, &info);
    snprintf(buf, cap, "layer %zu (%s)", i, info.desc);
}

/* Before the update: in the weights, then layer by layer through the forward pass. */
static bool locate_forward(const nr_net *net, char *where, size_t cap)
{
    char name[96];
    for (size_t i = 0; i < net->n_tensors; i++) {
        const nr__net_tensor *t = &net->tensors[i];
        if (!all_finite(net->params + t->offset, t->size)) {
            layer_name(net, t->layer, name, sizeof name);
            snprintf(where, cap, "the weights %s of %s", t->name, name);
            return true;
        }
    }
    for (size_t i = 0; i < net->n_layers; i++)
        if (!all_finite(net->out[i], net->batch * net->layers[i].out_size)) {
            layer_name(net, i, name, sizeof name);
            snprintf(where, cap, "the forward pass of %s (its output)", name);
            return true;
        }
    return false;
}

/* After backward: the loss gradient, then from the output down, the first layer whose backward pass turned a
 * finite gradient into a non-finite one. */
static bool locate_backward(const nr_net *net, char *where, size_t cap)
{
    size_t n = net->batch, last = net->n_layers - 1;
    if (!all_finite(net->dout[last], n * net->layers[last].out_size)) {
        snprintf(where, cap, "the gradient of the loss");
        return true;
    }
    for (size_t i = net->n_layers; i-- > 0;) {
        bool bad = i > 0 && !all_finite(net->dout[i - 1], n * net->layers[i].in_size);
        for (size_t t = 0; t < net->n_tensors && !bad; t++)
            if (net->tensors[t].layer == i)
                bad = !all_finite(net->grads + net->tensors[t].offset, net->tensors[t].size);
        if (bad) {
            char name[96];
            layer_name(net, i, name, sizeof name);
            snprintf(where, cap, "the backward pass of %s", name);
            return true;
        }
    }
    return false;
}

bool nr__locate_nonfinite(const nr_net *net, bool backward, char *where, size_t cap)
{
    return backward ? locate_backward(net, where, cap) : locate_forward(net, where, cap);
}

/* The share of a ReLU's units that gave 0 for every sample of the batch, as text. */
static void dead_units(const nr_net *net, size_t i, char *buf, size_t cap)
{
    size_t units = net->layers[i].out_size, count = 0;
    for (size_t u = 0; u < units; u++) {
        bool alive = false;
        for (size_t s = 0; s < net->batch && !alive; s++)
            alive = net->out[i][s * units + u] != 0.0f;
        count += !alive;
    }
    snprintf(buf, cap, "%.1f%%", 100.0 * (double)count / (double)units);
}

void nr__log_numerics(const nr_net *net, FILE *f, size_t epoch)
{
    fprintf(f, "epoch %zu, last batch: per-layer health\n", epoch);
    fprintf(f, "  %-3s %-28s %12s %12s %10s\n", "#", "layer", "output rms", "grad rms", "dead relu");
    for (size_t i = 0; i < net->n_layers; i++) {
        const nr_layer *l = &net->layers[i];
        double so = 0, sg = 0;
        size_t m = net->batch * l->out_size;
        for (size_t k = 0; k < m; k++) {
            so += (double)net->out[i][k] * net->out[i][k];
            sg += (double)net->dout[i][k] * net->dout[i][k];
        }
        nr_layer_info info;
        nr_net_layer_info(net, i, &info);
        char dead[16] = "";
        if (l->ops == &nr__relu_ops)
            dead_units(net, i, dead, sizeof dead);
        fprintf(f, "  %-3zu %-28s %12.4g %12.4g %10s\n", i, info.desc, sqrt(so / (double)m), sqrt(sg / (double)m),
                dead);
    }
}
