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
    float *predict_buf;  /* scaled inputs for nr_net_predict, grown on demand */
    size_t predict_cap;
    /* Called by nr_net_backward as soon as layer i's parameter gradients are final, from the last layer to
     * the first (the trainer starts summing them across processes while the rest of backward runs). */
    void (*grads_ready)(void *ctx, size_t layer);
    void *grads_ready_ctx;
};

enum { nr__act_count = NR_ACT_SOFTMAX + 1 };

nr_status nr__net_check_batch(const nr_net *net, const void *x, size_t n);

/* Makes a pending nr_net_zero_grad real (zeroes the buffer), for readers of the gradients outside backward. */
void nr__net_settle_grads(nr_net *net);

#endif
