# The skynet-shaped stress harness (stress/README.md); included by the top-level Makefile.
#
#   make stress            the default run, about 30 s (STRESS_SECONDS=300 for a longer one)
#   make stress-asan       C side built with -fsanitize=address (the Rust archive is not
#                          instrumented), same run
#   make stress-tsan       C side built with -fsanitize=thread (Rust archive not instrumented),
#                          fewer connections
#   make stress-memcheck   valgrind memcheck, both sides, 30 s with fewer connections
#   make stress-helgrind   valgrind helgrind, both sides, a short run with fewer connections
#   make stress-tsan-rust  Rust archive built with a nightly toolchain's -Zsanitizer=thread
#   make stress-asan-rust  ... -Zsanitizer=address (skipped when no nightly toolchain exists)
#
# Every run prints its seed; STRESS_SEED=<seed> repeats it. Other knobs (environment or make
# variables): STRESS_SECONDS, STRESS_CONNS, STRESS_ROUNDS, STRESS_WORKERS, STRESS_SERVICES,
# STRESS_CLIENT_THREADS, STRESS_MAX_FRAME, STRESS_MAX_FRAMES, STRESS_SCALE (deadline factor).

LIB ?= build/libsocket_server.a
BUILD ?= build
CC ?= gcc

STRESS_SRC := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
STRESS_OUT = $(BUILD)/stress
STRESS_C = $(STRESS_SRC)/stress.c $(STRESS_SRC)/load.c $(STRESS_SRC)/common.c $(STRESS_SRC)/tcpview.c
STRESS_DEPS = $(STRESS_C) $(STRESS_SRC)/stress.h include/socket_server.h
STRESS_CFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude
STRESS_LDLIBS ?= -lpthread -ldl -lm -lrt
STRESS_SECONDS ?= 30
# A hard limit per run on top of the harness's own progress-based deadlines.
STRESS_LIMIT = $$(( $(STRESS_SECONDS) * 4 + 120 ))

# Sanitizer and valgrind runs: smaller loads, deadlines stretched.
STRESS_TSAN_ARGS ?= --conns=300 --max-frame=262144 --scale=5
STRESS_ASAN_ARGS ?= --conns=1000 --scale=3
STRESS_VG_SECONDS ?= 30
STRESS_VG_ARGS ?= --seconds=$(STRESS_VG_SECONDS) --rounds=3 --conns=60 --client-threads=1 \
	--max-frame=65536 --max-frames=4 --scale=30
STRESS_VG_LIMIT = $$(( $(STRESS_VG_SECONDS) * 10 + 300 ))
# helgrind is several times slower than memcheck: a smaller load still.
STRESS_HG_SECONDS ?= 20
STRESS_HG_ARGS ?= --seconds=$(STRESS_HG_SECONDS) --rounds=3 --conns=20 --client-threads=1 \
	--max-frame=65536 --max-frames=4 --scale=30
# nouserintercepts: valgrind must not replace the harness's own free() (it counts MEMORY
# buffers, then passes them on to the free valgrind replaces in libc).
STRESS_VALGRIND = valgrind -q --fair-sched=yes --error-exitcode=99 --child-silent-after-fork=no \
	--soname-synonyms=somalloc=nouserintercepts
STRESS_TSAN_OPTIONS ?= halt_on_error=1 second_deadlock_stack=1
# Only for stress-tsan: drops reports that involve the uninstrumented Rust archive.
STRESS_TSAN_SUPP = suppressions=$(STRESS_SRC)/tsan.supp
STRESS_ASAN_OPTIONS ?= halt_on_error=1 detect_leaks=1

.PHONY: stress stress-asan stress-tsan stress-memcheck stress-helgrind stress-tsan-rust stress-asan-rust

$(STRESS_OUT)/stress: $(STRESS_DEPS) $(LIB)
	@mkdir -p $(STRESS_OUT)
	$(CC) $(STRESS_CFLAGS) $(STRESS_C) $(LIB) $(STRESS_LDLIBS) -o $@

$(STRESS_OUT)/stress-asan: $(STRESS_DEPS) $(LIB)
	@mkdir -p $(STRESS_OUT)
	$(CC) $(STRESS_CFLAGS) -fsanitize=address -fno-omit-frame-pointer $(STRESS_C) $(LIB) $(STRESS_LDLIBS) -o $@

$(STRESS_OUT)/stress-tsan: $(STRESS_DEPS) $(LIB)
	@mkdir -p $(STRESS_OUT)
	$(CC) $(STRESS_CFLAGS) -fsanitize=thread $(STRESS_C) $(LIB) $(STRESS_LDLIBS) -o $@

stress: $(STRESS_OUT)/stress
	timeout -k 10 $(STRESS_LIMIT) $< --seconds=$(STRESS_SECONDS)

stress-asan: $(STRESS_OUT)/stress-asan
	ASAN_OPTIONS="$(STRESS_ASAN_OPTIONS)" timeout -k 10 $(STRESS_LIMIT) $< --seconds=$(STRESS_SECONDS) $(STRESS_ASAN_ARGS)

stress-tsan: $(STRESS_OUT)/stress-tsan
	TSAN_OPTIONS="$(STRESS_TSAN_OPTIONS) $(STRESS_TSAN_SUPP)" timeout -k 10 $(STRESS_LIMIT) $< \
		--seconds=$(STRESS_SECONDS) $(STRESS_TSAN_ARGS)

stress-memcheck: $(STRESS_OUT)/stress
	timeout -k 10 $(STRESS_VG_LIMIT) $(STRESS_VALGRIND) --tool=memcheck --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
		$< $(STRESS_VG_ARGS)

# helgrind cannot see the library's parking_lot locks: helgrind.supp drops every report whose
# stack goes through the library, so this checks the harness's own threads only.
stress-helgrind: $(STRESS_OUT)/stress
	timeout -k 10 $(STRESS_VG_LIMIT) $(STRESS_VALGRIND) --tool=helgrind --num-callers=64 \
		--suppressions=$(STRESS_SRC)/helgrind.supp $< $(STRESS_HG_ARGS)

# The Rust side under a sanitizer needs a nightly toolchain (-Zsanitizer). Without rust-src
# the standard library stays uninstrumented (hence -Cunsafe-allow-abi-mismatch); the crate and
# its dependencies are instrumented. The raw cargo archive is linked (every symbol global),
# which is fine for a test program.
STRESS_NIGHTLY ?= nightly
STRESS_RUST_TARGET = x86_64-unknown-linux-gnu

define stress_rust_san
	@if ! rustup run $(STRESS_NIGHTLY) rustc --version >/dev/null 2>&1; then \
		echo "$@: SKIPPED: no '$(STRESS_NIGHTLY)' Rust toolchain here (rustup toolchain list)"; exit 0; fi; \
	set -e; mkdir -p $(STRESS_OUT); \
	RUSTFLAGS="-Zsanitizer=$(1) -Cunsafe-allow-abi-mismatch=sanitizer -Cforce-frame-pointers=yes" \
		CARGO_TARGET_DIR=$(BUILD)/stress-rust-$(1) \
		cargo +$(STRESS_NIGHTLY) build --quiet --release --lib --target $(STRESS_RUST_TARGET); \
	$(CC) $(STRESS_CFLAGS) -fsanitize=$(1) $(STRESS_C) $(if $(filter thread,$(1)),$(STRESS_SRC)/tsan_shim.c) \
		$(BUILD)/stress-rust-$(1)/$(STRESS_RUST_TARGET)/release/libsocket_server.a $(STRESS_LDLIBS) \
		-o $(STRESS_OUT)/stress-rust-$(1); \
	$(2) timeout -k 10 $(STRESS_LIMIT) $(STRESS_OUT)/stress-rust-$(1) --seconds=$(STRESS_SECONDS) $(3)
endef

stress-tsan-rust: $(STRESS_DEPS)
	$(call stress_rust_san,thread,TSAN_OPTIONS="$(STRESS_TSAN_OPTIONS)",$(STRESS_TSAN_ARGS))

stress-asan-rust: $(STRESS_DEPS)
	$(call stress_rust_san,address,ASAN_OPTIONS="$(STRESS_ASAN_OPTIONS)",$(STRESS_ASAN_ARGS))
