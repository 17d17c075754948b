"""The rivals' side of `make bench`: NumPy and PyTorch running the same workloads as neurite.

    python3 bench/rivals.py info
    python3 bench/rivals.py lecture --tool numpy|torch|torch-autograd [--dtype float32|float64] [--repeats R]
    python3 bench/rivals.py epoch   --tool numpy|torch --model mlp256|mlp512|cnn [--repeats R] [--parts P]
    python3 bench/rivals.py infer   --tool numpy|torch --model mlp256|mlp512 --batch B [--repeats R]

Thread counts come from the environment, set by bench/bench.py before Python starts: OPENBLAS_NUM_THREADS
(NumPy's and PyTorch's matrix products: Debian's NumPy and PyTorch both call the system OpenBLAS) and
OMP_NUM_THREADS (PyTorch's own OpenMP pool, which also runs oneDNN's convolutions); --torch-threads N calls
torch.set_num_threads(N) as well. Each run prints one line, RESULT {json}, with the seconds of every timed
region: the clock covers the work only (imports, data loading and model construction come before it).
Standard library, NumPy and PyTorch only.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

DATA = os.environ.get("BENCH_DATA", "/usr/share/datasets/fashion-mnist")
MODELS = {"mlp256": [784, 256, 10], "mlp512": [784, 512, 256, 10]}


def result(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def load_idx(kind):
    """Fashion-MNIST images (n x 784 uint8) and labels (n int64) of the 'train' or 't10k' set."""
    with gzip.open(os.path.join(DATA, kind + "-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    if int.from_bytes(raw[0:4], "big") != 2051:
        sys.exit("rivals.py: %s images: not an IDX image file" % kind)
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, rows * cols)
    with gzip.open(os.path.join(DATA, kind + "-labels-idx1-ubyte.gz"), "rb") as f:
        raw = f.read()
    labels = np.frombuffer(raw, np.uint8, n, 8).astype(np.int64)
    return images, labels


# ---------------------------------------------------------------------------------------------------------
# The lecture's network

def lecture_numpy(dtype, iters, seed):
    """The lecture's program, verbatim but for the dtype, x = 0.025 and y = 1."""
    N, D_in, H, D_out = 64, 1000, 100, 10
    rng = np.random.RandomState(seed)
    x = np.full((N, D_in), 0.025, dtype)
    y = np.ones((N, D_out), dtype)
    w1 = rng.randn(D_in, H).astype(dtype)
    w2 = rng.randn(H, D_out).astype(dtype)
    learning_rate = 1e-6
    t0 = time.perf_counter()
    for t in range(iters):
        h = x.dot(w1)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)
        loss = np.square(y_pred - y).sum()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h_relu = grad_y_pred.dot(w2.T)
        grad_h = grad_h_relu.copy()
        grad_h[h < 0] = 0
        grad_w1 = x.T.dot(grad_h)

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    seconds = time.perf_counter() - t0
    assert w1.dtype == dtype and grad_w1.dtype == dtype
    return seconds, float(loss), float(y_pred.mean())


def lecture_torch(dtype, iters, seed, autograd):
    """The same loop with torch tensors: by hand (no autograd, as in the lecture), or with autograd and
    torch.optim.SGD."""
    import torch
    N, D_in, H, D_out = 64, 1000, 100, 10
    torch.manual_seed(seed)
    dt = getattr(torch, dtype)
    x = torch.full((N, D_in), 0.025, dtype=dt)
    y = torch.ones(N, D_out, dtype=dt)
    w1 = torch.randn(D_in, H, dtype=dt)
    w2 = torch.randn(H, D_out, dtype=dt)
    learning_rate = 1e-6
    if not autograd:
        t0 = time.perf_counter()
        for t in range(iters):
            h = x.mm(w1)
            h_relu = h.clamp(min=0)
            y_pred = h_relu.mm(w2)
            loss = (y_pred - y).pow(2).sum()

            grad_y_pred = 2.0 * (y_pred - y)
            grad_w2 = h_relu.t().mm(grad_y_pred)
            grad_h_relu = grad_y_pred.mm(w2.t())
            grad_h = grad_h_relu.clone()
            grad_h[h < 0] = 0
            grad_w1 = x.t().mm(grad_h)

            w1 -= learning_rate * grad_w1
            w2 -= learning_rate * grad_w2
        seconds = time.perf_counter() - t0
        return seconds, loss.item(), y_pred.mean().item()
    w1.requires_grad_()
    w2.requires_grad_()
    opt = torch.optim.SGD([w1, w2], lr=learning_rate)
    t0 = time.perf_counter()
    for t in range(iters):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return seconds, loss.item(), y_pred.mean().item()


def cmd_lecture(args):
    times, loss, mean = [], None, None
    for r in range(args.repeats):
        if args.tool == "numpy":
            s, loss, mean = lecture_numpy(np.dtype(args.dtype), args.iters, r)
        else:
            s, loss, mean = lecture_torch(args.dtype, args.iters, r, args.tool == "torch-autograd")
        times.append(s)
    result(mode="lecture", tool=args.tool, dtype=args.dtype, times=times, loss=loss, mean=mean,
           threads=threads_in_use(args.tool))


# ---------------------------------------------------------------------------------------------------------
# Fashion-MNIST: one epoch of training

def epoch_torch(model_name, repeats, parts):
    """The usual PyTorch loop: float32 tensors in memory (already / 255), a fresh permutation each epoch,
    batches by index, nn.CrossEntropyLoss, torch.optim.Adam; no DataLoader."""
    import torch
    from torch import nn
    images, labels = load_idx("train")
    torch.manual_seed(1)
    if model_name == "cnn":
        x = torch.from_numpy(images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        x = torch.from_numpy(images.astype(np.float32) / 255)
        sizes, layers = MODELS[model_name], []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
    y = torch.from_numpy(labels)
    n, batch = x.shape[0], 64
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times, epochs, marks = [], [], part_marks(n, batch, parts)
    for r in range(repeats):
        t0 = start = time.perf_counter()
        perm = torch.randperm(n)
        total, correct = 0.0, 0
        for b, i in enumerate(range(0, n, batch)):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
            if b + 1 in marks:
                end = time.perf_counter()
                times.append(end - start)
                start = end
        epochs.append(time.perf_counter() - t0)
    return times, epochs, total / n, correct / n


def epoch_numpy(model_name, repeats, parts):
    """A hand-written MLP in NumPy: float32 in memory (already / 255), ReLU, softmax cross-entropy, Adam."""
    images, labels = load_idx("train")
    x = images.astype(np.float32) / np.float32(255)
    sizes = MODELS[model_name]
    rng = np.random.RandomState(1)
    params = []
    for i in range(len(sizes) - 1):
        bound = np.sqrt(6.0 / sizes[i])  # He uniform, as neurite's default for layers before a ReLU
        params.append(rng.uniform(-bound, bound, (sizes[i], sizes[i + 1])).astype(np.float32))
        params.append(np.zeros(sizes[i + 1], np.float32))
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, beta1, beta2, eps, step = 1e-3, 0.9, 0.999, 1e-8, 0
    n, batch, layers = x.shape[0], 64, len(sizes) - 1
    times, epochs, marks = [], [], part_marks(n, batch, parts)
    for r in range(repeats):
        t0 = start = time.perf_counter()
        perm = rng.permutation(n)
        total, correct = 0.0, 0
        for b, i in enumerate(range(0, n, batch)):
            idx = perm[i:i + batch]
            xb, yb = x[idx], labels[idx]
            acts = [xb]
            for l in range(layers):
                z = acts[-1].dot(params[2 * l]) + params[2 * l + 1]
                acts.append(np.maximum(z, 0) if l + 1 < layers else z)
            logits = acts[-1]
            shifted = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            p = e / e.sum(axis=1, keepdims=True)
            rows = np.arange(len(idx))
            total += float(-np.log(p[rows, yb] + 1e-30).sum())
            correct += int((logits.argmax(axis=1) == yb).sum())
            g = p
            g[rows, yb] -= 1
            g /= len(idx)
            grads = [None] * len(params)
            for l in reversed(range(layers)):
                grads[2 * l] = acts[l].T.dot(g)
                grads[2 * l + 1] = g.sum(axis=0)
                if l > 0:
                    g = g.dot(params[2 * l].T)
                    g *= acts[l] > 0
            step += 1
            c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
            for p_, g_, m_, v_ in zip(params, grads, m, v):
                m_ *= beta1
                m_ += (1 - beta1) * g_
                v_ *= beta2
                v_ += (1 - beta2) * g_ * g_
                p_ -= (lr / c1) * m_ / (np.sqrt(v_ / c2) + eps)
            if b + 1 in marks:
                end = time.perf_counter()
                times.append(end - start)
                start = end
        epochs.append(time.perf_counter() - t0)
    return times, epochs, total / n, correct / n


def part_marks(n, batch, parts):
    """The batch counts at which each of `parts` equal parts of an epoch ends (as neurite_bench takes them)."""
    batches = (n + batch - 1) // batch
    return {(batches * k + parts // 2) // parts for k in range(1, parts)} | {batches}


def cmd_epoch(args):
    run = epoch_torch if args.tool == "torch" else epoch_numpy
    times, epochs, loss, acc = run(args.model, args.repeats, args.parts)
    result(mode="epoch", tool=args.tool, model=args.model, times=times, parts=args.parts, epochs=epochs,
           loss=loss, accuracy=acc, threads=threads_in_use(args.tool))


# ---------------------------------------------------------------------------------------------------------
# Inference throughput

def infer_torch(model_name, batch, count, repeats):
    """model.eval() under torch.no_grad() and under torch.inference_mode(), float32 inputs already / 255."""
    import torch
    from torch import nn
    images, _ = load_idx("t10k")
    x = torch.from_numpy(images[:count].astype(np.float32) / 255)
    sizes, layers = MODELS[model_name], []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).eval()
    modes = {"no_grad": torch.no_grad}
    if hasattr(torch, "inference_mode"):
        modes["inference_mode"] = torch.inference_mode
    out = {}
    for name, ctx in modes.items():
        times = []
        with ctx():
            for r in range(-1, repeats):  # r = -1: one untimed pass
                t0 = time.perf_counter()
                for i in range(0, count, batch):
                    model(x[i:i + batch])
                if r >= 0:
                    times.append(time.perf_counter() - t0)
        out[name] = times
    return out


def infer_numpy(model_name, batch, count, repeats):
    """The forward pass with np.dot, float32."""
    images, _ = load_idx("t10k")
    x = images[:count].astype(np.float32) / np.float32(255)
    sizes, rng = MODELS[model_name], np.random.RandomState(1)
    params = [(rng.uniform(-0.05, 0.05, (sizes[i], sizes[i + 1])).astype(np.float32),
               np.zeros(sizes[i + 1], np.float32)) for i in range(len(sizes) - 1)]
    times = []
    for r in range(-1, repeats):
        t0 = time.perf_counter()
        for i in range(0, count, batch):
            a = x[i:i + batch]
            for l, (w, b) in enumerate(params):
                a = np.dot(a, w) + b
                if l + 1 < len(params):
                    a = np.maximum(a, 0)
        if r >= 0:
            times.append(time.perf_counter() - t0)
    return {"np.dot": times}


def cmd_infer(args):
    if args.tool == "torch":
        variants = infer_torch(args.model, args.batch, args.count, args.repeats)
    else:
        variants = infer_numpy(args.model, args.batch, args.count, args.repeats)
    result(mode="infer", tool=args.tool, model=args.model, batch=args.batch, images=args.count,
           variants=variants, threads=threads_in_use(args.tool))


# ---------------------------------------------------------------------------------------------------------

def threads_in_use(tool):
    """What the run actually had: PyTorch's intra-op threads and the environment the pools read."""
    info = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    if tool.startswith("torch"):
        import torch
        info["torch.get_num_threads"] = torch.get_num_threads()
    return info


def openblas_config():
    """The OpenBLAS that NumPy loaded, from its own openblas_get_config()."""
    import ctypes
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_config.restype = ctypes.c_char_p
            text = lib.openblas_get_config().decode()
            core = ""
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                core = lib.openblas_get_corename().decode()
            return text, core
        except (OSError, AttributeError):
            continue
    return "unknown", ""


def cmd_info(args):
    import platform
    config, core = openblas_config()
    fields = {"python": platform.python_version(), "numpy": np.__version__, "openblas": config,
              "openblas_core": core}
    try:
        import torch
        fields["torch"] = torch.__version__
        fields["torch_default_threads"] = torch.get_num_threads()
        fields["torch_inference_mode"] = hasattr(torch, "inference_mode")
        fields["torch_mkldnn"] = torch.backends.mkldnn.is_available()
        fields["torch_parallel"] = [line.strip() for line in torch.__config__.parallel_info().splitlines()
                                    if "backend" in line]
    except ImportError as e:
        fields["torch"] = None
        fields["torch_error"] = str(e)
    result(mode="info", **fields)


def main():
    ap = argparse.ArgumentParser(description="NumPy and PyTorch workloads for make bench")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info")
    p.set_defaults(fn=cmd_info)
    for name, fn in (("lecture", cmd_lecture), ("epoch", cmd_epoch), ("infer", cmd_infer)):
        p = sub.add_parser(name)
        p.add_argument("--tool", required=True,
                       choices=["numpy", "torch", "torch-autograd"] if name == "lecture" else ["numpy", "torch"])
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: leave it)")
        if name == "lecture":
            p.add_argument("--flush-denormal", action="store_true",
                           help="torch.set_flush_denormal(True): a user-visible PyTorch switch")
            p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
            p.add_argument("--iters", type=int, default=5000)
        else:
            p.add_argument("--model", required=True, choices=["mlp256", "mlp512"] + (["cnn"] if name == "epoch" else []))
        if name == "epoch":
            p.add_argument("--parts", type=int, default=1, help="time each epoch in this many equal parts")
        if name == "infer":
            p.add_argument("--batch", type=int, required=True)
            p.add_argument("--count", type=int, default=10000)
        p.set_defaults(fn=fn)
    args = ap.parse_args()
    if getattr(args, "torch_threads", 0) and args.tool.startswith("torch"):
        import torch
        torch.set_num_threads(args.torch_threads)
    if getattr(args, "flush_denormal", False) and args.tool.startswith("torch"):
        import torch
        if not torch.set_flush_denormal(True):
            sys.exit("rivals.py: torch.set_flush_denormal is not supported on this CPU")
    if args.cmd == "epoch" and args.tool == "numpy" and args.model == "cnn":
        sys.exit("rivals.py: no NumPy CNN")
    args.fn(args)


if __name__ == "__main__":
    main()
