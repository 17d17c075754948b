#!/bin/sh
# cli-docs.sh [BUILD] [OUT] - writes the command-line reference (docs/cli.md) from the neurite command's own
# --help, which each subcommand prints from the same option table its parser reads: the three cannot disagree.
# tests/test_cli.sh checks that the committed docs/cli.md is what this writes. `make docs` runs it.
set -eu
B=${1:-build}
OUT=${2:-docs/cli.md}
N=$B/neurite
[ -x "$N" ] || { echo "cli-docs: $N is missing (run make)" >&2; exit 1; }
{
    echo "# The neurite command"
    echo
    echo "Written by \`scripts/cli-docs.sh\` from \`neurite --help\` and each command's \`--help\`, which print the"
    echo "option tables the parser reads (\`make docs\` rewrites it; \`tests/test_cli.sh\` fails when it is stale)."
    echo
    echo '```'
    "$N" --help
    echo '```'
    for cmd in $("$N" --help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
        [ "$cmd" = version ] && continue
        echo
        echo "## neurite $cmd"
        echo
        echo '```'
        "$N" "$cmd" --help
        echo '```'
    done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
