/* neurite_bench.c - neurite's side of `make bench` for Fashion-MNIST, through the public API only.
 *
 *   neurite_bench epoch --layers SPEC [--threads T] [--repeats R] [--parts P] [--data DIR] [--limit N]
 *       Loads the training set (60 000 images, kept as bytes, as nr_data_load keeps them), builds the network,
 *       and times R calls of nr_train with epochs = 1: batch 64, Adam lr 1e-3 constant, softmax cross-entropy,
 *       inputs / 255 (unit scaling), shuffled, no validation set, no augmentation. Each call is one full
 *       epoch: shuffle, gather and scale each batch from bytes, forward, loss, backward, Adam step. With
 *       --parts P (1) each epoch's time is also taken at every P-th of its batches (from nr_train's on_batch
 *       callback), so one epoch gives P timed parts; "times" lists the parts, "epochs" the whole epochs.
 *   neurite_bench infer --layers SPEC|--model FILE [--threads T] [--repeats R] [--batch B] [--count N] [--data DIR]
 *       Loads the test set, scales the first N images (10 000) to floats in [0, 1] once, and times R passes
 *       of nr_net_forward (inference mode, logits) over them in batches of B, after one untimed pass. With
 *       --model, a saved model (float or int8, `neurite quantize`) instead of random weights of SPEC; with
 *       --save FILE, the network it times is saved there too (for the other tools to run the same one). With
 *       --prepack 1 (the default) nr_net_prepack is on: batches of one read dense weights from column panels.
 *
 * Prints one machine-readable line that bench/bench.py reads:
 *   RESULT {"mode": "epoch", "times": [s, ...], "loss": ..., "accuracy": ..., "threads": T, "kernel": "..."}
 * Times are seconds of the timed region only (the data is loaded before the clock starts). */
#include <neurite.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
enum { MAX_REPEATS = 100, MAX_PARTS = 10 };

typedef struct options {
    const char *mode, *layers, *data, *model, *save;
    int threads, repeats, parts, prepack;
    size_t batch, count, limit;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "neurite_bench: %s\n"
            "usage: neurite_bench epoch --layers SPEC [--threads T] [--repeats R] [--parts P] [--data DIR] "
            "[--limit N]\n"
            "       neurite_bench infer --layers SPEC|--model FILE [--threads T] [--repeats R] [--batch B] "
            "[--count N] [--data DIR] [--save FILE] [--prepack 0|1]\n",
            why);
    return 2;
}

/* A whole number from text, within [lo, hi]; -1 if it is not one. */
static long long parse_count(const char *text, long long lo, long long hi)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    return *text && !*end && v >= lo && v <= hi ? v : -1;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.data = DEFAULT_DATA, .threads = 1, .repeats = 3, .parts = 1, .batch = 256, .count = 10000,
                   .prepack = 1};
    if (argc < 2)
        return usage("no mode given");
    o->mode = argv[1];
    if (strcmp(o->mode, "epoch") != 0 && strcmp(o->mode, "infer") != 0)
        return usage("the mode must be 'epoch' or 'infer'");
    for (int i = 2; i < argc; i += 2) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        long long v = 0;
        if (!value)
            return usage("an option lacks its value");
        if (strcmp(name, "--layers") == 0) {
            o->layers = value;
            continue;
        }
        if (strcmp(name, "--data") == 0) {
            o->data = value;
            continue;
        }
        if (strcmp(name, "--model") == 0) {
            o->model = value;
            continue;
        }
        if (strcmp(name, "--save") == 0) {
            o->save = value;
            continue;
        }
        if ((v = parse_count(value, 0, 1LL << 30)) < 0)
            return usage("a count is not a whole number in range");
        if (strcmp(name, "--threads") == 0 && v <= 256)
            o->threads = (int)v;
        else if (strcmp(name, "--repeats") == 0 && v >= 1 && v <= MAX_REPEATS)
            o->repeats = (int)v;
        else if (strcmp(name, "--parts") == 0 && v >= 1 && v <= MAX_PARTS)
            o->parts = (int)v;
        else if (strcmp(name, "--batch") == 0 && v >= 1)
            o->batch = (size_t)v;
        else if (strcmp(name, "--count") == 0 && v >= 1)
            o->count = (size_t)v;
        else if (strcmp(name, "--limit") == 0)
            o->limit = (size_t)v;
        else if (strcmp(name, "--prepack") == 0 && v <= 1)
            o->prepack = (int)v;
        else
            return usage("unknown option or value out of range");
    }
    if (!o->layers && !(o->model && strcmp(o->mode, "infer") == 0))
        return usage("--layers is required (or, to infer, --model)");
    return 0;
}

static int fail(const char *what, nr_status st)
{
    fprintf(stderr, "neurite_bench: %s: %s (%s)\n", what, nr_error_message(), nr_status_string(st));
    return 1;
}

static void print_times(const double *times, int n)
{
    printf("\"times\": [");
    for (int i = 0; i < n; i++)
        printf("%s%.6f", i ? ", " : "", times[i]);
    printf("]");
}

/* The network for images of the data set's shape, built from the layer list, initialised like the CLI. */
static int build(const options *o, const nr_dataset *data, nr_net **out)
{
    size_t shape[3];
    nr_data_shape(data, shape);
    nr_net *net = nr_net_new_image(shape[0], shape[1], shape[2]);
    nr_status st;
    if (!net)
        return fail("network", NR_ENOMEM);
    if ((st = nr_net_add_spec(net, o->layers, NR_ACT_RELU))) {
        nr_net_free(net);
        return fail(o->layers, st);
    }
    nr_rng rng;
    nr_rng_seed(&rng, 1);
    if ((st = nr_net_init(net, NR_INIT_AUTO, &rng)) || (st = nr_net_fit_scaling(net, data, NR_SCALE_UNIT))) {
        nr_net_free(net);
        return fail("initialisation", st);
    }
    *out = net;
    return 0;
}

/* The clock at every P-th of an epoch's batches, read from nr_train's progress callback. */
typedef struct part_clock {
    int parts;
    double stamps[MAX_PARTS];  /* stamps[k]: when part k ended (k < parts - 1) */
} part_clock;

static void on_batch(const nr_progress *p, void *user)
{
    part_clock *c = user;
    for (int k = 1; k < c->parts; k++)
        if (p->batch == (p->batches * (size_t)k + (size_t)c->parts / 2) / (size_t)c->parts)
            c->stamps[k - 1] = now();
}

static int run_epochs(const options *o)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", o->data);
    nr_dataset *train = NULL;
    nr_net *net = NULL;
    nr_status st;
    if ((st = nr_data_load(path, NULL, &train)))
        return fail(path, st);
    if (o->limit && (st = nr_data_truncate(train, o->limit))) {
        nr_data_free(train);
        return fail("--limit", st);
    }
    if (build(o, train, &net)) {
        nr_data_free(train);
        return 1;
    }
    part_clock clock = {.parts = o->parts};
    nr_train_config cfg = {
        .loss = NR_LOSS_XENT,
        .opt = {.kind = NR_OPT_ADAM, .lr = 1e-3f},
        .epochs = 1,
        .batch = 64,
        .schedule = NR_SCHED_CONSTANT,
        .augment_shift = 0,
        .on_batch = o->parts > 1 ? on_batch : NULL,
        .user = &clock,
    };
    double times[MAX_REPEATS * MAX_PARTS], epochs[MAX_REPEATS];
    nr_train_result res = {0};
    for (int r = 0; r < o->repeats; r++) {
        cfg.seed = 1 + (uint64_t)r;  /* a new shuffle each epoch, as a DataLoader would do */
        for (int k = 0; k < MAX_PARTS; k++)
            clock.stamps[k] = 0;
        double t0 = now();
        st = nr_train(net, train, NULL, &cfg, &res);
        double t1 = now();
        if (st) {
            nr_net_free(net);
            nr_data_free(train);
            return fail("nr_train", st);
        }
        epochs[r] = t1 - t0;
        double start = t0;
        for (int k = 0; k < o->parts; k++) {
            double end = k + 1 < o->parts ? clock.stamps[k] : t1;
            if (end < start)  /* fewer batches than parts: this part was empty */
                end = start;
            times[r * o->parts + k] = end - start;
            start = end;
        }
    }
    printf("RESULT {\"mode\": \"epoch\", ");
    print_times(times, o->repeats * o->parts);
    printf(", \"parts\": %d, \"epochs\": [", o->parts);
    for (int r = 0; r < o->repeats; r++)
        printf("%s%.6f", r ? ", " : "", epochs[r]);
    printf("], \"samples\": %zu, \"loss\": %.6g, \"accuracy\": %.6g, \"threads\": %d, \"kernel\": \"%s\", "
           "\"params\": %zu, \"layers\": %zu}\n",
           nr_data_count(train), res.train_loss, res.train_accuracy, nr_threads(), nr_gemm_backend(),
           nr_net_param_count(net), nr_net_layer_count(net));
    nr_net_free(net);
    nr_data_free(train);
    return 0;
}

static int run_inference(const options *o)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", o->data);
    nr_dataset *test = NULL;
    nr_net *net = NULL;
    nr_status st;
    if ((st = nr_data_load(path, NULL, &test)))
        return fail(path, st);
    size_t count = o->count < nr_data_count(test) ? o->count : nr_data_count(test);
    size_t in = nr_data_features(test);
    float *x = malloc(count * in * sizeof *x);
    if (o->model && (st = nr_model_load(o->model, &net))) {
        free(x);
        nr_data_free(test);
        return fail(o->model, st);
    }
    if (!x || (!net && build(o, test, &net))) {
        free(x);
        nr_data_free(test);
        return x ? 1 : fail("images", NR_ENOMEM);
    }
    if (o->save && (st = nr_model_save(net, o->save))) {
        free(x);
        nr_net_free(net);
        nr_data_free(test);
        return fail(o->save, st);
    }
    if ((st = nr_net_prepack(net, o->prepack))) {
        free(x);
        nr_net_free(net);
        nr_data_free(test);
        return fail("nr_net_prepack", st);
    }
    for (size_t i = 0; i < count; i++) {
        float *row = x + i * in;
        nr_data_sample(test, i, row);
        for (size_t j = 0; j < in; j++)
            row[j] /= 255.0f;
    }
    double times[MAX_REPEATS], checksum = 0;
    for (int r = -1; r < o->repeats; r++) {  /* r = -1: the untimed pass that plans the memory */
        double t0 = now();
        for (size_t i = 0; i < count; i += o->batch) {
            size_t m = count - i < o->batch ? count - i : o->batch;
            const float *y;
            if ((st = nr_net_forward(net, x + i * in, m, 0, &y))) {
                free(x);
                nr_net_free(net);
                nr_data_free(test);
                return fail("nr_net_forward", st);
            }
            checksum += y[0];
        }
        if (r >= 0)
            times[r] = now() - t0;
    }
    printf("RESULT {\"mode\": \"infer\", ");
    print_times(times, o->repeats);
    int int8 = nr_net_quantization(net, NULL);
    printf(", \"images\": %zu, \"batch\": %zu, \"checksum\": %.6g, \"threads\": %d, \"kernel\": \"%s\", "
           "\"params\": %zu, \"layers\": %zu, \"prepack\": %d}\n",
           count, o->batch, checksum, nr_threads(), int8 ? nr_qgemm_backend() : nr_gemm_backend(),
           nr_net_param_count(net), nr_net_layer_count(net), o->prepack);
    free(x);
    nr_net_free(net);
    nr_data_free(test);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    nr_status st = nr_set_threads(o.threads);
    if (st)
        return fail("nr_set_threads", st);
    return strcmp(o.mode, "epoch") == 0 ? run_epochs(&o) : run_inference(&o);
}
