#!/bin/sh
# test_reliability.sh - every class of bad input in docs/reliability.md, tried from the command line: truncated,
# bit-flipped, oversized headers, wrong magic, wrong version, NaN data, labels out of range, hostile sizes in
# files and flags, a full disk, an unwritable output, and a save interrupted by kill -9. Each must end with
# exactly one line on stderr naming the file (or the flag) and the problem, a non-zero exit status below 128
# (no crash), and no partial or temporary file left; an output that existed before must survive whole.
#
# Hostile sizes run under `ulimit -v` of 2 GB (in the sanitizer build, where ASan needs far more address space,
# under ASan's own allocation limit), so a size that slipped past a check would fail to allocate instead of
# going unnoticed. The full and read-only disks are small tmpfs mounts, so those checks need root; without
# root (or if mount fails) they are skipped with a note and count nothing.
NAME=test_reliability
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$B/neurite
PY=${PYTHON:-python3}
MOUNTS=""
trap 'for m in $MOUNTS; do umount "$m" 2>/dev/null; done; rm -rf "$TMP"' EXIT

case $B in
*san) SAN=1 ;;
*) SAN=0 ;;
esac

# refuse STATUS PATTERN CMD...: lib.sh's expect (exit STATUS, one line on stderr matching PATTERN). With
# RELIABILITY_LOG=FILE set, the line printed is appended to FILE (docs/reliability.md quotes them).
refuse() {
    expect "$@"
    if [ -n "${RELIABILITY_LOG:-}" ]; then
        shift 2
        echo "\$ neurite $(echo "$*" | sed -e "s|$TMP/||g" -e 's|^limited ||' -e 's|^[^ ]*/neurite ||')" >>"$RELIABILITY_LOG"
        sed -e "s|$TMP/||g" "$TMP/err" >>"$RELIABILITY_LOG"
    fi
}

# limited CMD...: runs CMD unable to allocate more than about 2 GB in all.
limited() {
    if [ "$SAN" = 1 ]; then
        # ASan notes each allocation it refuses on stderr; neurite's own line is what is checked.
        ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2048 "$@" 2>"$TMP/asan.err"
        status=$?
        grep -v 'WARNING: AddressSanitizer failed to allocate' "$TMP/asan.err" >&2
        return $status
    else
        (ulimit -v 2097152 && exec "$@")
    fi
}

# same FILE COPY: FILE is still byte for byte COPY.
same() {
    if cmp -s "$1" "$2"; then ok; else bad "$1 changed (it should have survived whole)"; fi
}

# py SCRIPT ARGS...: a small Python program (the standard library only) that crafts a file.
py() {
    script=$1
    shift
    "$PY" -c "$script" "$@" || bad "crafting a file failed: $*"
}

# Rewrites a model file's length field and checksum after a change, so the change reaches the parser.
RESEAL='
import struct, sys, zlib
def reseal(d):
    d[16:24] = struct.pack("<Q", len(d))
    d[-4:] = struct.pack("<I", zlib.crc32(bytes(d[:-4])) & 0xffffffff)
    return d
'

# ---- the files to damage ----

table_csv 60 "$TMP/t.csv"
"$N" train --data "$TMP/t.csv" --label kind --layers 8-3 --epochs 2 --quiet --out "$TMP/m.nrm" \
    --checkpoint "$TMP/c.ckpt" >/dev/null 2>&1 && ok || bad "training the model to damage failed"

# IDX: COUNT images of 28x28 and their labels (0 to 9), plain and gzip-compressed.
py '
import sys
n = int(sys.argv[2])
img = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
img += bytes((i * 7 + (i // 784) * 13) % 256 for i in range(n * 784))
lab = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(i % 10 for i in range(n))
open(sys.argv[1] + "/x-images-idx3-ubyte", "wb").write(img)
open(sys.argv[1] + "/x-labels-idx1-ubyte", "wb").write(lab)
' "$TMP" 256
mkdir "$TMP/gz"
gzip -nc "$TMP/x-images-idx3-ubyte" >"$TMP/gz/x-images-idx3-ubyte.gz"
gzip -nc "$TMP/x-labels-idx1-ubyte" >"$TMP/gz/x-labels-idx1-ubyte.gz"
X=$TMP/x-images-idx3-ubyte
"$N" train --data "$X" --epochs 1 --layers 784-16-10 --quiet --out "$TMP/img.nrm" >/dev/null 2>&1 && ok ||
    bad "training on the IDX files failed"

# An IDX images file named NAME (with its labels file beside it, made by copying the good one) from bytes.
idx_pair() {
    name=$1
    shift
    py "import sys; open(sys.argv[1], 'wb').write(bytes.fromhex(sys.argv[2]))" "$TMP/$name-images-idx3-ubyte" "$1"
    cp "$TMP/x-labels-idx1-ubyte" "$TMP/$name-labels-idx1-ubyte"
}

# A .npy of NAME with header DICT followed by the hex bytes DATA.
npy() {
    py '
import sys
d = sys.argv[2].encode()
pad = 64 - (10 + len(d) + 1) % 64
h = d + b" " * (pad % 64) + b"\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + bytes.fromhex(sys.argv[3]))
' "$TMP/$1" "$2" "$3"
}
F4_ONES=0000803f0000803f0000803f0000803f0000803f0000803f

# ---- truncated ----

head -c 100 "$TMP/m.nrm" >"$TMP/cut.nrm"
refuse 1 "cut.nrm: truncated: the header says [0-9]+ bytes, the file has 100" "$N" info "$TMP/cut.nrm"
head -c 300 "$TMP/c.ckpt" >"$TMP/cut.ckpt"
refuse 1 "cut.ckpt: truncated" "$N" train --data "$TMP/t.csv" --label kind --resume "$TMP/cut.ckpt" --quiet
head -c 5000 "$X" >"$TMP/cut-images-idx3-ubyte"
cp "$TMP/x-labels-idx1-ubyte" "$TMP/cut-labels-idx1-ubyte"
refuse 1 "cut-images-idx3-ubyte: truncated: the header promises 200704 bytes of images after byte 16, but the file ends at byte 5000" \
    "$N" train --data "$TMP/cut-images-idx3-ubyte" --quiet
mkdir "$TMP/cutgz"
gz_size=$(wc -c <"$TMP/gz/x-images-idx3-ubyte.gz")
head -c $((gz_size / 2)) "$TMP/gz/x-images-idx3-ubyte.gz" >"$TMP/cutgz/x-images-idx3-ubyte.gz"
cp "$TMP/gz/x-labels-idx1-ubyte.gz" "$TMP/cutgz/"
refuse 1 "x-images-idx3-ubyte.gz: truncated: the header promises 200704 bytes of images after byte 16, but the data ends at byte [0-9]+ \(uncompressed; the gzip file is cut short\)" \
    "$N" eval "$TMP/img.nrm" --data "$TMP/cutgz/x-images-idx3-ubyte.gz"
head -c $((gz_size - 4)) "$TMP/gz/x-images-idx3-ubyte.gz" >"$TMP/cutgz/x-images-idx3-ubyte.gz"
refuse 1 "x-images-idx3-ubyte.gz: truncated gzip file: the images are all there, but the end of the gzip stream \(its checksum\) is missing" \
    "$N" eval "$TMP/img.nrm" --data "$TMP/cutgz/x-images-idx3-ubyte.gz"
head -c 150 "$TMP/t.csv" >"$TMP/cut.csv"
refuse 1 "cut.csv: line 15, column 4: empty field" "$N" train --data "$TMP/cut.csv" --label kind --quiet
head -c 147 "$TMP/t.csv" >"$TMP/cut2.csv"
refuse 1 "cut2.csv: line 15 has 2 columns, expected 4 \(as on line 1\)" "$N" train --data "$TMP/cut2.csv" --label kind --quiet
npy cut.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }" 0000803f0000803f
refuse 1 "cut.npy: truncated: the header promises 6 values \(24 bytes\) but 8 bytes follow" \
    "$N" predict "$TMP/m.nrm" "$TMP/cut.npy"

# ---- bit-flipped ----

cp "$TMP/m.nrm" "$TMP/flip.nrm"
printf '\001' | dd of="$TMP/flip.nrm" bs=1 seek=300 conv=notrunc 2>/dev/null
refuse 1 "flip.nrm: checksum mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\): the file is damaged" \
    "$N" predict "$TMP/flip.nrm" "$TMP/t.csv"
cp "$TMP/c.ckpt" "$TMP/flip.ckpt"
printf '\001' | dd of="$TMP/flip.ckpt" bs=1 seek=500 conv=notrunc 2>/dev/null
refuse 1 "flip.ckpt: checksum mismatch" "$N" train --data "$TMP/t.csv" --label kind --resume "$TMP/flip.ckpt" --quiet
mkdir "$TMP/flipgz"
cp "$TMP/gz/x-images-idx3-ubyte.gz" "$TMP/gz/x-labels-idx1-ubyte.gz" "$TMP/flipgz/"
printf '\377\377\377\377' | dd of="$TMP/flipgz/x-images-idx3-ubyte.gz" bs=1 seek=$((gz_size / 2)) conv=notrunc 2>/dev/null
refuse 1 "x-images-idx3-ubyte.gz: truncated: the header promises 200704 bytes of images after byte 16, but the data ends at byte [0-9]+ \(uncompressed; the gzip file is cut short\)" \
    "$N" train --data "$TMP/flipgz/x-images-idx3-ubyte.gz" --quiet
cp "$TMP/gz/x-images-idx3-ubyte.gz" "$TMP/flipgz/"
printf '\001' | dd of="$TMP/flipgz/x-images-idx3-ubyte.gz" bs=1 seek=$((gz_size - 6)) conv=notrunc 2>/dev/null
refuse 1 "x-images-idx3-ubyte.gz: corrupt gzip data: incorrect data check" "$N" train --data "$TMP/flipgz/x-images-idx3-ubyte.gz" --quiet
cp "$TMP/gz/x-images-idx3-ubyte.gz" "$TMP/flipgz/"
printf '\377' | dd of="$TMP/flipgz/x-images-idx3-ubyte.gz" bs=1 seek=40 conv=notrunc 2>/dev/null
refuse 1 "x-images-idx3-ubyte.gz: (corrupt gzip data|truncated)" "$N" train --data "$TMP/flipgz/x-images-idx3-ubyte.gz" --quiet
idx_pair flipdim 0000080300000100000000200000001c
refuse 1 "flipdim-images-idx3-ubyte: truncated: the header promises" "$N" train --data "$TMP/flipdim-images-idx3-ubyte" --quiet
npy flip.npy "{'descr': '<f4', 'fortran_order': False, 'shaqe': (3, 2), }" "$F4_ONES"
refuse 1 "flip.npy: unexpected key 'shaqe' in .npy header" "$N" predict "$TMP/m.nrm" "$TMP/flip.npy"

# ---- oversized headers (under a memory limit: nothing may be allocated for them) ----

idx_pair huge 000008030000ffff0000ffff0000ffff
refuse 1 "huge-images-idx3-ubyte: the sizes in the header \(dimension 2 at byte 12 is 65535\) come to more than the limit of 17179869184 values" \
    limited "$N" train --data "$TMP/huge-images-idx3-ubyte" --quiet
mkdir "$TMP/hugegz"
py "import sys; open(sys.argv[1], 'wb').write(bytes.fromhex('000008030000400000000400000004000000'))" "$TMP/hugegz/x-images-idx3-ubyte"
gzip -n "$TMP/hugegz/x-images-idx3-ubyte"
cp "$TMP/gz/x-labels-idx1-ubyte.gz" "$TMP/hugegz/"
refuse 1 "x-images-idx3-ubyte.gz: the header promises 17179869184 bytes of images, more than a gzip file of [0-9]+ bytes can hold" \
    limited "$N" train --data "$TMP/hugegz/x-images-idx3-ubyte.gz" --quiet
idx_pair count 00000803ffffffff0000000100000001
refuse 1 "count-images-idx3-ubyte: 4294967295 images \(at byte 4\) is more than the limit of 2147483648" \
    limited "$N" train --data "$TMP/count-images-idx3-ubyte" --quiet
npy huge.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }" "$F4_ONES"
refuse 1 "huge.npy: the shape in the .npy header is too large" limited "$N" predict "$TMP/m.nrm" "$TMP/huge.npy"
npy huger.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }" "$F4_ONES"
refuse 1 "huger.npy: a dimension in the .npy header's shape is too large" limited "$N" predict "$TMP/m.nrm" "$TMP/huger.npy"
npy square.npy "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }" "$F4_ONES"
refuse 1 "square.npy: the shape in the .npy header is too large" limited "$N" seed --w1 "$TMP/square.npy" --iters 1
# A model whose first dense layer claims 2^40 units, one whose input is 65535 x 65535 x 65535, one with 2^31
# layers, one whose ARCH section claims 2^64 - 1 bytes. The first layer is "dense" at byte 56, its units at 63.
py "$RESEAL
import struct, sys
g = bytearray(open(sys.argv[1], 'rb').read())
d = bytearray(g); d[63:71] = struct.pack('<Q', 1 << 40); open(sys.argv[2] + '/units.nrm', 'wb').write(reseal(d))
d = bytearray(g); d[63:71] = struct.pack('<Q', 1 << 24); open(sys.argv[2] + '/params.nrm', 'wb').write(reseal(d))
d = bytearray(g); d[36:48] = struct.pack('<III', 65535, 65535, 65535); open(sys.argv[2] + '/input.nrm', 'wb').write(reseal(d))
d = bytearray(g); d[52:56] = struct.pack('<I', 1 << 31); open(sys.argv[2] + '/layers.nrm', 'wb').write(reseal(d))
d = bytearray(g); d[28:36] = b'\xff' * 8; open(sys.argv[2] + '/section.nrm', 'wb').write(reseal(d))
" "$TMP/m.nrm" "$TMP"
refuse 1 "units.nrm: ARCH: layer 0 \(dense\): dense layer: 1099511627776 units is more than the limit of 17179869184" \
    limited "$N" info "$TMP/units.nrm"
refuse 1 "params.nrm: ARCH: the layers need [0-9]+ parameters but the file holds at most [0-9]+" limited "$N" info "$TMP/params.nrm"
refuse 1 "input.nrm: ARCH: input shape 65535x65535x65535 is not valid" limited "$N" info "$TMP/input.nrm"
refuse 1 "layers.nrm: ARCH: 2147483648 layers is not a valid count \(1 to 1024\)" limited "$N" info "$TMP/layers.nrm"
refuse 1 "section.nrm: section ARCH of 18446744073709551615 bytes runs past the end" limited "$N" info "$TMP/section.nrm"
# A CSV line of 2^24 + 1 columns is refused; one of a million columns loads without reserving a thousand rows.
awk 'BEGIN { for (i = 0; i < 16777216; i++) printf "0,"; print "1" }' >"$TMP/wide.csv"
refuse 1 "wide.csv: line 1 has more than 16777216 columns" limited "$N" predict "$TMP/m.nrm" "$TMP/wide.csv"
awk 'BEGIN { for (i = 0; i < 999999; i++) printf "0,"; print "1" }' >"$TMP/million.csv"
refuse 1 "million.csv: 1000000 values per sample, the model takes 3" limited "$N" predict "$TMP/m.nrm" "$TMP/million.csv"
rm -f "$TMP/wide.csv" "$TMP/million.csv"

# ---- hostile sizes in flags and layer lists ----

refuse 2 "--batch: 99999999 is out of range" limited "$N" train --data "$TMP/t.csv" --batch 99999999
refuse 2 "--epochs: '18446744073709551616' is not a whole number" limited "$N" train --data "$TMP/t.csv" --epochs 18446744073709551616
refuse 2 "--epochs: 99999999 is out of range" limited "$N" train --data "$TMP/t.csv" --epochs 99999999
refuse 2 "--limit: 0 is out of range" limited "$N" train --data "$TMP/t.csv" --limit 0
refuse 1 "cannot keep 1000000000000 of 60 samples" limited "$N" train --data "$TMP/t.csv" --label kind --limit 1000000000000 --quiet
refuse 2 "--val: 999999999 validation samples leave none of the 60" limited "$N" train --data "$TMP/t.csv" --label kind --val 999999999
refuse 2 "--threads: 257 is out of range" limited "$N" train --data "$TMP/t.csv" --threads 257
refuse 2 "--hidden: 99999999999 is out of range" limited "$N" seed --hidden 99999999999
refuse 2 "more than 4 GB" limited "$N" seed --in 1000000 --hidden 100000
refuse 1 "out of memory allocating [0-9]+ bytes" limited "$N" seed --batch 1000000 --iters 1
refuse 2 "'fc99999999999': dense layer: 99999999999 units is more than the limit of 17179869184" \
    limited "$N" train --data "$TMP/t.csv" --label kind --layers fc99999999999
refuse 2 "a number in 'fc99999999999999999999' is too large" \
    limited "$N" train --data "$TMP/t.csv" --label kind --layers fc99999999999999999999
refuse 2 "a number in 'conv99999999999999k3' is too large" limited "$N" train --data "$X" --layers conv99999999999999k3
refuse 2 "'conv3k99999': conv2d layer: kernel 99999 is out of range" limited "$N" train --data "$X" --layers conv3k99999-fc10
refuse 2 "'conv99999k3': conv2d layer: a 3x3 kernel on a 1x1x3 input" limited "$N" train --data "$TMP/t.csv" --label kind --layers conv99999k3
# conv99999k3 on 28x28 images is a legal network whose dense layer needs 3 GB: it fails when that memory is asked
# for, with a message (the library's limits are per buffer, not per machine; see docs/reliability.md).
refuse 2 "--layers: layer 3 of the network \(dense\): out of memory allocating [0-9]+ bytes" \
    limited "$N" train --data "$X" --layers conv99999k3-fc10 --quiet
refuse 2 "layer 3 of the network \(dense\): out of memory allocating 40002000000 bytes" \
    limited "$N" train --data "$TMP/t.csv" --label kind --layers 100000-100000-3
no_temp_files "$TMP"

# ---- wrong magic ----

cp "$TMP/m.nrm" "$TMP/magic.nrm"
printf 'PK' | dd of="$TMP/magic.nrm" bs=1 seek=0 conv=notrunc 2>/dev/null
refuse 1 "magic.nrm: not a neurite model \(bad magic\)" "$N" eval "$TMP/magic.nrm" --data "$TMP/t.csv"
refuse 1 "t.csv: not a neurite model" "$N" info "$TMP/t.csv"
idx_pair zip 504b0304140000000800
refuse 1 "zip-images-idx3-ubyte: not an IDX file: magic 0x504b0304 at byte 0 \(IDX images start 0x00000803\)" \
    "$N" train --data "$TMP/zip-images-idx3-ubyte" --quiet
refuse 1 "x-labels-idx1-ubyte: an IDX labels file; give the images file" "$N" train --data "$TMP/x-labels-idx1-ubyte" --quiet
refuse 1 "m.nrm: unknown kind of data file" "$N" train --data "$TMP/m.nrm" --quiet
py "import sys; open(sys.argv[1], 'wb').write(b'\x93NUMPZ\x01\x00\x10\x00{}' + b' ' * 6)" "$TMP/magic.npy"
refuse 1 "magic.npy: not a .npy file \(bad magic\)" "$N" predict "$TMP/m.nrm" "$TMP/magic.npy"
head -c 400 "$TMP/m.nrm" >"$TMP/binary.csv"
refuse 1 "binary.csv: " "$N" train --data "$TMP/binary.csv" --quiet

# ---- wrong version ----

py "$RESEAL
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[8] = 99
open(sys.argv[2], 'wb').write(reseal(d))
" "$TMP/m.nrm" "$TMP/version.nrm"
refuse 1 "version.nrm: model format version 99; this neurite reads versions 1 to 3" "$N" info "$TMP/version.nrm"
py "import sys; open(sys.argv[1], 'wb').write(b'\x93NUMPY\x09\x00\x10\x00{}' + b' ' * 6)" "$TMP/version.npy"
refuse 1 "version.npy: unsupported .npy version 9.0" "$N" seed --w1 "$TMP/version.npy"
idx_pair float 00000d030000000100000001000000013f800000
refuse 1 "float-images-idx3-ubyte: IDX values of type 0x0d \(float\) at byte 2 are not supported" \
    "$N" train --data "$TMP/float-images-idx3-ubyte" --quiet

# ---- NaN data ----

printf 'a,b,kind\n1,2,0\n3,nan,1\n' >"$TMP/nan.csv"
refuse 1 "nan.csv: line 3, column 2: nan is not a finite number" "$N" train --data "$TMP/nan.csv" --label kind --quiet
printf 'a,b,kind\n1,2,0\n3,-inf,1\n' >"$TMP/inf.csv"
refuse 1 "inf.csv: line 3, column 2: -inf is not a finite number" "$N" eval "$TMP/m.nrm" --data "$TMP/inf.csv" --label kind
printf 'a,b,kind\n1,1e39,0\n' >"$TMP/f32.csv"
refuse 1 "f32.csv: line 2, column 2: 1e39 is too large for a float32 number" "$N" train --data "$TMP/f32.csv" --label kind
npy nan.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" 0000803f0000c07f000000000000803f0000803f0000803f
refuse 1 "nan.npy: element \[0, 1\]: nan is not a finite number" "$N" train --data "$TMP/nan.npy" --quiet
npy nanw.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }" 0000803f0000c07f000000000000803f
refuse 1 "nanw.npy: value 1 \(row 0, column 1\) is nan" "$N" seed --w2 "$TMP/nanw.npy" --out 2 --hidden 2 --iters 1
# A model file whose first weight is NaN (the checksum made right): refused, not used to predict NaN.
py "$RESEAL
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
at = d.index(b'dense0.w') + 8 + 1 + 16
d[at:at + 4] = b'\x00\x00\xc0\x7f'
open(sys.argv[2], 'wb').write(reseal(d))
" "$TMP/m.nrm" "$TMP/nanw.nrm"
refuse 1 "nanw.nrm: TENS: tensor dense0.w: value 0 is nan; a model's weights are finite numbers" \
    "$N" predict "$TMP/nanw.nrm" "$TMP/t.csv"
# Training that diverges stops at the first NaN or infinity and says where.
{
    echo "a,b,kind"
    i=0
    while [ $i -lt 40 ]; do
        echo "1e30,-1e30,$((i % 2))"
        i=$((i + 1))
    done
} >"$TMP/diverge.csv"
refuse 1 "a NaN or infinity first appeared in the forward pass of layer 0 \(dense 2->4\)" "$N" train \
    --data "$TMP/diverge.csv" --label kind --layers 4-2 --scale none --opt sgd --lr 10 --epochs 3 --quiet \
    --check-numerics --out "$TMP/diverged.nrm"
[ ! -e "$TMP/diverged.nrm" ] && ok || bad "a diverged run saved a model"

# ---- labels out of range ----

printf 'a,kind\n1,0\n2,70000\n' >"$TMP/big-label.csv"
refuse 1 "big-label.csv: line 3, column 2: label 70000 is above 65535" "$N" train --data "$TMP/big-label.csv" --label kind
printf 'a,kind\n1,0\n2,-1\n' >"$TMP/neg-label.csv"
refuse 1 "neg-label.csv: line 3, column 2: label -1 is negative" "$N" train --data "$TMP/neg-label.csv" --label kind
printf 'a,kind\n1,0\n2,2.5\n' >"$TMP/frac-label.csv"
refuse 1 "frac-label.csv: line 3, column 2: label 2.5 is not a whole number" "$N" train --data "$TMP/frac-label.csv" --label kind
npy label.npy "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }" 0000803f000020400000803f00000000
refuse 1 "label.npy: element \[0, 1\]: label 2.5 is not a whole number" "$N" train --data "$TMP/label.npy" --quiet
printf 'a,b,c,kind\n1,2,3,0\n4,5,6,7\n' >"$TMP/class7.csv"
refuse 1 "the evaluation data has 8 classes, the network has only 3 outputs|8 classes" "$N" eval "$TMP/m.nrm" --data "$TMP/class7.csv" --label kind
py "import sys; open(sys.argv[1], 'wb').write(bytes([0, 0, 8, 1, 0, 0, 1, 0]) + bytes([200] * 256))" "$TMP/bad-labels-idx1-ubyte"
cp "$X" "$TMP/bad-images-idx3-ubyte"
refuse 1 "201 classes" "$N" eval "$TMP/img.nrm" --data "$TMP/bad-images-idx3-ubyte"
no_temp_files "$TMP"

# ---- unwritable output ----

mkdir "$TMP/adir"
# Outputs are checked before any work: a typo costs a second, not a run.
refuse 2 "--out .*adir: is a folder, not a file" "$N" train --data "$TMP/t.csv" --label kind --epochs 1 --quiet --out "$TMP/adir"
refuse 2 "--out .*missing/m.nrm: the folder .*missing does not exist" "$N" train --data "$TMP/t.csv" --label kind \
    --epochs 1 --quiet --out "$TMP/missing/m.nrm"
refuse 2 "--checkpoint .*missing/c.ckpt: the folder .*missing does not exist" "$N" train --data "$TMP/t.csv" \
    --label kind --epochs 1 --quiet --checkpoint "$TMP/missing/c.ckpt"
refuse 2 "--log .*missing/l.csv: the folder .*missing does not exist" "$N" train --data "$TMP/t.csv" --label kind \
    --epochs 1 --quiet --log "$TMP/missing/l.csv"
refuse 2 "--out /proc/nope.nrm: cannot write into /proc" "$N" train --data "$TMP/t.csv" --label kind --epochs 1 \
    --quiet --out /proc/nope.nrm
[ ! -e /proc/nope.nrm ] && ok || bad "the check created /proc/nope.nrm"
refuse 1 "missing/w1.npy: cannot write" "$N" seed --iters 1 --print-every 0 --save-w1 "$TMP/missing/w1.npy"
no_temp_files "$TMP"
if [ "$(id -u)" = 0 ]; then
    RO=$TMP/ro
    mkdir "$RO"
    if mount -t tmpfs -o size=64k,ro tmpfs "$RO" 2>/dev/null; then
        MOUNTS="$MOUNTS $RO"
        refuse 2 "--out .*ro/m.nrm: cannot write into .*ro: Read-only file system" "$N" train --data "$TMP/t.csv" \
            --label kind --epochs 1 --quiet --out "$RO/m.nrm"
        refuse 2 "--checkpoint .*ro/c.ckpt: cannot write into .*ro: Read-only file system" "$N" train \
            --data "$TMP/t.csv" --label kind --epochs 1 --quiet --checkpoint "$RO/c.ckpt"
        refuse 1 "ro/w1.npy: cannot write: Read-only file system" "$N" seed --iters 1 --print-every 0 --save-w1 "$RO/w1.npy"
        refuse 1 "ro/l.txt: cannot write: Read-only file system" "$N" seed --iters 2 --print-every 0 --losses "$RO/l.txt"
    else
        echo "test_reliability: note: cannot mount a read-only tmpfs here; read-only disk checks skipped"
    fi
else
    mkdir "$TMP/locked"
    chmod 555 "$TMP/locked"
    refuse 2 "--out .*locked/m.nrm: cannot write into .*locked: Permission denied" "$N" train --data "$TMP/t.csv" \
        --label kind --epochs 1 --quiet --out "$TMP/locked/m.nrm"
    refuse 1 "locked/w1.npy: cannot write: Permission denied" "$N" seed --iters 1 --print-every 0 --save-w1 "$TMP/locked/w1.npy"
fi

# ---- out of disk space: old files survive whole ----

if [ "$(id -u)" = 0 ]; then
    D=$TMP/full
    mkdir "$D"
    if mount -t tmpfs -o size=64k tmpfs "$D" 2>/dev/null; then
        MOUNTS="$MOUNTS $D"
        # The old outputs, small enough to fit.
        "$N" train --data "$TMP/t.csv" --label kind --layers 8-3 --epochs 1 --quiet --out "$D/m.nrm" \
            --checkpoint "$D/c.ckpt" >/dev/null 2>&1
        "$N" seed --in 4 --hidden 2 --out 1 --iters 5 --print-every 0 --save-w1 "$D/w1.npy" --losses "$D/losses.txt" \
            >/dev/null 2>&1
        for f in m.nrm c.ckpt w1.npy losses.txt; do cp "$D/$f" "$TMP/old-$f"; done
        # New ones larger than the space left: the old files survive, and the trained weights are saved in the
        # temporary folder (or beside a checkpoint), the one line says where.
        mkdir "$TMP/fallback"
        TMPDIR=$TMP/fallback refuse 1 "full/m.nrm: write failed: No space left on device; the trained weights are \
saved in .*fallback/neurite-[0-9]+-m.nrm instead" "$N" train --data "$TMP/t.csv" --label kind --layers 8192-3 \
            --epochs 1 --quiet --out "$D/m.nrm"
        same "$D/m.nrm" "$TMP/old-m.nrm"
        saved=$(sed -n 's/.* saved in \(.*\) instead$/\1/p' "$TMP/err")
        "$N" info "$saved" 2>/dev/null | grep -q 'dense 3->8192' && ok || bad "the fallback model '$saved' does not load"
        TMPDIR=$TMP/fallback refuse 1 "full/c.ckpt: write failed: No space left on device; the weights so far are \
saved in .*fallback/neurite-[0-9]+-model.nrm instead" "$N" train --data "$TMP/t.csv" --label kind --layers 4096-3 \
            --epochs 1 --quiet --checkpoint "$D/c.ckpt"
        same "$D/c.ckpt" "$TMP/old-c.ckpt"
        rm -rf "$TMP/fallback"
        refuse 1 "full/w1.npy: write failed: No space left on device" "$N" seed --iters 1 --print-every 0 --save-w1 "$D/w1.npy"
        same "$D/w1.npy" "$TMP/old-w1.npy"
        refuse 1 "full/losses.txt: write failed: No space left on device" "$N" seed --in 4 --hidden 2 --out 1 \
            --iters 20000 --print-every 0 --losses "$D/losses.txt"
        same "$D/losses.txt" "$TMP/old-losses.txt"
        # Fill what is left: a per-epoch log cannot be written, and the run goes on to save its model elsewhere.
        dd if=/dev/zero of="$D/filler" bs=1k count=64 2>/dev/null
        refuse 0 "full/log.csv: write failed: No space left on device" "$N" train --data "$TMP/t.csv" --label kind \
            --layers 8-3 --epochs 1 --quiet --log "$D/log.csv" --out "$TMP/after-full.nrm"
        refuse 0 "dense 3->8" "$N" info "$TMP/after-full.nrm"
        "$N" info "$D/m.nrm" >/dev/null 2>&1 && ok || bad "the old model in the full disk does not load"
        no_temp_files "$D"
    else
        echo "test_reliability: note: cannot mount a tmpfs here; out-of-space checks skipped"
    fi
else
    echo "test_reliability: note: not root, so no tmpfs can be mounted; out-of-space checks skipped"
fi

# ---- the output folder removed during training: the weights go beside the checkpoint ----

mkdir "$TMP/gone" "$TMP/ck"
table_csv 6000 "$TMP/big.csv"
"$N" train --data "$TMP/big.csv" --label kind --layers 256-256-3 --epochs 200 --threads 1 --checkpoint "$TMP/ck/c.ckpt" \
    --out "$TMP/gone/m.nrm" >"$TMP/gone.out" 2>"$TMP/gone.err" &
pid=$!
i=0
while ! grep -q '^ *1 ' "$TMP/gone.out" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
rm -rf "$TMP/gone"
wait $pid
code=$?
[ "$code" -eq 1 ] && ok || bad "training whose output folder vanished exited $code, expected 1"
grep -Eq "gone/m.nrm: cannot write: No such file or directory; the trained weights are saved in .*ck/c.ckpt.final.nrm \
instead" "$TMP/gone.err" && ok || bad "no fallback line: $(cat "$TMP/gone.err")"
"$N" info "$TMP/ck/c.ckpt.final.nrm" >/dev/null 2>&1 && ok || bad "the model saved beside the checkpoint does not load"
if [ -n "${RELIABILITY_LOG:-}" ]; then
    echo "\$ neurite train ... --checkpoint ck/c.ckpt --out gone/m.nrm   (gone/ removed during training)" >>"$RELIABILITY_LOG"
    sed -e "s|$TMP/||g" "$TMP/gone.err" >>"$RELIABILITY_LOG"
fi

# ---- interrupted save: kill -9 while a checkpoint or a model is being written ----

# kill_in_save TARGET DELAY COMMAND...: starts COMMAND, waits until it begins writing TARGET (its temporary file
# TARGET.tmp<pid> appears), lets it write for DELAY seconds more, then kills it with SIGKILL. Sets `cut` to 1 if
# the kill left the temporary file behind (it landed inside the write), and `seen` to 1 if the write was seen.
kill_in_save() {
    target=$1
    delay=$2
    shift 2
    "$@" >/dev/null 2>&1 &
    pid=$!
    seen=0
    tries=0
    while [ $tries -lt 3000 ] && kill -0 "$pid" 2>/dev/null; do
        if [ -e "$target.tmp$pid" ]; then
            seen=1
            break
        fi
        sleep 0.01
        tries=$((tries + 1))
    done
    [ "$delay" != 0 ] && sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    cut=0
    [ -e "$target.tmp$pid" ] && cut=1
}

# A 784-1024-10 network checkpointed after every batch (10 MB with Adam's state). After every kill the checkpoint
# must load whole: the old one or the new one.
K=$TMP/kill
mkdir "$K"
"$N" train --data "$X" --layers 784-1024-10 --epochs 1 --batch 64 --val 0 --quiet --checkpoint "$K/c.ckpt" \
    >/dev/null 2>&1 && ok || bad "the first checkpoint was not written"
interrupted=0
for delay in 0 0.005 0.01 0.02 0.03 0.05; do
    kill_in_save "$K/c.ckpt" "$delay" "$N" train --data "$X" --layers 784-1024-10 --epochs 1000 --batch 16 --val 0 \
        --quiet --threads 1 --checkpoint "$K/c.ckpt" --checkpoint-every 1
    [ "$seen" = 1 ] && ok || bad "kill -9 test: the checkpoint write was never seen"
    interrupted=$((interrupted + cut))
    if "$N" info "$K/c.ckpt" >/dev/null 2>"$TMP/kill.err"; then ok; else bad "after kill -9: $(cat "$TMP/kill.err")"; fi
done
[ "$interrupted" -gt 0 ] && ok || bad "no kill landed inside a checkpoint write in 6 tries (nothing was tested)"
# The next save removes what the killed writers left.
"$N" train --data "$X" --layers 784-1024-10 --epochs 1 --batch 64 --val 0 --quiet --checkpoint "$K/c.ckpt" \
    >/dev/null 2>&1 && ok || bad "a checkpoint after the kills was not written"
no_temp_files "$K"

# The final model of a run (23 MB, trained one batch): after each kill the model is the old file or the whole new
# one (each run has its own seed, so a new file differs from the old).
"$N" train --data "$X" --layers 784-2048-2048-10 --epochs 1 --limit 16 --batch 16 --val 0 --quiet --out "$K/m.nrm" \
    >/dev/null 2>&1 && ok || bad "the first model was not written"
cp "$K/m.nrm" "$TMP/old-kill.nrm"
replaced=0
cut_short=0
seed=1
for delay in 0 0.01 0.02 0.04 0.06 0.08 0.1 0.2 0.5; do
    seed=$((seed + 1))
    kill_in_save "$K/m.nrm" "$delay" "$N" train --data "$X" --layers 784-2048-2048-10 --epochs 1 --limit 16 \
        --batch 16 --val 0 --quiet --out "$K/m.nrm" --seed "$seed"
    [ "$seen" = 1 ] && ok || bad "kill -9 test: the model write was never seen"
    cut_short=$((cut_short + cut))
    if "$N" info "$K/m.nrm" >/dev/null 2>"$TMP/kill.err"; then ok; else bad "after kill -9: $(cat "$TMP/kill.err")"; fi
    cmp -s "$K/m.nrm" "$TMP/old-kill.nrm" || replaced=$((replaced + 1))
    cp "$K/m.nrm" "$TMP/old-kill.nrm"
done
[ "$cut_short" -gt 0 ] && ok || bad "no kill landed inside a model write in 9 tries (nothing was tested)"
"$N" train --data "$X" --layers 784-16-10 --epochs 1 --val 0 --quiet --out "$K/m.nrm" >/dev/null 2>&1
no_temp_files "$K"
# SIGTERM (as a scheduler sends before it kills): the run saves a checkpoint at the next batch, says in one line
# how to resume, and the resumed run finishes.
"$N" train --data "$X" --layers 784-64-10 --epochs 100000 --schedule const --batch 16 --val 0 --quiet --threads 1 \
    --out "$K/t.nrm" >"$TMP/term.out" 2>"$TMP/term.err" &
pid=$!
tries=0
while [ $tries -lt 500 ] && ! grep -q '^ *1 ' "$TMP/term.out" 2>/dev/null; do
    sleep 0.02
    tries=$((tries + 1))
done
kill -TERM "$pid"
wait "$pid"
code=$?
[ "$code" -eq 1 ] && ok || bad "SIGTERM: training exited $code, expected 1"
[ "$(wc -l <"$TMP/term.err")" -eq 1 ] && grep -q "interrupted: stopped at epoch .*--resume $K/t.nrm.ckpt" "$TMP/term.err" &&
    ok || bad "SIGTERM: no one-line resume instruction: $(cat "$TMP/term.err")"
[ -n "${RELIABILITY_LOG:-}" ] && sed -e "s|$TMP/||g" "$TMP/term.err" >>"$RELIABILITY_LOG"
# The checkpoint knows the run: resumed alone but for one more epoch than it had done (a constant rate allows
# a different length), it finishes.
done_epochs=$("$N" info "$K/t.nrm.ckpt" | sed -n 's/^checkpoint: \([0-9]*\) of .*/\1/p')
refuse 0 "resumed" "$N" train --resume "$K/t.nrm.ckpt" --epochs $((done_epochs + 1)) --quiet
no_temp_files "$K"

# The same run on 1 and on 2 threads writes the same model, byte for byte (the second convolution, with 8
# input channels, runs by Winograd).
"$N" train --data "$X" --layers conv8k3-conv8k3-pool2-fc10 --epochs 1 --quiet --threads 1 --out "$K/one.nrm" >/dev/null 2>&1
"$N" train --data "$X" --layers conv8k3-conv8k3-pool2-fc10 --epochs 1 --quiet --threads 2 --out "$K/two.nrm" >/dev/null 2>&1
cmp -s "$K/one.nrm" "$K/two.nrm" && ok || bad "1 and 2 threads trained different models"

echo "test_reliability: kill -9: $interrupted of 6 checkpoint writes and $cut_short of 9 model writes cut short; the model was replaced whole $replaced times"

report
