#!/usr/bin/env python3
"""digits_from_pytorch.py - a network trained in PyTorch, for neurite to take over (README, docs/interop.md).

Trains a small CNN on the MNIST digits that `neurite fetch mnist` fetched (read from their IDX files with
NumPy), then writes it as ONNX. PyTorch sees pixels / 255, NCHW, as torchvision's ToTensor makes them; neurite
imports it with --scale unit (the default for images) and takes raw pixels, channels-last.

    python3 examples/digits_from_pytorch.py --out digits.onnx [--epochs 3] [--data DIR]
"""
import argparse
import os

import numpy as np
import torch
from torch import nn


def read_idx(path):
    data = open(path, "rb").read()
    dims = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(data[3])]
    return np.frombuffer(data[4 + 4 * len(dims):], np.uint8).reshape(dims)


def main():
    default = os.path.join(os.environ.get("NEURITE_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "neurite"), "mnist")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data", default=default, help="the folder of the digits' IDX files")
    a = p.parse_args()
    x = torch.from_numpy(read_idx(os.path.join(a.data, "train-images-idx3-ubyte")).astype(np.float32) / 255)
    y = torch.from_numpy(read_idx(os.path.join(a.data, "train-labels-idx1-ubyte")).astype(np.int64))
    x = x.reshape(-1, 1, 28, 28)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(a.epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            loss.backward()
            opt.step()
        print("epoch %d: loss %.4f" % (epoch + 1, loss.item()))
    net.eval()
    # The softmax at the end makes the ONNX model a classifier: neurite's predict gives probabilities.
    torch.onnx.export(nn.Sequential(net, nn.Softmax(dim=1)), torch.zeros(1, 1, 28, 28), a.out, opset_version=13,
                      input_names=["pixels"], output_names=["probabilities"],
                      dynamic_axes={"pixels": {0: "n"}, "probabilities": {0: "n"}})
    print("wrote", a.out)


if __name__ == "__main__":
    main()
