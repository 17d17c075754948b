# lib.sh - helpers for the shell tests: counted checks and "one clear line" error checks.
passed=0
failed=0
TMP=$(mktemp -d /tmp/neurite-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL $NAME: $*" >&2; }

# expect CODE PATTERN command...: the command exits with CODE and prints exactly one line on stderr that
# matches PATTERN (an extended regular expression).
expect() {
    code=$1 pattern=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    lines=$(wc -l <"$TMP/err")
    if [ "$got" -ne "$code" ]; then
        bad "'$*' exited $got, expected $code; stderr: $(cat "$TMP/err")"
    elif [ "$code" -ne 0 ] && [ "$lines" -ne 1 ]; then
        bad "'$*' printed $lines lines on stderr, expected one: $(cat "$TMP/err")"
    elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$TMP/err" "$TMP/out"; then
        bad "'$*': output does not match '$pattern': $(cat "$TMP/err" "$TMP/out" | head -5)"
    else
        ok
    fi
}

# no_temp_files DIR: nothing half-written (*.tmp*) is left in DIR.
no_temp_files() {
    if ls "$1" | grep -q '\.tmp'; then bad "temporary files left in $1: $(ls "$1")"; else ok; fi
}

# table_csv ROWS FILE: a small CSV table "a,b,c,kind" of three classes (kind 0 to 2) that a network separates
# easily: the shell tests' standard labelled data.
table_csv() {
    {
        echo "a,b,c,kind"
        i=0
        while [ $i -lt "$1" ]; do
            k=$((i % 3))
            echo "$((k * 10 + i % 7)),$((100 - k * 20 + i % 5)),$((i % 11)),$k"
            i=$((i + 1))
        done
    } >"$2"
}

report() {
    echo "$NAME: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
