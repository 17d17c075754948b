#!/usr/bin/env python3
# needs: numpy
"""`neurite export`: the generated C file compiles warning-free on its own (no neurite, no allocation) and
predicts what `neurite predict` prints, for an MLP on a table and a CNN with every image layer.
Usage: test_export.py BUILD_DIR
"""
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np

from checks import Checks

CHECKS = Checks("export")
check = CHECKS.check
run = CHECKS.run

DRIVER = r"""
#include <stdio.h>
#include "MODEL_H"
int main(void)
{
    static float x[m_INPUTS], out[m_OUTPUTS], work[m_WORK];
    for (;;) {
        for (int i = 0; i < m_INPUTS; i++)
            if (scanf("%f", &x[i]) != 1)
                return 0;
        m_predict(x, out, work);
        for (int j = 0; j < m_OUTPUTS; j++)
            printf("%.9g%c", out[j], j + 1 < m_OUTPUTS ? ' ' : '\n');
    }
}
"""


def compare(exe, tmp, model, data_file, x, name):
    header = os.path.join(tmp, name + ".h")
    run(exe, "export", model, "--name", "m", "--out", header)
    driver = os.path.join(tmp, name + "_main.c")
    with open(driver, "w") as f:
        f.write(DRIVER.replace("MODEL_H", header))
    binary = os.path.join(tmp, name + "_bin")
    run("cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, driver, "-lm")
    if not os.path.exists(binary):
        return
    text = "\n".join(" ".join("%.9g" % v for v in row) for row in x) + "\n"
    ours = np.array([[float(v) for v in line.split()] for line in run(binary, input=text).splitlines()])
    lines = run(exe, "predict", model, data_file, "--csv").strip().splitlines()[1:]
    ref = np.array([[float(v) for v in line.split(",")[3:]] for line in lines])[:len(x)]
    check(ours.shape == ref.shape, "%s: shapes %s vs %s" % (name, ours.shape, ref.shape))
    if ours.shape == ref.shape:
        diff = np.abs(ours - ref).max()
        print("export: %s: %d rows, max difference from neurite predict %.2g" % (name, len(x), diff))
        check(diff < 1e-5, "%s: exported C differs by %.3g" % (name, diff))


def main():
    exe = os.path.join(sys.argv[1], "neurite")
    rng = np.random.RandomState(5)
    with tempfile.TemporaryDirectory() as tmp:
        n = 200
        y = rng.randint(0, 3, n)
        x = (rng.randn(n, 5) * 3 + 10).astype(np.float32)
        x[np.arange(n), y] += 6
        csv = os.path.join(tmp, "t.csv")
        np.savetxt(csv, np.column_stack([x, y]), delimiter=",", fmt="%.6g")
        feats = os.path.join(tmp, "f.csv")
        np.savetxt(feats, x, delimiter=",", fmt="%.6g")
        model = os.path.join(tmp, "t.nrm")
        run(exe, "train", "--data", csv, "--layers", "12-tanh-8-sigmoid-6-leaky-3", "--epochs", "5", "--quiet",
            "--out", model)
        compare(exe, tmp, model, feats, np.loadtxt(feats, delimiter=",", dtype=np.float32), "mlp")

        fashion = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
        if os.path.exists(fashion):
            model = os.path.join(tmp, "c.nrm")
            run(exe, "train", "--data", "fashion", "--limit", "500", "--epochs", "1", "--quiet", "--out", model,
                "--layers", "conv4k3-bn-relu-maxpool2-conv3k3s2p0-relu-avgpool2-drop0.2-flatten-fc8-fc10")
            images = np.frombuffer(gzip.open(fashion).read()[16:], dtype=np.uint8).reshape(-1, 784)[:300]
            compare(exe, tmp, model, fashion, images.astype(np.float32), "cnn")
        else:
            check(False, "Fashion-MNIST is not installed")
        bad = subprocess.run([exe, "export", model, "--name", "9lives"], capture_output=True, text=True)
        check(bad.returncode == 1 and "not a C identifier" in bad.stderr, "a bad --name is refused: %s" % bad.stderr)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
