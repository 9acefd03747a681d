# socket_server: skynet's network layer as a Rust static library with a C ABI.
#   make          build build/libsocket_server.a and include/socket_server.h
#   make demo     build, then run an echo server and clients over loopback through the library
#   make test     every check: format, lint, Rust unit tests, ABI and export checks, C tests
#                 (directly and under valgrind), the differential runner's invariant seeds
#                 (difftest-check), the skynet-shaped stress run (directly, ~30 s, and under
#                 valgrind memcheck), then check-platforms; more sanitizer runs: see
#                 stress/README.md
#   make check-platforms   the library built and linted for macOS, FreeBSD and ARM64 Linux, the
#                 C tests and demo run on ARM64 under qemu (platforms/platforms.mk)
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

# One relocatable object for the whole crate: every symbol but the exported ones (and the weak
# skynet_error fallback) made local, so nothing collides with skynet's symbols and a static link
# always pulls in every entry point together. How depends on the system's linker (uname -s);
# only the Linux recipe is run on Linux itself, see "Platforms" in README.md.
UNAME_S := $(shell uname -s)

# The exported names as Mach-O spells them, for Apple's ld (and check-platforms' Mach-O link).
MACHO_EXPORTS = { sed -n 's/^\([a-z_][a-z_]*\).*/_\1/p' $(EXPORTS); echo _skynet_error; }

ifeq ($(UNAME_S),Darwin)
# Apple's ld: -exported_symbols_list keeps the listed globals (Mach-O names carry a leading
# underscore) and turns every other one into a local symbol. ld64 refuses -dead_strip with -r,
# so unused code stays in the object until skynet's own link. -force_load passes no .o file
# for ld to infer the architecture from, hence -arch, taken from the Rust toolchain's host.
MACHO_ARCH := $(if $(filter aarch64-%,$(shell rustc -vV | sed -n 's/^host: //p')),arm64,x86_64)

$(LIB): $(RUST_LIB) $(EXPORTS)
	@mkdir -p $(BUILD)
	$(MACHO_EXPORTS) > $(BUILD)/exports.macho
	ld -r -arch $(MACHO_ARCH) -exported_symbols_list $(BUILD)/exports.macho \
		-force_load $(RUST_LIB) -o $(BUILD)/socket_server.o
	rm -f $@
	ar rcs $@ $(BUILD)/socket_server.o
else
# ELF: GNU ld and objcopy on Linux; on FreeBSD, ld is lld and llvm-objcopy is used when found.
# Any of the three can be set on the command line (check-platforms uses cross tools).
ifeq ($(UNAME_S),Linux)
OBJCOPY ?= objcopy
else
OBJCOPY ?= $(shell command -v llvm-objcopy >/dev/null 2>&1 && echo llvm-objcopy || echo objcopy)
endif

$(LIB): $(RUST_LIB) $(EXPORTS)
	$(call elf_single_object,$(RUST_LIB),$@,$(LD),$(OBJCOPY),$(AR))
endif

# $(call elf_single_object,RUST_ARCHIVE,OUT_ARCHIVE,LD,OBJCOPY,AR): unused code dropped
# (--gc-sections, rooted at the exports), then every global but the exports and skynet_error
# made local; the object is left beside OUT_ARCHIVE. The sed is POSIX (no \+) for BSD sed.
# lld (FreeBSD) leaves the emptied COMDAT group of DW.ref.rust_eh_personality in the object:
# lld and the llvm tools read it, GNU binutils call it "file format not recognized".
define elf_single_object
	@mkdir -p $(dir $(2))
	$(3) -r --gc-sections $$(sed -n 's/^\([a-z_][a-z_]*\).*/-u \1/p' $(EXPORTS)) -u skynet_error \
		--whole-archive $(1) -o $(dir $(2))socket_server.all.o
	$(4) --remove-section=.llvmbc --remove-section=.llvmcmd \
		--keep-global-symbols=$(EXPORTS) --keep-global-symbol=skynet_error \
		$(dir $(2))socket_server.all.o $(dir $(2))socket_server.o
	rm -f $(2) $(dir $(2))socket_server.all.o
	$(5) rcs $(2) $(dir $(2))socket_server.o
endef

demo: $(LIB) $(HEADER)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude demo/echo_demo.c $(LIB) $(LDLIBS_TEST) -o $(BUILD)/echo_demo
	./$(BUILD)/echo_demo

test: check-format lint unit all check-header check-abi check-exports ctest-plain ctest-valgrind \
		difftest-check stress stress-memcheck check-platforms
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
	sh tools/check_exports.sh $(strip $(if $(filter Darwin,$(UNAME_S)),--macho) $(LIB)) $(EXPORTS)

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
-include platforms/platforms.mk
