#!/bin/sh
# run.sh - runs the whole suite for one build and prints every test's line, then the sum:
# "N passed, M failed". The suite is every C test (tests/test_*.c, built by make), every shell test
# (tests/test_*.sh, given the build directory) and every Python test (tests/test_*.py, given the build
# directory). A test that crashes or exits non-zero without reporting a failure counts as one failure.
B=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
total_pass=0
total_fail=0

run() {
    out=$("$@" 2>&1)
    code=$?
    printf '%s\n' "$out" | grep -v '^[a-z_0-9]*: [0-9]* passed, [0-9]* failed$'
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        line="$* exited with status $code"
    fi
    echo "${line:-$* reported nothing}"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

echo "== $B =="
for t in "$@"; do run "$t"; done
for t in tests/test_*.sh; do run sh "$t" "$B"; done
if "$PYTHON" -c 'import numpy' 2>/dev/null; then
    for t in tests/test_*.py; do run "$PYTHON" "$t" "$B"; done
else
    echo "python tests: $PYTHON has no NumPy (apt-get install python3-numpy)"
    total_fail=$((total_fail + 1))
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
