"""make bench: neurite against NumPy and PyTorch, side by side in one run (bench/run.sh starts this).

Every measurement is a separate process started from here, so that each tool's threads are set before it
starts and its peak memory (max RSS, from wait4) is its own. Each process times its work with its own
monotonic clock around the work only (the loop, the epoch, the inference passes): imports, data loading
and model construction happen before the clock starts, for every tool alike, and are shown apart as
"outside the clock". Medians of several timed repeats. While each process runs, the CPU time that other
processes on the machine used is measured from /proc/stat; a row where that exceeds a quarter of a core
is marked, because these machines are shared and a busy neighbour slows OpenMP-style pools badly.

Environment: BUILD (build), BENCH_QUICK=1 (a fast check: fewer repeats and workloads), BENCH_CNN=0 (skip
the CNN), BENCH_EPOCHS=N (time N whole epochs instead of one epoch in three timed thirds), BENCH_ROUNDS=N
(measure every workload N times over and keep each row's fastest round), BENCH_DATA
(/usr/share/datasets/fashion-mnist). Writes BUILD/bench/results.md and BUILD/bench/results.json.
Standard library only; it runs under /usr/bin/python3 but imports neither NumPy nor PyTorch itself.
"""
import array
import datetime
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
OUT = os.path.join(BUILD, "bench")
PYTHON = "/usr/bin/python3"
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
CNN = os.environ.get("BENCH_CNN", "1") not in ("", "0")
WHOLE_EPOCHS = int(os.environ.get("BENCH_EPOCHS", "0") or 0)
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "1") or 1))
DATA = os.environ.get("BENCH_DATA", "/usr/share/datasets/fashion-mnist")
NEURITE = os.path.join(BUILD, "neurite")
NEURITE_BENCH = os.path.join(BUILD, "bench", "neurite_bench")
FMA_PROBE = os.path.join(BUILD, "bench", "fma_probe")
BW_PROBE = os.path.join(BUILD, "bench", "bw_probe")
RIVALS = os.path.join("bench", "rivals.py")
CNN_SPEC = "conv32k3-relu-pool2-conv64k3-relu-pool2-fc128-relu-fc10"
MLP_SPECS = {"mlp256": "784-256-relu-10", "mlp512": "784-512-relu-256-relu-10"}
# What neurite must build from each layer list: layers and parameters, the same as the PyTorch models.
EXPECTED = {"mlp256": (3, 203530), "mlp512": (5, 535818), "cnn": (9, 421642)}
MLP_NAMES = {"mlp256": "MLP 784-256-10", "mlp512": "MLP 784-512-256-10", "cnn": "CNN " + CNN_SPEC}
ORT_SKIPPED = []
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")
# Set on this machine kind for old OpenBLAS builds, they pin every OpenBLAS to its Haswell kernels and a small
# L2: NumPy and PyTorch would run a handicapped kernel. Every process here runs without them, so OpenBLAS picks
# the kernel a user of this CPU gets; the header names the kernel each rival ran.
HANDICAP_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# OpenBLAS 0.3.21 picks its kernel by CPU model, and a model newer than it knows falls back to Prescott (SSE3)
# even on a CPU with AVX-512. Then, as a user would, every process gets OPENBLAS_CORETYPE set to the best kernel
# that the CPU's instruction sets allow (best_openblas_core); the header says so.
RIVAL_ENV = {}
OLD_OPENBLAS_CORES = ("Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai", "Coppermine",
                      "Northwood", "Banias", "Sandybridge")
CONTENDED = 0.25  # other processes' CPU, in cores, above which a measurement is marked
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1

# Repeats: lecture runs, inference passes, whole epochs and the parts each epoch is timed in.
LECTURE_REPEATS = 1 if QUICK else 3
INFER_REPEATS = {1: 3, 256: 5}
EPOCH_REPEATS, EPOCH_PARTS = (WHOLE_EPOCHS, 1) if WHOLE_EPOCHS else (1, 3)

# ----------------------------------------------------------------------------------------------------------
# Thread settings. Each is (label, threads it uses, environment, torch.set_num_threads or 0, how it is set).

NEURITE_SETTINGS = [(str(t), t) for t in sorted({1, 2})]
# The reference setting: one thread with the environment as this machine kind sets it (OpenBLAS pinned to its
# Haswell kernels), to show what the removal of HANDICAP_VARS changes. Lecture only.
HANDICAP_ENV = {k: os.environ[k] for k in HANDICAP_VARS if k in os.environ}
REFERENCE_LABEL = "1, env as set"
NUMPY_SETTINGS = [
    ("1", 1, {"OPENBLAS_NUM_THREADS": "1"}, 0, "`OPENBLAS_NUM_THREADS=1`"),
    ("2", 2, {"OPENBLAS_NUM_THREADS": "2"}, 0, "`OPENBLAS_NUM_THREADS=2` (also OpenBLAS's default here: one per core)"),
]
TORCH_SETTINGS = [
    ("1", 1, {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, 1,
     "`torch.set_num_threads(1)`, `OMP_NUM_THREADS=1`, `OPENBLAS_NUM_THREADS=1`"),
    ("2", 2, {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}, 2,
     "`torch.set_num_threads(2)`, `OMP_NUM_THREADS=2`, `OPENBLAS_NUM_THREADS=1` (one pool of 2; the matrix "
     "products on one thread)"),
    ("2+2", 2, {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}, 2,
     "`torch.set_num_threads(2)`, `OMP_NUM_THREADS=2`, `OPENBLAS_NUM_THREADS=2` (both pools of 2: "
     "oversubscribed)"),
    ("default", 2, {}, 0,
     "nothing set (PyTorch's own default: 1 intra-op thread here; OpenBLAS's: one per core)"),
]
if QUICK:
    TORCH_SETTINGS = TORCH_SETTINGS[:2]


def log(text=""):
    print(text, flush=True)


def busy_seconds():
    """CPU seconds spent by the whole machine so far (all states but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "10"))  # seconds to wait for a busy machine, per run
QUIET_BUDGET = [float(os.environ.get("BENCH_QUIET_BUDGET", "120")) * ROUNDS]  # ... and in the whole run
WAITED = [0.0]


def wait_quiet():
    """Waits (up to QUIET_WAIT seconds, within what is left of QUIET_BUDGET) until the other processes on the
    machine use less than CONTENDED of a core, sampled over a quarter of a second."""
    limit = min(QUIET_WAIT, QUIET_BUDGET[0])
    t0 = time.perf_counter()
    while True:
        b0 = busy_seconds()
        time.sleep(0.25)
        busy = (busy_seconds() - b0) / 0.25
        waited = time.perf_counter() - t0
        if busy < CONTENDED or waited >= limit:
            QUIET_BUDGET[0] = max(0.0, QUIET_BUDGET[0] - max(0.0, waited - 0.25))
            WAITED[0] += waited
            return


def best_openblas_core(flags):
    """The fastest OpenBLAS 0.3.21 kernel family this CPU can run, from /proc/cpuinfo's flags, or None."""
    has = set(re.findall(r"\S+", flags.split("flags", 1)[-1].split("\n", 1)[0]))
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= has:
        return "Cooperlake" if "avx512_bf16" in has else "SkylakeX"
    if {"avx2", "fma"} <= has:
        return "Haswell"
    return None


def run(cmd, env=None, timeout=1800, quiet=True):
    """Runs one measurement process. Returns its stdout, exit code, wall seconds, max RSS (KiB), its CPU
    seconds and the CPU others used meanwhile (in cores)."""
    if quiet:
        wait_quiet()
    full_env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS + HANDICAP_VARS}
    full_env.update(RIVAL_ENV)
    full_env.update(env or {})
    full_env["BENCH_DATA"] = DATA
    with tempfile.TemporaryFile() as err:
        busy0, t0 = busy_seconds(), time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=full_env, cwd=ROOT)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        out = p.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(p.pid, 0)
        timer.cancel()
        wall, busy1 = time.perf_counter() - t0, busy_seconds()
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        err.seek(0)
        errtext = err.read().decode(errors="replace")
    own = usage.ru_utime + usage.ru_stime
    return {"cmd": cmd, "env": env or {}, "stdout": out, "stderr": errtext, "rc": p.returncode, "wall": wall,
            "rss_kb": usage.ru_maxrss, "cpu": own, "others": max(0.0, (busy1 - busy0) - own) / wall}


def parse_result(r, model=None):
    for line in reversed(r["stdout"].splitlines()):
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            if model and (res.get("layers"), res.get("params")) != EXPECTED[model]:
                raise RuntimeError("neurite built %s layers and %s parameters for %s, expected %d and %d" % (
                    res.get("layers"), res.get("params"), model, *EXPECTED[model]))
            return res
    raise RuntimeError("no RESULT line from %s (exit %d): %s" % (" ".join(r["cmd"]), r["rc"],
                                                                 (r["stderr"] or r["stdout"]).strip()[-400:]))


# ----------------------------------------------------------------------------------------------------------
# Rows: one per tool and setting of a workload.

class Row:
    """One tool at one thread setting in one workload. A stopped row (its process exceeded the time limit)
    has no times: it is shown, but is never anyone's fastest."""

    def __init__(self, tool, setting, threads, how, times, runs, check, per_run=1.0, stopped=False):
        self.tool, self.setting, self.threads, self.how = tool, setting, threads, how
        self.times = times                   # seconds of each timed region
        self.scale = per_run                 # seconds of the workload = median(times) * scale
        self.stopped = stopped
        self.seconds = statistics.median(times) * per_run if times else float("inf")
        self.rss_mb = max(r["rss_kb"] for r in runs) / 1024
        self.others = max(r["others"] for r in runs)
        self.wall = sum(r["wall"] for r in runs)  # all its processes together
        self.outside = statistics.median(r["wall"] - r["timed"] for r in runs) if times else float("nan")
        self.check, self.ratio = check, None
        first = runs[0]
        self.command = " ".join(["%s=%s" % kv for kv in sorted(first["env"].items())] + first["cmd"])

    @property
    def spread(self):
        return min(self.times) * self.scale, max(self.times) * self.scale


def failed(tool, setting, why):
    log("  %-28s %-8s FAILED: %s" % (tool, setting, why))


def limit_for(rows):
    """The time limit of a rival's process: 3 times the slowest neurite process of the workload, plus half
    a minute for imports and data, and at least a minute. A setting slower than that is more than 3 times
    slower than neurite (every target's goal) and is not a rival's fastest unless all its settings are;
    without a limit an oversubscribed pool on a busy machine can take many minutes."""
    walls = [r.wall for r in rows if r.tool == "neurite"]
    return max(60.0, 3 * max(walls) + 30) if walls else 1800.0


def rival_rows(rows, name, settings, make_cmd, make_rows, skip=()):
    """Runs a rival at each of its settings; make_rows(result, run, label, threads, how) returns its rows."""
    limit = limit_for(rows)
    for label, t, env, torch_threads, how in settings:
        if label in skip:
            continue
        cmd = make_cmd() + (["--torch-threads", str(torch_threads)] if torch_threads else [])
        r = run(cmd, env, timeout=limit)
        if r["wall"] >= limit and r["rc"] != 0:
            r["timed"] = r["wall"]
            rows.append(Row(name, label, t, how, [], [r], "stopped after %.0f s" % r["wall"], stopped=True))
            log_row(rows[-1])
            continue
        try:
            res = parse_result(r)
        except (RuntimeError, ValueError) as e:
            failed(name, label, e)
            continue
        for row in make_rows(res, r, label, t, how):
            rows.append(row)
            log_row(row, ips=10000 if res["mode"] == "infer" else None)


def weight_bytes(model):
    """Bytes of float32 weights and biases of one of the MLPs."""
    sizes = MLP_SIZES[model]
    return 4 * sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def lecture_rows():
    rows = []
    for label, t in NEURITE_SETTINGS:
        runs, times, check = [], [], ""
        for _ in range(LECTURE_REPEATS):
            r = run([NEURITE, "seed", "--print-every", "0", "--threads", str(t)])
            m = re.search(r"Time: ([0-9.]+) s", r["stdout"])
            if r["rc"] != 0 or not m:
                failed("neurite", label, (r["stderr"] or r["stdout"]).strip()[-300:])
                break
            r["timed"] = float(m.group(1))
            times.append(r["timed"])
            runs.append(r)
            loss = re.search(r"After \d+ iterations: loss ([0-9.eE+-]+)", r["stdout"])
            kernel = re.search(r"\((\w+) kernel\)", r["stdout"])
            check = "loss %s (%s kernel)" % (loss.group(1) if loss else "?", kernel.group(1) if kernel else "?")
        if len(times) == LECTURE_REPEATS:
            rows.append(Row("neurite", label, t, "--threads %d" % t, times, runs, check))
            log_row(rows[-1])
    reference = []
    if HANDICAP_ENV:
        how = "as NumPy's 1, with %s kept" % ", ".join("`%s=%s`" % kv for kv in sorted(HANDICAP_ENV.items()))
        reference = [(REFERENCE_LABEL, 1, dict(NUMPY_SETTINGS[0][2], **HANDICAP_ENV), 0, how)]
    tools = [("NumPy float64", "numpy", "float64", NUMPY_SETTINGS + reference, ()),
             ("NumPy float32", "numpy", "float32", NUMPY_SETTINGS + reference, ()),
             ("PyTorch float32", "torch", "float32", TORCH_SETTINGS + reference, ()),
             ("PyTorch float32, denormals flushed", "torch", "float32", TORCH_SETTINGS[:2], ("--flush-denormal",))]
    if not QUICK:
        tools.append(("PyTorch float32 autograd+SGD", "torch-autograd", "float32", TORCH_SETTINGS[:2] + reference, ()))

    def make_rows(res, r, label, t, how):
        r["timed"] = sum(res["times"])
        return [Row(name, label, t, how, res["times"], [r], "loss %.4g" % res["loss"])]

    for name, tool, dtype, settings, extra in tools:
        rival_rows(rows, name, settings, lambda: [PYTHON, RIVALS, "lecture", "--tool", tool, "--dtype", dtype,
                                                  "--repeats", str(LECTURE_REPEATS)] + list(extra), make_rows)
        # The same program on OpenBLAS's own kernel and on the one the environment forces: the losses agree.
        own = [r for r in rows if r.tool == name and r.setting == "1"]
        ref = [r for r in rows if r.tool == name and r.setting == REFERENCE_LABEL]
        if own and ref:
            a, b = (float(x.check.split()[1]) for x in (own[0], ref[0]))
            # After 5000 steps the loss is ~1e-6 and carries the rounding of every product: two kernels that
            # sum in another order agree to a few percent, not to the bit.
            rel = abs(a - b) / max(abs(a), abs(b), 1e-30)
            log("  %s: loss %.6g on its own kernel, %.6g with the environment as set: %.2g relative (%s)" % (
                name, a, b, rel, "agree" if rel <= 0.05 else "DIFFER"))
    return rows


def epoch_rows(model):
    rows = []
    spec = CNN_SPEC if model == "cnn" else MLP_SPECS[model]
    check = lambda res: "loss %.3f, acc %.1f%%" % (res["loss"], 100 * res["accuracy"])
    for label, t in NEURITE_SETTINGS:
        r = run([NEURITE_BENCH, "epoch", "--layers", spec, "--threads", str(t), "--repeats", str(EPOCH_REPEATS),
                 "--parts", str(EPOCH_PARTS), "--data", DATA])
        try:
            res = parse_result(r, model)
        except (RuntimeError, ValueError) as e:
            failed("neurite", label, e)
            continue
        r["timed"] = sum(res["epochs"])
        rows.append(Row("neurite", label, t, "nr_set_threads(%d)" % t, res["times"], [r], check(res),
                        per_run=EPOCH_PARTS))
        log_row(rows[-1])

    def make_rows(res, r, label, t, how):
        r["timed"] = sum(res["epochs"])
        return [Row(name, label, t, how, res["times"], [r], check(res), per_run=EPOCH_PARTS)]

    tools = [("PyTorch", "torch", TORCH_SETTINGS)]
    if model != "cnn":
        tools.append(("NumPy (hand-written)", "numpy", NUMPY_SETTINGS))
    for name, tool, settings in tools:
        # The CNN skips the oversubscribed 2+2: it is shown on the lecture's network and the MLPs, and one
        # CNN epoch costs a minute or more.
        rival_rows(rows, name, settings, lambda: [PYTHON, RIVALS, "epoch", "--tool", tool, "--model", model,
                                                  "--repeats", str(EPOCH_REPEATS), "--parts", str(EPOCH_PARTS)],
                   make_rows, skip=("2+2",) if model == "cnn" else ())
    return rows


def infer_rows(model, batch):
    rows = []
    count = 10000
    for label, t in NEURITE_SETTINGS:
        r = run([NEURITE_BENCH, "infer", "--layers", MLP_SPECS[model], "--threads", str(t), "--batch", str(batch),
                 "--count", str(count), "--repeats", str(INFER_REPEATS[batch]), "--data", DATA])
        try:
            res = parse_result(r, model)
        except (RuntimeError, ValueError) as e:
            failed("neurite", label, e)
            continue
        r["timed"] = sum(res["times"])
        rows.append(Row("neurite", label, t, "nr_set_threads(%d)" % t, res["times"], [r], "nr_net_forward"))
        log_row(rows[-1], ips=count)

    def make_rows(res, r, label, t, how):
        r["timed"] = sum(sum(v) for v in res["variants"].values())
        return [Row(name, label, t, how, times, [r], variant) for variant, times in res["variants"].items()]

    for name, tool, settings in (("PyTorch", "torch", TORCH_SETTINGS), ("NumPy", "numpy", NUMPY_SETTINGS)):
        rival_rows(rows, name, settings, lambda: [PYTHON, RIVALS, "infer", "--tool", tool, "--model", model,
                                                  "--batch", str(batch), "--count", str(count),
                                                  "--repeats", str(INFER_REPEATS[batch])], make_rows)
    ort_rows(rows, model, batch, count)
    return rows


def ort_modules():
    """Where scripts/install-deps.sh puts npm's onnxruntime-node, or None."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    for path in (os.environ.get("NODE_PATH", ""), os.path.join(cache, "neurite", "node", "node_modules")):
        if path and os.path.isdir(os.path.join(path, "onnxruntime-node")):
            return path
    return None


def ort_rows(rows, model, batch, count):
    """ONNX Runtime (npm's onnxruntime-node, its CPU provider) on the same network: neurite's random weights
    saved by neurite_bench, exported as ONNX (logits, like nr_net_forward), the same raw images."""
    modules = ort_modules()
    if not modules or not shutil.which("node"):
        if not ORT_SKIPPED:
            log("  ONNX Runtime: not measured (needs node and onnxruntime-node: scripts/install-deps.sh)")
            ORT_SKIPPED.append(True)
        return
    work = os.path.join(ROOT, BUILD, "bench")
    nrm, onnx_path, images = (os.path.join(work, model + s) for s in (".nrm", ".onnx", "-images.f32"))
    if not os.path.exists(onnx_path):
        r = run([NEURITE_BENCH, "infer", "--layers", MLP_SPECS[model], "--count", "1", "--repeats", "1", "--data",
                 DATA, "--save", nrm], quiet=False)
        e = run([NEURITE, "export", nrm, "--format", "onnx", "--logits", "--out", onnx_path], quiet=False)
        if r["rc"] or e["rc"]:
            failed("ONNX Runtime", "-", (r["stderr"] + e["stderr"]).strip()[-300:])
            return
    if not os.path.exists(images):
        with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
            raw = f.read()[16:16 + 784 * count]
        with open(images, "wb") as f:
            f.write(array.array("f", (float(v) for v in raw)).tobytes())
    for label, t in NEURITE_SETTINGS:
        how = "intraOpNumThreads %d, graph optimizations all" % t
        r = run(["node", os.path.join(ROOT, "bench", "ort_infer.js"), onnx_path, images, str(count), str(batch),
                 str(t), str(INFER_REPEATS[batch])], {"NODE_PATH": modules})
        try:
            res = parse_result(r)
        except (RuntimeError, ValueError) as e:
            failed("ONNX Runtime", label, e)
            continue
        r["timed"] = sum(res["times"])
        rows.append(Row("ONNX Runtime", label, t, how, res["times"], [r], "session.run"))
        log_row(rows[-1], ips=count)


def best_of_rounds(rows_fn, *args):
    """Measures a workload ROUNDS times over, every tool at every setting each round, and keeps for each tool,
    setting and variant its fastest round: this virtual machine has spells of a minute or more in which one
    tool's 2-thread runs slow down while the others' do not, and a second round a few minutes later sees
    through them. Every tool gets the same rounds."""
    best, order = {}, []
    for k in range(ROUNDS):
        if ROUNDS > 1:
            log("  -- round %d of %d --" % (k + 1, ROUNDS))
        for row in rows_fn(*args):
            key = (row.tool, row.setting, row.how, row.check if row.check in ("no_grad", "inference_mode") else "")
            if key not in best:
                order.append(key)
            if key not in best or row.seconds < best[key].seconds:
                best[key] = row
    # A setting stopped in one round and measured in another keeps only its measured rows (an inference
    # setting's stopped row has no variant, so it does not share their keys).
    measured = {(k[0], k[1]) for k in order if not best[k].stopped}
    order = [k for k in order if not (best[k].stopped and (k[0], k[1]) in measured)]
    if ROUNDS > 1:
        log("  (best of %d rounds per row)" % ROUNDS)
        for key in order:
            log_row(best[key])
    return [best[key] for key in order]


def log_row(row, ips=None):
    mark = "  (others used %.2f cores)" % row.others if row.others > CONTENDED else ""
    if row.stopped:
        log("  %-28s %-8s stopped: the process took more than %.0f s%s" % (row.tool, row.setting, row.wall, mark))
        return
    rate = "%9.0f img/s" % (ips / row.seconds) if ips else ""
    log("  %-28s %-8s %9.3f s %s %7.0f MB  %s%s" % (row.tool, row.setting, row.seconds, rate, row.rss_mb,
                                                   row.check, mark))


# ----------------------------------------------------------------------------------------------------------
# Work per workload, in floating-point operations (a multiply-add is 2).

def dense_train_flops(sizes):
    """One training sample through dense layers: forward 2·in·out, weight gradient 2·in·out, input gradient
    2·in·out for every layer but the first (no tool computes the gradient of the data)."""
    total = 0
    for i in range(len(sizes) - 1):
        total += (4 if i == 0 else 6) * sizes[i] * sizes[i + 1]
    return total


def cnn_train_flops():
    conv1 = 28 * 28 * 32 * 3 * 3 * 1
    conv2 = 14 * 14 * 64 * 3 * 3 * 32
    fc = 7 * 7 * 64 * 128 + 128 * 10
    return 4 * conv1 + 6 * conv2 + 6 * fc


MLP_SIZES = {"mlp256": [784, 256, 10], "mlp512": [784, 512, 256, 10]}
LECTURE_FLOPS = 4 * 64 * 100 * 1000 + 6 * 64 * 100 * 10  # 25.98 MFLOP per iteration, in its products


def epoch_flops(model):
    return 60000 * (cnn_train_flops() if model == "cnn" else dense_train_flops(MLP_SIZES[model]))


def infer_flops(model, count=10000):
    s = MLP_SIZES[model]
    return count * sum(2 * s[i] * s[i + 1] for i in range(len(s) - 1))


# ----------------------------------------------------------------------------------------------------------
# Tables

def fastest(rows, tool):
    """A tool's fastest row on its own kernel (the reference rows with the handicapping environment kept are
    shown, never compared)."""
    mine = [r for r in rows if r.tool == tool and not r.stopped and r.setting != REFERENCE_LABEL]
    return min(mine, key=lambda r: r.seconds) if mine else None


def neurite_at(rows, threads):
    mine = [r for r in rows if r.tool == "neurite" and r.threads == threads]
    return mine[0] if mine else None


def table(rows, flops, peak, ips=None):
    """A Markdown table; each rival row's ratio is against neurite at the same thread count."""
    lines = ["| tool | setting | median s | " + ("images/s | " if ips else "") +
             "min–max s | neurite is ×faster | GFLOP/s | % peak all cores | % peak cores used | max RSS MB | "
             "outside the clock s | check |",
             "|---|---|---|" + ("---|" if ips else "") + "---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = neurite_at(rows, r.threads)
        if r.stopped:
            lines.append("| %s | %s | stopped%s |%s — | — | — | — | — | %.0f | — | %s: over the limit of 3× "
                         "neurite's slowest process + 30 s |" % (r.tool, r.setting, " ⚠" if r.others > CONTENDED else "",
                                                                 " — |" if ips else "", r.rss_mb, r.check))
            continue
        r.ratio = r.seconds / ref.seconds if ref else None
        gf = flops / r.seconds * 1e-9
        lo, hi = r.spread
        mark = " ⚠" if r.others > CONTENDED else ""
        lines.append("| %s | %s | %.3f%s | %s%.3f–%.3f | %s | %.1f | %.1f %% | %.1f %% | %.0f | %.2f | %s |" % (
            r.tool, r.setting, r.seconds, mark, ("%.0f | " % (ips / r.seconds)) if ips else "", lo, hi,
            "—" if r.tool == "neurite" else ("%.2f" % r.ratio if r.ratio else "?"), gf,
            100 * gf / peak["best_all"], 100 * gf / (peak["best_core"] * r.threads), r.rss_mb, r.outside,
            r.check))
    return lines


def l2_kib():
    """One core's L2 in KiB, from sysfs; None where the kernel does not say."""
    try:
        for d in sorted(os.listdir("/sys/devices/system/cpu/cpu0/cache")):
            base = "/sys/devices/system/cpu/cpu0/cache/" + d
            if open(base + "/level").read().strip() == "2":
                size = open(base + "/size").read().strip()
                return int(size[:-1]) * (1024 if size.endswith("M") else 1) if size[-1] in "KM" else int(size) >> 10
    except (OSError, ValueError):
        pass
    return None


def l2_fit_note(bw):
    """Which of the sized working sets (the MLPs' weights) fit one core's L2, in words."""
    l2 = l2_kib()
    if not l2 or not bw.get("sized"):
        return ""
    parts = []
    for s in bw["sized"]:
        kb, share = s["bytes"] >> 10, (s["bytes"] >> 10) // bw["cores"]
        where = ("fit one core's L2" if kb <= l2 else
                 "fit no single L2, but each core's share (%d KiB) fits its own" % share if share <= l2 else
                 "fit no L2, even shared out, and come partly from the L3")
        parts.append("%d KiB of weights %s" % (kb, where))
    return "One core's L2 here is %d KiB: %s." % (l2, "; ".join(parts))


def main():
    os.makedirs(OUT, exist_ok=True)
    started = time.time()
    md = []
    summary = {"rows": {}, "targets": []}

    def section(title):
        log("\n== %s ==" % title)
        md.extend(["", "## " + title, ""])

    # The machine and the software.
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    per_core = re.search(r"Thread\(s\) per core:\s*(\d+)", lscpu)
    flags = open("/proc/cpuinfo").read()
    cpu = "%s, %d logical CPUs (%s thread(s) per core), %s, %s" % (
        model.group(1).strip() if model else platform.processor(), CORES,
        per_core.group(1) if per_core else "?", "AVX-512" if " avx512f" in flags else "no AVX-512",
        "hypervisor" if " hypervisor" in flags else "bare metal")
    version = run([NEURITE, "version"], quiet=False)["stdout"].strip()
    info = parse_result(run([PYTHON, RIVALS, "info"], quiet=False))
    log("make bench: neurite against NumPy and PyTorch%s, %s" % (" (BENCH_QUICK=1)" if QUICK else "",
                                                                 datetime.datetime.now().strftime("%Y-%m-%d %H:%M")))
    log("machine: " + cpu)
    log("software: %s; NumPy %s; PyTorch %s; %s (core %s); Python %s" % (
        version, info["numpy"], info.get("torch"), info["openblas"], info["openblas_core"], info["python"]))
    log("load average at start: %s" % open("/proc/loadavg").read().split()[:3])
    removed = ["%s=%s" % (k, os.environ[k]) for k in HANDICAP_VARS if k in os.environ]
    if removed:
        log("removed from every measured process: %s (NumPy's and PyTorch's OpenBLAS then picks core %s)" % (
            ", ".join(removed), info["openblas_core"]))
    best = best_openblas_core(flags)
    if best and info.get("openblas_core") in OLD_OPENBLAS_CORES:
        picked = info["openblas_core"]
        RIVAL_ENV["OPENBLAS_CORETYPE"] = best
        info = parse_result(run([PYTHON, RIVALS, "info"], quiet=False))
        log("OpenBLAS does not know this CPU model and picked its %s kernel; every process runs with "
            "OPENBLAS_CORETYPE=%s, the best its instruction sets allow (OpenBLAS now reports core %s)" % (
                picked, best, info["openblas_core"]))
        info["openblas_fallback"] = picked

    # The machine's peak.
    peak, peak_note = None, ""
    for attempt in range(3):  # the all-core figure needs every core free: retry while neighbours are busy
        probe = run([FMA_PROBE, "0.25"])
        got = parse_result(probe)
        log(probe["stdout"].rstrip() + ("  (others used %.2f cores)" % probe["others"]
                                        if probe["others"] > CONTENDED else ""))
        if not got.get("best_all"):
            sys.exit("bench: the FMA probe found no FMA unit")
        if peak is None or got["best_all"] > peak["best_all"]:
            peak = got
        if peak["best_all"] >= 0.9 * peak["cores"] * peak["best_core"]:
            break
    if peak["best_all"] < 0.9 * peak["cores"] * peak["best_core"]:
        peak_note = ("The all-core probe reached only %.1f GFLOP/s (other processes were using the machine); the "
                     "peak used below is %d cores × the per-core figure instead." % (peak["best_all"], peak["cores"]))
        peak["best_all_measured"] = peak["best_all"]
        peak["best_all"] = peak["cores"] * peak["best_core"]
        log("bench: " + peak_note)

    # The machine's read bandwidth: the bound on batch-1 inference (every weight read once per image).
    # ... also at the size of each MLP's weights: the working set of its batch-1 inference.
    bw_run = run([BW_PROBE, "0.2"] + [str(weight_bytes(m)) for m in MLP_SIZES])
    bw = parse_result(bw_run)
    log(bw_run["stdout"].rstrip())

    md += ["# make bench — results", "",
           "Generated by `%smake bench` on %s. Times are medians; every row is its own process(es)%s; the clock "
           "covers the work only (imports, data loading and model set-up are the \"outside the clock\" "
           "column). ⚠ marks a row during which other processes used more than %.2g of a core." % (
               "".join("%s=%s " % (k, os.environ[k]) for k in ("BENCH_QUICK", "BENCH_CNN", "BENCH_EPOCHS",
                                                               "BENCH_DOC", "BENCH_ROUNDS") if os.environ.get(k)) +
               ("BENCH_DATA=%s " % DATA if DATA != "/usr/share/datasets/fashion-mnist" else ""),
               datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               ", the fastest of %d rounds of the whole workload (every tool and setting measured in each round)"
               % ROUNDS if ROUNDS > 1 else "", CONTENDED),
           "", "## Machine and software", "",
           "- CPU: " + cpu,
           "- neurite: `%s`, built by `make` (-O3)" % version,
           "- NumPy %s, PyTorch %s (Debian packages; both call the system OpenBLAS for matrix products), "
           "%s, OpenBLAS core `%s`%s, Python %s" % (
               info["numpy"], info.get("torch"), info["openblas"], info["openblas_core"],
               " (OpenBLAS does not know this CPU model and picked `%s`, an SSE3 kernel; every process ran with "
               "`OPENBLAS_CORETYPE=%s`, the best kernel the CPU's instruction sets allow)" % (
                   info["openblas_fallback"], RIVAL_ENV["OPENBLAS_CORETYPE"]) if info.get("openblas_fallback") else "",
               info["python"]),
           "- PyTorch: default intra-op threads here %s, %s, oneDNN %s" % (
               info.get("torch_default_threads"), "; ".join(info.get("torch_parallel", [])),
               "available" if info.get("torch_mkldnn") else "absent"),
           "- Load average at start: %s" % " ".join(open("/proc/loadavg").read().split()[:3]),
           "", "## Peak: `build/bench/fma_probe` (float32 FMA loops, 12 independent chains, one thread per core)", "",
           "| kernel | 1 core GFLOP/s | all %d cores GFLOP/s |" % peak["cores"], "|---|---|---|"]
    for k in ("avx512", "avx2"):
        md.append("| %s | %s | %s |" % (k, "%.1f" % peak[k]["core"] if peak.get(k) else "n/a",
                                        "%.1f" % peak[k]["all"] if peak.get(k) else "n/a"))
    md += ["", "The peak used below: %.1f GFLOP/s per core, %.1f GFLOP/s for the machine. %s" % (
        peak["best_core"], peak["best_all"], peak_note)]

    md += ["", "## Read bandwidth: `build/bench/bw_probe` (%s loads, each thread its own buffer)" % bw["loads"], "",
           "| level | buffer | 1 core GB/s | all %d cores GB/s |" % bw["cores"], "|---|---|---|---|"]
    for k in ("l2", "l3", "dram"):
        md.append("| %s | %d KiB | %.1f | %.1f |" % (k.upper() if k != "dram" else "memory", bw[k]["bytes"] >> 10,
                                                     bw[k]["core"], bw[k]["all"]))
    md += ["", "Core to core: %.0f ns for a cache line to go to the other core and back (within one die of a "
           "Zen CPU about 50–100 ns; a virtual machine's two vCPUs may sit on different dies of the host, and "
           "then every parallel loop whose input the other core just wrote pays it, line by line: docs/gemm.md, "
           "\"Two cores\")." % bw.get("round_trip_ns", 0), "",
           "A batch-1 forward pass reads every weight once per image, each thread its share: images/s cannot "
           "exceed the rate at which the cores can read that working set over the weights' bytes. The probe "
           "measures exactly that for each MLP (the \"sized\" lines: one core reading all the weights' bytes, "
           "and every core at once its share). %s" % l2_fit_note(bw)]

    md += ["", "## How threads were set", "",
           "- neurite: `--threads T` (CLI) or `nr_set_threads(T)` (bench/neurite_bench.c); one pool. "
           "OpenBLAS is not loaded (neurite's own matrix kernels; the `blas` backend loads it only when chosen); no "
           "thread variables are set.",
           "- NumPy: " + "; ".join("**%s** = %s" % (s[0], s[4]) for s in NUMPY_SETTINGS) + ".",
           "- PyTorch: " + "; ".join("**%s** = %s" % (s[0], s[4]) for s in TORCH_SETTINGS) + ".",
           "- Every process starts with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and "
           "GOTO_NUM_THREADS removed from its environment, then gets only what its setting says.",
           "- \"neurite is ×faster\" compares a row with neurite at the same number of threads (rows using 2 "
           "threads in any pool count as 2). The summary compares each tool's fastest setting.",
           ]

    targets = []

    def target(name, value, goal, detail, rows=()):
        ok = value is not None and value >= goal
        if value is None:
            text = "n/a   %s: not measured" % name
        else:
            text = "%s  %s: %.2fx (goal %.2gx%s) — %s" % (
                "PASS" if ok else "FAIL", name, value, goal, "" if ok else ", %.2fx short" % (goal / value), detail)
        busy = max([r.others for r in rows if r] or [0])
        if busy > CONTENDED:
            text += " [⚠ contended: other processes used up to %.2f cores during these rows]" % busy
        targets.append(text)

    # 1. The lecture's network.
    section("1. The lecture's network (5000 iterations, N=64, D_in=1000, H=100, D_out=10)")
    lrows = best_of_rounds(lecture_rows)
    lflops = LECTURE_FLOPS * 5000
    md += ["Work: %.2f MFLOP per iteration in the five matrix products (4·N·H·D_in + 6·N·H·D_out), %.1f GFLOP "
           "for 5000 iterations; element-wise work (~0.2 MFLOP per iteration) not counted. neurite: `build/neurite "
           "seed --print-every 0 --threads T`, its own \"Time:\" (the loop), %d process(es) per setting; NumPy and "
           "PyTorch: %d timed loops in one process (bench/rivals.py: the lecture's loop verbatim; PyTorch the same "
           "loop with torch tensors and no autograd, and with autograd + torch.optim.SGD where labelled)." % (
               LECTURE_FLOPS / 1e6, lflops / 1e9, LECTURE_REPEATS, LECTURE_REPEATS), ""]
    md += table(lrows, lflops, peak)
    nbest = fastest(lrows, "neurite")
    if nbest:
        for rival, goal in (("NumPy float32", 2.5), ("NumPy float64", 5)):
            f = fastest(lrows, rival)
            target("lecture: neurite vs %s" % rival, f.seconds / nbest.seconds if f else None, goal,
                   "neurite %s thread(s) %.3f s, %s fastest (%s) %.3f s" % (
                       nbest.setting, nbest.seconds, rival, f.setting, f.seconds) if f else "", (nbest, f))
        tor = [r for r in lrows if r.tool.startswith("PyTorch") and not r.stopped]
        f = min(tor, key=lambda r: r.seconds) if tor else None
        target("lecture: neurite vs PyTorch float32 (fastest of hand-written and autograd)",
               f.seconds / nbest.seconds if f else None, 2.5,
               "%s %s: %.3f s" % (f.tool, f.setting, f.seconds) if f else "", (nbest, f))
        one, two = neurite_at(lrows, 1), neurite_at(lrows, 2)
        if one and two:
            target("lecture: neurite at 2 threads vs 1 thread", one.seconds / two.seconds, 1.7,
                   "%.3f s and %.3f s" % (one.seconds, two.seconds), (one, two))
        gf = lflops / nbest.seconds * 1e-9
        frac = gf / peak["best_all"]
        targets.append("%s  lecture: neurite at %.1f %% of the machine's float32 peak (goal 60 %%) — %.1f of %.1f "
                       "GFLOP/s, %s thread(s)%s" % ("PASS" if frac >= 0.6 else "FAIL", 100 * frac, gf,
                                                    peak["best_all"], nbest.setting,
                                                    " [⚠ contended]" if nbest.others > CONTENDED else ""))
    summary["rows"]["lecture"] = lrows

    # 2. One epoch on Fashion-MNIST.
    models = ["mlp256"] if QUICK else ["mlp256", "mlp512"]
    epoch_note = ("%d whole epoch(s) per process" % EPOCH_REPEATS) if EPOCH_PARTS == 1 else (
        "one epoch per process, its time taken at each third of its batches: the median third × 3 (the whole "
        "epoch's time is within the min–max × 3)")
    train_rss = {}
    for i, m in enumerate(models):
        section("2%s. One training epoch: %s on Fashion-MNIST" % ("ab"[i], MLP_NAMES[m]))
        rows = best_of_rounds(epoch_rows, m)
        fl = epoch_flops(m)
        md += ["60 000 images, batch 64 (937 of 64 and one of 32), Adam lr 1e-3, softmax cross-entropy, inputs "
               "/ 255, shuffled. Work: %.1f GFLOP per epoch (forward, weight gradients, and input gradients for "
               "all but the first layer). Timing: %s. neurite: bench/neurite_bench.c, nr_train (epochs 1, no "
               "validation, no augmentation), images kept as bytes and scaled per batch. PyTorch: nn.Sequential, "
               "the whole set as a float32 tensor already / 255, torch.randperm batches, no DataLoader. NumPy: a "
               "hand-written MLP with Adam, float32." % (fl / 1e9, epoch_note), ""]
        md += table(rows, fl, peak)
        for t in (1, 2):
            n = neurite_at(rows, t)
            cand = [r for r in rows if r.tool == "PyTorch" and r.threads == t and not r.stopped]
            f = min(cand, key=lambda r: r.seconds) if cand else None
            target("%s epoch at %d thread(s): neurite vs PyTorch" % (MLP_NAMES[m], t),
                   f.seconds / n.seconds if n and f else None, 3,
                   "neurite %.3f s, PyTorch %s %.3f s (its fastest using %d thread(s))" % (
                       n.seconds, f.setting, f.seconds, t) if n and f else "", (n, f))
        one, two = neurite_at(rows, 1), neurite_at(rows, 2)
        if one and two:
            target("%s epoch: neurite at 2 threads vs 1 thread" % MLP_NAMES[m], one.seconds / two.seconds, 1.6,
                   "%.3f s and %.3f s" % (one.seconds, two.seconds), (one, two))
        nr = [r.rss_mb for r in rows if r.tool == "neurite"]
        pt = [r.rss_mb for r in rows if r.tool == "PyTorch"]
        if nr and pt:
            target("%s training peak memory: PyTorch's / neurite's" % MLP_NAMES[m], min(pt) / max(nr), 3,
                   "neurite %.0f MB (largest of its runs), PyTorch %.0f MB (smallest of its runs)" % (max(nr), min(pt)))
        train_rss[m] = (nr, pt)
        summary["rows"]["epoch_" + m] = rows

    # 3. Inference.
    for i, m in enumerate(["mlp256"] if QUICK else ["mlp256", "mlp512"]):
        for batch in (1, 256):
            section("3%s. Inference: %s, batch %d, 10 000 test images" % ("abcd"[2 * i + (batch > 1)],
                                                                         MLP_NAMES[m], batch))
            rows = best_of_rounds(infer_rows, m, batch)
            md += ["Forward pass only, logits, inputs already float32 / 255. neurite: nr_net_forward after "
                   "nr_net_prepack(net, 1) (copies of the wide dense layers' weights in column panels, made before "
                   "the clock starts; used at batch 1 only); PyTorch: "
                   "model.eval() under torch.no_grad() and under torch.inference_mode(); NumPy: np.dot; ONNX "
                   "Runtime (npm's onnxruntime-node, CPU provider): the same network and weights exported by "
                   "`neurite export --format onnx --logits`, raw pixels in (its graph divides by 255). One "
                   "untimed pass, then %d timed passes over the 10 000 images. Work: %.2f GFLOP per pass." % (
                       INFER_REPEATS[batch], infer_flops(m) / 1e9), ""]
            md += table(rows, infer_flops(m), peak, ips=10000)
            if batch == 1:
                weights = weight_bytes(m)
                sized = [z for z in bw.get("sized", []) if z["bytes"] == weights]
                bounds = []
                for t in (1, 2):
                    n = neurite_at(rows, t)
                    # Each thread reads its share of the weights once per image: at best at the rate the
                    # probe measured for that working set (one core reading them all, or every core its share);
                    # without that figure, from the L2 where the share fits (the probe measures it on half of
                    # it), else from the L3.
                    if sized:
                        level = "working-set"
                        bound = sized[0]["core" if t == 1 else "share"] * 1e9 / weights
                    else:
                        level = "L2" if weights / t <= 2 * bw["l2"]["bytes"] else "L3"
                        bound = bw[level.lower()]["core" if t == 1 else "all"] * 1e9 / weights
                    if n:
                        bounds.append("%d thread(s): %.0f images/s, %.0f %% of the %s bound of %.0f" % (
                            t, 10000 / n.seconds, 100 * 10000 / n.seconds / bound, level, bound))
                        target("%s batch 1 at %d thread(s): share of the %s bandwidth bound" % (
                                   MLP_NAMES[m], t, level),
                               10000 / n.seconds / bound, 0.8, "%.0f of %.0f images/s (%d KB of weights per "
                               "image, %d KB a thread)" % (10000 / n.seconds, bound, weights // 1000,
                                                          weights // t // 1000), (n,))
                    o = [r for r in rows if r.tool == "ONNX Runtime" and r.threads == t]
                    if n and o:
                        target("%s batch 1 at %d thread(s): neurite vs ONNX Runtime" % (MLP_NAMES[m], t),
                               o[0].seconds / n.seconds, 1.0, "%.0f and %.0f images/s" % (
                                   10000 / n.seconds, 10000 / o[0].seconds), (n, o[0]))
                md += ["", "Bound: %d KB of float32 weights per image, each thread reading its share once per image "
                       "at the rate bench/bw_probe measured for that working set (%s); neurite at %s." % (
                           weights // 1000, "one core reading all of it %.0f GB/s, each core its share %.0f GB/s "
                           "together" % (sized[0]["core"], sized[0]["share"]) if sized else "the L2's rate where "
                           "a share fits it, else the L3's", "; ".join(bounds)), ""]
                nb, f = fastest(rows, "neurite"), fastest(rows, "PyTorch")
                target("%s inference at batch 1: neurite's images/s vs PyTorch's" % MLP_NAMES[m],
                       f.seconds / nb.seconds if nb and f else None, 10,
                       "neurite %.0f images/s (%s thread(s)), PyTorch %.0f (%s, %s)" % (
                           10000 / nb.seconds, nb.setting, 10000 / f.seconds, f.setting, f.check) if nb and f else "",
                       (nb, f))
            summary["rows"]["infer_%s_%d" % (m, batch)] = rows

    # 4. The CNN: only when neurite's layer list takes convolutions.
    section("4. One training epoch: the CNN (%s)" % CNN_SPEC)
    probe_cmd = [NEURITE, "train", "--data", "fashion", "--layers", CNN_SPEC, "--epochs", "1", "--val", "0",
                 "--augment", "0", "--limit", "256", "--quiet", "--threads", "1"]
    if QUICK or not CNN:
        log("skipped (%s)" % ("BENCH_QUICK=1" if QUICK else "BENCH_CNN=0"))
        md.append("Skipped in this run (%s)." % ("BENCH_QUICK=1" if QUICK else "BENCH_CNN=0"))
        target("CNN epoch: neurite vs PyTorch's fastest", None, 3, "")
    else:
        # HOOK: the CNN runs only if `neurite train` accepts the convolutional layer list at run time.
        p = run(probe_cmd)
        if p["rc"] != 0:
            why = (p["stderr"] or p["stdout"]).strip().splitlines()
            log("skipped: `%s` failed: %s" % (" ".join(probe_cmd), why[-1] if why else "exit %d" % p["rc"]))
            md.append("Skipped: `%s` was refused (%s)." % (" ".join(probe_cmd), why[-1] if why else p["rc"]))
            target("CNN epoch: neurite vs PyTorch's fastest", None, 3, "")
        else:
            rows = best_of_rounds(epoch_rows, "cnn")
            fl = epoch_flops("cnn")
            md += ["3×3 convolutions with padding 1, 2×2 max pooling, batch 64, Adam lr 1e-3, inputs / 255. "
                   "`%s` was accepted at run time, so the CNN runs. Work: %.0f GFLOP per epoch. Timing: %s. "
                   "neurite: bench/neurite_bench.c (nr_train); PyTorch: nn.Conv2d(1, 32, 3, padding=1), "
                   "nn.MaxPool2d(2), ... (oneDNN convolutions), input N×1×28×28 float32. The oversubscribed "
                   "PyTorch setting 2+2 is not run here (one CNN epoch costs a minute)." % (
                       " ".join(probe_cmd), fl / 1e9, epoch_note), ""]
            md += table(rows, fl, peak)
            nb, f = fastest(rows, "neurite"), fastest(rows, "PyTorch")
            target("CNN epoch: neurite vs PyTorch's fastest", f.seconds / nb.seconds if nb and f else None, 3,
                   "neurite %.2f s (%s thread(s)), PyTorch %.2f s (%s)" % (nb.seconds, nb.setting, f.seconds,
                                                                          f.setting) if nb and f else "", (nb, f))
            summary["rows"]["epoch_cnn"] = rows

    # The exact commands, one per row (a neurite lecture row ran its command once per repeat).
    cmd_md = ["", "## Exact commands of this run", "",
           "Run from the top of the tree; each Python process also had BENCH_DATA=%s, and every process had "
           "the thread variables removed from its environment first%s." % (
               DATA, "".join(" and %s=%s set" % kv for kv in sorted(RIVAL_ENV.items()))), ""]
    for key, rows in summary["rows"].items():
        # Paths as a reader of the repository sees them: relative to its top, the home folder as ~.
        shown = (c.replace(ROOT + "/", "").replace(os.path.expanduser("~"), "~") for c in
                 dict.fromkeys(r.command for r in rows))
        cmd_md += ["- %s:" % key] + ["  - `%s`" % c for c in shown]

    # Each tool at its fastest setting.
    titles = {"lecture": "lecture's network", "epoch_mlp256": "epoch, MLP 784-256-10",
              "epoch_mlp512": "epoch, MLP 784-512-256-10", "epoch_cnn": "epoch, CNN",
              "infer_mlp256_1": "inference, MLP-256, batch 1", "infer_mlp256_256": "inference, MLP-256, batch 256",
              "infer_mlp512_1": "inference, MLP-512, batch 1", "infer_mlp512_256": "inference, MLP-512, batch 256"}
    section("Summary: every tool at its fastest setting")
    md += ["| workload | tool | its fastest setting | median s | neurite's fastest | neurite is ×faster |",
           "|---|---|---|---|---|---|"]
    for key, rows in summary["rows"].items():
        nb = fastest(rows, "neurite")
        for tool in dict.fromkeys(r.tool for r in rows):
            f = fastest(rows, tool)
            if not f or not nb:
                continue
            variant = " (%s)" % f.check if key.startswith("infer") and tool != "neurite" else ""
            line = "| %s | %s | %s%s | %.3f%s | %.3f s at %s | %s |" % (
                titles.get(key, key), tool, f.setting, variant, f.seconds, " ⚠" if f.others > CONTENDED else "",
                nb.seconds, nb.setting,
                "—" if tool == "neurite" else "%.2f" % (f.seconds / nb.seconds))
            md.append(line)
            if tool != "neurite":
                log("  %-30s %-28s fastest at %-22s %8.3f s: neurite (%s) is %.2fx faster" % (
                    titles.get(key, key), tool, f.setting + variant, f.seconds, nb.setting, f.seconds / nb.seconds))

    # Summary.
    elapsed = time.time() - started
    section("Targets (from the ratios of this run)")
    for t in targets:
        log(t)
    md += ["```"] + targets + ["```", "",
           "Load average at the end: %s. Whole run: %.0f s, of which %.0f s waiting for a busy machine to "
           "quieten." % (" ".join(open("/proc/loadavg").read().split()[:3]), elapsed, WAITED[0])] + cmd_md
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write("\n".join(md).lstrip("\n") + "\n")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"peak": peak, "bandwidth": bw, "info": info, "cpu": cpu, "version": version, "quick": QUICK,
                   "targets": targets, "elapsed": elapsed,
                   "rows": {k: [dict(tool=r.tool, setting=r.setting, threads=r.threads, how=r.how, times=r.times,
                                     seconds=None if r.stopped else r.seconds, stopped=r.stopped, rss_mb=r.rss_mb,
                                     others=r.others, outside=None if r.stopped else r.outside, wall=r.wall,
                                     check=r.check, ratio=r.ratio, command=r.command) for r in v]
                            for k, v in summary["rows"].items()}}, f, indent=1)
    log("\nwhole run: %.0f s; tables in %s/results.md" % (elapsed, OUT))


if __name__ == "__main__":
    main()
