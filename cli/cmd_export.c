/* cmd_export.c - `neurite export MODEL`: the trained network for elsewhere: one dependency-free C file, an ONNX
 * model (ONNX Runtime, OpenCV, TensorRT, ...), or its tensors as a PyTorch state_dict in a safetensors file. */
#include "cli.h"

#include <stddef.h>
#include <string.h>

enum { FORMAT_AUTO, FORMAT_C, FORMAT_ONNX, FORMAT_SAFETENSORS };

typedef struct export_job {
    const nr_net *net;
    const char *name;
    nr_status st;
} export_job;

static bool write_source(FILE *f, void *ctx)
{
    export_job *j = ctx;
    j->st = nr_model_export_c(j->net, f, j->name);
    return j->st == NR_OK;
}

typedef struct export_options {
    const char *name, *out;
    int format;
    bool logits;
} export_options;

static const cli_choice formats[] = {{"c", FORMAT_C}, {"onnx", FORMAT_ONNX}, {"safetensors", FORMAT_SAFETENSORS},
                                     {"auto", FORMAT_AUTO}, {0, 0}};

static const cli_opt export_options_table[] = {
    {"format", OPT_CHOICE, offsetof(export_options, format), 0, 0, "NAME",
     "what to write (auto: by the --out suffix, .onnx or .safetensors, else c)", formats, 0},
    {"out", OPT_STRING, offsetof(export_options, out), 0, 0, "FILE",
     "write here (c: default standard output; onnx and safetensors need it)", 0, 0},
    {"name", OPT_STRING, offsetof(export_options, name), 0, 0, "NAME",
     "c: prefix of the generated names (model): NAME_predict, ...", 0, 0},
    {"logits", OPT_FLAG, offsetof(export_options, logits), 0, 0, "",
     "onnx: a classifier's outputs before softmax, not probabilities", 0, 0},
    {0},
};

const cli_command export_command = {
    "export", "MODEL [--format c|onnx|safetensors] [--out FILE] [options]",
    "Writes the model for use elsewhere:\n"
    "  c            one self-contained C file: constant weight arrays and a NAME_predict(x, out,\n"
    "               work) function in plain loops, no neurite, no allocation (e.g. a microcontroller)\n"
    "  onnx         an ONNX model (opset 13, any batch size), input scaling and softmax included,\n"
    "               for ONNX Runtime and the rest of the ONNX world; images are taken channels-last\n"
    "  safetensors  the tensors as the state_dict of the equivalent PyTorch nn.Sequential (NCHW);\n"
    "               `neurite info MODEL` prints that Sequential\n"
    "MODEL may itself be an .onnx file. Files are written whole or not at all.",
    export_options_table, 1,
};

static int suffix_format(const char *out)
{
    size_t n = out ? strlen(out) : 0;
    if (n > 5 && strcmp(out + n - 5, ".onnx") == 0)
        return FORMAT_ONNX;
    if (n > 12 && strcmp(out + n - 12, ".safetensors") == 0)
        return FORMAT_SAFETENSORS;
    return FORMAT_C;
}

static int export_c(const nr_net *net, const export_options *o)
{
    export_job job = {net, o->name, NR_OK};
    int rc = 0;
    if (o->out) {
        rc = cli_write_file("export", o->out, write_source, &job);
        if (rc && job.st)
            rc = cli_fail("export", job.st);  /* the library's reason, not just "write failed" */
    } else if (!write_source(stdout, &job)) {
        rc = cli_fail("export", job.st);
    }
    return rc;
}

int cmd_export(int argc, char **argv)
{
    export_options o = {.name = "model"};
    const char *pos[1];
    int npos, rc = cli_parse(&export_command, &o, argc, argv, pos, &npos, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (npos != 1)
        return cli_error("export", EXIT_USAGE, "needs a model file (neurite export MODEL)");
    int format = o.format == FORMAT_AUTO ? suffix_format(o.out) : o.format;
    if (format != FORMAT_C && !o.out)
        return cli_error("export", EXIT_USAGE, "--format %s needs --out FILE", cli_choice_name(&export_command,
                                                                                              "format", format));
    if (o.logits && format != FORMAT_ONNX)
        return cli_error("export", EXIT_USAGE, "--logits is for --format onnx");
    if (o.out && (rc = cli_check_output("export", "--out", o.out)))
        return rc;
    nr_net *net;
    nr_status st = cli_load_model(pos[0], &net);
    if (st)
        return cli_fail("export", st);
    if (format == FORMAT_C)
        rc = export_c(net, &o);
    else if ((st = format == FORMAT_ONNX ? nr_onnx_export(net, o.out, o.logits) : nr_safetensors_export(net, o.out)))
        rc = cli_fail("export", st);
    nr_net_free(net);
    return rc;
}
