#!/bin/sh
# run.sh - runs the whole suite for one build and prints every test's line, then the sum:
# "N passed, M failed, K skipped". The suite is every C test (tests/test_*.c, built by make), every shell test
# (tests/test_*.sh, given the build directory) and every Python test (tests/test_*.py, given the build
# directory). A test that crashes or exits non-zero without reporting a failure counts as one failure. A test
# that cannot run here says "NAME: skipped: why (how to install it)" and counts as skipped, not failed: a shell
# test prints that itself; a Python test names the modules it needs on a "# needs:" line, checked here.
B=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
total_pass=0
total_fail=0
total_skip=0

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
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && printf '%s\n' "$out" | grep -Eq '^[a-z_0-9]+: skipped: '; then
        total_skip=$((total_skip + 1))
        return
    fi
    echo "${line:-$* reported nothing}"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

# python_test FILE: runs it if every module its "# needs:" line names imports, else says it is skipped.
python_test() {
    name=$(basename "$1" .py)
    for module in $(sed -n 's/^# needs: //p' "$1"); do
        if ! "$PYTHON" -c "import $module" 2>/dev/null; then
            package=$(case $module in PIL) echo python3-pil ;; *) echo "python3-$module" ;; esac)
            echo "$name: skipped: $PYTHON cannot import $module (apt-get install $package)"
            total_skip=$((total_skip + 1))
            return
        fi
    done
    run "$PYTHON" "$1" "$B"
}

echo "== $B =="
for t in "$@"; do run "$t"; done
for t in tests/test_*.sh; do run sh "$t" "$B"; done
for t in tests/test_*.py; do python_test "$t"; done
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
