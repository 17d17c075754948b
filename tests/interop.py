"""interop.py - what tests/test_onnx.py and tests/test_onnx_runtime.py share: data files written by NumPy,
neurite's predictions read back, the small neurite models both export, and safetensors read and written by
NumPy (the format is simple enough that the test needs no library for it)."""
import json
import os
import struct

import numpy as np


def write_idx(path, images):
    """uint8 images (N, H, W, C) as an IDX file."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 4]) + b"".join(struct.pack(">I", d) for d in images.shape))
        f.write(np.ascontiguousarray(images, np.uint8).tobytes())


def predict(run, exe, model, data, *extra):
    """neurite's outputs (probabilities or values) for every row of a data file."""
    out = run(exe, "predict", model, data, "--csv", "--threads", "1", *extra)
    lines = out.strip().splitlines()
    first = 3 if lines and lines[0].split(",")[2] == "class" else 2  # a regression has no class column
    return np.array([[float(v) for v in line.split(",")[first:]] for line in lines[1:]])


def make_images(tmp):
    """Digits when fetched, else a synthetic set of the same shape (a bright bar whose place is the class)."""
    root = os.environ.get("NEURITE_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "neurite")
    digits = os.path.join(root, "mnist", "t10k-images-idx3-ubyte")
    if os.path.exists(digits):
        return "mnist", digits
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 3000)
    images = rng.integers(0, 60, (3000, 28, 28, 1))
    for i, k in enumerate(labels):
        images[i, 2 + 2 * k: 5 + 2 * k, 4:24] = 255
    path = os.path.join(tmp, "bars-images-idx3-ubyte")
    write_idx(path, images.astype(np.uint8))
    with open(os.path.join(tmp, "bars-labels-idx1-ubyte"), "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", len(labels)) + labels.astype(np.uint8).tobytes())
    return path, path


def neurite_models(run, exe, tmp):
    """Trains the models the export tests use: (name, model, data file to predict on, predict's options)."""
    train, test = make_images(tmp)
    specs = [("mlp", "fc64-fc10", []),
             ("cnn", "conv8k3-bn-relu-avgpool2-conv16k3s2-leaky0.1-pool2-drop0.2-flatten-fc32-tanh-fc10",
              ["--scale", "std"])]
    models = []
    for name, layers, extra in specs:
        path = os.path.join(tmp, name + ".nrm")
        run(exe, "train", "--data", train, "--layers", layers, "--epochs", "4", "--quiet", "--out", path, *extra)
        models.append((name, path, test, ()))
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (400, 5))
    y = np.stack([x @ [1, -2, 0.5, 0, 3] + 10, np.tanh(x[:, 0]) * 50 - 20], 1)
    table = os.path.join(tmp, "regression.csv")
    np.savetxt(table, np.hstack([x, y]), delimiter=",", header="a,b,c,d,e,t1,t2", comments="", fmt="%.6f")
    path = os.path.join(tmp, "regression.nrm")
    run(exe, "train", "--data", table, "--task", "regress", "--label", "t1,t2", "--layers", "5-16-tanh-2",
        "--epochs", "20", "--quiet", "--out", path)
    features = os.path.join(tmp, "features.npy")
    np.save(features, x.astype(np.float32))
    models.append(("regression", path, features, ()))
    # A table with a text column (one-hot in the model) and classes named by text.
    colours = ["red", "green", "blue"]
    rows = ["size,colour,weight,kind"]
    for i in range(300):
        c = colours[i % 3]
        size = (i * 37 % 100) / 10.0
        rows.append("%.1f,%s,%.2f,%s" % (size, c, size * (1 + i % 3) + (i % 7) / 10.0,
                                         "big" if size > 5 else "small" if c != "blue" else "blue-small"))
    table = os.path.join(tmp, "kinds.csv")
    open(table, "w").write("\n".join(rows) + "\n")
    path = os.path.join(tmp, "kinds.nrm")
    run(exe, "train", "--data", table, "--layers", "5-8-3", "--epochs", "30", "--quiet", "--out", path)
    models.append(("table-text", path, table, ("--label", "kind")))
    return models


def read_safetensors(path):
    """The tensors and metadata of a safetensors file, read here with NumPy (the format is simple)."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + n + b:8 + n + e], kinds[t["dtype"]]).reshape(t["shape"])
    return tensors, meta


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, v in tensors.items():
        v = np.asarray(v).copy(order="C")  # (ascontiguousarray would make a 0-d tensor 1-d)
        kind = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}[v.dtype]
        header[name] = {"dtype": kind, "shape": list(v.shape), "data_offsets": [at, at + v.nbytes]}
        blobs.append(v.tobytes())
        at += v.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
