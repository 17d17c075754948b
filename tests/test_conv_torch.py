#!/usr/bin/env python3
# needs: numpy torch
"""neurite's image layers against PyTorch: convolution, max and average pooling, batch normalisation.

For each case NumPy draws the input, the weights and the gradient of the output; build/tests/helper_layer
runs neurite's forward and backward pass on them (channels-last), and PyTorch (float64, channels-first)
computes the same pass from the same numbers. Outputs, input gradients, parameter gradients and batch
norm's running statistics must agree to float32 rounding. Needs Debian's python3-torch.
Usage: test_conv_torch.py BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from checks import Checks

CHECKS = Checks("conv_torch")
check = CHECKS.check
# Largest difference allowed, relative to the largest magnitude of the reference: float32 sums of a few
# hundred products are good to about 1e-6 of their scale.
TOL = 2e-5



def close(case, what, got, want):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    scale = max(np.abs(want).max(), 1e-3)
    err = np.abs(got - want).max() / scale
    check(err <= TOL, "%s: %s differs from PyTorch by %.3g of its scale %.3g" % (case, what, err, scale))
    return err


def run_helper(exe, tmp, shape, spec, x, dy=None, sets=(), train=True, algo=None):
    """Runs neurite on x (n, h, w, c); returns the files it wrote as a dict of arrays, or None. algo sets
    NEURITE_CONV (the convolution algorithm: "im2col" forces the reference path)."""
    out = tempfile.mkdtemp(dir=tmp)
    np.save(os.path.join(out, "in_x.npy"), x.astype(np.float32))
    cmd = [exe, "--shape", "%d,%d,%d" % shape, "--spec", spec, "--x", os.path.join(out, "in_x.npy"),
           "--out", out]
    if dy is not None:
        np.save(os.path.join(out, "in_dy.npy"), dy.astype(np.float32))
        cmd += ["--dy", os.path.join(out, "in_dy.npy")]
    for name, value in sets:
        path = os.path.join(out, "in_" + name + ".npy")
        np.save(path, value.astype(np.float32))
        cmd += ["--set", name + "=" + path]
    if not train:
        cmd.append("--eval")
    env = dict(os.environ)
    env.pop("NEURITE_CONV", None)
    if algo:
        env["NEURITE_CONV"] = algo
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    check(r.returncode == 0, "helper_layer %s exited %d: %s" % (spec, r.returncode, r.stderr.strip()))
    if r.returncode != 0:
        return None
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)
            if f.endswith(".npy") and not f.startswith("in_")}


def nchw(a):
    return a.transpose(0, 3, 1, 2)


def nhwc(a):
    return a.transpose(0, 2, 3, 1)


def conv_cases(torch, F, exe, tmp, rng):
    # n, h, w, cin, cout, kernel, stride, pad, bias
    cases = [(2, 8, 8, 1, 4, 3, 1, 1, True), (3, 7, 5, 3, 2, 3, 2, 1, True), (2, 9, 6, 2, 3, 5, 3, 2, False),
             (1, 6, 7, 4, 5, 2, 2, 0, True), (2, 5, 5, 3, 6, 1, 1, 0, True), (2, 10, 7, 3, 4, 4, 3, 1, True),
             (4, 14, 14, 8, 16, 3, 1, 1, True),
             # 3x3 stride 1 with 8 or more input channels: Winograd (src/kernels/conv_winograd.c) by default, 4x4 tiles
             # but on small images or past 128 channels. Each padding, odd sides, channel counts off its 16-lane
             # vectors, several chunks and groups of tiles.
             (2, 7, 9, 8, 5, 3, 1, 0, True), (1, 6, 5, 9, 6, 3, 1, 2, True), (3, 9, 9, 37, 21, 3, 1, 1, True),
             (4, 20, 20, 24, 40, 3, 1, 1, False), (8, 14, 14, 32, 64, 3, 1, 1, True), (3, 28, 28, 1, 32, 3, 1, 1, True),
             (2, 6, 6, 8, 5, 3, 1, 1, True), (2, 5, 6, 130, 12, 3, 1, 1, True), (2, 7, 9, 3, 5, 3, 1, 0, True)]
    # Every case through the default choice of algorithm and through im2col (the reference path); the 3x3
    # stride-1 ones also with each Winograd tile forced.
    runs = [(c, a) for c in cases for a in (None, "im2col")]
    runs += [(c, a) for c in cases if c[5] == 3 and c[6] == 1 for a in ("winograd2", "winograd4")]
    for (n, h, w, cin, cout, k, s, p, bias), algo in runs:
        case = "conv n=%d %dx%dx%d->%d k%d s%d p%d bias=%d%s" % (n, h, w, cin, cout, k, s, p, bias,
                                                                 " (%s)" % algo if algo else "")
        spec = "conv%dk%ds%dp%d" % (cout, k, s, p)
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        wt = (rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        dy = rng.standard_normal((n, oh, ow, cout)).astype(np.float32)
        # The layer list always gives a bias; "no bias" is a zero one here (test_grad_image covers bias=0).
        sets = [("conv2d0.w", wt), ("conv2d0.b", b if bias else np.zeros(cout, np.float32))]
        got = run_helper(exe, tmp, (h, w, cin), spec, x, dy, sets, algo=algo)
        if got is None:
            continue
        xt = torch.tensor(nchw(x), dtype=torch.float64, requires_grad=True)
        # (k, k, cin, cout) -> PyTorch's (cout, cin, k, k)
        wtt = torch.tensor(wt.transpose(3, 2, 0, 1), dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True) if bias else None
        yt = F.conv2d(xt, wtt, bt, stride=s, padding=p)
        check(tuple(yt.shape) == (n, cout, oh, ow), case + ": output shape")
        yt.backward(torch.tensor(nchw(got["dy"].reshape(n, oh, ow, cout)), dtype=torch.float64))
        close(case, "output", got["y"], nhwc(yt.detach().numpy()).reshape(n, -1))
        close(case, "dx", got["dx"], nhwc(xt.grad.numpy()).reshape(n, -1))
        close(case, "dW", got["g_conv2d0.w"], wtt.grad.numpy().transpose(2, 3, 1, 0).reshape(1, -1))
        if bias:
            close(case, "db", got["g_conv2d0.b"], bt.grad.numpy().reshape(1, -1))
        else:
            close(case, "db", got["g_conv2d0.b"], got["dy"].reshape(-1, cout).astype(np.float64).sum(0))


def pool_cases(torch, F, exe, tmp, rng):
    # n, h, w, c, size, stride
    cases = [(2, 8, 8, 3, 2, 2), (3, 7, 9, 2, 2, 2), (2, 9, 7, 4, 3, 2), (1, 8, 10, 2, 2, 3), (2, 6, 6, 5, 3, 3)]
    for kind in ("max", "avg"):
        for n, h, w, c, size, stride in cases:
            case = "%spool n=%d %dx%dx%d size %d stride %d" % (kind, n, h, w, c, size, stride)
            # Distinct values, so every window has one maximum.
            x = rng.permutation(n * h * w * c).reshape(n, h, w, c).astype(np.float32) / (n * h * w * c)
            oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
            dy = rng.standard_normal((n, oh, ow, c)).astype(np.float32)
            # The layer list spells stride = size only; the helper adds maxpoolKsS and avgpoolKsS.
            spec = "%spool%d" % (kind, size) if stride == size else "%spool%ds%d" % (kind, size, stride)
            got = run_helper(exe, tmp, (h, w, c), spec, x, dy)
            if got is None:
                continue
            xt = torch.tensor(nchw(x), dtype=torch.float64, requires_grad=True)
            fn = F.max_pool2d if kind == "max" else F.avg_pool2d
            yt = fn(xt, size, stride)
            check(tuple(yt.shape) == (n, c, oh, ow), case + ": output shape")
            yt.backward(torch.tensor(nchw(got["dy"].reshape(n, oh, ow, c)), dtype=torch.float64))
            close(case, "output", got["y"], nhwc(yt.detach().numpy()).reshape(n, -1))
            close(case, "dx", got["dx"], nhwc(xt.grad.numpy()).reshape(n, -1))


def batchnorm_cases(torch, F, exe, tmp, rng):
    # n, h, w, c (h = w = 1: vectors)
    for n, h, w, c in [(4, 5, 6, 3), (2, 3, 3, 8), (8, 1, 1, 5), (3, 1, 1, 7)]:
        case = "batchnorm n=%d %dx%dx%d" % (n, h, w, c)
        x = (rng.standard_normal((n, h, w, c)) * 2 + rng.standard_normal(c)).astype(np.float32)
        gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
        beta = rng.standard_normal(c).astype(np.float32)
        mean0 = rng.standard_normal(c).astype(np.float32)
        var0 = rng.uniform(0.5, 2.0, c).astype(np.float32)
        dy = rng.standard_normal((n, h, w, c)).astype(np.float32)
        sets = [("batchnorm0.gamma", gamma), ("batchnorm0.beta", beta), ("batchnorm0.mean", mean0),
                ("batchnorm0.var", var0)]
        got = run_helper(exe, tmp, (h, w, c), "bn", x, dy, sets)
        if got is None:
            continue
        xt = torch.tensor(nchw(x), dtype=torch.float64, requires_grad=True)
        gt = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        rm = torch.tensor(mean0, dtype=torch.float64)
        rv = torch.tensor(var0, dtype=torch.float64)
        yt = F.batch_norm(xt, rm, rv, gt, bt, training=True, momentum=0.1, eps=1e-5)
        yt.backward(torch.tensor(nchw(got["dy"].reshape(n, h, w, c)), dtype=torch.float64))
        close(case, "output", got["y"], nhwc(yt.detach().numpy()).reshape(n, -1))
        close(case, "dx", got["dx"], nhwc(xt.grad.numpy()).reshape(n, -1))
        close(case, "dgamma", got["g_batchnorm0.gamma"], gt.grad.numpy().reshape(1, -1))
        close(case, "dbeta", got["g_batchnorm0.beta"], bt.grad.numpy().reshape(1, -1))
        close(case, "running mean", got["p_batchnorm0.mean"], rm.numpy().reshape(1, -1))
        close(case, "running var", got["p_batchnorm0.var"], rv.numpy().reshape(1, -1))
        # Inference with the running statistics.
        got = run_helper(exe, tmp, (h, w, c), "bn", x, None, sets, train=False)
        if got is None:
            continue
        yt = F.batch_norm(torch.tensor(nchw(x), dtype=torch.float64), torch.tensor(mean0, dtype=torch.float64),
                          torch.tensor(var0, dtype=torch.float64), torch.tensor(gamma, dtype=torch.float64),
                          torch.tensor(beta, dtype=torch.float64), training=False, eps=1e-5)
        close(case + " inference", "output", got["y"], nhwc(yt.numpy()).reshape(n, -1))


def small_cnn(torch, F, exe, tmp, rng):
    """conv-relu-maxpool-bn-conv(stride 2)-avgpool-fc as one network."""
    n, h, w, c = 3, 12, 10, 2
    case = "cnn conv6k3-relu-pool2-bn-conv4k3s2p1-avgpool1-fc5"
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    w1 = (rng.standard_normal((3, 3, c, 6)) / 4).astype(np.float32)
    b1 = rng.standard_normal(6).astype(np.float32) * 0.1
    w2 = (rng.standard_normal((3, 3, 6, 4)) / 7).astype(np.float32)
    b2 = rng.standard_normal(4).astype(np.float32) * 0.1
    # conv(pad 1) 12x10x6 -> pool 6x5x6 -> bn -> conv4k3s2p1 3x3x4 -> avgpool1 -> fc5 (flattened HWC)
    wf = (rng.standard_normal((3 * 3 * 4, 5)) / 6).astype(np.float32)
    bf = rng.standard_normal(5).astype(np.float32)
    dy = rng.standard_normal((n, 5)).astype(np.float32)
    sets = [("conv2d0.w", w1), ("conv2d0.b", b1), ("conv2d4.w", w2), ("conv2d4.b", b2), ("dense6.w", wf),
            ("dense6.b", bf)]
    got = run_helper(exe, tmp, (h, w, c), "conv6k3-relu-pool2-bn-conv4k3s2p1-avgpool1-fc5", x, dy, sets)
    if got is None:
        return
    t = lambda a, g=True: torch.tensor(a, dtype=torch.float64, requires_grad=g)
    xt, w1t, b1t, w2t, b2t, wft, bft = t(nchw(x)), t(w1.transpose(3, 2, 0, 1)), t(b1), \
        t(w2.transpose(3, 2, 0, 1)), t(b2), t(wf), t(bf)
    gt, bt = t(np.ones(6)), t(np.zeros(6))
    z = F.max_pool2d(F.relu(F.conv2d(xt, w1t, b1t, padding=1)), 2)
    z = F.batch_norm(z, torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64), gt, bt,
                     training=True, momentum=0.1, eps=1e-5)
    z = F.avg_pool2d(F.conv2d(z, w2t, b2t, stride=2, padding=1), 1)
    yt = z.permute(0, 2, 3, 1).reshape(n, -1) @ wft + bft
    yt.backward(torch.tensor(got["dy"], dtype=torch.float64))
    close(case, "output", got["y"], yt.detach().numpy())
    close(case, "dx", got["dx"], nhwc(xt.grad.numpy()).reshape(n, -1))
    close(case, "conv0 dW", got["g_conv2d0.w"], w1t.grad.numpy().transpose(2, 3, 1, 0).reshape(1, -1))
    close(case, "conv0 db", got["g_conv2d0.b"], b1t.grad.numpy().reshape(1, -1))
    close(case, "conv4 dW", got["g_conv2d4.w"], w2t.grad.numpy().transpose(2, 3, 1, 0).reshape(1, -1))
    close(case, "bn dgamma", got["g_batchnorm3.gamma"], gt.grad.numpy().reshape(1, -1))
    close(case, "fc dW", got["g_dense6.w"], wft.grad.numpy().reshape(1, -1))


def main():
    exe = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "tests", "helper_layer")
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        check(False, "PyTorch is missing (apt-get install python3-torch)")
        return CHECKS.report()
    if not os.access(exe, os.X_OK):
        check(False, "%s is not built (make %s)" % (exe, exe))
        return CHECKS.report()
    torch.set_num_threads(1)
    rng = np.random.default_rng(20240601)
    with tempfile.TemporaryDirectory() as tmp:
        conv_cases(torch, F, exe, tmp, rng)
        pool_cases(torch, F, exe, tmp, rng)
        batchnorm_cases(torch, F, exe, tmp, rng)
        small_cnn(torch, F, exe, tmp, rng)
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
