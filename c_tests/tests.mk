# C tests of the socket_server ABI; included by the top-level Makefile.
#
#   make ctest-build   builds every test binary into $(BUILD)/c_tests/
#   make ctest         runs them (each under `timeout`, test_lookup inside `unshare -n`),
#                      stopping at the first failing binary
#
# SOCKET_LIB can be any object or archive that implements the ABI (the Rust archive, or
# upstream's socket_server.c compiled on its own for a differential run).

SOCKET_LIB ?= build/libsocket_server.a
BUILD ?= build
CFLAGS_TEST ?= -std=gnu11 -g -O1 -Wall -Wextra -Werror -Iinclude
LDLIBS_TEST ?= -lpthread -ldl -lm -lrt
VALGRIND ?=

CTEST_SRC := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CTEST_OUT = $(BUILD)/c_tests
CTEST_HEADER ?= include/socket_server.h

# Run order: test_beyond_upstream (things upstream gets wrong) last, the lookup test apart.
CTEST_PLAIN = test_tcp test_close test_write test_udp test_info test_errors test_limits \
	test_beyond_upstream
CTEST_NETNS = test_lookup
CTEST_BINS = $(addprefix $(CTEST_OUT)/,$(CTEST_PLAIN) $(CTEST_NETNS))

# Deadlines stretch under valgrind; so does the per-binary time limit (evaluated when the
# recipe runs, so VALGRIND may be set after this file is included or on the command line).
CTEST_SCALE ?= $(if $(strip $(VALGRIND)),20,1)
CTEST_LIMIT ?= $(if $(strip $(VALGRIND)),1500,180)
# What the tests run under, for the few checks a wrapper changes (valgrind, or qemu when
# check-platforms runs the ARM64 build).
CTEST_UNDER ?= $(if $(strip $(VALGRIND)),valgrind,)
CTEST_ENV = TEST_TIMEOUT_SCALE=$(CTEST_SCALE) TEST_UNDER=$(CTEST_UNDER)
CTEST_CMD = timeout -k 10 $(CTEST_LIMIT) $(VALGRIND)

.PHONY: ctest-build ctest

ctest-build: $(CTEST_BINS)

$(CTEST_OUT)/harness.o: $(CTEST_SRC)/harness.c $(CTEST_SRC)/harness.h $(CTEST_HEADER)
	@mkdir -p $(CTEST_OUT)
	$(CC) $(CFLAGS_TEST) -c -o $@ $<

$(CTEST_OUT)/test_%: $(CTEST_SRC)/test_%.c $(CTEST_OUT)/harness.o $(CTEST_SRC)/harness.h \
		$(CTEST_HEADER) $(SOCKET_LIB)
	@mkdir -p $(CTEST_OUT)
	$(CC) $(CFLAGS_TEST) -o $@ $< $(CTEST_OUT)/harness.o $(SOCKET_LIB) $(LDLIBS_TEST)

ctest: ctest-build
	@set -e; for t in $(CTEST_PLAIN); do \
		echo "== $$t"; \
		$(CTEST_ENV) $(CTEST_CMD) $(CTEST_OUT)/$$t || { echo "== $$t FAILED"; exit 1; }; \
	done
	@set -e; for t in $(CTEST_NETNS); do \
		echo "== $$t (private network namespace)"; \
		if unshare -n true 2>/dev/null; then \
			$(CTEST_ENV) unshare -n $(CTEST_CMD) $(CTEST_OUT)/$$t || { echo "== $$t FAILED"; exit 1; }; \
		else \
			echo "== $$t SKIPPED: unshare -n is not permitted here"; \
		fi; \
	done
