# neurite - GNU Make build.
#   make                      library (static + shared) and the neurite command, in build/
#   make test                 every test, then the whole suite again under ASan + UBSan
#   make bench                speed against NumPy and PyTorch (see docs/benchmarks.md)
#   make install PREFIX=/usr/local
# Options: CC=clang, BLAS=0 (no OpenBLAS even if found), ZLIB=0 (no .gz reading), SAN=1 (sanitizers).

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
VERSION  := 0.1.0

PKG_CONFIG ?= pkg-config
BLAS     ?= $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo 1 || echo 0)
ZLIB     ?= $(shell $(PKG_CONFIG) --exists zlib 2>/dev/null && echo 1 || echo 0)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT      ?= -O3
CFLAGS   ?=
CPPFLAGS += -Iinclude -D_POSIX_C_SOURCE=200809L
# -fno-math-errno lets sqrtf and friends inline (we never read errno after math); -ffp-contract=off keeps
# a*b+c two roundings on every compiler, so numbers do not depend on the instruction set chosen at run time.
BASEFLAGS := -std=c11 $(OPT) -g $(WARN) -fPIC -pthread -fno-math-errno -ffp-contract=off
LDLIBS   := -lm -pthread

ifeq ($(BLAS),1)
CPPFLAGS += -DNR_HAVE_CBLAS $(shell $(PKG_CONFIG) --cflags openblas)
LDLIBS   += $(shell $(PKG_CONFIG) --libs openblas)
PC_LIBS  += openblas
endif
ifeq ($(ZLIB),1)
CPPFLAGS += -DNR_HAVE_ZLIB
LDLIBS   += -lz
PC_LIBS  += zlib
endif
ifeq ($(SAN),1)
BASEFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

ALL_CFLAGS = $(BASEFLAGS) $(CFLAGS)

# Quiet by default; V=1 shows the commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC  := $(wildcard src/*.c)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC   := $(wildcard examples/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HELPER_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/helper_*.c))
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

STATIC   := $(BUILD)/libneurite.a
SHARED   := $(BUILD)/libneurite.so.$(VERSION)
CLI      := $(BUILD)/neurite

.PHONY: all run test test-run check bench install uninstall clean examples fuzz
.DELETE_ON_ERROR:
.SECONDARY:

all: $(STATIC) $(SHARED) $(CLI) examples

examples: $(EX_BIN)

$(BUILD)/%.o: %.c include/neurite.h $(wildcard src/*.h cli/*.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# Kernels for newer x86-64 CPUs are compiled with their instruction sets and chosen at run time, so one
# binary runs on any x86-64 (never -march=native).
ifneq (,$(findstring x86_64,$(shell $(CC) -dumpmachine)))
$(BUILD)/src/gemm_avx2.o: ALL_CFLAGS += -mavx2 -mfma
$(BUILD)/src/gemm_avx512.o: ALL_CFLAGS += -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma
endif

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) src/neurite.map
	$(Q)$(CC) -shared -Wl,-soname,libneurite.so.0 -Wl,--version-script=src/neurite.map $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	$(Q)ln -sf libneurite.so.$(VERSION) $(BUILD)/libneurite.so.0
	$(Q)ln -sf libneurite.so.$(VERSION) $(BUILD)/libneurite.so

$(CLI): $(CLI_OBJ) $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# The suite: unit tests in C, the CLI's error paths, and the comparisons against NumPy.
test-run: $(TEST_BIN) $(HELPER_BIN) $(CLI) $(EX_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

test:
	@$(MAKE) --no-print-directory test-run BUILD=build | tee build/test-plain.log; \
	$(MAKE) --no-print-directory test-run BUILD=build/san SAN=1 OPT=-O1 | tee build/test-san.log; \
	sh tests/total.sh build/test-plain.log build/test-san.log

check: test

# The main job, end to end.
run: $(CLI)
	$(CLI) seed

bench: all $(BUILD)/bench/neurite_bench $(BUILD)/bench/fma_probe
	@BUILD=$(BUILD) sh bench/run.sh

# The benchmark's own programs (bench/run.sh runs them): neurite's side of the Fashion-MNIST workloads, and the
# machine's FMA peak (its AVX-512/AVX2 loops carry their own target attributes, chosen at run time).
$(BUILD)/bench/neurite_bench: $(BUILD)/bench/neurite_bench.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/bench/fma_probe: bench/fma_probe.c Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -pthread

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/neurite.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libneurite.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libneurite.so.0
	ln -sf libneurite.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libneurite.so
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PC_LIBS)|' \
	    -e 's|@LIBS@|-lm -pthread|' neurite.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/neurite.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/neurite.h $(DESTDIR)$(PREFIX)/lib/libneurite.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/neurite.pc $(DESTDIR)$(PREFIX)/bin/neurite

clean:
	rm -rf build

# GFLOP/s of every matrix-product backend on the shapes that matter (see docs/gemm.md).
.PHONY: bench-gemm
bench-gemm: $(STATIC)
	@mkdir -p $(BUILD)/bench
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) bench/gemm_bench.c -o $(BUILD)/bench/gemm_bench $(STATIC) $(LDLIBS)
	$(BUILD)/bench/gemm_bench $(BENCH_ARGS)
