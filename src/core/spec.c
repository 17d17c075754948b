/* spec.c - the text form of a network: "784-256-relu-10", "conv32k3-relu-pool2-fc128-relu-fc10".
 *
 * Each token becomes one layer prototype; the list is first built on a scratch network with the same input,
 * so a bad token leaves the caller's network untouched. */
#include "core/net.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_TOKEN 64

/* Numbers in a layer list above this are refused as they are read (no layer could use them). */
#define MAX_NUMBER (INT64_C(1) << 40)

/* Parses an unsigned decimal number at *p (advancing it); false if none or out of range. A number out of range
 * is read to its end and leaves TOO_LARGE in *out, so the message can say what is wrong. */
#define TOO_LARGE INT64_C(-1)
static bool read_size(const char **p, int64_t *out)
{
    if (!isdigit((unsigned char)**p))
        return false;
    int64_t v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');  /* v <= MAX_NUMBER before: no overflow */
        (*p)++;
        if (v > MAX_NUMBER) {
            while (isdigit((unsigned char)**p))
                (*p)++;
            *out = TOO_LARGE;
            return false;
        }
    }
    *out = v;
    return true;
}

static nr_status too_large(const char *tok)
{
    return nr__fail(NR_EINVAL, "a number in '%s' is too large (at most %lld)", tok, (long long)MAX_NUMBER);
}

static bool read_float(const char **p, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(*p, &end);
    if (end == *p || errno)
        return false;
    *out = (float)v;
    *p = end;
    return true;
}

typedef struct activation_name {
    const char *name;
    nr_act act;
} activation_name;

static const activation_name act_names[] = {
    {"relu", NR_ACT_RELU},       {"sigmoid", NR_ACT_SIGMOID}, {"tanh", NR_ACT_TANH},
    {"identity", NR_ACT_IDENTITY}, {"linear", NR_ACT_IDENTITY}, {"softmax", NR_ACT_SOFTMAX},
};

/* An optional "<letter><number>" at *p (advancing past it); false if the letter has no number after it. */
static bool read_option(const char **p, char letter, int64_t *out)
{
    if (**p != letter)
        return true;
    (*p)++;
    return read_size(p, out);
}

/* "convNkK[sS][pP]": N filters, a K x K kernel, stride S (1), padding P (K / 2). */
static nr_status parse_conv(const char *tok, nr_layer *l)
{
    const char *p = tok + 4;
    int64_t filters = 0, kernel = 0, stride = 1, pad = -2;
    bool ok = read_size(&p, &filters) && *p == 'k' && read_option(&p, 'k', &kernel) &&
              read_option(&p, 's', &stride) && read_option(&p, 'p', &pad) && !*p;
    if (filters == TOO_LARGE || kernel == TOO_LARGE || stride == TOO_LARGE || pad == TOO_LARGE)
        return too_large(tok);
    if (!ok)
        return nr__fail(NR_EINVAL, "bad convolution '%s' (write convNkK[sS][pP], e.g. conv32k3 or conv64k5s2p1)",
                        tok);
    if (filters == 0)
        return nr__fail(NR_EINVAL, "a convolution of 0 filters ('%s')", tok);
    if (kernel == 0)
        return nr__fail(NR_EINVAL, "a convolution with a kernel of size 0 ('%s')", tok);
    if (stride == 0)
        return nr__fail(NR_EINVAL, "a convolution with stride 0 ('%s')", tok);
    l->ops = &nr__conv2d_ops;
    l->ints[0] = filters;
    l->ints[1] = kernel;
    l->ints[2] = stride;
    l->ints[3] = pad == -2 ? kernel / 2 : pad;
    l->ints[4] = 1;
    return NR_OK;
}

/* An activation by name ("relu", ...), or leaky[S] with its slope; 1 if the token is one, 0 if not, -1 (message
 * set) if it is malformed. */
static int parse_activation(const char *tok, nr_layer *l)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (strcmp(tok, act_names[i].name) == 0) {
            l->ops = nr__act_ops_for(act_names[i].act);
            l->ints[0] = act_names[i].act;
            return 1;
        }
    if (strncmp(tok, "leaky", 5) != 0 && strncmp(tok, "lrelu", 5) != 0)
        return 0;
    const char *p = tok + 5;
    float slope = 0.01f;
    if (*p && (!read_float(&p, &slope) || *p))
        return nr__fail(NR_EINVAL, "bad slope in '%s' (write e.g. leaky0.1)", tok), -1;
    l->ops = &nr__leaky_relu_ops;
    l->ints[0] = NR_ACT_LEAKY_RELU;
    l->floats[0] = slope;
    return 1;
}

static nr_status parse_pool(const char *tok, nr_layer *l)
{
    bool avg = tok[0] == 'a';
    const char *p = tok + (tok[0] == 'p' ? 4 : 7);
    int64_t v = 0;
    if (!read_size(&p, &v) || *p)
        return v == TOO_LARGE ? too_large(tok)
                              : nr__fail(NR_EINVAL, "bad pooling '%s' (write e.g. pool2, maxpool3 or avgpool2)", tok);
    if (v == 0)
        return nr__fail(NR_EINVAL, "a pooling window of size 0 ('%s')", tok);
    l->ops = avg ? &nr__avgpool_ops : &nr__maxpool_ops;
    l->ints[0] = v;
    l->ints[1] = v;
    return NR_OK;
}

static nr_status parse_dropout(const char *tok, nr_layer *l)
{
    const char *p = tok + (strncmp(tok, "dropout", 7) == 0 ? 7 : 4);
    float rate;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return nr__fail(NR_EINVAL, "dropout '%s' needs a rate (write e.g. drop0.5)", tok);
    if (!read_float(&p, &rate) || *p)
        return nr__fail(NR_EINVAL, "bad dropout rate in '%s' (write e.g. drop0.5)", tok);
    if (!(rate >= 0.0f && rate < 1.0f))
        return nr__fail(NR_EINVAL, "dropout rate in '%s' is not in [0, 1)", tok);
    l->ops = &nr__dropout_ops;
    l->floats[0] = rate;
    return NR_OK;
}

/* N, fcN or denseN: a dense layer of N units with a bias. */
static nr_status parse_dense(const char *tok, nr_layer *l)
{
    const char *p = tok;
    if (strncmp(tok, "fc", 2) == 0 || strncmp(tok, "dense", 5) == 0)
        p = tok + (tok[0] == 'f' ? 2 : 5);
    int64_t v = 0;
    bool number = read_size(&p, &v);
    if (v == TOO_LARGE && *p == 0)
        return too_large(tok);
    if (!number || *p)
        return nr__fail(NR_EINVAL, "unknown layer '%s' (known: N or fcN, relu, leaky[S], sigmoid, tanh, identity, "
                                   "softmax, convNkK[sS][pP], poolK, maxpoolK, avgpoolK, flatten, bn, dropP)", tok);
    if (v == 0)
        return nr__fail(NR_EINVAL, "a dense layer of 0 units ('%s')", tok);
    l->ops = &nr__dense_ops;
    l->ints[0] = v;
    l->ints[1] = 1;
    return NR_OK;
}

/* Turns one token into a layer prototype. *is_dense says whether it is a dense layer (for default_act). */
static nr_status parse_token(const char *tok, nr_layer *l, bool *is_dense)
{
    memset(l, 0, sizeof *l);
    *is_dense = false;
    int act = parse_activation(tok, l);
    if (act)
        return act > 0 ? NR_OK : NR_EINVAL;
    if (strncmp(tok, "conv", 4) == 0)
        return parse_conv(tok, l);
    if (strncmp(tok, "pool", 4) == 0 || strncmp(tok, "maxpool", 7) == 0 || strncmp(tok, "avgpool", 7) == 0)
        return parse_pool(tok, l);
    if (strcmp(tok, "flatten") == 0) {
        l->ops = &nr__flatten_ops;
        return NR_OK;
    }
    if (strcmp(tok, "bn") == 0 || strcmp(tok, "batchnorm") == 0) {
        l->ops = &nr__batchnorm_ops;
        l->floats[0] = 0.1f;
        l->floats[1] = 1e-5f;
        return NR_OK;
    }
    if (strncmp(tok, "drop", 4) == 0)
        return parse_dropout(tok, l);
    nr_status st = parse_dense(tok, l);
    *is_dense = st == NR_OK;
    return st;
}

/* One parsed token of a layer list. */
typedef struct token {
    nr_layer layer;
    char text[MAX_TOKEN];
    int line;
    bool weights;  /* dense or convolution: the layers an activation follows */
} token;

static bool is_act(const nr_layer *l)
{
    for (int a = 0; a <= NR_ACT_SOFTMAX; a++)
        if (l->ops == nr__act_ops_for((nr_act)a))
            return true;
    return false;
}

/* Splits the list into tokens and parses each; *count receives how many. */
static nr_status tokenize(const char *spec, token *toks, size_t cap, size_t *count)
{
    int line = 1;
    *count = 0;
    for (const char *p = spec; *p;) {
        if (*p == '#') {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        if (*p == '\n')
            line++;
        if (*p == '-' || *p == ',' || isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (*count == cap)
            return nr__fail(NR_EINVAL, "more than %zu layers", cap);
        token *t = &toks[*count];
        size_t n = 0;
        while (*p && *p != '-' && *p != ',' && *p != '#' && !isspace((unsigned char)*p)) {
            if (n + 1 >= sizeof t->text)
                return nr__fail(NR_EINVAL, "line %d: token too long", line);
            t->text[n++] = (char)tolower((unsigned char)*p++);
            /* A '-' right after 'e' inside a number is an exponent (leaky1e-3), not a separator. */
            if (*p == '-' && n >= 2 && t->text[n - 1] == 'e' && isdigit((unsigned char)t->text[n - 2]) &&
                isdigit((unsigned char)p[1]))
                t->text[n++] = *p++;
        }
        t->text[n] = 0;
        t->line = line;
        bool is_dense;
        nr_status st = parse_token(t->text, &t->layer, &is_dense);
        if (st)
            return nr__prefix(st, "layer %zu (line %d)", *count + 1, line);
        t->weights = is_dense || t->layer.ops == &nr__conv2d_ops;
        (*count)++;
    }
    return NR_OK;
}

/* The layers a list adds, checked against the network's current output shape as they are planned: the whole
 * list is validated (shapes, sizes, the layer limit) before the network allocates anything for it. */
typedef struct plan {
    nr_layer *layers;
    size_t count, total_layers, params;
    size_t shape[3];
} plan;

static nr_status plan_add(plan *p, const nr_layer *proto)
{
    if (p->total_layers >= NR__MAX_LAYERS)
        return nr__fail(NR_EINVAL, "a network has at most %d layers", NR__MAX_LAYERS);
    nr_layer l = *proto;
    nr_status st = nr__layer_prepare(p->shape, &l);
    if (st)
        return st;
    if (!nr__add(p->params, l.param_count, &p->params) || p->params > NR_MAX_FLOATS)
        return nr__fail(NR_EINVAL, "%s layer: the network would have too many parameters (more than %zu)",
                        l.ops->tag, (size_t)NR_MAX_FLOATS);
    memcpy(p->shape, l.out_shape, sizeof p->shape);
    p->layers[p->count++] = *proto;
    p->total_layers++;
    return NR_OK;
}

static nr_status plan_token(plan *pl, const token *t, size_t i)
{
    nr_status st = plan_add(pl, &t->layer);
    /* The layer's own message does not know the token; name it. */
    return st ? nr__prefix(st, "layer %zu (line %d): '%s'", i + 1, t->line, t->text) : NR_OK;
}

/* Plans the tokens from `from` on, with the default activation after every dense or convolution layer but the
 * last, unless the list names one itself, right after the layer or after its batch normalisation. */
static nr_status plan_tokens(plan *pl, const token *toks, size_t from, size_t count, nr_act default_act)
{
    size_t last_weights = count;
    for (size_t i = from; i < count; i++)
        if (toks[i].weights)
            last_weights = i;
    nr_status st = NR_OK;
    for (size_t i = from; i < count && !st; i++) {
        if ((st = plan_token(pl, &toks[i], i)))
            break;
        if (!toks[i].weights || i == last_weights || default_act == NR_ACT_IDENTITY || last_weights == count)
            continue;
        size_t j = i + 1;
        for (; j < count && toks[j].layer.ops == &nr__batchnorm_ops && !st; j++)
            st = plan_token(pl, &toks[j], j);
        i = j - 1;
        if (st || (j < count && is_act(&toks[j].layer)))
            continue;
        nr_layer a = {.ops = nr__act_ops_for(default_act), .ints = {default_act},
                      .floats = {default_act == NR_ACT_LEAKY_RELU ? 0.01f : 0.0f}};
        st = plan_add(pl, &a);
    }
    return st;
}

/* Appends the planned layers. Only memory can fail now; if it does, the network goes back to the layers it
 * had (its buffers may have grown, and keep the old values). */
static nr_status append_planned(nr_net *net, const plan *pl)
{
    const size_t layers = net->n_layers, tensors = net->n_tensors, params = net->n_params;
    /* One allocation for all the new parameters. If it fails, the layers are appended one by one anyway, so
     * that the error names the layer whose memory is missing. */
    nr__net_reserve(net, pl->params);
    nr_status st = NR_OK;
    for (size_t i = 0; !st && i < pl->count; i++)
        if ((st = nr__net_append(net, &pl->layers[i])))
            nr__prefix(st, "layer %zu of the network (%s)", net->n_layers + 1, pl->layers[i].ops->tag);
    if (st && net->n_layers != layers) {
        net->n_layers = layers;
        net->n_tensors = tensors;
        net->n_params = params;
    }
    return st;
}

nr_status nr_net_add_spec(nr_net *net, const char *spec, nr_act default_act)
{
    if (!net || !spec)
        return nr__fail(NR_EINVAL, "nr_net_add_spec: NULL argument");
    if (!nr__act_ops_for(default_act))
        return nr__fail(NR_EINVAL, "unknown default activation %d", (int)default_act);
    token *toks = calloc(NR__MAX_LAYERS, sizeof *toks);
    /* Each token adds at most two layers: itself and the default activation after it. */
    plan pl = {.layers = calloc(2 * NR__MAX_LAYERS, sizeof *pl.layers), .total_layers = net->n_layers,
               .params = net->n_params};
    memcpy(pl.shape, net->n_layers ? net->layers[net->n_layers - 1].out_shape : net->in_shape, sizeof pl.shape);
    size_t count = 0;
    nr_status st = toks && pl.layers ? NR_OK : nr__fail(NR_ENOMEM, "out of memory");
    if (!st)
        st = tokenize(spec, toks, NR__MAX_LAYERS, &count);
    /* A leading size equal to the input names the input ("784-256-10"). */
    size_t from = !st && count && net->n_layers == 0 && toks[0].layer.ops == &nr__dense_ops &&
                  isdigit((unsigned char)toks[0].text[0]) && (size_t)toks[0].layer.ints[0] == net->in_size;
    if (!st)
        st = plan_tokens(&pl, toks, from, count, default_act);
    if (!st && pl.count == 0)
        st = nr__fail(NR_EINVAL, "the layer list '%s' adds no layer", spec);
    if (!st)
        st = append_planned(net, &pl);
    free(pl.layers);
    free(toks);
    return st;
}
