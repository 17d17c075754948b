/* net.h - the network's private structure, shared by net.c and the files that save, load and train it. */
#ifndef NR_NET_H
#define NR_NET_H

#include "core/internal.h"

#define NR__MAX_LAYERS 1024
#define NR__MAX_BATCH (1 << 24)

typedef struct nr__net_tensor {
    char name[40];
    int ndim;
    size_t shape[NR_MAX_DIMS];
    size_t offset, size;
    unsigned flags;
    size_t layer;  /* index of the layer that owns it */
} nr__net_tensor;

/* Where the network is in a training step; backward and loss check it to refuse calls out of order. */
typedef enum nr__net_state {
    NR__NET_IDLE = 0,
    NR__NET_FORWARD,
    NR__NET_FORWARD_TRAINING,
    NR__NET_LOSS_READY,
    NR__NET_BACKWARD_DONE
} nr__net_state;

/* How raw inputs are scaled before the first layer: x' = (x - shift) * scale, per feature or for all. */
typedef struct nr__scaling {
    int kind;        /* 0 none, else an nr_scaling value (see data.c) */
    size_t count;    /* 1 (one value for all features) or the input size */
    float *shift, *scale;
} nr__scaling;

/* How a table's raw columns became its features: numbers as they are, text one input per distinct value
 * (one-hot, in sorted order). The network keeps it (nr_net_fit_scaling), so that a file given to predict is
 * read the way the training file was. */
typedef struct nr__column {
    char *name;          /* from the header, or NULL */
    char **categories;   /* a text column's distinct values, sorted; NULL for a numeric column */
    size_t n_categories;
    float fill;          /* NR_MISSING_MEAN: the training mean, or the index of the most frequent value */
} nr__column;

typedef struct nr__encoding {
    nr__column *columns; /* the feature columns, in the file's order */
    size_t n_columns;
    int missing;         /* the nr_missing rule the data was read with */
} nr__encoding;

/* ---- names and encodings (encoding.c) ---- */

/* Frees `count` strings and the array. */
void nr__free_strings(char **strings, size_t count);
/* A copy of `count` strings (entries may be NULL); NULL with the message set if out of memory. */
char **nr__copy_strings(char *const *strings, size_t count);
void nr__encoding_free(nr__encoding *e);
nr__encoding *nr__encoding_copy(const nr__encoding *e);
/* The features an encoding produces: 1 per numeric column, one per category of a text column. */
size_t nr__encoding_width(const nr__encoding *e);
/* The index of `text` (len bytes) among a column's sorted categories, or -1. */
long nr__category_index(const nr__column *c, const char *text, size_t len);

struct nr_net {
    size_t in_shape[3], in_size;
    nr_layer *layers;
    size_t n_layers;
    nr__net_tensor *tensors;
    size_t n_tensors;
    float *params, *grads;
    size_t n_params;
    size_t param_cap;  /* floats allocated in params and grads (>= n_params; see nr__net_reserve) */
    /* the activation plan */
    size_t cap;        /* batch capacity of the arena */
    float *arena;
    float **out, **dout;  /* each layer's output and its gradient */
    const float *input;  /* the caller's input of the last training forward pass, read again by backward */
    float *input_grad;
    bool grads_stale;    /* nr_net_zero_grad was called: the next backward writes gradients instead of adding */
    size_t batch;      /* samples in the last forward pass */
    nr__net_state state;
    bool want_input_grad;
    nr_rng rng;        /* dropout draws from it */
    nr__scaling scaling;
    nr_loss head;      /* the loss the network was trained with: what nr_net_predict returns */
    /* What the network knows of its data (nr_net_fit_scaling, model files). */
    nr__encoding *encoding;    /* a table's columns: text one-hot, the missing-value rule; NULL: plain numbers */
    char **class_names;        /* n_class_names, or NULL */
    size_t n_class_names;
    size_t n_targets;          /* regression: targets per sample (0: classes) */
    char **target_names;       /* n_targets (entries may be NULL), or NULL */
    float *target_mean, *target_scale;  /* targets are learnt as (t - mean) * scale and predicted back */
    float *predict_buf;  /* scaled inputs for nr_net_predict, grown on demand */
    size_t predict_cap;
    /* Called by nr_net_backward as soon as layer i's parameter gradients are final, from the last layer to
     * the first (the trainer starts summing them across processes while the rest of backward runs). */
    void (*grads_ready)(void *ctx, size_t layer);
    void *grads_ready_ctx;
    /* The int8 form (quant/quant.h), when the network is quantized: then it runs inference only, in integers. */
    struct nr__qnet *q;
    /* nr_net_prepack: copies of dense weights laid out for one-row products (nr__gemm_pack_panels), each
     * layer's in layers[i].packed; packs_valid is cleared whenever the weights may have changed. */
    bool prepack, packs_valid;
    float *pack_buf;
    size_t pack_cap;  /* floats in pack_buf: kept, so that remaking the copies allocates nothing */
    int pack_threads;           /* the thread count and matrix backend the copies were laid out for */
    const char *pack_backend;
};

enum { nr__act_count = NR_ACT_SOFTMAX + 1 };

nr_status nr__net_check_batch(const nr_net *net, const void *x, size_t n);

/* Makes a pending nr_net_zero_grad real (zeroes the buffer), for readers of the gradients outside backward. */
void nr__net_settle_grads(nr_net *net);
/* Every function that changes parameters calls this: the inference copies of nr_net_prepack are stale. */
void nr__net_weights_changed(nr_net *net);

#endif
