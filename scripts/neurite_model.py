#!/usr/bin/env python3
"""Reads a neurite model file with NumPy alone and makes the predictions neurite makes.

The format is documented in docs/format.md. Use as a module:

    import neurite_model
    model = neurite_model.load("digits.nrm")
    probabilities = neurite_model.predict(model, x)    # x: (n, features) raw inputs, like neurite's

An int8 model (`neurite quantize`, a QUNT section) is run in integers exactly as neurite runs it
(docs/quantization.md), so its outputs are the same bits; int8_forward() is that arithmetic in NumPy.

or from the shell: neurite_model.py MODEL X.npy  (prints the predicted class of every row).
"""
import struct
import sys
import zlib

import numpy as np

MAGIC = b"NEURITE\0"
VERSION = 3


class FormatError(Exception):
    pass


class Reader:
    def __init__(self, data, where):
        self.data, self.pos, self.where = data, 0, where

    def take(self, n):
        if self.pos + n > len(self.data):
            raise FormatError("%s: truncated" % self.where)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def f64(self):
        return struct.unpack("<d", self.take(8))[0]

    def i32s(self, n):
        return np.frombuffer(self.take(4 * n), dtype="<i4").astype(np.int64)

    def i64(self):
        return struct.unpack("<q", self.take(8))[0]

    def f32s(self, n):
        return np.frombuffer(self.take(4 * n), dtype="<f4").astype(np.float32)

    def text(self):
        return self.take(self.u8()).decode("ascii")


def load(path):
    data = open(path, "rb").read()
    if len(data) < 28 or data[:8] != MAGIC:
        raise FormatError("%s: not a neurite model" % path)
    version, flags, length = struct.unpack("<IIQ", data[8:24])
    if version < 1 or version > VERSION:
        raise FormatError("%s: format version %d is not known here" % (path, version))
    if length != len(data):
        raise FormatError("%s: the header says %d bytes, the file has %d" % (path, length, len(data)))
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise FormatError("%s: checksum mismatch" % path)
    model = {"version": version, "checkpoint": bool(flags & 1), "tensors": {}}
    pos = 24
    while pos < len(data) - 4:
        tag = data[pos:pos + 4].decode("ascii")
        size = struct.unpack("<Q", data[pos + 4:pos + 12])[0]
        r = Reader(data[pos + 12:pos + 12 + size], tag)
        pos += 12 + size
        if tag == "ARCH":
            model["input"] = (r.u32(), r.u32(), r.u32())
            model["head"] = r.u32()
            layers = []
            for _ in range(r.u32()):
                tag_name = r.text()
                ints = [r.i64() for _ in range(r.u8())]
                floats = list(r.f32s(r.u8()))
                layers.append((tag_name, ints, floats))
            model["layers"] = layers
        elif tag == "SCAL":
            kind, count = r.u32(), r.u64()
            model["scaling"] = (kind, r.f32s(count), r.f32s(count)) if kind else (0, None, None)
        elif tag == "TENS":
            for _ in range(r.u64()):
                name = r.text()
                shape = tuple(r.u64() for _ in range(r.u8()))
                model["tensors"][name] = r.f32s(int(np.prod(shape))).reshape(shape)
        elif tag == "TRGT":  # regression: outputs are standardized targets; predict() unscales them
            model["targets"] = []
            for _ in range(r.u64()):
                n = r.u32()
                name = r.take(n).decode() if n != 0xFFFFFFFF else None  # 0xFFFFFFFF: no name
                model["targets"].append((name, r.f32s(1)[0], r.f32s(1)[0]))  # name, mean, scale
        elif tag == "ENCD":
            raise FormatError("%s: the model reads a table's text columns (ENCD), which this script does not; "
                              "use neurite predict" % path)
        elif tag == "QUNT":
            model["quant"] = _read_quant(r)
        elif tag[0].isupper():
            raise FormatError("%s: unknown required section %s" % (path, tag))
    return model


MATMUL, TABLE, MAXPOOL, AVGPOOL, COPY = range(5)


def _read_quant(r):
    """The int8 layers: per layer its kind and output (scale, zero point), plus weights or a table."""
    q = {"method": r.u32(), "samples": r.u64(), "percentile": r.f64(), "input": (r.f32s(1)[0], r.u32())}
    q["layers"] = []
    for _ in range(r.u64()):
        layer = {"kind": r.u8(), "out": (r.f32s(1)[0], r.u32())}
        if layer["kind"] == MATMUL:
            k, n = r.u64(), r.u64()
            layer["w"] = np.frombuffer(r.take(k * n), dtype=np.int8).reshape(k, n).astype(np.int64)
            layer["w_scale"] = r.f32s(n)
            layer["bias"], layer["mult"], layer["shift"] = r.i32s(n), r.i32s(n), r.i32s(n)
        elif layer["kind"] == TABLE:
            layer["table"] = np.frombuffer(r.take(256), dtype=np.uint8)
        q["layers"].append(layer)
    return q


def _requantize(v, mult, shift):
    """(v * mult) >> (31 + shift), rounded half up: exact in 64-bit integers, as in neurite."""
    total = 31 + shift
    return (v * mult + (np.int64(1) << (total - 1))) >> total


def _to_bytes(x, scale, zero):
    """Scaled inputs to bytes: x / scale (as a float32 product by 1/scale), clamped to +-512, rounded half
    away from zero, plus the zero point, clamped to 0..255."""
    t = np.clip(x.astype(np.float32) * (np.float32(1) / np.float32(scale)), np.float32(-512), np.float32(512))
    r = np.where(t >= 0, np.trunc(t + np.float32(0.5)), np.trunc(t - np.float32(0.5))).astype(np.int64)
    return np.clip(r + zero, 0, 255)


def int8_forward(model, x):
    """The int8 network's raw outputs for scaled inputs x (n, features): every layer in integers, floats
    only at the end (the last product's sums times their scale, or the last bytes dequantized)."""
    q = model["quant"]
    h, w, c = model["input"]
    in_scale, in_zero = q["input"]
    z = _to_bytes(x, in_scale, in_zero).reshape(len(x), h, w, c)
    last = len(model["layers"]) - 1
    for index, ((tag, ints, _), layer) in enumerate(zip(model["layers"], q["layers"])):
        kind = layer["kind"]
        if kind == MATMUL:
            if tag == "dense":
                cols = z.reshape(len(z), -1)
            else:
                k, stride, pad = ints[1], ints[2], ints[3]
                padded = np.pad(z, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=in_zero)
                cols = _windows(padded, k, stride).transpose(0, 1, 2, 4, 5, 3)
            shape = cols.shape[:-3] if tag == "conv2d" else cols.shape[:1]
            sums = (cols.reshape(-1, layer["w"].shape[0]) - in_zero) @ layer["w"] + layer["bias"]
            if index == last:
                deq = np.float32(in_scale) * layer["w_scale"]
                return (sums.astype(np.float32) * deq).reshape(len(x), -1)
            out = layer["out"][1] + _requantize(sums, layer["mult"], layer["shift"])
            z = np.clip(out, 0, 255).reshape(shape + (-1,) if tag == "conv2d" else (len(z), 1, 1, -1))
        elif kind in (MAXPOOL, AVGPOOL):
            win = _windows(z, ints[0], ints[1])
            area = ints[0] * ints[0]
            if kind == MAXPOOL:
                z = win.max(axis=(4, 5))
            else:  # the mean, rounded half to even
                mean, rest = np.divmod(win.sum(axis=(4, 5)), area)
                z = mean + ((2 * rest > area) | ((2 * rest == area) & (mean % 2 == 1)))
        elif kind == TABLE:
            z = layer["table"][z].astype(np.int64)
        elif tag == "flatten":
            z = z.reshape(len(z), 1, 1, -1)
        in_scale, in_zero = layer["out"]
    return (np.float32(in_scale) * (z.reshape(len(x), -1) - in_zero).astype(np.float32))


def _act(tag, floats, z):
    if tag == "identity":
        return z
    if tag == "relu":
        return np.maximum(z, 0)
    if tag == "leaky_relu":
        return np.where(z > 0, z, floats[0] * z)
    if tag == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if tag == "tanh":
        return np.tanh(z)
    if tag == "softmax":
        flat = z.reshape(len(z), -1)
        e = np.exp(flat - flat.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).reshape(z.shape)
    return None


def _windows(z, size, stride):
    """Every size x size window of channels-last images z (n, h, w, c): (n, oh, ow, c, size, size)."""
    v = np.lib.stride_tricks.sliding_window_view(z, (size, size), axis=(1, 2))
    return v[:, ::stride, ::stride]


def _conv(z, w, b, stride, pad):
    """Convolution as im2col and a product: rows ordered (kernel row, kernel column, input channel)."""
    k = w.shape[0]
    z = np.pad(z, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    cols = _windows(z, k, stride).transpose(0, 1, 2, 4, 5, 3)  # n, oh, ow, kh, kw, c
    n, oh, ow = cols.shape[:3]
    out = cols.reshape(n * oh * ow, -1) @ w.reshape(-1, w.shape[3])
    if b is not None:
        out = out + b
    return out.reshape(n, oh, ow, w.shape[3])


def forward(model, x):
    """The network's raw outputs for already-scaled inputs x of shape (n, features)."""
    h, w, c = model["input"]
    z = x.reshape(len(x), h, w, c).astype(np.float32)
    z = z if h > 1 or w > 1 else z.reshape(len(x), -1)
    for index, (tag, ints, floats) in enumerate(model["layers"]):
        name = "%s%d." % (tag, index)
        out = _act(tag, floats, z)
        if out is not None:
            z = out
        elif tag == "dense":
            z = z.reshape(len(z), -1) @ model["tensors"][name + "w"]
            if ints[1]:
                z = z + model["tensors"][name + "b"]
        elif tag == "conv2d":
            z = _conv(z, model["tensors"][name + "w"], model["tensors"].get(name + "b"), ints[2], ints[3])
        elif tag in ("maxpool", "avgpool"):
            win = _windows(z, ints[0], ints[1])
            z = win.max(axis=(4, 5)) if tag == "maxpool" else win.mean(axis=(4, 5), dtype=np.float32)
        elif tag == "batchnorm":
            t = model["tensors"]
            z = (z - t[name + "mean"]) / np.sqrt(t[name + "var"] + floats[1]) * t[name + "gamma"] + t[name + "beta"]
        elif tag == "flatten":
            z = z.reshape(len(z), 1, 1, -1)
        elif tag == "dropout":
            pass  # inference passes values through
        else:
            raise FormatError("layer kind %s is not known to this reader" % tag)
    return z.reshape(len(z), -1)


def predict(model, x):
    """What `neurite predict` prints: class probabilities for classifiers, the outputs otherwise."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    kind, shift, scale = model["scaling"]
    if kind:
        x = (x - shift) * scale
    y = int8_forward(model, x) if "quant" in model else forward(model, x)
    if model["head"] == 2:
        e = np.exp(y - y.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
    if model.get("targets"):
        mean = np.array([t[1] for t in model["targets"]], np.float32)
        scale = np.array([t[2] for t in model["targets"]], np.float32)
        y = (y / scale + mean).astype(np.float32)
    return y


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: neurite_model.py MODEL X.npy")
    m = load(sys.argv[1])
    for row, p in enumerate(predict(m, np.load(sys.argv[2]))):
        print(row, int(np.argmax(p)), " ".join("%.4f" % v for v in p))
