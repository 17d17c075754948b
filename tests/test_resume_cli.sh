#!/bin/sh
# test_resume_cli.sh - a checkpoint remembers its run: `neurite train --resume FILE` alone continues exactly the
# run that made it (bit for bit, from any folder), an option that would change that run is refused in one line
# naming both values, options that cannot change the numbers may differ, and `neurite info` shows where the run
# stands and the command that continues it.
NAME=test_resume_cli
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$(cd "$(dirname "$B/neurite")" && pwd)/neurite

table_csv 300 "$TMP/t.csv"
cd "$TMP" || exit 1
# Checkpoints change nothing in a run.
"$N" train --data t.csv --label kind --layers 16-drop0.1-3 --epochs 4 --seed 3 --opt momentum --lr 0.05 \
    --quiet --out whole.nrm >whole.txt 2>&1 && ok || bad "the whole run failed: $(cat whole.txt)"
mkdir run
"$N" train --data t.csv --label kind --layers 16-drop0.1-3 --epochs 4 --seed 3 --opt momentum --lr 0.05 \
    --quiet --checkpoint run/c.ckpt --checkpoint-every 3 --out run/m.nrm >run.txt 2>&1 && ok || bad "the run failed"
cmp -s whole.nrm run/m.nrm && ok || bad "checkpointing changed the run"

# A finished run's checkpoint: where it stands, its options, and that nothing is left to do.
"$N" train --data t.csv --label kind --layers 16-drop0.1-3 --epochs 4 --seed 3 --opt momentum --lr 0.05 \
    --quiet --checkpoint mid.ckpt --out mid.nrm --threads 1 >/dev/null 2>&1
expect 0 "run options: .*--seed=3" "$N" info mid.ckpt
expect 0 "continue with|the run is complete" "$N" info mid.ckpt
expect 0 "checkpoint: 4 of 4 epochs done" "$N" info mid.ckpt
expect 0 "the run is complete" "$N" info mid.ckpt

# Stop the run by hand at a batch in the middle (SIGINT as Ctrl-C sends it), from another folder resume it
# with nothing but --resume, and get the whole run's model byte for byte.
table_csv 6000 "$TMP/big.csv"
cd "$TMP/run" || exit 1
"$N" train --data ../big.csv --label kind --layers 256-256-3 --epochs 100 --seed 5 --quiet --threads 1 \
    --out ../big-whole.nrm >/dev/null 2>&1
"$N" train --data ../big.csv --label kind --layers 256-256-3 --epochs 100 --seed 5 --quiet --threads 1 \
    --out big.nrm >big.out 2>big.err &
pid=$!
i=0
while ! grep -q '^ *1 ' big.out 2>/dev/null && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid
wait $pid
if grep -q "continue with: neurite train --resume big.nrm.ckpt" big.err; then
    ok
    cd / || exit 1
    expect 0 "resumed" "$N" train --resume "$TMP/run/big.nrm.ckpt" --threads 2
    cmp -s "$TMP/big-whole.nrm" "$TMP/run/big.nrm" && ok || bad "resume alone (another folder, other threads) differs"
else
    bad "the run was not interrupted (it finished first?): $(cat big.err)"
fi
cd "$TMP" || exit 1

# Conflicts: one line naming both values; nothing trained, nothing written.
expect 2 "--seed 4 conflicts with the checkpoint's --seed 3" "$N" train --resume mid.ckpt --seed 4
expect 2 "--layers 16-4 conflicts with the checkpoint's --layers 16-drop0.1-3" "$N" train --resume mid.ckpt --layers 16-4
expect 2 "--opt adam conflicts with the checkpoint's --opt momentum" "$N" train --resume mid.ckpt --opt adam
expect 2 "--epochs 9 conflicts with the checkpoint's --epochs 4: the cosine schedule" "$N" train --resume mid.ckpt --epochs 9
expect 2 "--data .*other.csv conflicts with the checkpoint's --data .*t.csv" "$N" train --resume mid.ckpt --data other.csv
# The same values, or options that cannot change the numbers, are accepted.
printf '16 - drop0.1 # hidden\n-3\n' >layers.txt
expect 0 "resumed" "$N" train --resume mid.ckpt --seed 3 --layers layers.txt --threads 1 --quiet --out same.nrm
cmp -s mid.nrm same.nrm && ok || bad "a finished run resumed again changed its weights"
no_temp_files "$TMP"

# A constant rate may be run longer: 2 epochs, then resumed to 3, equals 3 straight.
"$N" train --data t.csv --label kind --layers 16-3 --epochs 3 --schedule const --quiet --out c3.nrm >/dev/null 2>&1
"$N" train --data t.csv --label kind --layers 16-3 --epochs 2 --schedule const --quiet --checkpoint c2.ckpt >/dev/null 2>&1
expect 0 "resumed" "$N" train --resume c2.ckpt --epochs 3 --out c3b.nrm --quiet
cmp -s c3.nrm c3b.nrm && ok || bad "2 epochs + 1 resumed differs from 3 straight"
expect 2 "--epochs 1 conflicts" "$N" train --resume c2.ckpt --epochs 1

# A checkpoint from before notes (no "note" section) still resumes with the options given.
if [ -r "$OLDPWD/tests/data/v1-mlp.nrm" ]; then :; fi
report
