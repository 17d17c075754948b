#!/bin/sh
# bench/run.sh - what `make bench` runs once neurite is built: neurite against NumPy and PyTorch, side by side
# in one run (bench/bench.py does the measuring; this checks what it needs first).
#
#   make bench                  the full run (about ten minutes on a 2-core machine)
#   BENCH_QUICK=1 make bench    a fast check: one repeat, fewer workloads and settings
#   BENCH_CNN=0 make bench      everything but the CNN epoch
#   BENCH_EPOCHS=3 make bench   time 3 whole epochs per setting instead of one epoch in thirds
#   BENCH_ROUNDS=2 make bench   measure every workload twice over and keep each row's faster round
#   BENCH_DOC=1 make bench      also rewrite docs/benchmarks.md from bench/doc_header.md and the results
#
# Results: $BUILD/bench/results.md (tables; bench/int8.py's int8 tables at the end), results.json, int8.json,
# and the log of the run in bench.log. `make bench-int8` runs the int8 part alone.
set -eu

BUILD=${BUILD:-build}
PYTHON=/usr/bin/python3
DATA=${BENCH_DATA:-/usr/share/datasets/fashion-mnist}
export BUILD BENCH_DATA="$DATA"

fail() {
    echo "bench: $*" >&2
    exit 1
}

for f in "$BUILD/neurite" "$BUILD/bench/neurite_bench" "$BUILD/bench/fma_probe" "$BUILD/bench/bw_probe"; do
    [ -x "$f" ] || fail "$f is missing: run 'make bench' (it builds it)"
done
[ -x "$PYTHON" ] || fail "$PYTHON is missing: apt-get install -y python3"
"$PYTHON" -c 'import numpy' 2>/dev/null || fail "NumPy is missing: apt-get install -y python3-numpy"
"$PYTHON" -c 'import torch' 2>/dev/null || fail "PyTorch is missing: apt-get install -y python3-torch"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -r "$DATA/$f" ] || fail "$DATA/$f is missing: Fashion-MNIST comes from Debian's dataset-fashion-mnist \
(or scripts/fetch-data.sh fashion); BENCH_DATA=DIR points elsewhere"
done

mkdir -p "$BUILD/bench"
log="$BUILD/bench/bench.log"
status="$BUILD/bench/status"
# The exit status of bench.py survives the pipe through tee in a file (POSIX sh has no pipefail).
{ "$PYTHON" bench/bench.py; echo $? > "$status"; } 2>&1 | tee "$log"
rc=$(cat "$status")
[ "$rc" -eq 0 ] || fail "bench/bench.py failed (exit $rc); see $log"
# Int8 models against float ones (and PyTorch, ONNX Runtime): bench/int8.py, appended to the results.
{ "$PYTHON" bench/int8.py; echo $? > "$status"; } 2>&1 | tee -a "$log"
rc=$(cat "$status")
[ "$rc" -eq 0 ] || fail "bench/int8.py failed (exit $rc); see $log"
printf '\n' >> "$BUILD/bench/results.md"
cat "$BUILD/bench/int8.md" >> "$BUILD/bench/results.md"

if [ "${BENCH_DOC:-0}" = 1 ]; then
    cat bench/doc_header.md "$BUILD/bench/results.md" > docs/benchmarks.md.tmp
    mv docs/benchmarks.md.tmp docs/benchmarks.md
    echo "bench: wrote docs/benchmarks.md"
fi
