# The benchmark of issue 4; included by the top-level Makefile.
#
#   make bench                      ours and the raw-epoll floor, 5 interleaved rounds, medians
#   make bench OTHER=/path/impl.o   the same with another implementation of the ABI (an object or
#                                   archive, e.g. upstream's socket_server.c compiled on its own)
#   make bench-smoke                BENCH_QUICK=1, one round, under a minute; fails on any error
#
# Knobs (environment): BENCH_ROUNDS, BENCH_SECONDS (timed workloads), BENCH_WORKERS (server
# worker threads, default 4), BENCH_ONLY=pingpong,echo-256,... (a subset).

LIB ?= build/libsocket_server.a
BUILD ?= build
OTHER ?=
CC ?= gcc
PYTHON ?= python3

BENCH_SRC := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BENCH_OUT = $(BUILD)/bench
BENCH_CFLAGS ?= -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude
BENCH_LDLIBS ?= -lpthread -ldl -lm -lrt
BENCH_ROUNDS ?= 5
BENCH_BINS = $(BENCH_OUT)/server-ours $(BENCH_OUT)/floor $(BENCH_OUT)/loadgen \
	$(if $(OTHER),$(BENCH_OUT)/server-other)
BENCH_RUN = $(PYTHON) $(BENCH_SRC)/run.py --bin $(BENCH_OUT) $(if $(OTHER),--other)

.PHONY: bench bench-smoke bench-build bench-force

bench-build: $(BENCH_BINS)

$(BENCH_OUT)/server-ours: $(BENCH_SRC)/server.c $(BENCH_SRC)/common.h $(LIB)
	@mkdir -p $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(LIB) $(BENCH_LDLIBS)

# Relinked every time: OTHER may name a different file than last time.
$(BENCH_OUT)/server-other: $(BENCH_SRC)/server.c $(BENCH_SRC)/common.h bench-force
	@test -n "$(OTHER)" && test -f "$(OTHER)" || { echo "OTHER=$(OTHER): no such object or archive"; exit 1; }
	@mkdir -p $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(OTHER) $(BENCH_LDLIBS)

$(BENCH_OUT)/floor: $(BENCH_SRC)/floor.c $(BENCH_SRC)/common.h
	@mkdir -p $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_LDLIBS)

$(BENCH_OUT)/loadgen: $(BENCH_SRC)/loadgen.c $(BENCH_SRC)/common.h
	@mkdir -p $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_LDLIBS)

bench: $(BENCH_BINS)
	$(BENCH_RUN) --rounds $(BENCH_ROUNDS)

bench-smoke: $(BENCH_BINS)
	BENCH_QUICK=1 $(BENCH_RUN) --rounds 1 --budget 50
