# The differential runner (difftest/README.md); included by the top-level Makefile.
#
#   make difftest OTHER=/path/impl.o [SEEDS=200] [FIRST=1]
#                        runs seeds against ours and the other implementation; stops at the
#                        first seed whose traces differ, shrinks it, prints both traces
#   make difftest-check  a fixed set of seeds against ours alone, checking the invariants that
#                        hold whatever upstream does (part of make test)
#   make difftest-build  the runner binaries into $(BUILD)/difftest/

LIB ?= build/libsocket_server.a
BUILD ?= build
CC ?= gcc
PYTHON ?= python3
OTHER ?=
SEEDS ?= 200
FIRST ?= 1
DIFFTEST_CHECK_SEEDS ?= 80
DIFFTEST_CHECK_FIRST ?= 1

DIFFTEST_SRC := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
DIFFTEST_OUT = $(BUILD)/difftest
DIFFTEST_C = $(DIFFTEST_SRC)/runner.c $(DIFFTEST_SRC)/gen.c
DIFFTEST_DEPS = $(DIFFTEST_C) $(DIFFTEST_SRC)/runner.h c_tests/harness.c c_tests/harness.h \
	include/socket_server.h
DIFFTEST_CFLAGS ?= -std=gnu11 -g -O1 -Wall -Wextra -Werror -Iinclude -Ic_tests
DIFFTEST_LDLIBS ?= -lpthread -ldl -lm -lrt
DIFFTEST_RUN = $(PYTHON) $(DIFFTEST_SRC)/difftest.py --bin $(DIFFTEST_OUT)

.PHONY: difftest difftest-check difftest-build difftest-force

difftest-build: $(DIFFTEST_OUT)/runner-ours

$(DIFFTEST_OUT)/runner-ours: $(DIFFTEST_DEPS) $(LIB)
	@mkdir -p $(DIFFTEST_OUT)
	$(CC) $(DIFFTEST_CFLAGS) -o $@ $(DIFFTEST_C) c_tests/harness.c $(LIB) $(DIFFTEST_LDLIBS)

# Relinked every time: OTHER may name a different file than last time.
$(DIFFTEST_OUT)/runner-other: $(DIFFTEST_DEPS) difftest-force
	@test -n "$(OTHER)" && test -f "$(OTHER)" || { echo "OTHER=$(OTHER): no such object or archive"; exit 1; }
	@mkdir -p $(DIFFTEST_OUT)
	$(CC) $(DIFFTEST_CFLAGS) -o $@ $(DIFFTEST_C) c_tests/harness.c $(OTHER) $(DIFFTEST_LDLIBS)

difftest: $(DIFFTEST_OUT)/runner-ours $(DIFFTEST_OUT)/runner-other
	$(DIFFTEST_RUN) diff --seeds $(SEEDS) --first $(FIRST)

difftest-check: $(DIFFTEST_OUT)/runner-ours
	$(DIFFTEST_RUN) check --seeds $(DIFFTEST_CHECK_SEEDS) --first $(DIFFTEST_CHECK_FIRST)
