/* helper_layer.c - drives one forward and backward pass of a network through the public API, with inputs,
 * weights and the output gradient read from .npy files, for tests/test_conv_torch.py to compare with PyTorch.
 *
 *   helper_layer --shape H,W,C --spec SPEC --x X.npy --out DIR [--dy DY.npy] [--set NAME=FILE.npy]...
 *                [--eval]
 *
 * SPEC is neurite's layer list, plus tokens maxpoolKsS and avgpoolKsS for pooling with a stride other than the
 * window (which the layer list does not spell); separate tokens with '-'.
 * X holds n samples of H*W*C floats (any shape with that many per sample, HWC order). --set overwrites a
 * named tensor ("conv2d0.w", "batchnorm0.var", ...) after initialisation. Without --eval, the pass is a
 * training pass and needs --dy, the gradient of the output: it is fed through the SSE loss, whose gradient is
 * 2 (y - t), with targets t = y - dy / 2; the gradient actually used (which may differ from DY by a rounding)
 * is written back as dy.npy. Written to DIR: y.npy, and after a training pass dy.npy, dx.npy, and for every
 * tensor NAME its value after the pass (p_NAME.npy, for running statistics) and its gradient (g_NAME.npy).
 * Exits 0 on success, 1 with a message on stderr otherwise. */
#include "neurite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 16

static int fail(const char *what)
{
    fprintf(stderr, "helper_layer: %s: %s\n", what, nr_error_message());
    return 1;
}

/* Builds the layers of `spec` token by token. */
static nr_status build(nr_net *net, const char *spec)
{
    char buf[1024];
    if (strlen(spec) >= sizeof buf)
        return NR_EINVAL;
    strcpy(buf, spec);
    for (char *save = NULL, *tok = strtok_r(buf, "-", &save); tok; tok = strtok_r(NULL, "-", &save)) {
        size_t size, stride;
        int used = 0;
        nr_status st;
        if (sscanf(tok, "maxpool%zus%zu%n", &size, &stride, &used) == 2 && tok[used] == 0)
            st = nr_net_maxpool(net, size, stride);
        else if (sscanf(tok, "avgpool%zus%zu%n", &size, &stride, &used) == 2 && tok[used] == 0)
            st = nr_net_avgpool(net, size, stride);
        else
            st = nr_net_add_spec(net, tok, NR_ACT_IDENTITY);
        if (st)
            return st;
    }
    return NR_OK;
}

static int usage(const char *why)
{
    fprintf(stderr, "helper_layer: %s\nusage: helper_layer --shape H,W,C --spec SPEC --x X.npy --out DIR "
                    "[--dy DY.npy] [--set NAME=FILE.npy]... [--eval]\n", why);
    return 2;
}

/* Saves count floats as a 2-D (rows x count/rows) .npy file DIR/PREFIXNAME.npy. */
static int save(const char *dir, const char *prefix, const char *name, const float *data, size_t rows,
                size_t count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, name);
    size_t shape[2] = {rows, count / rows};
    nr_tensor *t = nr_tensor_new(2, shape);
    if (!t)
        return fail(path);
    memcpy(t->data, data, count * sizeof(float));
    nr_status st = nr_npy_save(path, t);
    nr_tensor_free(t);
    return st ? fail(path) : 0;
}

int main(int argc, char **argv)
{
    const char *spec = NULL, *xpath = NULL, *dypath = NULL, *out = NULL, *sets[MAX_SETS];
    size_t h = 0, w = 0, c = 0, n_sets = 0;
    int training = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--eval") == 0) {
            training = 0;
            continue;
        }
        if (!v)
            return usage("an option is missing its value");
        i++;
        if (strcmp(a, "--shape") == 0) {
            if (sscanf(v, "%zu,%zu,%zu", &h, &w, &c) != 3)
                return usage("--shape wants H,W,C");
        } else if (strcmp(a, "--spec") == 0) {
            spec = v;
        } else if (strcmp(a, "--x") == 0) {
            xpath = v;
        } else if (strcmp(a, "--dy") == 0) {
            dypath = v;
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--set") == 0) {
            if (n_sets == MAX_SETS)
                return usage("too many --set");
            sets[n_sets++] = v;
        } else {
            return usage("unknown option");
        }
    }
    if (!spec || !xpath || !out || !h || (training && !dypath))
        return usage("--shape, --spec, --x, --out (and --dy for training) are required");

    int rc = 1;
    nr_tensor *x = NULL, *dy = NULL;
    float *targets = NULL;
    nr_net *net = nr_net_new_image(h, w, c);
    if (!net)
        return fail("nr_net_new_image");
    if (build(net, spec)) {
        rc = fail(spec);
        goto done;
    }
    nr_rng rng;
    nr_rng_seed(&rng, 1);
    nr_net_init(net, NR_INIT_XAVIER_UNIFORM, &rng);
    for (size_t s = 0; s < n_sets; s++) {
        char name[256];
        const char *eq = strchr(sets[s], '=');
        if (!eq || (size_t)(eq - sets[s]) >= sizeof name) {
            rc = usage("--set wants NAME=FILE.npy");
            goto done;
        }
        memcpy(name, sets[s], (size_t)(eq - sets[s]));
        name[eq - sets[s]] = 0;
        nr_tensor_info ti;
        nr_tensor *t = NULL;
        if (nr_net_find_tensor(net, name, &ti) || nr_npy_load(eq + 1, &t)) {
            rc = fail(sets[s]);
            goto done;
        }
        if (t->size != ti.size) {
            fprintf(stderr, "helper_layer: %s has %zu numbers, the tensor %zu\n", eq + 1, t->size, ti.size);
            nr_tensor_free(t);
            goto done;
        }
        memcpy(nr_net_params(net) + ti.offset, t->data, ti.size * sizeof(float));
        nr_tensor_free(t);
    }
    if (nr_npy_load(xpath, &x)) {
        rc = fail(xpath);
        goto done;
    }
    size_t in = nr_net_input_size(net), outs = nr_net_output_size(net), n = x->size / in;
    if (n == 0 || x->size % in) {
        fprintf(stderr, "helper_layer: %s holds %zu numbers, not a whole number of %zu-float samples\n", xpath,
                x->size, in);
        goto done;
    }
    const float *y;
    if (nr_net_forward(net, x->data, n, training, &y)) {
        rc = fail("forward");
        goto done;
    }
    if (save(out, "", "y", y, n, n * outs))
        goto done;
    if (!training) {
        rc = 0;
        goto done;
    }
    if (nr_npy_load(dypath, &dy)) {
        rc = fail(dypath);
        goto done;
    }
    if (dy->size != n * outs) {
        fprintf(stderr, "helper_layer: %s holds %zu numbers, the output %zu\n", dypath, dy->size, n * outs);
        goto done;
    }
    targets = malloc(n * outs * sizeof *targets);
    if (!targets)
        goto done;
    for (size_t i = 0; i < n * outs; i++)
        targets[i] = y[i] - 0.5f * dy->data[i];
    /* The gradient the loss will hand back, computed as nr_net_loss does for SSE. */
    for (size_t i = 0; i < n * outs; i++)
        dy->data[i] = 2.0f * (y[i] - targets[i]);
    nr_net_want_input_grad(net, 1);
    nr_net_zero_grad(net);
    if (nr_net_loss(net, NR_LOSS_SSE, targets, NULL, NULL) || nr_net_backward(net)) {
        rc = fail("backward");
        goto done;
    }
    if (save(out, "", "dy", dy->data, n, n * outs) || save(out, "", "dx", nr_net_input_grad(net), n, n * in))
        goto done;
    for (size_t t = 0; t < nr_net_tensor_count(net); t++) {
        nr_tensor_info ti;
        nr_net_tensor(net, t, &ti);
        if (save(out, "p_", ti.name, nr_net_params(net) + ti.offset, 1, ti.size) ||
            save(out, "g_", ti.name, nr_net_grads(net) + ti.offset, 1, ti.size))
            goto done;
    }
    rc = 0;
done:
    free(targets);
    nr_tensor_free(x);
    nr_tensor_free(dy);
    nr_net_free(net);
    return rc;
}
