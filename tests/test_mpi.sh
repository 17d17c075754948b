#!/bin/sh
# test_mpi.sh - `mpirun -np K neurite train` on this machine (localhost): equal to one process (the ordered
# reduction bit for bit, the default sum to rounding), resumed on another number of processes, and the
# faults: data that differs, a process that cannot start, a process killed, SIGTERM to mpirun. Runs where
# mpirun exists and neurite was built with MPI (make MPI=1, automatic with mpicc); says so and counts nothing
# otherwise. Lines are counted by their "neurite" start: OpenMPI's runtime may add a warning of its own.
NAME=test_mpi
. "$(dirname "$0")/lib.sh"
B=${1:-build}
N=$(cd "$(dirname "$B/neurite")" && pwd)/neurite

if ! command -v mpirun >/dev/null 2>&1 || ! "$N" version | grep -q 'processes: MPI'; then
    echo "$NAME: skipped: no mpirun, or neurite built without MPI (apt-get install openmpi-bin libopenmpi-dev)"
    report
    exit $?
fi
# Root in CI; more processes than cores; processes that wait yield the core (2 cores, up to 4 processes).
MPIRUN="mpirun -q --allow-run-as-root --oversubscribe --mca mpi_yield_when_idle 1"
case $B in
*san)  # OpenMPI's plugins leave allocations behind MPI_Finalize that LeakSanitizer cannot even name (their
       # modules are unloaded); the library's sharing code is leak-checked by test_shared.c, threads for ranks
    export ASAN_OPTIONS=detect_leaks=0
    MPIRUN="$MPIRUN -x ASAN_OPTIONS"
    ;;
esac

# value FILE PATTERN: the first number after PATTERN in FILE.
value() { sed -n "s/.*$2 \([0-9.e+-]*\).*/\1/p" "$1" | head -1; }

table_csv 3000 "$TMP/t.csv"
cd "$TMP" || exit 1
TRAIN="train --data t.csv --test t.csv --label kind --layers 32-32-3 --epochs 3 --batch 50 --threads 1 --quiet"

# ---- equal to one process ----
for reduce in sum ordered; do
    "$N" $TRAIN --reduce $reduce --out one-$reduce.nrm --log one-$reduce.csv >one-$reduce.txt 2>&1 ||
        bad "one process ($reduce) failed"
    for np in 2 4; do
        $MPIRUN -np $np "$N" $TRAIN --reduce $reduce --out np$np-$reduce.nrm --log np$np-$reduce.csv \
            >np$np-$reduce.txt 2>&1 ||
            bad "mpirun -np $np ($reduce) failed: $(tail -3 np$np-$reduce.txt)"
        [ "$(grep -c '^data:' np$np-$reduce.txt)" -eq 1 ] && ok || bad "-np $np: more than rank 0 printed"
        if [ $reduce = ordered ]; then
            cmp -s one-ordered.nrm np$np-ordered.nrm && ok || bad "ordered: -np $np differs from one process"
            continue
        fi
        l1=$(awk -F, '$1 == 3 {print $2}' one-sum.csv)  # the log's 6 digits: within 1e-5 is visible
        lk=$(awk -F, '$1 == 3 {print $2}' np$np-sum.csv)
        a1=$(value one-sum.txt "test: accuracy")
        ak=$(value np$np-sum.txt "test: accuracy")
        echo "$NAME: -np $np sum: final train loss $lk (one process $l1), test accuracy $ak ($a1)"
        [ -n "$l1" ] && [ -n "$lk" ] && [ -n "$a1" ] && [ -n "$ak" ] && ok || bad "-np $np: no loss or accuracy printed"
        awk -v a="$l1" -v b="$lk" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * a + 1e-12) }' && ok ||
            bad "-np $np: final loss $lk is not within 1e-5 of one process's $l1"
        awk -v a="$a1" -v b="$ak" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.001) }' && ok ||
            bad "-np $np: test accuracy $ak is not within 0.1 point of $a1"
    done
done

# ---- resumed on another number of processes: 2 processes for 2 epochs, 4 for the third, as one for 3 ----
$MPIRUN -np 2 "$N" train --data t.csv --label kind --layers 32-32-3 --epochs 2 --batch 50 --threads 1 --quiet \
    --schedule const --reduce ordered --checkpoint c.ckpt >/dev/null 2>&1 || bad "the 2-process part failed"
$MPIRUN -np 4 "$N" train --resume c.ckpt --epochs 3 --threads 1 --quiet --out resumed.nrm >resumed.txt 2>&1 ||
    bad "the 4-process resume failed: $(tail -2 resumed.txt)"
"$N" train --data t.csv --label kind --layers 32-32-3 --epochs 3 --batch 50 --threads 1 --quiet --schedule const \
    --reduce ordered --out straight.nrm >/dev/null 2>&1
cmp -s straight.nrm resumed.nrm && ok || bad "2 processes then 4 (resumed) differ from one process straight"

# ---- faults ----
# Data that differs: every process ends with one line, at once.
table_csv 3001 "$TMP/u.csv"
$MPIRUN -np 2 sh -c "exec '$N' train --data \$([ \$OMPI_COMM_WORLD_RANK = 0 ] && echo t.csv || echo u.csv) \
    --label kind --epochs 2 --quiet --threads 1" >/dev/null 2>differ.err
code=$?
[ $code -ne 0 ] && ok || bad "different data: mpirun exited 0"
[ "$(grep -c "process 1's training data differs from process 0's" differ.err)" -eq 2 ] &&
    [ "$(grep -c '^neurite' differ.err)" -eq 2 ] && ok || bad "different data: not one line per process: $(cat differ.err)"
# A process that cannot start (its data is missing): its own line, and the others name it.
$MPIRUN -np 2 sh -c "exec '$N' train --data \$([ \$OMPI_COMM_WORLD_RANK = 0 ] && echo t.csv || echo gone.csv) \
    --label kind --epochs 2 --quiet --threads 1" >/dev/null 2>start.err
grep -q "(process 1 of 2): gone.csv: cannot open" start.err && grep -q "(process 0 of 2): process 1 failed" start.err &&
    [ "$(grep -c '^neurite' start.err)" -eq 2 ] && ok || bad "a process that cannot start: $(cat start.err)"
# A process killed mid-run: mpirun ends the others within seconds (its own report names the rank), no hang.
table_csv 30000 "$TMP/big.csv"
LONG="train --data big.csv --label kind --layers 256-256-3 --epochs 1000 --threads 1 --quiet"
mpirun --allow-run-as-root --oversubscribe --mca mpi_yield_when_idle 1 -np 2 "$N" $LONG --out k.nrm >/dev/null \
    2>kill.err &
mp=$!
i=0
while [ "$(pgrep -f "$N $LONG --out k.nrm" | wc -l)" -lt 2 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 1
kill -9 "$(pgrep -f "$N $LONG --out k.nrm" | tail -1)"
i=0
while kill -0 $mp 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $mp 2>/dev/null; then
    bad "a killed process left mpirun running after 10 s"
    kill -9 $mp
else
    ok
    echo "$NAME: a process killed: mpirun ended the run after $(awk "BEGIN { print $i * 0.05 }") s or less"
fi
wait $mp 2>/dev/null
[ -z "$(pgrep -f "$N $LONG --out k.nrm")" ] && ok || bad "processes left after a killed one"
grep -q "process rank 1 .* exited on signal 9" kill.err && ok || bad "mpirun did not name the killed process: $(cat kill.err)"
# SIGTERM to mpirun (as a scheduler sends): every process stops at the same batch, rank 0 writes one
# checkpoint, every process says so in one line, and resuming finishes the run.
$MPIRUN -np 2 "$N" $LONG --schedule const --checkpoint term.ckpt >/dev/null 2>term.err &
mp=$!
i=0
while [ ! -s term.ckpt ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $mp
wait $mp
code=$?
[ $code -ne 0 ] && ok || bad "SIGTERM: mpirun exited 0"
[ "$(grep -c 'interrupted: stopped at epoch .*continue with: neurite train --resume term.ckpt' term.err)" -eq 2 ] &&
    [ "$(grep -c '^neurite' term.err)" -eq 2 ] && ok || bad "SIGTERM: not one line per process: $(cat term.err)"
done_epochs=$("$N" info term.ckpt | sed -n 's/^checkpoint: \([0-9]*\) of .*/\1/p')
$MPIRUN -np 2 "$N" train --resume term.ckpt --epochs $((done_epochs + 1)) --threads 1 --quiet --out term.nrm \
    >term2.txt 2>&1 && [ -s term.nrm ] && ok || bad "resuming after SIGTERM failed: $(tail -2 term2.txt)"
no_temp_files "$TMP"
report
