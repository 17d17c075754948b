#!/usr/bin/env python3
# needs: numpy torch onnx
"""ONNX and safetensors, both ways, against PyTorch:

- PyTorch models (MLPs, CNNs with batch norm, max and average pooling, leaky ReLU, strides and padding,
  Flatten, view, global pooling, LogSoftmax) exported by torch.onnx at opsets 11 to 17, imported by neurite:
  neurite's outputs on 1000 inputs within 1e-5 of PyTorch's, and the same class for every one.
- neurite models (an MLP, a CNN with every layer kind, a regression) exported as ONNX: valid for
  onnx.checker (full check, shape inference included), and read back by `neurite import` as the same file,
  byte for byte.
- neurite models exported as safetensors load into the nn.Sequential neurite names (load_state_dict, strict)
  and give neurite's outputs; PyTorch's tensors saved as safetensors come into neurite through --layers and
  give PyTorch's outputs.
- Refusals in one line, with nothing written: an operator neurite lacks, a graph that is not a chain, a
  truncated or bit-flipped file, absurd dimensions; a safetensors file missing a tensor, with a wrong shape,
  cut short, holding NaN, with a broken header.

ONNX Runtime's view of the exports is tests/test_onnx_runtime.py. Usage: test_onnx.py BUILD_DIR
"""
import os
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from checks import Checks
from interop import neurite_models, read_safetensors, write_idx, write_safetensors
from interop import predict as neurite_predict

CHECKS = Checks("onnx")
check = CHECKS.check
run = CHECKS.run
EXE = "neurite"
TOL = 1e-5


def predict(model, data):
    return neurite_predict(run, EXE, model, data)


def fails(*args):
    """Exit status and stderr of a neurite command that must fail."""
    out = subprocess.run((EXE,) + args, capture_output=True, text=True, check=False)
    return out.returncode, out.stderr.strip()


def torch_outputs(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).double().numpy()


# ---- PyTorch -> ONNX -> neurite ----

class Classifier(nn.Module):
    """A Sequential followed by a softmax, as a classifier is exported for inference."""

    def __init__(self, body, log=False):
        super().__init__()
        self.body = body
        self.log = log

    def forward(self, x):
        y = self.body(x)
        return torch.log_softmax(y, 1) if self.log else torch.softmax(y, 1)


class ViewFlatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


def randomise_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


def torch_models():
    """(name, model, input shape (C, H, W) or (F,), opset, dynamic batch)."""
    return [
        ("mlp-softmax", Classifier(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.Sigmoid(),
                                                 nn.Linear(16, 5))), (20,), 11, True),
        ("mlp-regression", nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 3)), (12,), 13, False),
        ("mlp-batchnorm-nobias", Classifier(nn.Sequential(nn.Linear(10, 16, bias=False), nn.BatchNorm1d(16),
                                                          nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(16, 4))),
         (10,), 15, True),
        ("cnn-grey", Classifier(nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                                              nn.Conv2d(6, 12, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                              nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12 * 3 * 3, 10))),
         (1, 28, 28), 12, True),
        ("cnn-colour-view", Classifier(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                                                     nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                                     nn.Tanh(), ViewFlatten(), nn.Linear(8 * 8 * 8, 6)), log=True),
         (3, 16, 16), 14, False),
        ("cnn-global-pool", Classifier(nn.Sequential(nn.Conv2d(3, 10, 3), nn.ReLU(), nn.Conv2d(10, 7, 3, stride=2),
                                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())),
         (3, 13, 13), 17, True),
        ("cnn-pool-stride", nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(3, stride=2), nn.Sigmoid(),
                                          nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), (2, 14, 14), 16, True),
    ]


def from_torch(tmp):
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(1)
    torch.manual_seed(0)  # the models' initial weights: the same numbers on every run
    for name, model, shape, opset, dynamic in torch_models():  # ("...-view" ends in LogSoftmax)
        randomise_batchnorm(model, gen)
        model.eval()
        onnx_path = os.path.join(tmp, name + ".onnx")
        n = 1000
        image = len(shape) == 3
        pixels = rng.integers(0, 256, (n,) + shape[1:] + shape[:1]) if image else None  # NHWC bytes
        x = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2) / 255.0, np.float32) if image else \
            rng.normal(0, 1, (n,) + shape).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.from_numpy(x[:n if not dynamic else 2]), onnx_path, opset_version=opset,
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}, "y": {0: "n"}} if dynamic else None)
        model_path = os.path.join(tmp, name + ".nrm")
        run(EXE, "import", onnx_path, "--out", model_path)
        if image:
            data = os.path.join(tmp, name + ".idx")
            write_idx(data, pixels.astype(np.uint8))
        else:
            data = os.path.join(tmp, name + ".npy")
            np.save(data, x.astype(np.float32))
        ours = predict(model_path, data)
        ref = torch_outputs(model, x)
        if name.endswith("view"):  # its LogSoftmax: neurite's classifier gives the probabilities
            ref = np.exp(ref)
        if ours.shape != ref.shape:
            check(False, "%s (opset %d): neurite gave %s outputs, PyTorch %s" % (name, opset, ours.shape, ref.shape))
            continue
        diff = np.abs(ours - ref).max()
        check(diff <= TOL, "%s (opset %d): outputs differ from PyTorch's by up to %.3g" % (name, opset, diff))
        same = (ours.argmax(1) == ref.argmax(1)).mean()
        check(same == 1.0, "%s (opset %d): the same class for %.1f%% of inputs" % (name, opset, 100 * same))
        print("onnx: %-22s opset %d, %d inputs: largest difference from PyTorch %.2g" % (name, opset, n, diff))


# ---- neurite -> ONNX -> neurite, and neurite -> safetensors -> PyTorch ----

def round_trip(tmp, models):
    for name, path, _, _ in models:
        onnx_path = os.path.join(tmp, name + ".onnx")
        run(EXE, "export", path, "--out", onnx_path)
        try:
            onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
            check(True, "")
        except Exception as e:  # noqa: BLE001 - any checker complaint is the failure
            check(False, "%s.onnx fails onnx.checker: %s" % (name, str(e)[:300]))
        back = os.path.join(tmp, name + ".back.nrm")
        run(EXE, "import", onnx_path, "--out", back)
        same = os.path.exists(back) and open(path, "rb").read() == open(back, "rb").read()
        check(same, "%s: exported to ONNX and imported, the model file is not the same" % name)


def scaled_nchw(meta, raw, image_shape):
    """Raw inputs (N, H*W*C) scaled as the model's metadata says, then NCHW for PyTorch."""
    parts = meta["neurite.scaling"].split()
    x = raw.astype(np.float64)
    if parts[0] != "none":
        pairs = np.array([[float(v) for v in p.split("/")] for p in parts[1:]])
        x = (x - pairs[:, 0]) * pairs[:, 1]
    h, w, c = image_shape
    return (x.reshape(-1, h, w, c).transpose(0, 3, 1, 2) if h * w > 1 else x).astype(np.float32)


def to_torch(tmp, models):
    """neurite -> safetensors -> nn.Sequential: the same outputs."""
    for name, path, data, _ in models:
        st_path = os.path.join(tmp, name + ".safetensors")
        run(EXE, "export", path, "--out", st_path)
        tensors, meta = read_safetensors(st_path)
        net = eval(meta["neurite.sequential"], {"nn": nn})  # noqa: S307 - our own file
        state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
        try:
            net.load_state_dict(state, strict=True)
            check(True, "")
        except RuntimeError as e:
            check(False, "%s: load_state_dict refused neurite's tensors: %s" % (name, str(e)[:300]))
            continue
        net.eval()
        if data.endswith(".csv"):  # its text column: the Sequential takes the one-hot inputs neurite makes
            continue
        shape = [int(v) for v in meta["neurite.input"].split()[2:]]
        if data.endswith(".npy"):
            raw = np.load(data).astype(np.float64)
        else:
            blob = open(data, "rb").read()  # IDX: 4 bytes, then a 4-byte size per dimension (3 or 4 of them)
            raw = np.frombuffer(blob[4 + 4 * blob[3]:], np.uint8).reshape(-1, shape[0] * shape[1] * shape[2])[:2000]
        ours = predict(path, data)[:len(raw)]
        with torch.no_grad():
            y = net(torch.from_numpy(scaled_nchw(meta, raw, shape))).double()
        if "neurite.targets" in meta:  # the Sequential learnt (t - mean) * scale: back to the targets' units
            pairs = np.array([[float(v) for v in p.split("/")] for p in meta["neurite.targets"].split()])
            diff = np.abs(ours - (y.numpy() / pairs[:, 1] + pairs[:, 0])).max() / max(1.0, np.abs(ours).max())
        else:
            diff = np.abs(ours - torch.softmax(y, 1).numpy()).max()
        check(diff <= TOL, "%s: PyTorch on neurite's safetensors differs by %.3g" % (name, diff))
        print("onnx: %-22s neurite -> safetensors -> PyTorch: largest difference %.2g" % (name, diff))


def from_torch_safetensors(tmp):
    """PyTorch's tensors -> safetensors -> neurite import --layers: the same outputs."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 14 * 14, 10))
    randomise_batchnorm(net, torch.Generator().manual_seed(6))
    net.eval()
    path = os.path.join(tmp, "torch.safetensors")
    write_safetensors(path, {k: v.numpy() for k, v in net.state_dict().items()})
    model = os.path.join(tmp, "torch.nrm")
    run(EXE, "import", path, "--layers", "conv4k3-bn-relu-pool2-flatten-fc10", "--input", "28x28x1", "--out", model)
    pixels = np.random.default_rng(7).integers(0, 256, (500, 28, 28, 1)).astype(np.uint8)
    data = os.path.join(tmp, "torch-images.idx")
    write_idx(data, pixels)
    ours = predict(model, data)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy((pixels.transpose(0, 3, 1, 2) / 255.0).astype(np.float32))),
                            1).double().numpy()
    diff = np.abs(ours - ref).max() if ours.shape == ref.shape else float("inf")
    check(diff <= TOL, "PyTorch -> safetensors -> neurite: outputs differ by %.3g" % diff)
    print("onnx: PyTorch -> safetensors -> neurite (conv, bn, pool, linear): largest difference %.2g" % diff)
    return path, model


# ---- the README's recipe ----

def recipe(tmp):
    """PyTorch trains on the digits (examples/digits_from_pytorch.py, one epoch), neurite imports and evaluates
    the model, exports it as C, and examples/exported/classify_digits.c compiled with it gets the same
    accuracy on the test set."""
    root = os.environ.get("NEURITE_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "neurite")
    digits = os.path.join(root, "mnist")
    if not os.path.exists(os.path.join(digits, "train-images-idx3-ubyte")):
        print("onnx: the README's recipe not tried: the digits are not fetched (neurite fetch mnist)")
        return
    here = os.path.dirname(os.path.abspath(__file__))
    onnx_path, model = os.path.join(tmp, "digits.onnx"), os.path.join(tmp, "digits.nrm")
    run(sys.executable, os.path.join(here, "..", "examples", "digits_from_pytorch.py"), "--out", onnx_path,
        "--epochs", "1", "--data", digits)
    run(EXE, "import", onnx_path, "--out", model)
    evaluated = run(EXE, "eval", model, "--data", "mnist")
    accuracy = float(evaluated.split("accuracy:")[1].split()[0]) if "accuracy:" in evaluated else -1
    run(EXE, "export", model, "--format", "c", "--name", "model", "--out", os.path.join(tmp, "model.h"))
    program = os.path.join(tmp, "classify")
    run("cc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", tmp,
        os.path.join(here, "..", "examples", "exported", "classify_digits.c"), "-lm", "-o", program)
    out = run(program, os.path.join(digits, "t10k-images-idx3-ubyte"), os.path.join(digits, "t10k-labels-idx1-ubyte"))
    in_c = float(out.split("accuracy")[1].split()[0]) if "accuracy" in out else -2
    check(accuracy >= 0.9 and abs(in_c - accuracy) < 1e-9,
          "recipe: neurite eval %.4f, the compiled C file %.4f (want equal, at least 0.9)" % (accuracy, in_c))
    print("onnx: the README's recipe: PyTorch (1 epoch) -> ONNX -> neurite eval %.4f -> C program %.4f"
          % (accuracy, in_c))


# ---- refusals ----

def refuses(what, args, want, out=None):
    code, err = fails(*args)
    check(code != 0 and want in err and "\n" not in err, "%s: exit %d, %r" % (what, code, err))
    if out:
        check(not os.path.exists(out), "%s: %s was written" % (what, out))


def refusals(tmp, st_path):
    out = os.path.join(tmp, "refused.nrm")
    good = os.path.join(tmp, "cnn-grey.onnx")
    data = open(good, "rb").read()
    cut = os.path.join(tmp, "cut.onnx")
    open(cut, "wb").write(data[:len(data) // 3])
    refuses("truncated ONNX", ("import", cut, "--out", out), "cut.onnx:", out)
    flipped = bytearray(data)
    for i in range(7, len(flipped), 97):
        flipped[i] ^= 0x5A
    bad = os.path.join(tmp, "flipped.onnx")
    open(bad, "wb").write(bytes(flipped))
    refuses("bit-flipped ONNX", ("import", bad, "--out", out), "flipped.onnx:", out)
    up = os.path.join(tmp, "upsample.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2)), torch.zeros(1, 1, 8, 8),
                          up, opset_version=13)
    refuses("unsupported operator", ("import", up, "--out", out), "op 'Resize', opset 13", out)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            return self.a(x) + x

    res = os.path.join(tmp, "residual.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Residual(), torch.zeros(1, 4), res, opset_version=13)
    refuses("a graph that is not a chain", ("import", res, "--out", out), "only a chain of operators", out)
    m = onnx.load(good)
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 1 << 30
    huge = os.path.join(tmp, "huge.onnx")
    onnx.save(m, huge)
    refuses("absurd input dimensions", ("import", huge, "--out", out), "huge.onnx:", out)
    refuses("a file that is not ONNX", ("import", os.path.join(tmp, "features.npy.onnx"), "--out", out),
            "features.npy.onnx: cannot open", out)

    tensors, _ = read_safetensors(st_path)
    spec = ("--layers", "conv4k3-bn-relu-pool2-flatten-fc10", "--input", "28x28x1", "--out", out)
    cases = []
    missing = dict(tensors)
    del missing["5.bias"]
    cases.append(("missing tensor", missing, "tensor '5.bias' is missing"))
    wrong = dict(tensors)
    wrong["0.weight"] = np.zeros((4, 1, 5, 5), np.float32)
    cases.append(("wrong shape", wrong, "tensor '0.weight' is 4x1x5x5, the network's is 4x1x3x3"))
    nan = dict(tensors)
    nan["5.weight"] = tensors["5.weight"].copy()
    nan["5.weight"][3, 7] = np.nan
    cases.append(("NaN", nan, "tensor '5.weight' holds NaN at element"))
    extra = dict(tensors)
    extra["9.weight"] = np.zeros(3, np.float32)
    cases.append(("a tensor the network lacks", extra, "tensor '9.weight' is not one of the network's"))
    for what, t, want in cases:
        path = os.path.join(tmp, what.replace(" ", "-") + ".safetensors")
        write_safetensors(path, t)
        refuses("safetensors: " + what, ("import", path) + spec, want, out)
    blob = open(st_path, "rb").read()
    for what, content, want in (("cut short", blob[:len(blob) - 100], "data_offsets"),
                                ("a broken header", blob[:8] + b"{\"0.weight\": [" + blob[22:], "not a safetensors"),
                                ("a header longer than the file", struct.pack("<Q", 1 << 40) + blob[8:],
                                 "header length")):
        path = os.path.join(tmp, what.replace(" ", "-") + ".safetensors")
        open(path, "wb").write(content)
        refuses("safetensors: " + what, ("import", path) + spec, want, out)
    refuses("safetensors without layers", ("import", st_path, "--out", out), "give --layers and --input", out)
    refuses("export onnx to standard output", ("export", os.path.join(tmp, "torch.nrm"), "--format", "onnx"),
            "--format onnx needs --out FILE")


def main():
    global EXE
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    EXE = os.path.join(build, "neurite")
    version = subprocess.run([EXE, "export", "--help"], capture_output=True, text=True, check=False).stdout
    probe = subprocess.run([EXE, "import", "/nonexistent.onnx", "--out", "/tmp/x.nrm"], capture_output=True,
                           text=True, check=False).stderr
    if "without ONNX support" in probe or "onnx" not in version:
        print("onnx: skipped: this neurite was built without ONNX support "
              "(apt-get install libprotobuf-c-dev protobuf-c-compiler python3-onnx)")
        return 0
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        from_torch(tmp)
        models = neurite_models(run, EXE, tmp)
        round_trip(tmp, models)
        to_torch(tmp, models)
        st_path, _ = from_torch_safetensors(tmp)
        recipe(tmp)
        refusals(tmp, st_path)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
