#!/bin/sh
# total.sh - adds up the last "N passed, M failed, K skipped" line of each log; exits non-zero if anything failed.
p=0
f=0
s=0
for log in "$@"; do
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "$log: the suite did not finish" >&2
        f=$((f + 1))
        continue
    fi
    p=$((p + $(echo "$line" | cut -d' ' -f1)))
    f=$((f + $(echo "$line" | cut -d' ' -f3)))
    s=$((s + $(echo "$line" | cut -d' ' -f5)))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
