#!/usr/bin/env python3
# needs: numpy
"""neurite's ONNX exports run by ONNX Runtime (npm's onnxruntime-node, through tests/helper_ort.js): an MLP
and a CNN with every layer kind trained on the digits (or a synthetic set of the same shape when the digits
are not fetched), a regression and a table with a text column. For each, ONNX Runtime's outputs on raw inputs
(pixels 0-255, the table's one-hot columns) are within 1e-5 of `neurite predict`'s, every sample gets the
same class, and so the same accuracy; `--logits` gives the outputs before softmax. Batch sizes 1 and many
(the batch axis is free). The MLP and the CNN quantized to int8 and exported as QDQ give nearly always the
same class (compare_int8 says how nearly, and why not always). Usage: test_onnx_runtime.py BUILD_DIR
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from checks import Checks
from interop import neurite_models, predict

CHECKS = Checks("onnx_runtime")
check = CHECKS.check
run = CHECKS.run
TOL = 1e-5


def node_modules():
    """Where scripts/install-deps.sh puts onnxruntime-node, or NODE_PATH."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    for path in (os.environ.get("NODE_PATH", ""), os.path.join(cache, "neurite", "node", "node_modules")):
        if path and os.path.isdir(os.path.join(path, "onnxruntime-node")):
            return path
    return None


def ort(modules, model, x, tmp):
    """ONNX Runtime's output for x (float32, batch first)."""
    xin, yout = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.f32")
    np.ascontiguousarray(x, np.float32).tofile(xin)
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper_ort.js")
    out = subprocess.run(["node", helper, model, xin, yout] + [str(d) for d in x.shape], capture_output=True,
                         text=True, check=False, env=dict(os.environ, NODE_PATH=modules))
    check(out.returncode == 0, "ONNX Runtime on %s: %s" % (os.path.basename(model), out.stderr.strip()[:400]))
    return np.fromfile(yout, np.float32).reshape(len(x), -1) if out.returncode == 0 else None


def raw_inputs(data):
    """The values neurite reads from a data file: IDX pixels as (N, H, W, C), or a .npy table."""
    if data.endswith(".npy"):
        return np.load(data).astype(np.float32)
    blob = open(data, "rb").read()
    dims = [int.from_bytes(blob[4 + 4 * k:8 + 4 * k], "big") for k in range(blob[3])]
    pixels = np.frombuffer(blob[4 + 4 * len(dims):], np.uint8)
    return pixels.reshape(dims + ([1] if len(dims) == 3 else [])).astype(np.float32)


def labels_of(data):
    """An IDX images file's labels (the file named as neurite finds it), else None."""
    path = data.replace("images-idx3", "labels-idx1")
    return np.frombuffer(open(path, "rb").read()[8:], np.uint8) if path != data and os.path.exists(path) else None


def compare(exe, modules, tmp, name, path, data, extra):
    onnx_path = os.path.join(tmp, name + ".onnx")
    run(exe, "export", path, "--out", onnx_path)
    ours = predict(run, exe, path, data, *extra)
    x = one_hot_inputs(data) if data.endswith(".csv") else raw_inputs(data)
    x = x[:len(ours)]
    theirs = ort(modules, onnx_path, x, tmp)
    if theirs is None or theirs.shape != ours.shape:
        check(False, "%s: ONNX Runtime gave %s, neurite %s" % (name, None if theirs is None else theirs.shape,
                                                               ours.shape))
        return
    diff = np.abs(theirs - ours).max() / max(1.0, np.abs(ours).max())
    check(diff <= TOL, "%s: ONNX Runtime differs from neurite by %.3g" % (name, diff))
    line = "onnx_runtime: %-10s %5d samples: largest difference %.2g" % (name, len(x), diff)
    if name != "regression":
        same = (theirs.argmax(1) == ours.argmax(1)).mean()
        check(same == 1.0, "%s: the same class for only %.2f%% of samples" % (name, 100 * same))
        labels = labels_of(data)
        if labels is not None:  # against `neurite eval`'s own accuracy line
            evaluated = run(exe, "eval", path, "--data", data)
            acc_ours = float(evaluated.split("accuracy:")[1].split()[0]) if "accuracy:" in evaluated else -1
            acc_theirs = (theirs.argmax(1) == labels[:len(ours)]).mean()
            check(abs(acc_ours - acc_theirs) < 5e-5, "%s: neurite eval says accuracy %.4f, ONNX Runtime gets %.4f"
                  % (name, acc_ours, acc_theirs))
            line += ", accuracy %.2f%% (neurite eval %.2f%%)" % (100 * acc_theirs, 100 * acc_ours)
        one = ort(modules, onnx_path, x[:1], tmp)
        check(one is not None and np.abs(one - ours[:1]).max() <= TOL, "%s: a batch of one differs" % name)
        logits_path = os.path.join(tmp, name + "-logits.onnx")
        run(exe, "export", path, "--out", logits_path, "--logits")
        logits = ort(modules, logits_path, x[:50], tmp)
        if logits is not None:
            soft = np.exp(logits - logits.max(1, keepdims=True))
            soft /= soft.sum(1, keepdims=True)
            check(np.abs(soft - ours[:50]).max() <= TOL, "%s: --logits are not the outputs before softmax" % name)
    print(line)


def compare_int8(exe, modules, tmp, name, path, data, extra):
    """An int8 model (neurite quantize) exported as QDQ. ONNX Runtime computes its products in float (or
    requantizes with a float scale) where neurite's requantization is a fixed-point multiplier, so about one
    byte in a hundred differs by one step between the two, and a sample whose two best classes are close can
    change class. The bar here is for the small models this test trains in seconds (4 epochs, close logits):
    99.5 % of the samples in the same class for the MLP, 98 % for the CNN, whose tanh turns one step of its
    input into up to ten of its output. `make bench` measures the README's digits and Fashion-MNIST models."""
    q_path = os.path.join(tmp, name + ".int8.nrm")
    calib = "mnist" if data.endswith("t10k-images-idx3-ubyte") else data
    run(exe, "quantize", path, "--calib", calib, "--out", q_path, "--threads", "1", *extra)
    onnx_path = os.path.join(tmp, name + ".int8.onnx")
    run(exe, "export", q_path, "--format", "onnx", "--out", onnx_path)
    ours = predict(run, exe, q_path, data, *extra)
    x = raw_inputs(data)[:len(ours)]
    theirs = ort(modules, onnx_path, x, tmp)
    if theirs is None or theirs.shape != ours.shape:
        check(False, "%s int8: ONNX Runtime gave %s" % (name, None if theirs is None else theirs.shape))
        return
    same = (theirs.argmax(1) == ours.argmax(1)).mean()
    diff = np.abs(theirs - ours).max()
    print("onnx_runtime: %-10s %5d samples, int8 as QDQ: the same class for %.2f%%, largest difference %.2g"
          % (name, len(x), 100 * same, diff))
    check(same >= (0.995 if name == "mlp" else 0.98), "%s int8: the same class for only %.2f%% of samples" %
          (name, 100 * same))
    check(diff < 0.1, "%s int8: probabilities differ by %.3g" % (name, diff))


def one_hot_inputs(data):
    """The table's inputs as the model encodes them: each text value its own 0/1 column, in sorted order."""
    rows = list(csv.reader(open(data)))
    header, body = rows[0], rows[1:]
    label = len(header) - 1
    columns = []
    for j in range(len(header)):
        if j == label:
            continue
        values = [r[j] for r in body]
        try:
            columns.append(np.array([[float(v)] for v in values]))
        except ValueError:
            cats = sorted(set(values))
            columns.append(np.array([[1.0 if v == c else 0.0 for c in cats] for v in values]))
    return np.hstack(columns).astype(np.float32)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    exe = os.path.join(build, "neurite")
    modules = node_modules()
    if not shutil.which("node") or not modules:
        print("onnx_runtime: skipped: needs node and npm's onnxruntime-node (scripts/install-deps.sh installs it "
              "into ~/.cache/neurite/node)")
        return 0
    probe = subprocess.run([exe, "import", "/nonexistent.onnx", "--out", "/tmp/x.nrm"], capture_output=True,
                           text=True, check=False).stderr
    if "without ONNX support" in probe:
        print("onnx_runtime: skipped: this neurite was built without ONNX support "
              "(apt-get install libprotobuf-c-dev protobuf-c-compiler python3-onnx)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, data, extra in neurite_models(run, exe, tmp):
            compare(exe, modules, tmp, name, path, data, extra)
            if name in ("mlp", "cnn"):
                compare_int8(exe, modules, tmp, name, path, data, extra)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
