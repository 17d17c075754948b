#!/bin/sh
# test_train_cli.sh - `neurite train / eval / predict / info` end to end: a small network trained on a slice
# of real data reaches an accuracy far above chance; the saved model predicts the same through every door;
# bad options and files end in one clear line.
NAME=test_train_cli
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$B/neurite
FASHION=/usr/share/datasets/fashion-mnist

if [ -r "$FASHION/train-images-idx3-ubyte.gz" ]; then
    # 3000 images, 3 epochs, a small MLP: chance is 10 %; this reaches ~80 %.
    "$N" train --data fashion --limit 3000 --epochs 3 --layers 784-64-10 --threads 2 --quiet \
        --out "$TMP/f.nrm" --log "$TMP/f.csv" >"$TMP/train.txt" 2>&1 && ok || bad "train failed: $(tail -3 "$TMP/train.txt")"
    acc=$(sed -n 's/^test: accuracy \([0-9.]*\).*/\1/p' "$TMP/train.txt")
    if [ -n "$acc" ] && awk "BEGIN { exit !($acc > 0.70) }"; then ok; else bad "test accuracy '$acc' is not above 0.70"; fi
    [ "$(wc -l <"$TMP/f.csv")" -eq 4 ] && ok || bad "the log should have a header and 3 rows: $(cat "$TMP/f.csv")"
    grep -q 'dense 784->64' "$TMP/train.txt" && ok || bad "the summary lacks the layers"
    expect 0 '^accuracy: 0\.[0-9]{4}$' "$N" eval "$TMP/f.nrm" --data fashion
    expect 0 'confusion matrix' "$N" eval "$TMP/f.nrm" --data fashion
    expect 0 'dense 784->64' "$N" info "$TMP/f.nrm"
    # predict on the test images gives the classes eval counted
    "$N" predict "$TMP/f.nrm" "$FASHION/t10k-images-idx3-ubyte.gz" >"$TMP/pred.txt" 2>&1 && ok || bad "predict failed"
    [ "$(grep -c ' class ' "$TMP/pred.txt")" -eq 10000 ] && ok || bad "predict should print 10000 rows"
    no_temp_files "$TMP"
    # resume: 2 epochs then resume to 3 is bit-identical to 3 straight (constant rate)
    "$N" train --data fashion --limit 1000 --epochs 3 --layers 784-32-10 --schedule const --quiet \
        --out "$TMP/a.nrm" >/dev/null 2>&1
    "$N" train --data fashion --limit 1000 --epochs 2 --layers 784-32-10 --schedule const --quiet \
        --checkpoint "$TMP/c.ckpt" >/dev/null 2>&1
    "$N" train --epochs 3 --quiet --resume "$TMP/c.ckpt" --out "$TMP/b.nrm" >/dev/null 2>&1
    cmp -s "$TMP/a.nrm" "$TMP/b.nrm" && ok || bad "2 epochs + resume differs from 3 straight"
    # the same seed gives the same weights at 1 and 2 threads, through every layer kind
    for t in 1 2; do
        "$N" train --data fashion --limit 600 --epochs 2 --threads $t --quiet --augment 1 \
            --layers conv6k3-bn-pool2-conv8k3s2p0-avgpool2-drop0.2-fc16-leaky-fc10 >"$TMP/det$t.txt" 2>&1
    done
    sum1=$(sed -n 's/.*weights checksum \([0-9a-f]*\).*/\1/p' "$TMP/det1.txt")
    sum2=$(sed -n 's/.*weights checksum \([0-9a-f]*\).*/\1/p' "$TMP/det2.txt")
    [ -n "$sum1" ] && [ "$sum1" = "$sum2" ] && ok || bad "1 and 2 threads give different weights ($sum1 vs $sum2)"
    # Ctrl-C: a checkpoint at the next batch, one line saying how to resume, and the resume finishes
    "$N" train --data fashion --limit 20000 --epochs 50 --schedule const --layers 784-256-10 --quiet --threads 1 \
        --out "$TMP/int.nrm" >"$TMP/int.out" 2>"$TMP/int.err" &
    pid=$!
    sleep 2
    kill -INT $pid
    wait $pid
    code=$?
    [ "$code" -eq 1 ] && ok || bad "interrupted training exited $code, expected 1"
    grep -q "interrupted: stopped at epoch .*continue with: neurite train --resume $TMP/int.nrm.ckpt" "$TMP/int.err" &&
        ok || bad "no resume instructions: $(cat "$TMP/int.err")"
    [ "$(wc -l <"$TMP/int.err")" -eq 1 ] && ok || bad "the interruption should print one line"
    # it remembers the run: one epoch more than done, and nothing else said, finishes it
    done_epochs=$("$N" info "$TMP/int.nrm.ckpt" | sed -n 's/^checkpoint: \([0-9]*\) of 50 epochs done.*/\1/p')
    [ -n "$done_epochs" ] && ok || bad "info does not say where the interrupted run stands: $("$N" info "$TMP/int.nrm.ckpt")"
    expect 0 "resumed" "$N" train --epochs $((done_epochs + 1)) --quiet --resume "$TMP/int.nrm.ckpt"
    [ -s "$TMP/int.nrm" ] && ok || bad "the resumed run did not save to the interrupted run's --out"
    no_temp_files "$TMP"
else
    bad "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
fi

# a CSV table: label by name, standardised columns
table_csv 200 "$TMP/t.csv"
expect 0 "test: accuracy" "$N" train --data "$TMP/t.csv" --test "$TMP/t.csv" --label kind --layers 16-3 \
    --epochs 30 --quiet --out "$TMP/t.nrm"
expect 0 "class" "$N" predict "$TMP/t.nrm" "$TMP/t.csv" --label kind
cut -d, -f1-3 "$TMP/t.csv" >"$TMP/features.csv"
"$N" predict "$TMP/t.nrm" "$TMP/features.csv" >"$TMP/fp.txt" 2>&1 && ok || bad "predict on features only: $(cat "$TMP/fp.txt")"
[ "$(grep -c ' class ' "$TMP/fp.txt")" -eq 200 ] && ok || bad "predict on features only should print 200 rows"
if [ -r "$FASHION/t10k-images-idx3-ubyte.gz" ]; then
    cp "$FASHION/t10k-images-idx3-ubyte.gz" "$TMP/alone-images-idx3-ubyte.gz"  # no labels file beside it
    "$N" predict "$TMP/f.nrm" "$TMP/alone-images-idx3-ubyte.gz" --csv >"$TMP/alone.txt" 2>&1 && ok ||
        bad "predict on images without labels: $(head -2 "$TMP/alone.txt")"
    [ "$(wc -l <"$TMP/alone.txt")" -eq 10001 ] && ok || bad "predict --csv should print a header and 10000 rows"
fi

# bad command lines and files
expect 2 "unknown value 'adamx'" "$N" train --opt adamx
expect 2 "--epochs: 0 is out of range" "$N" train --epochs 0
expect 2 "--batch: 99999999 is out of range" "$N" train --batch 99999999
expect 2 "--checkpoint-every needs --checkpoint" "$N" train --checkpoint-every 5
expect 1 "missing.csv: cannot open" "$N" train --data "$TMP/missing.csv"
expect 2 "unknown layer 'rleu'" "$N" train --data "$TMP/t.csv" --layers 16-rleu-3
expect 2 "3 classes" "$N" train --data "$TMP/t.csv" --layers 16-5
expect 1 "not a neurite model" "$N" eval "$TMP/t.csv" --data "$TMP/t.csv"
expect 2 "needs a model and --data" "$N" eval "$TMP/t.nrm"
expect 1 "missing.nrm: cannot open" "$N" info "$TMP/missing.nrm"
head -c 100 "$TMP/t.nrm" >"$TMP/cut.nrm"
expect 1 "cut.nrm: truncated" "$N" info "$TMP/cut.nrm"
expect 2 "--out /nonexistent/m.nrm: the folder /nonexistent does not exist" "$N" train --data "$TMP/t.csv" --epochs 1 \
    --quiet --out /nonexistent/m.nrm
no_temp_files "$TMP"

report
