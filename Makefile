# socket_server: skynet's network layer as a Rust static library with a C ABI.
#   make          build build/libsocket_server.a and include/socket_server.h
#   make demo     build, then run an echo server and clients over loopback through the library
#   make test     every check: format, lint, Rust unit tests, ABI and export checks, C tests
#                 (directly and under valgrind), the differential runner's invariant seeds
#                 (difftest-check), the skynet-shaped stress run (directly, ~30 s, and under
#                 valgrind memcheck); more sanitizer runs: see stress/README.md
#   make difftest OTHER=/path/impl.o SEEDS=N   random programs, ours against another
#                 implementation, first difference shrunk (difftest/README.md)
#   make bench    benchmarks, ours against a raw-epoll floor (OTHER=/path/impl.o adds another
#                 implementation of the ABI); see bench/README.md

CARGO ?= cargo
CC ?= gcc
BUILD := build
LIB := $(BUILD)/libsocket_server.a
RUST_LIB := target/release/libsocket_server.a
HEADER := include/socket_server.h
EXPORTS := src/ffi/exports.txt

# The C tests link whatever implements the ABI; by default ours.
SOCKET_LIB ?= $(LIB)
CFLAGS_TEST ?= -std=gnu11 -g -O1 -Wall -Wextra -Werror -Iinclude
LDLIBS_TEST ?= -lpthread -ldl -lm -lrt
VALGRIND_CMD := valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

.PHONY: all rust demo test check-format lint unit check-header check-abi check-exports ctest-plain ctest-valgrind clean

all: $(LIB) $(HEADER)

# cargo decides what to rebuild; build.rs regenerates the header.
rust:
	$(CARGO) build --release --quiet

$(RUST_LIB) $(HEADER): rust

# One relocatable object for the whole crate: unused code dropped, every symbol but the
# exported ones (and the weak skynet_error fallback) made local, so nothing collides with
# skynet's symbols and a static link always pulls in every entry point together.
$(LIB): $(RUST_LIB) $(EXPORTS)
	@mkdir -p $(BUILD)
	ld -r --gc-sections $$(grep -v '^#' $(EXPORTS) | sed -n 's/^\([a-z_]\+\).*/-u \1/p') -u skynet_error \
		--whole-archive $(RUST_LIB) -o $(BUILD)/socket_server.all.o
	objcopy --remove-section=.llvmbc --remove-section=.llvmcmd \
		--keep-global-symbols=$(EXPORTS) --keep-global-symbol=skynet_error \
		$(BUILD)/socket_server.all.o $(BUILD)/socket_server.o
	rm -f $@ $(BUILD)/socket_server.all.o
	ar rcs $@ $(BUILD)/socket_server.o

demo: $(LIB) $(HEADER)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude demo/echo_demo.c $(LIB) $(LDLIBS_TEST) -o $(BUILD)/echo_demo
	./$(BUILD)/echo_demo

test: check-format lint unit all check-header check-abi check-exports ctest-plain ctest-valgrind \
		difftest-check stress stress-memcheck
	@echo "make test: all checks passed"

check-format:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets --quiet -- -D warnings

unit:
	$(CARGO) test --quiet

# The checked-in header must be what cbindgen generates from src/ffi (stage it after a change).
check-header: $(HEADER)
	@git diff --exit-code -- $(HEADER) || { echo "include/socket_server.h differs from the generated one: review and commit it"; exit 1; }

check-abi: $(HEADER)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -Iinclude -c c_tests/abi_check.c -o /dev/null
	@echo "abi: layouts and prototypes match"

check-exports: $(LIB)
	sh tools/check_exports.sh $(LIB) $(EXPORTS)

ctest-plain: $(LIB)
	$(MAKE) --no-print-directory ctest VALGRIND=

ctest-valgrind: $(LIB)
	$(MAKE) --no-print-directory ctest VALGRIND="$(VALGRIND_CMD)"

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

-include c_tests/tests.mk
-include bench/bench.mk
-include stress/stress.mk
-include difftest/difftest.mk
