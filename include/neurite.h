/*
 * neurite.h - the whole public API of neurite, a small neural-network library in C11.
 *
 * Read this file as the manual. Everything public starts with nr_ (functions, types) or NR_ (constants).
 *
 * The model in one paragraph: a network (nr_net) is a list of layers. Each layer has a forward function and a
 * backward twin. All trainable numbers of a network live in one flat float buffer (nr_net_params) with a named
 * table of tensors (nr_net_tensor); their gradients live in a second buffer with the same layout
 * (nr_net_grads), and an optimizer keeps its state in buffers of that layout too, so an optimizer step is a
 * plain loop and saving is one write. Memory for activations is planned once for the largest batch seen; the
 * training step allocates nothing after the first call.
 *
 * Errors: every function that can fail returns an nr_status (NR_OK is 0). On failure, nr_error_message()
 * returns a one-line explanation for the calling thread, e.g. "layers.txt: line 3: unknown layer 'rleu'".
 * The library never prints, exits or aborts on its own.
 *
 * Threads: heavy work (matrix products, element-wise loops over large buffers) runs on one persistent pool
 * of threads shared by the process (nr_set_threads). Results do not depend on the thread count: every
 * output element is computed by one thread in a fixed order. Two networks may be used from two user
 * threads at once; a single network must not.
 *
 * A minimal program (see examples/xor.c for the full version with error checks):
 *
 *     nr_net *net = nr_net_new(2);                       // 2 input features
 *     nr_net_dense(net, 8, 1); nr_net_act(net, NR_ACT_TANH);
 *     nr_net_dense(net, 1, 1); nr_net_act(net, NR_ACT_SIGMOID);
 *     nr_rng rng; nr_rng_seed(&rng, 42);
 *     nr_net_init(net, NR_INIT_XAVIER_UNIFORM, &rng);
 *     nr_optimizer *opt = nr_opt_new(net, &(nr_opt_config){ .kind = NR_OPT_ADAM, .lr = 0.05f });
 *     for (int i = 0; i < 2000; i++)
 *         nr_net_train_batch(net, opt, NR_LOSS_MSE, x, y, NULL, 4, NULL);
 *     const float *out; nr_net_forward(net, x, 4, 0, &out);
 *     nr_opt_free(opt); nr_net_free(net);
 */
#ifndef NEURITE_H
#define NEURITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NR_VERSION_MAJOR 0
#define NR_VERSION_MINOR 1
#define NR_VERSION_PATCH 0
#define NR_VERSION_STRING "0.1.0"

/* ================================================================================================
 * Errors
 * ============================================================================================== */

typedef enum nr_status {
    NR_OK = 0,
    NR_EINVAL,      /* an argument is invalid: NULL, zero, negative, overflowing or absurd */
    NR_ESHAPE,      /* shapes do not fit together */
    NR_ENOMEM,      /* out of memory */
    NR_EIO,         /* a file cannot be opened, read or written */
    NR_EFORMAT,     /* a file or text is corrupt, truncated, foreign or of an unsupported kind */
    NR_ENUMERIC,    /* a NaN or an infinity appeared (in data, a loss or a gradient) */
    NR_ESTOPPED     /* work stopped because the caller asked (nr_train_config.stop) */
} nr_status;

/* The message of the last failure on the calling thread (never NULL; "" if none). Valid until the next
 * failing call on this thread. */
const char *nr_error_message(void);

/* A short constant name for a status: "ok", "invalid argument", ... */
const char *nr_status_string(nr_status status);

/* ================================================================================================
 * Threads and the matrix product
 * ============================================================================================== */

/* Sets the number of threads for all heavy work; 0 means one per core. Returns NR_EINVAL above 256. */
nr_status nr_set_threads(int threads);

/* The number of threads in use (1 until nr_set_threads is called with more, or 0). */
int nr_threads(void);

/* The number of cores the operating system reports (at least 1). */
int nr_cpu_count(void);

typedef enum nr_trans { NR_NO_TRANS = 0, NR_TRANS = 1 } nr_trans;

/* C = alpha * op(A) * op(B) + beta * C, row-major, single precision. op(A) is m x k, op(B) is k x n, C is
 * m x n; lda, ldb, ldc are the row strides of A, B and C as stored. When beta is 0, C is not read (NaNs in it
 * do not propagate). This is the one seam every layer's matrix work goes through. */
nr_status nr_sgemm(nr_trans trans_a, nr_trans trans_b, size_t m, size_t n, size_t k, float alpha,
                   const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* The name of the matrix-product kernel in use: "avx512", "avx2", "portable" or "blas". */
const char *nr_gemm_backend(void);

/* Chooses the kernel: "auto" (the fastest this CPU supports), "avx512", "avx2", "portable" or "blas"
 * (only if built with a BLAS). NR_EINVAL if the CPU or the build lacks it. */
nr_status nr_set_gemm_backend(const char *name);

/* ================================================================================================
 * Random numbers
 *
 * xoshiro256** seeded through splitmix64, with a standard normal from the polar method and a logarithm of
 * our own, so that one seed gives the same numbers on every machine and compiler.
 * ============================================================================================== */

typedef struct nr_rng { uint64_t s[4]; } nr_rng;

void nr_rng_seed(nr_rng *rng, uint64_t seed);
uint64_t nr_rng_next(nr_rng *rng);                   /* 64 uniform random bits */
double nr_rng_uniform(nr_rng *rng);                  /* uniform in [0, 1) */
float nr_rng_normal(nr_rng *rng);                    /* standard normal */
uint64_t nr_rng_below(nr_rng *rng, uint64_t bound);  /* uniform in [0, bound), unbiased; 0 if bound is 0 */
void nr_rng_shuffle(nr_rng *rng, uint32_t *items, size_t count);  /* Fisher-Yates */

/* ================================================================================================
 * Tensors and .npy files
 * ============================================================================================== */

#define NR_MAX_DIMS 4

/* A dense, row-major float32 array whose data is 64-byte aligned. */
typedef struct nr_tensor {
    float *data;
    size_t shape[NR_MAX_DIMS];
    int ndim;
    size_t size;  /* product of the shape */
} nr_tensor;

/* A new zero-filled tensor; NULL (with the message set) on an invalid or overflowing shape or no memory. */
nr_tensor *nr_tensor_new(int ndim, const size_t *shape);
void nr_tensor_free(nr_tensor *tensor);

/* Reads a NumPy .npy file of float32 or float64 (little-endian, C order), 1 to 4 dimensions, converting
 * float64 to float32. Any other kind of .npy, or a damaged one, is refused with NR_EFORMAT. */
nr_status nr_npy_load(const char *path, nr_tensor **out);

/* Writes a tensor as a float32 little-endian .npy file, whole or not at all (temporary file + rename). */
nr_status nr_npy_save(const char *path, const nr_tensor *tensor);

/* ================================================================================================
 * Networks
 * ============================================================================================== */

typedef struct nr_net nr_net;

typedef enum nr_act {
    NR_ACT_IDENTITY = 0,
    NR_ACT_RELU,
    NR_ACT_LEAKY_RELU,  /* slope 0.01 for negative inputs; see nr_net_leaky_relu for another slope */
    NR_ACT_SIGMOID,
    NR_ACT_TANH,
    NR_ACT_SOFTMAX      /* over the features of each sample */
} nr_act;

/* A new network whose samples are vectors of `features` numbers. NULL on failure (message set). */
nr_net *nr_net_new(size_t features);

/* A new network whose samples are images of height x width x channels, stored channels-last (HWC), the
 * layout every image layer of neurite uses. */
nr_net *nr_net_new_image(size_t height, size_t width, size_t channels);

void nr_net_free(nr_net *net);

/* Layers are appended in order. Each returns NR_EINVAL or NR_ESHAPE (and changes nothing) if the layer does
 * not fit the current output shape. */

/* Fully connected: y = x W + b, W stored (inputs x units) as in the lecture's x.dot(w1). Images are
 * flattened in HWC order. */
nr_status nr_net_dense(nr_net *net, size_t units, int bias);

/* An element-wise activation (softmax: per sample). */
nr_status nr_net_act(nr_net *net, nr_act act);

/* Leaky ReLU with the given slope for negative inputs (0 <= slope < 1). */
nr_status nr_net_leaky_relu(nr_net *net, float slope);

/* Parses a layer list such as "784-256-relu-10" or "conv32k3-relu-pool2-fc128-relu-fc10" and appends the
 * layers. Tokens (separated by '-', ',' or white space; '#' starts a comment to the end of the line):
 *   N or fcN         dense layer of N units with bias (a leading N that equals the input size names the
 *                    input and adds no layer)
 *   relu sigmoid tanh identity softmax leaky leakyS (leaky0.2: slope 0.2)
 * `default_act` is put between two dense layers that have nothing between them (NR_ACT_IDENTITY: nothing).
 * On failure the network is unchanged and the message names the token. */
nr_status nr_net_add_spec(nr_net *net, const char *spec, nr_act default_act);

/* Initialisers for weights; biases start at zero. fan_in/fan_out are a layer's inputs and outputs. */
typedef enum nr_init {
    NR_INIT_AUTO = 0,         /* He for layers followed by ReLU, Xavier otherwise, uniform */
    NR_INIT_STD_NORMAL,       /* N(0, 1): the lecture's np.random.randn */
    NR_INIT_XAVIER_UNIFORM,   /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    NR_INIT_XAVIER_NORMAL,    /* N(0, 2 / (fan_in + fan_out)) */
    NR_INIT_HE_UNIFORM,       /* U(-a, a), a = sqrt(6 / fan_in) */
    NR_INIT_HE_NORMAL         /* N(0, 2 / fan_in) */
} nr_init;

/* Fills every weight from the generator, layer by layer in order, and zeroes every bias. */
nr_status nr_net_init(nr_net *net, nr_init init, nr_rng *rng);

/* Shape and size queries. */
size_t nr_net_input_size(const nr_net *net);    /* numbers per input sample */
size_t nr_net_output_size(const nr_net *net);   /* numbers per output sample */
size_t nr_net_layer_count(const nr_net *net);

typedef struct nr_layer_info {
    const char *tag;        /* stable text tag: "dense", "relu", ... */
    char desc[48];          /* short human description, e.g. "dense 784->256" */
    size_t out_shape[3];    /* height, width, channels of one output sample (1, 1, n for vectors) */
    size_t out_size;
    size_t param_count;
} nr_layer_info;
nr_status nr_net_layer_info(const nr_net *net, size_t index, nr_layer_info *info);

/* Writes a model summary (one line per layer with its output shape and parameter count, then the total)
 * to `out`. */
nr_status nr_net_print_summary(const nr_net *net, FILE *out);

/* ---- The parameter table ---- */

/* All parameters in one flat buffer, and their gradients in another of the same layout. The pointers stay
 * valid until a layer is added or the network is freed. */
size_t nr_net_param_count(const nr_net *net);
float *nr_net_params(nr_net *net);
float *nr_net_grads(nr_net *net);

enum { NR_TENSOR_DECAY = 1 };  /* flag: weight decay applies (weights, not biases) */

typedef struct nr_tensor_info {
    const char *name;       /* "dense0.w", "dense0.b", ... (layer tag + index among all layers) */
    int ndim;
    size_t shape[NR_MAX_DIMS];
    size_t offset;          /* into nr_net_params / nr_net_grads, in floats */
    size_t size;
    unsigned flags;
} nr_tensor_info;
size_t nr_net_tensor_count(const nr_net *net);
nr_status nr_net_tensor(const nr_net *net, size_t index, nr_tensor_info *info);
/* Finds a tensor by name; NR_EINVAL if there is none. */
nr_status nr_net_find_tensor(const nr_net *net, const char *name, nr_tensor_info *info);

/* The generator that layers with randomness (dropout) draw from during training; seed it for repeatable
 * runs (nr_rng_seed(nr_net_rng(net), seed)). */
nr_rng *nr_net_rng(nr_net *net);

/* ---- Forward and backward ---- */

/* Runs the network on `n` samples stored one after another in `x` (n * nr_net_input_size floats). *out
 * receives the network's own output buffer (n * nr_net_output_size floats), valid until the next call.
 * training != 0 keeps what backward needs. */
nr_status nr_net_forward(nr_net *net, const float *x, size_t n, int training, const float **out);

typedef enum nr_loss {
    NR_LOSS_SSE = 0,   /* sum over all outputs of (y - t)^2: the lecture's loss */
    NR_LOSS_MSE,       /* the same divided by the number of outputs (n * outputs) */
    NR_LOSS_XENT       /* softmax cross-entropy on the outputs (logits), averaged over samples; fused and
                          stable. Targets are class labels. */
} nr_loss;

/* After a training forward: computes the loss of the last output against `targets` (n * outputs floats;
 * SSE and MSE) or `labels` (n class indices; XENT) and stores its gradient for nr_net_backward. Labels out
 * of range give NR_EINVAL. */
nr_status nr_net_loss(nr_net *net, nr_loss loss, const float *targets, const int32_t *labels, double *value);

/* Back-propagates the stored output gradient; parameter gradients are added to nr_net_grads (call
 * nr_net_zero_grad between steps). */
nr_status nr_net_backward(nr_net *net);

void nr_net_zero_grad(nr_net *net);

/* For tests and teaching: the output of layer i (i = 0 is the first layer's output) from the last forward,
 * and its gradient from the last backward. NULL if out of range or not computed. */
const float *nr_net_layer_output(const nr_net *net, size_t index);
const float *nr_net_layer_grad(const nr_net *net, size_t index);

/* Asks backward to also compute the gradient with respect to the network input (off by default, because
 * training never needs it); read it with nr_net_input_grad after nr_net_backward. */
void nr_net_want_input_grad(nr_net *net, int enable);
const float *nr_net_input_grad(const nr_net *net);

/* ================================================================================================
 * Optimizers
 * ============================================================================================== */

typedef enum nr_opt_kind {
    NR_OPT_SGD = 0,
    NR_OPT_MOMENTUM,
    NR_OPT_NESTEROV,
    NR_OPT_ADAM,
    NR_OPT_ADAMW
} nr_opt_kind;

/* Zero fields take the defaults: lr 0.01 (SGD family) or 0.001 (Adam family), momentum 0.9, beta1 0.9,
 * beta2 0.999, eps 1e-8. weight_decay is L2 added to the gradient (SGD family, Adam) or decoupled (AdamW);
 * it applies only to tensors flagged NR_TENSOR_DECAY. clip_norm > 0 rescales the whole gradient when its
 * L2 norm exceeds it. */
typedef struct nr_opt_config {
    nr_opt_kind kind;
    float lr;
    float momentum;
    float beta1, beta2, eps;
    float weight_decay;
    float clip_norm;
} nr_opt_config;

typedef struct nr_optimizer nr_optimizer;

/* An optimizer for `net`, with its state (zeros) laid out like nr_net_params. NULL on failure. */
nr_optimizer *nr_opt_new(const nr_net *net, const nr_opt_config *config);
void nr_opt_free(nr_optimizer *opt);

/* One update of every parameter from nr_net_grads, with learning rate `lr` (pass the config's lr for a
 * constant rate). If clipping is on, *grad_norm (if not NULL) receives the norm before clipping. */
nr_status nr_opt_step(nr_optimizer *opt, nr_net *net, float lr, double *grad_norm);

/* The optimizer's state buffers (momentum; Adam's first and second moments), each nr_net_param_count floats
 * long, and the step counter. `count` receives how many buffers there are (0, 1 or 2). */
float **nr_opt_state(nr_optimizer *opt, size_t *count);
uint64_t nr_opt_steps(const nr_optimizer *opt);
const nr_opt_config *nr_opt_get_config(const nr_optimizer *opt);

/* One whole training step: forward, loss, zero_grad, backward, optimizer step at lr (0: the config's).
 * *loss (if not NULL) receives the loss. */
nr_status nr_net_train_batch(nr_net *net, nr_optimizer *opt, nr_loss loss, const float *x, const float *targets,
                             const int32_t *labels, size_t n, double *loss_value);

#ifdef __cplusplus
}
#endif

#endif /* NEURITE_H */
