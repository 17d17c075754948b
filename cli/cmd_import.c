/* cmd_import.c - `neurite import FILE --out MODEL`: a model made elsewhere as a neurite model, to evaluate,
 * predict with, export as C, or train on. An ONNX file brings its architecture; a safetensors file (a PyTorch
 * state_dict) brings only tensors, so the layer list is given as train takes it, or taken from a model. */
#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TASK_CLASSIFY, TASK_REGRESS };

typedef struct import_options {
    const char *out, *layers, *input, *like, *scale;
    int task;
} import_options;

static const cli_choice tasks[] = {{"classify", TASK_CLASSIFY}, {"regress", TASK_REGRESS}, {0, 0}};

static const cli_opt import_options_table[] = {
    {"out", OPT_STRING, offsetof(import_options, out), 0, 0, "MODEL", "the neurite model to write (required)", 0, 0},
    {"scale", OPT_STRING, offsetof(import_options, scale), 0, 0, "SCALING",
     "what the model expects of raw inputs (pixels 0-255): unit = x / 255 (PyTorch's ToTensor), MUL,ADD = "
     "x * MUL + ADD, torch:MEAN,STD = ToTensor then Normalize(MEAN, STD), none; default unit for images, none "
     "for features", 0, 0},
    {"layers", OPT_STRING, offsetof(import_options, layers), 0, 0, "SPEC",
     "safetensors: the layers, as train --layers takes them, written out (\"conv8k3-relu-pool2-fc10\")", 0, 0},
    {"input", OPT_STRING, offsetof(import_options, input), 0, 0, "HxWxC|N",
     "safetensors: the input, an image (28x28x1) or N features", 0, 0},
    {"like", OPT_STRING, offsetof(import_options, like), 0, 0, "MODEL",
     "safetensors: take the layers, input, scaling and classes from this neurite model", 0, 0},
    {"task", OPT_CHOICE, offsetof(import_options, task), 0, 0, "NAME",
     "safetensors with --layers: a classifier (softmax on the outputs) or a regression", tasks, 0},
    {0},
};

const cli_command import_command = {
    "import", "FILE.onnx|FILE.safetensors --out MODEL [options]",
    "Makes a neurite model of one made elsewhere.\n"
    "  FILE.onnx         an ONNX model (opsets 9-21) of the operators docs/interop.md lists: a chain of\n"
    "                    Gemm/MatMul, Conv, pooling, BatchNormalization, activations, Flatten; a final\n"
    "                    Softmax makes a classifier. Weights become channels-last.\n"
    "  FILE.safetensors  a PyTorch nn.Sequential's state_dict (torch.save won't do; use\n"
    "                    safetensors.torch.save_file): give its layers (--layers and --input) or a model\n"
    "                    of the same architecture (--like); `neurite info` shows the Sequential it must be.\n"
    "The result takes raw inputs as neurite's data files hold them: say with --scale how the other tool\n"
    "scaled them.",
    import_options_table, 1,
};

/* --input: HxWxC or a number of features. */
static nr_net *new_net(const char *input)
{
    size_t h, w, c, n;
    char end;
    if (sscanf(input, "%zux%zux%zu%c", &h, &w, &c, &end) == 3 && h && w && c && h * w * c <= ((size_t)1 << 28))
        return nr_net_new_image(h, w, c);
    if (sscanf(input, "%zu%c", &n, &end) == 1 && n && n <= ((size_t)1 << 28))
        return nr_net_new(n);
    return NULL;
}

/* The network for a safetensors file: from --like, or --input and --layers. */
static int safetensors_net(const char *path, const import_options *o, nr_net **net)
{
    nr_status st;
    if (o->like && (o->layers || o->input))
        return cli_error("import", EXIT_USAGE, "--like takes the layers and input from the model: give it alone");
    if (o->like) {
        if ((st = cli_load_model(o->like, net)))
            return cli_fail("import", st);
    } else {
        if (!o->layers || !o->input)
            return cli_error("import", EXIT_USAGE, "a safetensors file holds no architecture: give --layers and "
                                                   "--input, or --like MODEL");
        if (!(*net = new_net(o->input)))
            return cli_error("import", EXIT_USAGE, "--input %s: not HxWxC (28x28x1) or a number of features",
                             o->input);
        if ((st = nr_net_add_spec(*net, o->layers, NR_ACT_IDENTITY)))
            return cli_error("import", EXIT_USAGE, "--layers: %s", nr_error_message());
        nr_net_set_head(*net, o->task == TASK_REGRESS ? NR_LOSS_MSE : NR_LOSS_XENT);
    }
    if ((st = nr_safetensors_import(*net, path)))
        return cli_fail("import", st);
    return 0;
}

/* --scale (or its default) on a network that has no input scaling of its own: neurite's is (x - shift) * scale. */
static int apply_scale(nr_net *net, const char *scale, bool image)
{
    double a, b;
    char end;
    nr_status st = NR_OK;
    if (!scale)
        scale = image ? "unit" : "none";
    if (strcmp(scale, "none") == 0)
        return 0;
    if (strcmp(scale, "unit") == 0)
        st = nr_net_set_scaling(net, NR_SCALE_UNIT, 0.0f, 1.0f / 255.0f);
    else if (sscanf(scale, "torch:%lf,%lf%c", &a, &b, &end) == 2 && b > 0 && isfinite(a) && isfinite(b))
        st = nr_net_set_scaling(net, NR_SCALE_STANDARD, (float)(255.0 * a), (float)(1.0 / (255.0 * b)));
    else if (sscanf(scale, "%lf,%lf%c", &a, &b, &end) == 2 && a != 0 && isfinite(a) && isfinite(b))
        st = nr_net_set_scaling(net, NR_SCALE_STANDARD, (float)(-b / a), (float)a);  /* x * a + b */
    else
        return cli_error("import", EXIT_USAGE, "--scale %s: not unit, none, MUL,ADD (0.00392157,0) or "
                                               "torch:MEAN,STD (torch:0.1307,0.3081)", scale);
    return st ? cli_fail("import", st) : 0;
}

int cmd_import(int argc, char **argv)
{
    import_options o = {0};
    const char *pos[1];
    int npos, rc = cli_parse(&import_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1 || !o.out)
        return cli_error("import", EXIT_USAGE, "needs a file and --out MODEL (see neurite import --help)");
    if ((rc = cli_check_output("import", "--out", o.out)))
        return rc;
    nr_net *net = NULL;
    nr_status st;
    bool onnx = cli_is_onnx(pos[0]);
    if (onnx && (o.layers || o.input || o.like))
        rc = cli_error("import", EXIT_USAGE, "an ONNX file brings its own layers: --layers, --input and --like are "
                                             "for safetensors");
    else if (onnx && (st = nr_onnx_import(pos[0], &net)))
        rc = cli_fail("import", st);
    else if (!onnx)
        rc = safetensors_net(pos[0], &o, &net);
    size_t shape[3] = {0};
    if (!rc)
        nr_net_input_shape(net, shape);
    if (!rc && nr_net_scaling(net) != NR_SCALE_NONE && o.scale && !o.like)
        rc = cli_error("import", EXIT_USAGE, "%s scales its inputs itself: leave out --scale", pos[0]);
    else if (!rc && nr_net_scaling(net) == NR_SCALE_NONE && !o.like)
        rc = apply_scale(net, o.scale, shape[0] * shape[1] > 1);
    if (!rc && (st = nr_model_save(net, o.out)))
        rc = cli_fail("import", st);
    if (!rc)
        printf("neurite import: %s -> %s: %zu layers, %zu parameters, %s\n", pos[0], o.out, nr_net_layer_count(net),
               nr_net_param_count(net), nr_net_head(net) == NR_LOSS_XENT ? "a classifier" : "outputs as they are");
    nr_net_free(net);
    return rc;
}
