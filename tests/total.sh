#!/bin/sh
# total.sh - adds up the last "N passed, M failed" line of each log; exits non-zero if anything failed.
p=0
f=0
for log in "$@"; do
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "$log: the suite did not finish" >&2
        f=$((f + 1))
        continue
    fi
    p=$((p + $(echo "$line" | cut -d' ' -f1)))
    f=$((f + $(echo "$line" | cut -d' ' -f3)))
done
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
