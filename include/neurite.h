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

#include <signal.h>
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

/* Records `message` as the calling thread's nr_error_message and returns `status`: for the operations a
 * caller hands the library (nr_comm), so that their failures read like the library's own. */
nr_status nr_error_set(nr_status status, const char *message);

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

/* The int8 kernel quantized networks use: "vnni" (AVX-512 VNNI), "avx2" or "portable". All give the same
 * bits; NEURITE_QGEMM chooses one at start. */
const char *nr_qgemm_backend(void);

/* Chooses the int8 kernel: "auto", "vnni", "avx2" or "portable"; NR_EINVAL if the CPU lacks it. */
nr_status nr_set_qgemm_backend(const char *name);

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

/* 2-D convolution over channels-last (HWC) images: `filters` output channels, a square kernel of side
 * `kernel`, `stride` >= 1 and `pad` zeros on every border. The weight is stored (kernel, kernel, in_channels,
 * filters), i.e. as a (kernel * kernel * in_channels) x filters matrix, so a convolution is im2col then the
 * same product as a dense layer. Output side: (side + 2 pad - kernel) / stride + 1. */
nr_status nr_net_conv2d(nr_net *net, size_t filters, size_t kernel, size_t stride, size_t pad, int bias);

/* Max or average pooling over size x size windows moved by `stride` (0: stride = size), per channel. Windows
 * must fit: a border that does not fill a whole window is dropped, as in PyTorch's default. */
nr_status nr_net_maxpool(nr_net *net, size_t size, size_t stride);
nr_status nr_net_avgpool(nr_net *net, size_t size, size_t stride);

/* Turns an image (h, w, c) into a vector of h*w*c features in HWC order; no data moves. */
nr_status nr_net_flatten(nr_net *net);

/* Batch normalisation per channel (per feature for vectors): in training it normalises with the batch's
 * mean and variance and updates running estimates (running = (1 - momentum) running + momentum batch); in
 * inference it uses the running estimates, which are saved with the model. 0 picks the defaults
 * momentum 0.1, eps 1e-5. Learns a scale (gamma, from 1) and a shift (beta, from 0). */
nr_status nr_net_batchnorm(nr_net *net, float momentum, float eps);

/* Inverted dropout: in training each value is zeroed with probability `rate` (0 <= rate < 1) and the rest
 * scaled by 1 / (1 - rate); in inference it passes values through. Draws from nr_net_rng. */
nr_status nr_net_dropout(nr_net *net, float rate);

/* Parses a layer list such as "784-256-relu-10" or "conv32k3-relu-pool2-conv64k3-relu-pool2-fc128-relu-fc10"
 * and appends the layers. Tokens (separated by '-', ',' or white space; '#' starts a comment to the end of
 * the line; case does not matter):
 *   N or fcN         dense layer of N units with bias (a leading N that equals the input size names the
 *                    input and adds no layer); a dense layer after an image flattens it
 *   relu sigmoid tanh identity softmax leaky leakyS (leaky0.2: slope 0.2)
 *   convNkK[sS][pP]  convolution, N filters, K x K kernel, stride S (1), padding P (K/2, "same" for odd K)
 *   poolK maxpoolK avgpoolK   pooling over K x K windows with stride K
 *   flatten  bn  dropP (drop0.5: dropout with rate 0.5)
 * `default_act` (NR_ACT_IDENTITY: none) follows every dense or convolution layer except the last one,
 * unless the list names an activation right after it (or after its batch normalisation): with relu,
 * "512-drop0.2-10" is dense, relu, dropout, dense and "conv32k3-bn-pool2-fc10" is conv, bn, relu, pool, dense.
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
/* Height, width and channels of an input sample (1, 1, n for vectors). */
void nr_net_input_shape(const nr_net *net, size_t shape[3]);
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

/* A CRC-32 of every parameter's bits: two runs that should be identical print the same number. */
uint32_t nr_net_checksum(const nr_net *net);

/* The generator that layers with randomness (dropout) draw from during training; seed it for repeatable
 * runs (nr_rng_seed(nr_net_rng(net), seed)). */
nr_rng *nr_net_rng(nr_net *net);

/* ---- Forward and backward ---- */

/* Runs the network on `n` samples stored one after another in `x` (n * nr_net_input_size floats). *out
 * receives the network's own output buffer (n * nr_net_output_size floats), valid until the next call.
 * training != 0 keeps what backward needs; backward reads `x` again, so it must stay unchanged until then. */
nr_status nr_net_forward(nr_net *net, const float *x, size_t n, int training, const float **out);

/* Prepacking, for inference one sample at a time (on != 0; 0 turns it off and frees the copies). Keeps a copy
 * of dense layers' weights in column panels, the layout a one-sample product streams fastest: each pass of
 * the kernel reads one contiguous block instead of a stretch of every row, and threads take whole panels, so
 * no partial sums cross between cores. Layers wider than one register tile (256 units with AVX-512) are
 * packed, and at two threads or more also those whose share per thread is 128 units or more. nr_net_forward
 * and nr_net_predict use the copies for n == 1 outside training, with the same results to the bit (on a Zen 4:
 * MLP 784-512-256-10 about 18 % more images a second at one thread, 1.8x with the AVX2 kernels; MLP 784-256-10
 * about 10 % more at two threads; docs/gemm.md). At two threads or more, a packed dense layer followed by an
 * element-wise activation and another dense layer runs as one job when each thread's columns of the first are
 * one k block of the second (MLP 784-256-10 and 784-512-256-10 at two threads): one hand-off between the
 * cores instead of two, and every layer's output the same to the bit (on an Intel Xeon, 4-5 % and about 10 %
 * more images a second). Costs one more copy of those weights; NR_ENOMEM (prepacking off) if it cannot be
 * made.
 * The copies follow the weights through the library: training, nr_opt_step, nr_net_backward_step,
 * nr_net_init, loading a checkpoint or safetensors, and every call of nr_net_params (which hands out a
 * writable pointer) mark them stale, and the next inference pass makes them again, as it does after
 * nr_set_threads or nr_set_gemm_backend. What they cannot follow are writes through a pointer taken from
 * nr_net_params before the last forward pass: call nr_net_params again after such writes. That is why it is
 * off by default. A quantized network (nr_net_quantize) keeps its own int8 layout: the call does nothing
 * there. */
nr_status nr_net_prepack(nr_net *net, int on);

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

/* Clears the gradients. Cheap: the next backward writes them instead of adding (and nr_net_grads shows
 * zeros until then). */
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
 * constant rate). If clipping is on, *grad_norm (if not NULL) receives the norm before clipping. On x86 the
 * update counts denormal values (below 1.2e-38) as zero, as x86's flush-to-zero mode does, on its own
 * threads only: the caller's mode is left as it was. Adam's moments of rarely used weights decay into that
 * range, where each operation costs a microcode assist (40% of the update's time in an MLP epoch). A
 * gradient, moment or weight that small is taken as 0: a difference no weight of normal size can show. */
nr_status nr_opt_step(nr_optimizer *opt, nr_net *net, float lr, double *grad_norm);

/* nr_net_zero_grad, nr_net_backward and nr_opt_step(opt, net, lr, NULL) in one call, for a training loop
 * that does not look at the gradient. With plain SGD (NR_OPT_SGD, no clipping) each dense layer's weights
 * take their step inside the product that computes their gradient, tile by tile, by the thread that owns
 * those rows: the weight gradient is never stored, one pass over the weights and one wait between threads
 * are saved, and the numbers are the same bit for bit (each tile is rounded as the step rounds), with one
 * exception: the folded step does not count values below 1.2e-38 as zero the way nr_opt_step does on x86,
 * so a weight that small (or a gradient that small where the weight is too) can come out differently. This
 * applies to batches of fewer than 128 samples on the AVX2 and AVX-512 kernels; elsewhere, and for the other
 * optimizers, it makes the three calls. No gradient is kept afterwards (nr_net_grads reads zeros), and a NaN
 * in a folded gradient is not reported here: it reaches the weights and the next loss. Call after
 * nr_net_loss. */
nr_status nr_net_backward_step(nr_net *net, nr_optimizer *opt, float lr);

/* The optimizer's state buffers (momentum; Adam's first and second moments), each nr_net_param_count floats
 * long, and the step counter. `count` receives how many buffers there are (0, 1 or 2). */
float **nr_opt_state(nr_optimizer *opt, size_t *count);
uint64_t nr_opt_steps(const nr_optimizer *opt);
const nr_opt_config *nr_opt_get_config(const nr_optimizer *opt);

/* One whole training step: forward, loss, then nr_net_backward_step at the config's lr. *loss_value (if not
 * NULL) receives the loss. */
nr_status nr_net_train_batch(nr_net *net, nr_optimizer *opt, nr_loss loss, const float *x, const float *targets,
                             const int32_t *labels, size_t n, double *loss_value);

/* The learning rate at optimizer step `step` (0-based) of `total`: a linear warm-up from base/warmup to base
 * over the first `warmup` steps, then NR_SCHED_CONSTANT keeps base, NR_SCHED_STEP multiplies it by `gamma`
 * every `step_size` steps, NR_SCHED_COSINE follows half a cosine from base down to 0 at `total`. */
typedef enum nr_schedule { NR_SCHED_CONSTANT = 0, NR_SCHED_STEP, NR_SCHED_COSINE } nr_schedule;
float nr_lr_at(nr_schedule schedule, float base, uint64_t step, uint64_t total, uint64_t warmup,
               uint64_t step_size, float gamma);

/* ================================================================================================
 * Data sets
 *
 * A data set holds samples and integer class labels. Images from IDX files stay as bytes (a quarter of the
 * memory of floats) and are converted batch by batch; tables are floats. Raw values are kept; scaling is
 * the network's (nr_net_fit_scaling), so a saved model scales its inputs the way it was trained.
 * ============================================================================================== */

typedef struct nr_dataset nr_dataset;

/* What a table's label columns hold: class labels (numbers 0 to 65535, or text naming the classes), or numeric
 * targets to predict (regression). */
typedef enum nr_task { NR_TASK_CLASSIFY = 0, NR_TASK_REGRESS } nr_task;

/* What a missing value in a table (an empty field, NA, N/A or ?) does. */
typedef enum nr_missing {
    NR_MISSING_REFUSE = 0,  /* the file is refused, naming the line and the column */
    NR_MISSING_DROP,        /* the row is left out */
    NR_MISSING_MEAN         /* filled with the column's mean (text columns: their most frequent value) */
} nr_missing;

typedef struct nr_data_options {
    const char *label;  /* CSV and .npy: the label column, by header name or 0-based index; NULL: the last.
                           Regression: several, separated by commas ("price,rent") */
    int header;         /* CSV: 0 guess (a first row that is not all numbers is a header), 1 yes, 2 no */
    int unlabeled;      /* 1: samples only, for predictions: CSV and .npy have no label column, IDX images need
                           no labels file; every label is 0 */
    nr_task task;       /* CSV: classes (the default) or numeric targets */
    nr_missing missing; /* CSV: what an empty, NA or ? field does */
    const nr_net *model;/* CSV: read the file as this trained model's inputs: its columns, their text values
                           (a value it never saw is refused), its class names and its missing-value rule */
} nr_data_options;

/* Reads a labelled data set; the form is told by the name (or a folder):
 *   IDX, MNIST's format, plain or gzip-compressed (".gz"): `path` is the images file (e.g.
 *     train-images-idx3-ubyte.gz); the labels file beside it has "labels-idx1" where the name has
 *     "images-idx3". Images are unsigned bytes, 2 or 3 dimensions per sample (h, w or h, w, c).
 *   CSV (".csv"): numbers separated by commas, one sample per line, an optional header.
 *   NumPy (".npy"): a 2-D float32/float64 array, one sample per row.
 *   A folder: one sub-folder per class (its name is the class's), of PNG or JPEG images (built with an
 *     image decoder; nr_image_decoder() says), all turned into the size and channels of the first image.
 * For .npy the label column (options->label) must hold whole numbers from 0 to 65535; the others are the
 * features. A CSV's label column may hold those numbers or text (the classes are then its sorted distinct
 * values, named by nr_data_class_name); its feature columns may hold numbers or text, a text column becoming
 * one input per distinct value (one-hot). Everything is checked: the file's length against its header,
 * ragged rows, NaN and Inf, labels out of range, missing values; a refusal names the file and the line, row
 * or byte offset, and the column. */
nr_status nr_data_load(const char *path, const nr_data_options *options, nr_dataset **out);

/* The same for an IDX pair named explicitly; labels_path NULL loads the images alone (labels 0). */
nr_status nr_data_load_idx(const char *images_path, const char *labels_path, nr_dataset **out);

/* A data set copied from arrays: n samples of `features` floats each, and n labels (>= 0). */
nr_status nr_data_from_arrays(const float *x, const int32_t *labels, size_t n, size_t features,
                              nr_dataset **out);

void nr_data_free(nr_dataset *data);

size_t nr_data_count(const nr_dataset *data);
size_t nr_data_features(const nr_dataset *data);
/* Height, width and channels of a sample (1, 1, features for tables). */
void nr_data_shape(const nr_dataset *data, size_t shape[3]);
/* 1 + the largest label (a split or truncated set keeps the count of the set it came from, so a validation
 * set that lacks a rare class still asks for the same number of outputs). */
size_t nr_data_classes(const nr_dataset *data);
/* Whether samples are images stored as bytes (IDX), which augmentation and unit scaling treat as pixels. */
int nr_data_is_image(const nr_dataset *data);
const int32_t *nr_data_labels(const nr_dataset *data);
/* The name of class i when the labels were text (NULL otherwise, or out of range). */
const char *nr_data_class_name(const nr_dataset *data, size_t i);
/* Regression: the number of targets per sample (0 for classes), their raw values (n * targets) and names. */
size_t nr_data_target_count(const nr_dataset *data);
const float *nr_data_targets(const nr_dataset *data);
const char *nr_data_target_name(const nr_dataset *data, size_t i);
/* Copies the raw (unscaled) features of sample i into x. */
nr_status nr_data_sample(const nr_dataset *data, size_t i, float *x);

/* Moves `count` samples chosen with `rng` out of `data` into a new set *held (a validation split). The rest
 * keep their order. */
nr_status nr_data_split(nr_dataset *data, size_t count, nr_rng *rng, nr_dataset **held);

/* Keeps only the first `count` samples (for quick runs on a slice). */
nr_status nr_data_truncate(nr_dataset *data, size_t count);

/* ---- Images ---- */

/* The decoders neurite was built with for PNG and JPEG ("libpng, libjpeg-turbo", or one of them), or NULL:
 * then only PGM and PPM images are read. */
const char *nr_image_decoder(void);

typedef struct nr_image_options {
    int invert;   /* 1: invert; -1: invert when the image's border is mostly light (dark strokes on paper become
                     light on dark, as MNIST's digits are); 0: as it is */
    int center;   /* as MNIST's digits were made: the drawing's bounding box scaled into the middle 20/28 of the
                     frame and centred on its centre of mass */
} nr_image_options;

/* Reads an image file (PNG and JPEG with their decoders; PGM and PPM always; told apart by their first bytes) as height x width x channels
 * (channels 1 or 3) values 0 to 255, like the bytes of an IDX file: grey made from colour by luminance or
 * colour from grey by copying, transparency over white, resized (averaging when shrinking, bilinear when
 * growing), inverted and centred as `options` say (NULL: neither). The file's length and the image's size
 * are checked before anything is decoded. */
nr_status nr_image_load(const char *path, size_t height, size_t width, size_t channels,
                        const nr_image_options *options, float *out);

/* ---- Input scaling, part of the model ---- */

typedef enum nr_scaling {
    NR_SCALE_NONE = 0,
    NR_SCALE_UNIT,      /* to [0, 1]: pixels / 255; table columns by their training minimum and maximum */
    NR_SCALE_STANDARD   /* to mean 0, variance 1: per column for tables, one mean and deviation for images */
} nr_scaling;

/* Computes the scaling from a training set (never from test data) and stores it in the network; every
 * later nr_net_predict, nr_evaluate and nr_train applies it. Constant columns get scale 1. The network also
 * keeps what the data says of itself: a table's column encoding (text values, missing-value rule) and class
 * names, and for regression the targets' names, means and deviations (targets are learnt standardised and
 * predicted in their own units). */
nr_status nr_net_fit_scaling(nr_net *net, const nr_dataset *train, nr_scaling kind);
nr_scaling nr_net_scaling(const nr_net *net);

/* What a trained network knows of its data: the task, the name of class i (NULL if the classes had no
 * names), the number of regression targets and their names. */
nr_task nr_net_task(const nr_net *net);
const char *nr_net_class_name(const nr_net *net, size_t i);
size_t nr_net_target_count(const nr_net *net);
const char *nr_net_target_name(const nr_net *net, size_t i);
/* A description of the network's input columns ("3 columns: age (number), colour (text: blue, green, red),
 * ..."), written into buf; "" when the inputs are plain numbers. */
void nr_net_describe_inputs(const nr_net *net, char *buf, size_t cap);

/* Runs the trained network on n raw samples (scaled as trained) and writes n * outputs floats into `out`:
 * class probabilities (softmax) for a network trained with cross-entropy, the predicted targets in their own
 * units for regression, the outputs as they are otherwise. Works in chunks, so n may be large. */
nr_status nr_net_predict(nr_net *net, const float *x, size_t n, float *out);

/* The same without the head: a classifier's outputs before softmax (logits), a regression's outputs in the
 * standardised units it learnt them in. */
nr_status nr_net_logits(nr_net *net, const float *x, size_t n, float *out);

/* The loss the network was trained with (NR_LOSS_XENT for classifiers); it decides what predict returns.
 * Set by nr_train and stored in model files. */
void nr_net_set_head(nr_net *net, nr_loss loss);
nr_loss nr_net_head(const nr_net *net);

/* ================================================================================================
 * Training and evaluation
 * ============================================================================================== */

/* Several processes training one network (data parallelism): each holds the whole network, computes the
 * gradient of its share of every batch, and the shares are summed across processes before one identical
 * update everywhere. nr_train knows nothing of how the processes talk: the caller hands it these operations
 * (the neurite command implements them with MPI; tests and other transports can too). Every process must
 * call nr_train with the same network, data and settings. */
typedef struct nr_comm {
    int rank, size;              /* this process, of how many (0 <= rank < size) */
    /* Element-wise sums of `count` floats (or doubles) over every process, in place: every process receives
     * the sums. */
    nr_status (*sum)(void *ctx, float *values, size_t count);
    nr_status (*sum_f64)(void *ctx, double *values, size_t count);
    /* Every process's `count` floats, stored in place at all + rank * count, are copied to the others: on
     * return `all` holds size * count floats in rank order. */
    nr_status (*gather)(void *ctx, float *all, size_t count);
    void *ctx;
    /* Optional (NULL: none), for nr_train_config.overlap: `sum` started without waiting, and the wait for every
     * sum started since the last wait. The values must not be touched in between. */
    nr_status (*sum_start)(void *ctx, float *values, size_t count);
    nr_status (*sum_wait)(void *ctx);
} nr_comm;

/* How the gradients of the shares of a batch are combined. */
typedef enum nr_reduce {
    NR_REDUCE_SUM = 0,  /* summed by the transport (an allreduce): fast; the order of the sum is the
                           transport's, so runs on different process counts agree to rounding */
    NR_REDUCE_ORDERED   /* each batch is computed in nr_train_config.shards fixed shares (whatever the process
                           count, which must divide it), gathered, and summed in share order: runs on 1, 2 or 4
                           processes give the same bits (without batch normalisation), at the cost of `shards`
                           gradient buffers and `size` times the traffic */
} nr_reduce;

/* What nr_train reports after each batch and each epoch. */
typedef struct nr_progress {
    size_t epoch, epochs;        /* epoch is 1-based */
    size_t batch, batches;       /* batches done in this epoch, of how many */
    size_t samples;              /* samples done in this epoch */
    double loss;                 /* mean training loss over this epoch so far */
    double accuracy;             /* training accuracy over this epoch so far (classifiers) */
    double seconds;              /* since this epoch began */
    float lr;                    /* the learning rate of the last step */
    /* Set at the end of an epoch only (NaN otherwise, and val_* NaN without a validation set): */
    double val_loss, val_accuracy;
    int improved;                /* the validation loss is the best so far */
} nr_progress;

typedef struct nr_train_config {
    nr_loss loss;                /* NR_LOSS_XENT unless set */
    nr_opt_config opt;           /* kind, lr, momentum, weight decay, clipping */
    size_t epochs;               /* 10 if 0 */
    size_t batch;                /* 64 if 0 */
    nr_schedule schedule;
    float warmup_epochs;         /* linear warm-up length, in epochs (may be fractional) */
    size_t step_epochs;          /* NR_SCHED_STEP: epochs between decays (1 if 0) */
    float gamma;                 /* NR_SCHED_STEP: the decay factor (0.1 if 0) */
    int augment_shift;           /* images: shift each training image by up to this many pixels (0: off) */
    size_t patience;             /* stop when the validation loss has not improved for this many epochs and
                                    restore the best weights (0: off; needs a validation set) */
    uint64_t seed;               /* shuffling, dropout and augmentation draw from generators seeded here */
    const char *checkpoint;      /* if set, save the whole training state here (whole or not at all) ... */
    size_t checkpoint_every;     /* ... every this many batches, and at the end of every epoch */
    const char *resume;          /* continue from this checkpoint, bit-identically */
    int check_numerics;          /* check every layer's output and gradient for NaN/Inf each step */
    FILE *numerics_log;          /* with check_numerics: per-layer norms and dead-ReLU fractions each epoch */
    void (*on_batch)(const nr_progress *progress, void *user);
    void (*on_epoch)(const nr_progress *progress, void *user);
    void *user;
    volatile sig_atomic_t *stop; /* set non-zero (e.g. from a signal handler) to stop at the next batch
                                    boundary, saving the state first to ... */
    const char *stop_checkpoint; /* ... this file (NULL: `checkpoint`; neither: nothing is saved) */
    const char *note;            /* text kept in every checkpoint of the run, up to 64 KiB (e.g. the options that
                                    made it, as the neurite command keeps them); see nr_checkpoint_read */
    const nr_comm *comm;         /* NULL: this process alone. Otherwise each process takes its share of every
                                    batch (`batch` stays the whole batch), validation is shared and summed, the
                                    data and network are checked to be the same everywhere, a stop request on
                                    any process stops all at the same batch, and only rank 0 writes
                                    checkpoints. Batch-norm running statistics are averaged after each step. */
    nr_reduce reduce;            /* with comm, or alone to reproduce a shared run */
    size_t shards;               /* NR_REDUCE_ORDERED: shares per batch (4 if 0) */
    int overlap;                 /* NR_REDUCE_SUM with comm->sum_start: each layer's gradients (in buckets of
                                    about 1 MB) start summing as soon as backward has them, while it goes on
                                    with the layers below, as PyTorch's DDP does (docs/distributed.md says
                                    whether it pays) */
} nr_train_config;

typedef struct nr_train_result {
    size_t epochs_run;
    size_t best_epoch;           /* the epoch whose weights were kept (early stopping) or the last */
    double best_val_loss;
    double train_loss, train_accuracy, val_loss, val_accuracy;  /* of the kept weights' epoch */
    int stopped;                 /* stopped early by patience */
} nr_train_result;

/* Trains `net` on `train` (validation on `val`, which may be NULL) as `config` says. The network must be
 * built and initialised (or loaded); its input size must match the data. On NR_ENUMERIC the message names
 * the first layer and pass where a NaN or Inf appeared. On NR_ESTOPPED (config->stop) the stop checkpoint,
 * if any, holds the state to resume from. */
nr_status nr_train(nr_net *net, const nr_dataset *train, const nr_dataset *val, const nr_train_config *config,
                   nr_train_result *result);

/* Where a checkpoint's run stands, read without resuming it (for `neurite info`, or to decide how to resume). */
typedef struct nr_checkpoint_info {
    uint64_t epoch;              /* the epoch in progress, 0-based: epochs done */
    uint64_t batch;              /* batches of it done */
    uint64_t steps;              /* optimizer steps taken */
    uint64_t samples, batch_size;  /* training samples and batch size of the run */
    uint64_t seed;
    double best_val_loss;        /* the best validation loss so far (infinity if none) */
    uint64_t best_epoch;         /* its epoch, 1-based (0 if none) */
    char *note;                  /* the run's note (nr_train_config.note), malloc'd; NULL if it has none */
} nr_checkpoint_info;

/* Reads the training state of a checkpoint written by nr_train. NR_EFORMAT for a plain model. Free the note
 * with nr_checkpoint_info_free. */
nr_status nr_checkpoint_read(const char *path, nr_checkpoint_info *info);
void nr_checkpoint_info_free(nr_checkpoint_info *info);

typedef struct nr_eval {
    size_t count;                /* samples */
    size_t classes;
    double loss, accuracy;
    size_t *confusion;           /* classes x classes, row = true class, column = predicted; malloc'd */
    /* Regression (targets > 0; accuracy and confusion are then unset): per target, in its own units. */
    size_t targets;
    double *mae, *rmse, *r2;     /* mean absolute error, root mean squared error, R^2; malloc'd */
} nr_eval;

/* Evaluates a classifier (or a regression) on a labelled data set (loss = the network's head). Free with
 * nr_eval_free. */
nr_status nr_evaluate(nr_net *net, const nr_dataset *data, nr_eval *out);

/* The same with the work shared by the processes of `comm` (NULL: alone): each evaluates its part of the data
 * and every process receives the totals. */
nr_status nr_evaluate_shared(nr_net *net, const nr_dataset *data, const nr_comm *comm, nr_eval *out);
void nr_eval_free(nr_eval *eval);

/* ================================================================================================
 * Model files
 *
 * Portable and versioned (docs/format.md): magic, format version, little-endian fixed-width integers, the
 * architecture as text tags and numbers, the input scaling, named float32 tensors and a CRC32. Loading checks
 * every count against the file's length before allocating; a corrupt, truncated, foreign or newer file is
 * refused with a message. Saving writes a temporary file and renames it.
 * ============================================================================================== */

nr_status nr_model_save(const nr_net *net, const char *path);
nr_status nr_model_load(const char *path, nr_net **out);

/* Writes the network as one self-contained C99 file: its weights as constant arrays and a function
 * `<prefix>_predict(x, out, work)` in plain loops, with the input scaling and the head built in, that needs
 * neither neurite nor any allocation (for microcontrollers, or programs that must not link a library). Its
 * results equal nr_net_predict's to float rounding. `prefix` must be a C identifier (NULL: "model"). */
nr_status nr_model_export_c(const nr_net *net, FILE *out, const char *prefix);

/* ================================================================================================
 * Int8 inference (docs/quantization.md)
 *
 * A trained network made 4 times smaller and run in integers: weights signed bytes with one scale per
 * output, activations unsigned bytes with one scale and zero point each, calibrated on samples of the
 * training data; 32-bit sums, fixed-point requantization. A quantized network predicts, evaluates, saves,
 * loads and exports like any other (nr_net_predict, nr_evaluate, nr_model_save, nr_model_export_c,
 * nr_onnx_export); it cannot be trained.
 * ============================================================================================== */

typedef enum nr_calibration {
    NR_CALIB_MINMAX = 0,     /* each activation's whole range over the samples: nothing clipped (default) */
    NR_CALIB_PERCENTILE      /* the range holding `percentile` % of the values: rare outliers clipped */
} nr_calibration;

typedef struct nr_quant_options {
    size_t samples;          /* calibration samples, spread over the data set (0: 1000, or all if fewer) */
    nr_calibration method;
    double percentile;       /* NR_CALIB_PERCENTILE: 50 to 100 (0: 99.99) */
} nr_quant_options;

/* The int8 form of a trained network (`options` NULL: the defaults), calibrated on `calibration` (the
 * training data, which the network's scaling is applied to). Batch normalisation after a dense or
 * convolution layer is folded into it, dropout left out; ReLU, leaky ReLU, sigmoid, tanh and pooling run on
 * bytes; a softmax inside the network, or a batch normalisation that follows no such layer, is refused. The
 * new network keeps the original's scaling, head, classes and table columns. Free with nr_net_free. */
nr_status nr_net_quantize(const nr_net *net, const nr_dataset *calibration, const nr_quant_options *options,
                          nr_net **out);

/* 1 if the network is quantized (then *options, if not NULL, says how it was calibrated), else 0. */
int nr_net_quantization(const nr_net *net, nr_quant_options *options);

/* ================================================================================================
 * Models from and for other tools (docs/interop.md)
 *
 * ONNX: neurite's layers as ONNX operators and back. ONNX images are NCHW, neurite's channels-last (HWC):
 * weights are converted on the way, and a neurite model (imported or exported) takes its inputs channels-last.
 * safetensors: the tensors of the PyTorch nn.Sequential a network corresponds to, named as its state_dict
 * ("0.weight", "0.bias", ...), NCHW convolution weights, so that load_state_dict takes them either way.
 * ============================================================================================== */

/* "libprotobuf-c" when built with ONNX support, else NULL (then the ONNX functions refuse with NR_EINVAL). */
const char *nr_onnx_support(void);

/* Builds a network from an ONNX model file (opsets 9 to 21): Gemm, MatMul (+ Add), Conv, MaxPool,
 * AveragePool, GlobalAveragePool, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax,
 * Flatten, Reshape and Squeeze that flatten, Dropout, Identity, Constant. A final Softmax or LogSoftmax makes a
 * classifier (nr_net_predict gives probabilities). Anything else is refused in one line naming the node, its
 * operator and the opset; the file is hostile input (every size checked against it). */
nr_status nr_onnx_import(const char *path, nr_net **out);

/* Writes the network as an ONNX model (opset 13, a dynamic batch axis): its input scaling as ONNX operators,
 * so raw inputs give what nr_net_predict gives; for a classifier the probabilities (Softmax), or with
 * `logits` the outputs before it. Whole or not at all. */
nr_status nr_onnx_export(const nr_net *net, const char *path, int logits);

/* Writes the network's tensors as a safetensors file, named and shaped as the state_dict of the equivalent
 * PyTorch nn.Sequential (docs/interop.md); whole or not at all. */
nr_status nr_safetensors_export(const nr_net *net, const char *path);

/* The PyTorch module the network corresponds to, as Python text ("nn.Sequential(nn.Conv2d(1, 8, 3, stride=1,
 * padding=1), nn.ReLU(), ..., nn.Linear(392, 10))"): the model whose state_dict nr_safetensors_export writes
 * and nr_safetensors_import reads. It takes NCHW images and gives logits (a classifier's softmax is left to
 * the loss, as PyTorch does). Writes at most cap bytes into buf, ended by '\0'; returns the text's full length
 * (0 if out of memory), as snprintf does. */
size_t nr_net_pytorch(const nr_net *net, char *buf, size_t cap);

/* Fills a built network's tensors from a safetensors file named as nr_safetensors_export names them (every
 * tensor must be there, of its shape, float32 or float64; nothing else may be). The header is hostile input:
 * every offset and size is checked against the file. On failure the network is unchanged. */
nr_status nr_safetensors_import(nr_net *net, const char *path);

/* Sets the input scaling by hand: every input becomes (x - shift) * scale (scale != 0); kind is what
 * nr_net_scaling reports (NR_SCALE_NONE clears it). For a model from elsewhere, which has none. */
nr_status nr_net_set_scaling(nr_net *net, nr_scaling kind, float shift, float scale);

#ifdef __cplusplus
}
#endif

#endif /* NEURITE_H */
