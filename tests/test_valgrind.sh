#!/bin/sh
# test_valgrind.sh - the neurite command's main paths under valgrind: the lecture's network (and --trace),
# xor, training on a CSV table and on a slice of Fashion-MNIST (with a checkpoint, a resume and
# --check-numerics), eval, predict, info, ONNX and safetensors out and in, int8 quantization and its model,
# and a few ways to fail. Each run must end with the command's own exit status, and valgrind must find no
# error and no leak (definite, indirect or possible). valgrind hides AVX-512 from the program, so the int8
# runs take the AVX2 kernel.
#
# Sizes are tiny: valgrind runs the code some 30 times slower. In the sanitizer build (a build directory
# whose name ends in "san") the binaries carry ASan, which valgrind cannot run: the test says so and counts
# nothing.
NAME=test_valgrind
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$B/neurite
FASHION=/usr/share/datasets/fashion-mnist

case $B in
*san)
    echo "test_valgrind: skipped: $B is a sanitizer build, which valgrind cannot run; checked in the plain build"
    report
    exit $?
    ;;
esac
if ! command -v valgrind >/dev/null 2>&1; then
    bad "valgrind is not installed (apt-get install valgrind)"
    report
    exit 1
fi

# vg STATUS ARGS...: runs neurite ARGS under valgrind; the command must exit with STATUS and valgrind must report
# no errors and no leaks.
vg() {
    want=$1
    shift
    valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
        --log-file="$TMP/vg.log" "$N" "$@" >"$TMP/vg.out" 2>"$TMP/vg.err"
    got=$?
    if [ "$got" -eq 99 ] || ! grep -q 'ERROR SUMMARY: 0 errors' "$TMP/vg.log"; then
        bad "neurite $*: valgrind found errors or leaks: $(grep -E 'ERROR SUMMARY|lost:|Invalid|uninitialised' "$TMP/vg.log" | head -8)"
    elif [ "$got" -ne "$want" ]; then
        bad "neurite $*: exited $got under valgrind, expected $want: $(tail -3 "$TMP/vg.err")"
    else
        ok
    fi
}

# The lecture's network, small, on two threads, writing every file it can; and one traced step.
vg 0 seed --in 20 --hidden 8 --out 3 --iters 3 --print-every 1 --threads 2 --save-w1 "$TMP/w1.npy" \
    --save-w2 "$TMP/w2.npy" --losses "$TMP/losses.txt"
vg 0 seed --in 20 --hidden 8 --out 3 --iters 2 --w1 "$TMP/w1.npy" --w2 "$TMP/w2.npy" --print-every 0
vg 0 seed --iters 1 --trace --batch 8 --in 30 --hidden 6 --out 4
vg 0 xor --steps 200

# A CSV table: train with a log, a checkpoint and --check-numerics; resume; evaluate; predict; describe.
table_csv 60 "$TMP/t.csv"
vg 0 train --data "$TMP/t.csv" --label kind --layers 8-3 --epochs 2 --schedule const --batch 16 --threads 2 --quiet \
    --check-numerics --log "$TMP/log.csv" --checkpoint "$TMP/t.ckpt" --checkpoint-every 2 --out "$TMP/t.nrm"
vg 0 train --resume "$TMP/t.ckpt" --epochs 3 --quiet
vg 0 eval "$TMP/t.nrm" --data "$TMP/t.csv" --label kind
vg 0 predict "$TMP/t.nrm" "$TMP/t.csv" --label kind --csv
vg 0 info "$TMP/t.ckpt"

# A slice of Fashion-MNIST: the first 300 test images and labels, as a gzip-compressed IDX pair.
if [ -r "$FASHION/t10k-images-idx3-ubyte.gz" ]; then
    be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
    gzip -dc "$FASHION/t10k-images-idx3-ubyte.gz" | head -c $((16 + 300 * 784)) >"$TMP/s-images-idx3-ubyte"
    gzip -dc "$FASHION/t10k-labels-idx1-ubyte.gz" | head -c $((8 + 300)) >"$TMP/s-labels-idx1-ubyte"
    for f in s-images-idx3-ubyte s-labels-idx1-ubyte; do
        be32 300 | dd of="$TMP/$f" bs=1 seek=4 conv=notrunc 2>/dev/null
        gzip -n "$TMP/$f"
    done
    S=$TMP/s-images-idx3-ubyte.gz
    vg 0 train --data "$S" --limit 200 --val 40 --epochs 1 --batch 32 --layers 784-16-10 --augment 1 --quiet \
        --test "$S" --out "$TMP/f.nrm"
    vg 0 train --data "$S" --limit 100 --val 0 --epochs 1 --batch 50 --layers conv2k3-conv8k3-pool2-fc10 --quiet \
        --out "$TMP/c.nrm"
    vg 0 eval "$TMP/f.nrm" --data "$S"
    printf 'P5\n28 28\n255\n' >"$TMP/one.pgm"
    head -c 784 /dev/zero >>"$TMP/one.pgm"
    vg 0 predict "$TMP/c.nrm" "$TMP/one.pgm" "$S"
    vg 0 info "$TMP/c.nrm"
    # The CNN out to ONNX and safetensors and back in (ONNX only where the build has it).
    if "$N" import /nonexistent.onnx --out "$TMP/x.nrm" 2>&1 | grep -q "cannot open"; then
        vg 0 export "$TMP/c.nrm" --out "$TMP/c.onnx"
        vg 0 import "$TMP/c.onnx" --out "$TMP/c2.nrm"
        vg 0 eval "$TMP/c.onnx" --data "$S"
        head -c 2000 "$TMP/c.onnx" >"$TMP/cut.onnx"
        vg 1 import "$TMP/cut.onnx" --out "$TMP/x.nrm"
    fi
    vg 0 export "$TMP/c.nrm" --out "$TMP/c.safetensors"
    vg 0 import "$TMP/c.safetensors" --like "$TMP/c.nrm" --out "$TMP/c3.nrm"
    # int8: quantize (calibration, folding, the integer layers), then use and export the int8 model.
    vg 0 quantize "$TMP/c.nrm" --calib "$S" --samples 50 --method percentile --out "$TMP/c.q.nrm"
    vg 0 quantize "$TMP/f.nrm" --calib "$S" --samples 50 --out "$TMP/f.q.nrm"
    vg 0 predict "$TMP/c.q.nrm" "$TMP/one.pgm" "$S" --logits
    vg 0 eval "$TMP/f.q.nrm" --data "$S"
    vg 0 export "$TMP/c.q.nrm" --out "$TMP/c.q.h"
    vg 1 quantize "$TMP/c.q.nrm" --calib "$S" --out "$TMP/x.nrm"
    vg 1 import "$TMP/c.safetensors" --layers conv2k3-fc10 --input 28x28x1 --out "$TMP/x.nrm"
else
    bad "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
fi

# Failures: each ends in one line and the same exit status, with nothing leaked on the way out.
vg 1 info "$TMP/missing.nrm"
cp "$TMP/t.nrm" "$TMP/flip.nrm"
printf 'X' | dd of="$TMP/flip.nrm" bs=1 seek=100 conv=notrunc 2>/dev/null
vg 1 info "$TMP/flip.nrm"
vg 1 eval "$TMP/flip.nrm" --data "$TMP/t.csv"
vg 1 train --data "$TMP/missing.csv"
vg 2 train --data "$TMP/t.csv" --label kind --layers 8-rleu-3
vg 2 train --data "$TMP/t.csv" --label kind --layers fc99999999999
printf 'a,b,kind\n1,nan,0\n' >"$TMP/nan.csv"
vg 1 train --data "$TMP/nan.csv" --label kind
vg 1 predict "$TMP/t.nrm" "$TMP/w1.npy"
vg 1 seed --w1 "$TMP/w2.npy" --iters 1
no_temp_files "$TMP"

report
