#!/bin/sh
# test_install.sh - `make install PREFIX=...` gives a header, both libraries, the command and a pkg-config
# file with which a user's program builds (shared and static) and runs; the shared library exports only the
# public nr_ API.
NAME=test_install
. "$(dirname "$0")/lib.sh"
B=${1:-build}
case "$B" in
*san*)
    echo "$NAME: skipped: the sanitizer build is not installed; checked in the plain build"
    report
    exit $?
    ;;
esac
if make --no-print-directory install BUILD="$B" PREFIX="$TMP/prefix" >"$TMP/install.log" 2>&1; then ok; else
    bad "make install failed: $(tail -3 "$TMP/install.log")"
fi
for f in include/neurite.h lib/libneurite.a lib/libneurite.so lib/libneurite.so.0 lib/pkgconfig/neurite.pc bin/neurite; do
    [ -e "$TMP/prefix/$f" ] && ok || bad "$f was not installed"
done
export PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
if cc -std=c11 -Wall -Wextra -Werror examples/xor.c $(pkg-config --cflags --libs neurite) -o "$TMP/xor_shared" 2>"$TMP/cc.log"; then
    ok
    LD_LIBRARY_PATH="$TMP/prefix/lib" "$TMP/xor_shared" | grep -q "4 of 4 right" && ok || bad "the shared-library build does not run"
else
    bad "the example does not build against the shared library: $(cat "$TMP/cc.log")"
fi
if cc -std=c11 examples/xor.c $(pkg-config --cflags neurite) "$TMP/prefix/lib/libneurite.a" \
    $(pkg-config --static --libs neurite | sed 's/-lneurite//') -o "$TMP/xor_static" 2>"$TMP/cc2.log"; then
    ok
    "$TMP/xor_static" | grep -q "4 of 4 right" && ok || bad "the static build does not run"
else
    bad "the example does not build against the static library: $(cat "$TMP/cc2.log")"
fi
others=$(nm -D --defined-only "$TMP/prefix/lib/libneurite.so" | awk '{print $3}' | grep -v '^nr_[a-z]' | head -3)
[ -z "$others" ] && ok || bad "the shared library exports more than the API: $others"
"$TMP/prefix/bin/neurite" version | grep -q "^neurite " && ok || bad "the installed command does not run"

# Named data from any folder: the digits live in the user's data folder, and the installed command fetches
# them with the installed script (here into a folder that already has them, so nothing is downloaded).
NI=$TMP/prefix/bin/neurite
[ -r "$TMP/prefix/share/neurite/fetch-data.sh" ] && ok || bad "make install did not install fetch-data.sh"
(cd / && NEURITE_DATA=$TMP/empty "$NI" train --data mnist --epochs 1) >"$TMP/nodata.out" 2>"$TMP/nodata.err"
[ $? -eq 1 ] && grep -q "the MNIST digits are not in $TMP/empty/mnist: fetch them with 'neurite fetch mnist'" \
    "$TMP/nodata.err" && [ "$(wc -l <"$TMP/nodata.err")" -eq 1 ] && ok || bad "no data: $(cat "$TMP/nodata.err")"
DIGITS=${NEURITE_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/neurite}/mnist
if [ -r "$DIGITS/train-images-idx3-ubyte" ]; then
    mkdir "$TMP/udata"
    ln -s "$DIGITS" "$TMP/udata/mnist"
    (cd / && NEURITE_DATA=$TMP/udata "$NI" fetch mnist) 2>&1 | grep -q "MNIST digits: already in $TMP/udata/mnist" &&
        ok || bad "the installed neurite fetch does not find its script or the data"
    (cd / && NEURITE_DATA=$TMP/udata "$NI" train --data mnist --epochs 1 --limit 500 --quiet) 2>&1 |
        grep -q "^test: accuracy" && ok || bad "--data mnist from / with the installed command failed"
else
    echo "$NAME: note: the digits are not fetched ($DIGITS); --data mnist from another folder not checked"
fi

# The build follows its configuration: an object compiled with other flags, or before an optional library
# was installed, is rebuilt rather than linked stale (build/.config).
CB=$TMP/confbuild
OBJ=$CB/src/core/error.o
if make --no-print-directory BUILD="$CB" "$OBJ" >"$TMP/conf.log" 2>&1 && make -q --no-print-directory BUILD="$CB" "$OBJ"
then ok; else bad "an object just built is not up to date: $(tail -3 "$TMP/conf.log")"; fi
make -q --no-print-directory BUILD="$CB" CFLAGS=-DNR_CONFIG_PROBE "$OBJ"
[ $? -eq 1 ] && ok || bad "an object compiled with other flags counts as up to date"
make --no-print-directory BUILD="$CB" CFLAGS=-DNR_CONFIG_PROBE "$OBJ" >"$TMP/conf2.log" 2>&1 &&
    make -q --no-print-directory BUILD="$CB" CFLAGS=-DNR_CONFIG_PROBE "$OBJ" && ok ||
    bad "rebuilt with the new flags, the object is still out of date: $(tail -3 "$TMP/conf2.log")"
report
