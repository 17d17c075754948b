#!/usr/bin/env python3
# needs: numpy
"""`neurite quantize`, end to end, against an int8 reference written here in NumPy:

- models trained by neurite (an MLP and a CNN on digits, with batch norm folded, dropout dropped, leaky ReLU,
  tanh, average and max pooling; a two-output regression on a table) are quantized from their training data;
- NumPy reads the int8 file (scripts/neurite_model.py, its QUNT section) and runs the integer arithmetic
  itself: `neurite predict --logits` gives the same bits on every input, at 1 and 2 threads and with every
  int8 kernel the CPU has;
- the exported C file (plain C99, -Wall -Wextra -Werror) gives the same bits again, built 64-bit, built with
  `gcc -m32` and run (under qemu-i386 where the kernel cannot run 32-bit programs), and cross-compiled by
  clang for i386;
- on the digits, the int8 accuracy is within a point of the float model's, the file about a quarter of the
  size, `neurite eval` agrees with what quantize printed, and quantizing twice writes the same bytes;
- refusals: a model already int8, calibration data of the wrong width, absurd options; nothing written.

Usage: test_quant.py BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from checks import Checks
from interop import neurite_models

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import neurite_model  # noqa: E402  (the reader lives in scripts/, for users)

CHECKS = Checks("quant")
check = CHECKS.check
run = CHECKS.run
EXE = "neurite"

DRIVER = r"""
#include <stdio.h>
#include "MODEL_H"
int main(void)
{
    static float x[model_INPUTS], out[model_OUTPUTS];
    static uint8_t work[model_WORK];
    for (;;) {
        for (int i = 0; i < model_INPUTS; i++)
            if (scanf("%f", &x[i]) != 1)
                return 0;
        model_logits(x, out, work);
        for (int j = 0; j < model_OUTPUTS; j++)
            printf("%.9g%c", out[j], j + 1 < model_OUTPUTS ? ' ' : '\n');
    }
}
"""


def read_idx(path, rows):
    data = open(path, "rb").read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    images = np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape[0], -1)
    return images[:rows].astype(np.float32)


def logits(model, features, *extra):
    """neurite's outputs before the head, as float32 (printed with 9 digits: exact)."""
    out = run(EXE, "predict", model, features, "--csv", "--logits", *extra).strip().splitlines()
    return np.array([[float(v) for v in line.split(",")[2:]] for line in out[1:]], np.float32)


def numpy_logits(model_path, x):
    model = neurite_model.load(model_path)
    kind, shift, scale = model["scaling"]
    if kind:
        x = ((x - shift) * scale).astype(np.float32)
    return neurite_model.int8_forward(model, x)


def quantize(name, model, calib, tmp, *extra):
    """Quantizes; returns the int8 file and what it printed."""
    out8 = os.path.join(tmp, name + ".int8.nrm")
    text = run(EXE, "quantize", model, "--calib", calib, "--out", out8, "--threads", "1", *extra)
    check(os.path.exists(out8), "%s: quantize wrote no file" % name)
    return out8, text


def kernels():
    """The int8 kernels this CPU can run: those NEURITE_QGEMM picks (`neurite --version` names it)."""
    found = []
    for k in ("vnni", "avx2", "portable"):
        out = subprocess.run([EXE, "--version"], capture_output=True, text=True, check=False,
                             env=dict(os.environ, NEURITE_QGEMM=k)).stdout
        if "int8 kernel: %s;" % k in out:
            found.append(k)
    check("portable" in found, "NEURITE_QGEMM=portable is not honoured: %s" % found)
    return found


def same_bits(name, want, got, what):
    check(want.shape == got.shape and np.array_equal(want, got),
          "%s: %s differs from neurite predict --logits (max %s)" %
          (name, what, float(np.max(np.abs(want - got))) if want.shape == got.shape else "shapes %s and %s" % (want.shape, got.shape)))


def against_numpy(name, model8, x, tmp):
    features = os.path.join(tmp, name + ".x.npy")
    np.save(features, x)
    want = logits(model8, features, "--threads", "1")
    same_bits(name, want, numpy_logits(model8, x), "the NumPy int8 reference")
    same_bits(name, want, logits(model8, features, "--threads", "2"), "2 threads")
    for k in kernels():
        env = dict(os.environ, NEURITE_QGEMM=k)
        out = subprocess.run([EXE, "predict", model8, features, "--csv", "--logits"], capture_output=True,
                             text=True, check=False, env=env).stdout.strip().splitlines()
        got = np.array([[float(v) for v in line.split(",")[2:]] for line in out[1:]], np.float32)
        same_bits(name, want, got, "kernel " + k)
    # The probabilities or outputs too: the head and the targets' scaling in float, as neurite does them.
    out = run(EXE, "predict", model8, features, "--csv", "--threads", "1").strip().splitlines()
    first = 3 if out[0].split(",")[2] == "class" else 2
    shown = np.array([[float(v) for v in line.split(",")[first:]] for line in out[1:]])
    ref = neurite_model.predict(neurite_model.load(model8), x)
    check(np.allclose(shown, ref, rtol=1e-5, atol=1e-5), "%s: predict's outputs differ from NumPy's" % name)
    return want


def can_run_32bit(tmp):
    """How to run a gcc -m32 program here: directly, through qemu-i386, or not at all (None)."""
    src = os.path.join(tmp, "probe32.c")
    binary = os.path.join(tmp, "probe32")
    open(src, "w").write("int main(void) { return sizeof(void *) == 4 ? 0 : 1; }\n")
    if subprocess.run(["cc", "-m32", "-o", binary, src], capture_output=True, check=False).returncode:
        return None
    for prefix in ([], ["qemu-i386"]):
        if prefix and not shutil.which(prefix[0]):
            continue
        try:
            if subprocess.run(prefix + [binary], capture_output=True, check=False).returncode == 0:
                return prefix
        except OSError:
            pass
    return None


def against_c(name, model8, x, want, tmp, runner32):
    want = want[:len(x)]
    header = os.path.join(tmp, name + ".h")
    run(EXE, "export", model8, "--out", header)
    driver = os.path.join(tmp, name + "_driver.c")
    open(driver, "w").write(DRIVER.replace("MODEL_H", header))
    text = "\n".join(" ".join("%.9g" % v for v in row) for row in x) + "\n"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    builds = [("gcc 64-bit", ["cc"] + flags, [])]
    if shutil.which("clang"):
        builds.append(("clang 64-bit", ["clang"] + flags, []))
    if runner32 is not None:
        builds.append(("gcc -m32", ["cc", "-m32"] + flags, runner32))
    for what, compiler, prefix in builds:
        binary = os.path.join(tmp, name + "_" + what.replace(" ", "_"))
        run(*compiler, "-o", binary, driver, "-lm")
        if not os.path.exists(binary):
            continue
        out = run(*prefix, binary, input=text).split("\n")
        got = np.array([[float(v) for v in line.split()] for line in out if line], np.float32)
        same_bits(name, want, got, "the exported C (%s)" % what)
    if shutil.which("clang"):  # a 32-bit target's compiler sees the same file warning-free
        run("clang", "--target=i386-linux-gnu", *flags, "-c", "-o", os.path.join(tmp, name + "_i386.o"), driver)


def accuracy(name, model, model8, printed, data):
    found = re.search(r"test accuracy: float ([0-9.]+), int8 ([0-9.]+)", printed)
    check(found is not None, "%s: quantize printed no accuracies: %s" % (name, printed))
    size = re.search(r"\(([0-9.]+)% of ([0-9]+)\)", printed)
    # A quarter plus per-output scales, biases and multipliers: near 25% once the weights dominate the file.
    check(size is not None and (int(size.group(2)) < 100000 or float(size.group(1)) <= 27.0),
          "%s: the int8 file is not about a quarter: %s" % (name, printed))
    if not found:
        return
    f, q = float(found.group(1)), float(found.group(2))
    print("quant: %s: float %.4f, int8 %.4f, file %s%% of the float one" % (name, f, q, size.group(1) if size else "?"))
    check(q >= f - 0.01, "%s: int8 accuracy %.4f is more than a point below the float %.4f" % (name, q, f))
    evaluated = run(EXE, "eval", model8, "--data", data, "--threads", "1")
    shown = re.search(r"accuracy[ :=]+([0-9.]+)", evaluated)
    check(shown is not None and abs(float(shown.group(1)) - q) < 1e-9,
          "%s: neurite eval says %s, quantize said %.4f" % (name, evaluated.strip()[:200], q))


def refusals(tmp, mlp, mlp8):
    def refused(args, message, what):
        out = os.path.join(tmp, "refused.nrm")
        p = subprocess.run([EXE, "quantize"] + list(args) + ["--out", out], capture_output=True, text=True,
                           check=False)
        err = p.stderr.strip()
        check(p.returncode != 0 and message in err and "\n" not in err, "%s: exit %d, %r" % (what, p.returncode, err))
        check(not os.path.exists(out), "%s: a file was written" % what)
    refused((mlp8, "--calib", "mnist"), "already quantized", "an int8 model")
    narrow = os.path.join(tmp, "narrow.csv")
    np.savetxt(narrow, np.arange(60).reshape(6, 10) % 3, delimiter=",", fmt="%d")
    refused((mlp, "--calib", narrow), "features per sample", "calibration data of another width")
    refused((mlp, "--calib", "mnist", "--samples", "0"), "out of range", "--samples 0")
    refused((mlp, "--calib", "mnist", "--method", "percentile", "--percentile", "101"), "out of range",
            "--percentile 101")
    refused((mlp, "--calib", "mnist", "--method", "median"), "unknown value", "--method median")
    refused((mlp, "--calib", os.path.join(tmp, "missing.csv")), "cannot open", "missing calibration file")


def main():
    global EXE
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    EXE = os.path.join(build, "neurite")
    runner32 = None
    with tempfile.TemporaryDirectory() as tmp:
        runner32 = can_run_32bit(tmp)
        if runner32 is None:
            print("quant: 32-bit export not run: no gcc -m32 or no way to run it (apt-get install gcc-multilib "
                  "qemu-user)")
        models = {name: (path, data, extra) for name, path, data, extra in neurite_models(run, EXE, tmp)}
        digits = models["mlp"][1]
        x_images = read_idx(digits, 300)
        named = digits.endswith("t10k-images-idx3-ubyte")
        calib = "mnist" if named else digits
        for name in ("mlp", "cnn"):
            model = models[name][0]
            model8, printed = quantize(name, model, calib, tmp, "--test", "mnist" if named else digits)
            want = against_numpy(name, model8, x_images, tmp)
            against_c(name, model8, x_images[:100], want, tmp, runner32)
            if named:
                accuracy(name, model, model8, printed, "mnist")
            again, _ = quantize(name + "-again", model, calib, tmp, "--test", "mnist" if named else digits)
            check(open(again, "rb").read() == open(model8, "rb").read(), "%s: quantizing twice differs" % name)
        pct, printed = quantize("cnn-percentile", models["cnn"][0], calib, tmp, "--method", "percentile",
                                "--test", "mnist" if named else digits)
        against_numpy("cnn-percentile", pct, x_images, tmp)
        if named:
            accuracy("cnn-percentile", models["cnn"][0], pct, printed, "mnist")
        # A regression: two targets, unscaled at the end in float.
        path, features, _ = models["regression"]
        table = os.path.join(tmp, "regression.csv")
        reg8, _ = quantize("regression", path, table, tmp, "--label", "t1,t2")
        x = np.load(features)
        want = against_numpy("regression", reg8, x, tmp)
        against_c("regression", reg8, x[:100], want, tmp, runner32)
        floats = run(EXE, "predict", path, features, "--csv", "--threads", "1").strip().splitlines()[1:]
        ints = run(EXE, "predict", reg8, features, "--csv", "--threads", "1").strip().splitlines()[1:]
        f = np.array([[float(v) for v in line.split(",")[2:]] for line in floats])
        q = np.array([[float(v) for v in line.split(",")[2:]] for line in ints])
        spread = f.max(axis=0) - f.min(axis=0)
        worst = float(np.max(np.abs(f - q) / spread))
        print("quant: regression: int8 within %.4f of the float outputs' range" % worst)
        check(worst < 0.05, "regression: int8 is %.3f of the range away from float" % worst)
        refusals(tmp, models["mlp"][0], os.path.join(tmp, "mlp.int8.nrm"))
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
