#!/bin/sh
# test_cli.sh - the neurite command: help, the lecture's commands, and every bad command line or file
# ending in one clear line and a non-zero exit, with nothing half-written left behind.
NAME=test_cli
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$B/neurite
EX=$B/examples/xor

expect 0 'usage: neurite' "$N" --help
expect 2 "no command given" "$N"
expect 2 "unknown command 'frobnicate'" "$N" frobnicate
expect 0 'neurite [0-9]' "$N" version
expect 0 '--print-every' "$N" seed --help

# seed: options out of range or malformed
expect 2 '--lr: -1 is out of range' "$N" seed --lr -1
expect 2 '--iters: 0 is out of range' "$N" seed --iters 0
expect 2 "--batch: 'abc' is not a whole number" "$N" seed --batch abc
expect 2 "--lr: 'nan' is not a number" "$N" seed --lr nan
expect 2 "--batch: -5 is out of range" "$N" seed --batch -5
expect 2 "--hidden: 99999999999 is out of range" "$N" seed --hidden 99999999999
expect 2 "unknown option '--bogus'" "$N" seed --bogus 3
expect 2 "--w1 needs a value" "$N" seed --w1
expect 2 "more than 4 GB" "$N" seed --in 1000000 --hidden 100000
expect 2 "unexpected argument" "$N" seed extra
expect 2 "--trace takes no value" "$N" seed --trace=yes

# seed: files
expect 1 "missing.npy: cannot open" "$N" seed --w1 "$TMP/missing.npy" --iters 1
expect 0 "" "$N" seed --in 10 --hidden 5 --iters 2 --save-w1 "$TMP/small.npy" --save-w2 "$TMP/small2.npy"
expect 1 "small.npy: w1 must be 1000x100, the file holds 10x5" "$N" seed --w1 "$TMP/small.npy" --iters 1
printf 'not an npy file at all' >"$TMP/junk.npy"
expect 1 "junk.npy: not a .npy file" "$N" seed --w2 "$TMP/junk.npy" --iters 1
expect 1 "cannot write" "$N" seed --iters 2 --print-every 0 --losses /nonexistent-dir/losses.txt
expect 1 "cannot write" "$N" seed --iters 2 --print-every 0 --save-w1 /nonexistent-dir/w1.npy
perl -e 'print "\x93NUMPY\x01\x00\x76\x00{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (100, 10), }", " " x 55, "\n", "\x00\x00\xc0\x7f" x 1000' >"$TMP/nan.npy"
expect 1 "nan.npy: value 0 \(row 0, column 0\) is nan" "$N" seed --w2 "$TMP/nan.npy" --iters 1
expect 0 "Every hidden unit is dead" "$N" seed --iters 20 --lr 0.01 --print-every 0
no_temp_files "$TMP"

# seed: a short run converges on its way, and --trace explains the first step
expect 0 "Converged to 1" "$N" seed --iters 3000 --print-every 0
expect 0 "g_w1 = xᵀ·g_h +\(1000×64\)·\(64×100\) → \(1000×100\)" "$N" seed --iters 1 --trace
expect 0 "Why the transpose" "$N" seed --iters 1 --trace
"$N" seed --iters 20 --print-every 0 --losses "$TMP/a.txt" --threads 1 >/dev/null
"$N" seed --iters 20 --print-every 0 --losses "$TMP/b.txt" --threads 2 >/dev/null
if cmp -s "$TMP/a.txt" "$TMP/b.txt"; then ok; else bad "seed: 1 and 2 threads give different losses"; fi

# xor: the footnote demonstrated
"$N" xor >"$TMP/xor.txt" 2>&1 && ok || bad "neurite xor failed: $(cat "$TMP/xor.txt")"
grep -Eq '^identity .* no$' "$TMP/xor.txt" && ok || bad "the identity network should not learn XOR"
for act in relu sigmoid tanh; do
    grep -Eq "^$act .* yes$" "$TMP/xor.txt" && ok || bad "the $act network should learn XOR"
done
grep -q 'multiply out to one linear map' "$TMP/xor.txt" && ok || bad "xor: no collapse explanation"

# the command-line reference is what the option tables print
sh scripts/cli-docs.sh "$B" "$TMP/cli.md" && cmp -s "$TMP/cli.md" docs/cli.md && ok ||
    bad "docs/cli.md is stale: run 'make docs' (it differs from the commands' --help)"
# every choice an option takes is listed by --help, and a wrong one is refused with the list
expect 0 "one of: adam, adamw, sgd, momentum, nesterov" "$N" train --help
expect 2 "--schedule: unknown value 'linear' \(one of: const, step, cosine\)" "$N" train --schedule linear

# the example a user copies
expect 0 "4 of 4 right" "$EX"

report
