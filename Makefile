# neurite - GNU Make build.
#   make                      library (static + shared) and the neurite command, in build/
#   make test                 every test, then the whole suite again under ASan + UBSan
#   make bench                speed against NumPy and PyTorch (see docs/benchmarks.md)
#   make install PREFIX=/usr/local
# Options: CC=clang, SAN=1 (sanitizers), and to leave out an optional library even where it is found: BLAS=0
# (OpenBLAS), ZLIB=0 (.gz reading), PNG=0, JPEG=0, ONNX=0 (ONNX import/export), MPI=0 (mpirun training).

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
VERSION  := 0.1.0

PKG_CONFIG ?= pkg-config
BLAS     ?= $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo 1 || echo 0)
ZLIB     ?= $(shell $(PKG_CONFIG) --exists zlib 2>/dev/null && echo 1 || echo 0)
# PNG images through libpng (libpng-dev), JPEG through libjpeg-turbo's TurboJPEG (libturbojpeg0-dev); PGM and
# PPM always.
PNG      ?= $(shell $(PKG_CONFIG) --exists libpng 2>/dev/null && echo 1 || echo 0)
JPEG     ?= $(shell $(PKG_CONFIG) --exists libturbojpeg 2>/dev/null && echo 1 || echo 0)
# ONNX import and export: C code generated from Debian's onnx.proto (python3-onnx) by protoc-c, read and written
# with libprotobuf-c (docs/interop.md). On when all three are found.
ONNX_PROTO ?= /usr/lib/python3/dist-packages/onnx/onnx.proto
ONNX     ?= $(shell command -v protoc-c >/dev/null 2>&1 && $(PKG_CONFIG) --exists libprotobuf-c 2>/dev/null && \
                    [ -r $(ONNX_PROTO) ] && echo 1 || echo 0)
# MPI only for the command (several processes training one network: docs/distributed.md); the library has
# none. On when mpicc is found.
MPI      ?= $(shell command -v mpicc >/dev/null 2>&1 && echo 1 || echo 0)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT      ?= -O3
CFLAGS   ?=
CPPFLAGS += -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
# -fno-math-errno lets sqrtf and friends inline (we never read errno after math); -ffp-contract=off keeps
# a*b+c two roundings on every compiler, so numbers do not depend on the instruction set chosen at run time.
BASEFLAGS := -std=c11 $(OPT) -g $(WARN) -fPIC -pthread -fno-math-errno -ffp-contract=off
LDLIBS   := -lm -pthread

# OpenBLAS is loaded at run time (dlopen) when the "blas" backend is asked for: a program that does not use it
# does not start its threads (src/kernels/gemm.c).
ifeq ($(BLAS),1)
CPPFLAGS += -DNR_HAVE_CBLAS
LDLIBS   += -ldl
endif
ifeq ($(ZLIB),1)
CPPFLAGS += -DNR_HAVE_ZLIB
LDLIBS   += -lz
PC_LIBS  += zlib
endif
ifeq ($(PNG),1)
CPPFLAGS += -DNR_HAVE_PNG $(shell $(PKG_CONFIG) --cflags libpng)
LDLIBS   += $(shell $(PKG_CONFIG) --libs libpng)
PC_LIBS  += libpng
endif
ifeq ($(JPEG),1)
CPPFLAGS += -DNR_HAVE_JPEG $(shell $(PKG_CONFIG) --cflags libturbojpeg)
LDLIBS   += $(shell $(PKG_CONFIG) --libs libturbojpeg)
PC_LIBS  += libturbojpeg
endif
ifeq ($(ONNX),1)
CPPFLAGS += -DNR_HAVE_ONNX -I$(BUILD)/gen
LDLIBS   += $(shell $(PKG_CONFIG) --libs libprotobuf-c)
PC_LIBS  += libprotobuf-c
endif
ifeq ($(MPI),1)
MPI_CFLAGS := -DNR_HAVE_MPI $(shell mpicc --showme:compile)
MPI_LIBS   := $(shell mpicc --showme:link)
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

LIB_SRC  := $(wildcard src/*/*.c)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC   := $(wildcard examples/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(if $(filter 1,$(ONNX)),$(BUILD)/gen/onnx.pb-c.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HELPER_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/helper_*.c))
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

STATIC   := $(BUILD)/libneurite.a
SHARED   := $(BUILD)/libneurite.so.$(VERSION)
CLI      := $(BUILD)/neurite

.PHONY: all run test test-run check bench install uninstall clean examples fuzz docs
.DELETE_ON_ERROR:
.SECONDARY:

all: $(STATIC) $(SHARED) $(CLI) examples

examples: $(EX_BIN)

# Every object depends on the configuration it was compiled with (compiler, flags, optional libraries found), kept
# in $(BUILD)/.config and rewritten only when it changes: installing libturbojpeg0-dev after a first build, or
# changing CC or OPT, rebuilds everything instead of linking objects compiled without it.
CONFIG_STAMP := $(BUILD)/.config
CONFIG_NOW   := $(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(MPI_CFLAGS) | $(LDFLAGS) $(LDLIBS)
ifeq (,$(filter clean,$(MAKECMDGOALS)))
SQ := '
$(shell mkdir -p $(BUILD) && printf '%s\n' '$(subst $(SQ),$(SQ)\$(SQ)$(SQ),$(CONFIG_NOW))' > $(CONFIG_STAMP).new && \
        { cmp -s $(CONFIG_STAMP).new $(CONFIG_STAMP) && rm -f $(CONFIG_STAMP).new || mv $(CONFIG_STAMP).new $(CONFIG_STAMP); })
endif

$(BUILD)/%.o: %.c include/neurite.h $(wildcard src/*/*.h cli/*.h tests/*.h) Makefile $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The ONNX message code, generated from onnx.proto by protoc-c (generated code: its own warnings are not ours).
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h: $(ONNX_PROTO) Makefile
	@mkdir -p $(BUILD)/gen
	$(Q)cp $(ONNX_PROTO) $(BUILD)/gen/onnx.proto && cd $(BUILD)/gen && protoc-c --c_out=. onnx.proto

$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(CONFIG_STAMP)
	$(Q)$(CC) $(CPPFLAGS) -std=c11 $(OPT) -g -fPIC $(filter -fsanitize% -fno-sanitize%,$(BASEFLAGS)) -c $< -o $@

$(BUILD)/src/io/onnx_import.o $(BUILD)/src/io/onnx_export.o: $(BUILD)/gen/onnx.pb-c.h

# Kernels for newer x86-64 CPUs are compiled with their instruction sets and chosen at run time, so one
# binary runs on any x86-64 (never -march=native).
ifneq (,$(findstring x86_64,$(shell $(CC) -dumpmachine)))
$(BUILD)/src/kernels/gemm_avx2.o: ALL_CFLAGS += -mavx2 -mfma
$(BUILD)/src/kernels/gemm_avx512.o: ALL_CFLAGS += -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma
$(BUILD)/src/kernels/qgemm_avx2.o: ALL_CFLAGS += -mavx2
$(BUILD)/src/kernels/qgemm_vnni.o: ALL_CFLAGS += -mavx512f -mavx512vl -mavx512bw -mavx512vnni
endif

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) src/neurite.map
	$(Q)$(CC) -shared -Wl,-soname,libneurite.so.0 -Wl,--version-script=src/neurite.map $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	$(Q)ln -sf libneurite.so.$(VERSION) $(BUILD)/libneurite.so.0
	$(Q)ln -sf libneurite.so.$(VERSION) $(BUILD)/libneurite.so

$(BUILD)/cli/comm_mpi.o: ALL_CFLAGS += $(MPI_CFLAGS)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS) $(MPI_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# The suite: unit tests in C, the CLI's error paths, and the comparisons against NumPy.
test-run: $(TEST_BIN) $(HELPER_BIN) $(CLI) $(EX_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

test:
	@mkdir -p build; \
	$(MAKE) --no-print-directory test-run BUILD=build | tee build/test-plain.log; \
	$(MAKE) --no-print-directory test-run BUILD=build/san SAN=1 OPT=-O1 | tee build/test-san.log; \
	sh tests/total.sh build/test-plain.log build/test-san.log

check: test

# The main job, end to end: fetch the digits if missing, train the classifier, evaluate it on the test set.
run: $(CLI)
	$(CLI) fetch mnist
	$(CLI) train --data mnist --out build/digits.nrm
	$(CLI) eval build/digits.nrm --data mnist

# docs/cli.md: the command-line reference, from the option tables via each command's --help.
docs: $(CLI)
	sh scripts/cli-docs.sh $(BUILD)

bench: all $(BUILD)/bench/neurite_bench $(BUILD)/bench/fma_probe $(BUILD)/bench/bw_probe
	@BUILD=$(BUILD) sh bench/run.sh

# The benchmark's own programs (bench/run.sh runs them): neurite's side of the Fashion-MNIST workloads, and the
# machine's FMA peak (its AVX-512/AVX2 loops carry their own target attributes, chosen at run time).
$(BUILD)/bench/neurite_bench: $(BUILD)/bench/neurite_bench.o $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/bench/fma_probe: bench/fma_probe.c Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -pthread

# The machine's read bandwidth from L2, L3 and memory (bench/bench.py: the bound on batch-1 inference).
$(BUILD)/bench/bw_probe: bench/bw_probe.c Makefile
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
	install -d $(DESTDIR)$(PREFIX)/share/neurite
	install -m 644 scripts/fetch-data.sh scripts/mnist-to-idx.js $(DESTDIR)$(PREFIX)/share/neurite/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PC_LIBS)|' \
	    -e 's|@LIBS@|-lm -pthread|' neurite.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/neurite.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/neurite.h $(DESTDIR)$(PREFIX)/lib/libneurite.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/neurite.pc $(DESTDIR)$(PREFIX)/bin/neurite
	rm -rf $(DESTDIR)$(PREFIX)/share/neurite

clean:
	rm -rf build

# What one gradient sum costs over MPI on this machine (docs/distributed.md).
.PHONY: bench-mpi
bench-mpi:
	@mkdir -p $(BUILD)/bench
	$(Q)mpicc -O2 -o $(BUILD)/bench/mpi_allreduce bench/mpi_allreduce.c
	for np in 2 4; do mpirun -q --allow-run-as-root --oversubscribe --bind-to none -np $$np $(BUILD)/bench/mpi_allreduce; done
	/usr/bin/python3 bench/distributed_model.py

# Int8 models against float ones, PyTorch and ONNX Runtime (part of `make bench`; this runs it alone).
.PHONY: bench-int8
bench-int8: all $(BUILD)/bench/neurite_bench
	BUILD=$(BUILD) /usr/bin/python3 bench/int8.py

# GFLOP/s of every matrix-product backend on the shapes that matter (see docs/gemm.md).
.PHONY: bench-gemm
bench-gemm: $(STATIC)
	@mkdir -p $(BUILD)/bench
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) bench/gemm_bench.c -o $(BUILD)/bench/gemm_bench $(STATIC) $(LDLIBS) \
	    $(if $(filter 1,$(BLAS)),$(shell $(PKG_CONFIG) --libs openblas))
	$(BUILD)/bench/gemm_bench $(BENCH_ARGS)

# ==== fuzzing (docs/reliability.md) =========================================================================
# libFuzzer targets, one per reader (fuzz/fuzz_*.c), built with clang, ASan and UBSan into build/fuzz/ with
# their own copy of the library (no BLAS). `make fuzz` runs each for FUZZ_SECONDS, growing a working corpus in
# build/fuzz/corpus/<target> from the committed seeds in fuzz/corpus/<target>; a crash stops it with a non-zero
# status and leaves the input in build/fuzz/artifacts/<target>/. `make fuzz-smoke` runs each for a few seconds
# from the seeds alone (CI). `make fuzz-seeds` rewrites the seeds in fuzz/corpus from fuzz/seeds.c; `make
# fuzz-merge` adds what the long runs found there, minimised.
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 6
FUZZ_NICE     ?= nice -n 19
FUZZ_TARGETS  := model idx csv npy spec image $(if $(filter 1,$(ONNX)),onnx) safetensors
FUZZ_DIR      := build/fuzz
FUZZ_CPPFLAGS := -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L $(if $(filter 1,$(ZLIB)),-DNR_HAVE_ZLIB) \
                 $(if $(filter 1,$(PNG)),-DNR_HAVE_PNG) $(if $(filter 1,$(JPEG)),-DNR_HAVE_JPEG) \
                 $(if $(filter 1,$(ONNX)),-DNR_HAVE_ONNX -I$(BUILD)/gen)
FUZZ_CFLAGS   := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer -pthread -fno-math-errno -ffp-contract=off $(WARN)
FUZZ_LDLIBS   := -lm -pthread $(if $(filter 1,$(ZLIB)),-lz) $(if $(filter 1,$(PNG)),-lpng) \
                 $(if $(filter 1,$(JPEG)),-lturbojpeg) $(if $(filter 1,$(ONNX)),-lprotobuf-c)
FUZZ_LIB_OBJ  := $(LIB_SRC:src/%.c=$(FUZZ_DIR)/src/%.o) $(if $(filter 1,$(ONNX)),$(FUZZ_DIR)/gen/onnx.pb-c.o)
FUZZ_BIN      := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# Per target: the largest input, and the largest single allocation (MB) before libFuzzer calls it a bug; a
# reader must not allocate far beyond what its file can hold. The spec target allows big networks instead:
# its allocations over 64 MB fail (fuzz_spec.c), exercising the out-of-memory paths.
FUZZ_OPTS_model := -max_len=32768 -malloc_limit_mb=64 -dict=fuzz/model.dict
FUZZ_OPTS_idx   := -max_len=8192 -malloc_limit_mb=64
FUZZ_OPTS_csv   := -max_len=32768 -malloc_limit_mb=64 -dict=fuzz/csv.dict
FUZZ_OPTS_npy   := -max_len=8192 -malloc_limit_mb=64 -dict=fuzz/npy.dict
FUZZ_OPTS_spec  := -max_len=4096 -dict=fuzz/spec.dict
FUZZ_OPTS_image := -max_len=65536 -malloc_limit_mb=512
FUZZ_OPTS_onnx  := -max_len=65536 -malloc_limit_mb=128 -dict=fuzz/onnx.dict
FUZZ_OPTS_safetensors := -max_len=65536 -malloc_limit_mb=64 -dict=fuzz/safetensors.dict
FUZZ_RUN_OPTS   := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

$(FUZZ_DIR)/src/%.o: src/%.c include/neurite.h $(wildcard src/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(FUZZ_DIR)/src/io/onnx_import.o $(FUZZ_DIR)/src/io/onnx_export.o: $(BUILD)/gen/onnx.pb-c.h

# The AVX kernels are arithmetic on buffers the library sized, read no file, and take clang minutes to compile
# with the sanitizers and coverage: they are built plain (the rest of the library checks every access to them).
ifneq (,$(findstring x86_64,$(shell $(FUZZ_CC) -dumpmachine 2>/dev/null)))
$(FUZZ_DIR)/src/kernels/gemm_avx2.o: FUZZ_CFLAGS := -std=c11 -g -O2 -pthread -fno-math-errno -ffp-contract=off $(WARN) \
                                            -mavx2 -mfma
$(FUZZ_DIR)/src/kernels/gemm_avx512.o: FUZZ_CFLAGS := -std=c11 -g -O2 -pthread -fno-math-errno -ffp-contract=off $(WARN) \
                                              -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma
$(FUZZ_DIR)/src/kernels/qgemm_avx2.o: FUZZ_CFLAGS := -std=c11 -g -O2 -pthread $(WARN) -mavx2
$(FUZZ_DIR)/src/kernels/qgemm_vnni.o: FUZZ_CFLAGS := -std=c11 -g -O2 -pthread $(WARN) \
                                             -mavx512f -mavx512vl -mavx512bw -mavx512vnni
endif

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_LIB_OBJ)
	$(Q)$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJ) $(FUZZ_LDLIBS)

$(FUZZ_DIR)/seeds: fuzz/seeds.c $(STATIC)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# The regression test runs the targets' code on the inputs that once crashed them.
$(BUILD)/tests/test_fuzz_regress.o: $(wildcard fuzz/*.c fuzz/*.h)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-seeds fuzz-merge $(FUZZ_TARGETS:%=fuzz-run-%) $(FUZZ_TARGETS:%=fuzz-smoke-%) \
        $(FUZZ_TARGETS:%=fuzz-merge-%)
fuzz-build: $(FUZZ_BIN)

# make -j2 fuzz runs two targets at once.
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

$(FUZZ_TARGETS:%=fuzz-run-%): fuzz-run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@echo "fuzz_$*: $(FUZZ_SECONDS) s, log in $(FUZZ_DIR)/fuzz_$*.log"
	@$(FUZZ_NICE) $(FUZZ_DIR)/fuzz_$* $(FUZZ_RUN_OPTS) $(FUZZ_OPTS_$*) -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ $(FUZZ_DIR)/corpus/$* fuzz/corpus/$* \
	    >$(FUZZ_DIR)/fuzz_$*.log 2>&1 || { tail -40 $(FUZZ_DIR)/fuzz_$*.log; \
	    echo "fuzz_$*: crashed; the input is in $(FUZZ_DIR)/artifacts/$*/"; exit 1; }
	@echo "fuzz_$*: $$(grep -Eo 'stat::number_of_executed_units: [0-9]+' $(FUZZ_DIR)/fuzz_$*.log | grep -Eo '[0-9]+$$') runs, \
	$$(ls $(FUZZ_DIR)/corpus/$* | wc -l) inputs in the working corpus, no crash"

fuzz-smoke: $(FUZZ_TARGETS:%=fuzz-smoke-%)

$(FUZZ_TARGETS:%=fuzz-smoke-%): fuzz-smoke-%: $(FUZZ_DIR)/fuzz_%
	@rm -rf $(FUZZ_DIR)/smoke/$*
	@mkdir -p $(FUZZ_DIR)/smoke/$* $(FUZZ_DIR)/artifacts/$*
	@$(FUZZ_DIR)/fuzz_$* $(FUZZ_RUN_OPTS) $(FUZZ_OPTS_$*) -max_total_time=$(FUZZ_SMOKE_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ $(FUZZ_DIR)/smoke/$* fuzz/corpus/$* \
	    >$(FUZZ_DIR)/smoke-$*.log 2>&1 || { tail -40 $(FUZZ_DIR)/smoke-$*.log; \
	    echo "fuzz-smoke: fuzz_$* crashed; the input is in $(FUZZ_DIR)/artifacts/$*/"; exit 1; }
	@echo "fuzz-smoke: fuzz_$* $$(grep -Eo 'stat::number_of_executed_units: [0-9]+' $(FUZZ_DIR)/smoke-$*.log | grep -Eo '[0-9]+$$') runs, no crash"

# Rewrites the seed files (the inputs merged in from long runs, named by their hash, stay).
fuzz-seeds: $(FUZZ_DIR)/seeds
	$(FUZZ_DIR)/seeds

# Adds to fuzz/corpus/<target> the inputs of the working corpus that reach code the committed ones do not.
fuzz-merge: $(FUZZ_TARGETS:%=fuzz-merge-%)

$(FUZZ_TARGETS:%=fuzz-merge-%): fuzz-merge-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus/$*
	@$(FUZZ_NICE) $(FUZZ_DIR)/fuzz_$* -merge=1 $(FUZZ_RUN_OPTS) $(FUZZ_OPTS_$*) fuzz/corpus/$* $(FUZZ_DIR)/corpus/$* \
	    >$(FUZZ_DIR)/merge-$*.log 2>&1 || { tail -20 $(FUZZ_DIR)/merge-$*.log; exit 1; }
	@echo "fuzz-merge: fuzz/corpus/$*: $$(ls fuzz/corpus/$* | wc -l) inputs, $$(du -sk fuzz/corpus/$* | cut -f1) KB"
# ==== end of fuzzing ========================================================================================
