#!/usr/bin/env python3
# needs: numpy
"""A saved model read by scripts/neurite_model.py (NumPy only) predicts what `neurite predict` prints.

Trains two small models with the neurite command (a CSV table with standardised columns, and a slice of
Fashion-MNIST with pixels scaled to [0, 1]), then compares every probability.
Usage: test_model_numpy.py BUILD_DIR
"""
import os
import sys
import tempfile

import numpy as np

from checks import Checks

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import neurite_model  # noqa: E402

CHECKS = Checks("model_numpy")
check = CHECKS.check
run = CHECKS.run


def compare(exe, model, data_file, x, label_args=()):
    ours = run(exe, "predict", model, data_file, "--csv", *label_args).strip().splitlines()[1:]
    theirs = neurite_model.predict(neurite_model.load(model), x)
    probs = np.array([[float(v) for v in line.split(",")[3:]] for line in ours])
    check(probs.shape == theirs.shape, "shapes %s vs %s" % (probs.shape, theirs.shape))
    if probs.shape == theirs.shape:
        diff = np.abs(probs - theirs).max()
        print("model_numpy: %s: %d rows, max difference %.2g" % (os.path.basename(model), len(probs), diff))
        check(diff < 1e-5, "%s: NumPy predictions differ by %.3g" % (model, diff))
        check((probs.argmax(1) == theirs.argmax(1)).mean() > 0.999, "%s: classes differ" % model)


def main():
    exe = os.path.join(sys.argv[1], "neurite")
    rng = np.random.RandomState(3)
    with tempfile.TemporaryDirectory() as tmp:
        n = 300
        y = rng.randint(0, 4, n)
        x = rng.randn(n, 6).astype(np.float32) * 5 + 20
        x[np.arange(n), y] += 8
        csv = os.path.join(tmp, "t.csv")
        with open(csv, "w") as f:
            f.write("a,b,c,d,e,f,label\n")
            for row, lab in zip(x, y):
                f.write(",".join("%.6g" % v for v in row) + ",%d\n" % lab)
        model = os.path.join(tmp, "t.nrm")
        run(exe, "train", "--data", csv, "--label", "label", "--layers", "16-tanh-8-leaky-4", "--act", "relu",
            "--epochs", "5", "--quiet", "--out", model)
        xs = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)[:, :6]
        compare(exe, model, csv, xs, ("--label", "label"))
        m = neurite_model.load(model)
        check(m["scaling"][0] == 2 and len(m["scaling"][1]) == 6, "standardised per column")

        fashion = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
        if os.path.exists(fashion):
            model = os.path.join(tmp, "f.nrm")
            run(exe, "train", "--data", "fashion", "--limit", "2000", "--epochs", "1", "--layers", "784-32-10",
                "--quiet", "--out", model)
            import gzip
            raw = gzip.open(fashion).read()
            images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 784).astype(np.float32)
            compare(exe, model, fashion, images)
            # A convolutional network with every image layer (trained briefly, so batch norm's running
            # statistics are real).
            model = os.path.join(tmp, "c.nrm")
            run(exe, "train", "--data", "fashion", "--limit", "1000", "--epochs", "1", "--layers",
                "conv6k3-bn-relu-maxpool2-conv4k3s2p0-relu-avgpool2-drop0.2-flatten-fc10", "--quiet", "--out", model)
            compare(exe, model, fashion, images)
        else:
            check(False, "Fashion-MNIST is not installed")
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
