#!/usr/bin/env python3
"""Reads a neurite model file with NumPy alone and makes the predictions neurite makes.

The format is documented in docs/format.md. Use as a module:

    import neurite_model
    model = neurite_model.load("digits.nrm")
    probabilities = neurite_model.predict(model, x)    # x: (n, features) raw inputs, like neurite's

or from the shell: neurite_model.py MODEL X.npy  (prints the predicted class of every row).
"""
import struct
import sys
import zlib

import numpy as np

MAGIC = b"NEURITE\0"
VERSION = 2


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
        elif tag[0].isupper():
            raise FormatError("%s: unknown required section %s" % (path, tag))
    return model


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
    y = forward(model, x)
    if model["head"] == 2:
        e = np.exp(y - y.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
    return y


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: neurite_model.py MODEL X.npy")
    m = load(sys.argv[1])
    for row, p in enumerate(predict(m, np.load(sys.argv[2]))):
        print(row, int(np.argmax(p)), " ".join("%.4f" % v for v in p))
