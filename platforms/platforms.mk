# make check-platforms: the library for the other systems skynet builds on, checked from this
# x86-64 Linux machine; included by the top-level Makefile, run last by `make test`.
#
#   make check-platforms                  every target below, then one summary line each
#   make check-platform-TARGET            one of them
#
# For each target: `cargo build --release --target T` (the static library) and clippy with
# -D warnings. Then
#   x86_64-unknown-freebsd     the single-object archive made with FreeBSD's tools (lld,
#                              llvm-objcopy, llvm-ar), its exports checked with llvm-nm
#   aarch64-unknown-linux-gnu  the single-object archive made with the aarch64 binutils, its
#                              exports checked; the C tests and the demo linked with
#                              aarch64-linux-gnu-gcc and run under qemu-aarch64
#   *-apple-darwin             the Rust archive linked whole into a dylib by lld's Mach-O
#                              port with the export list of the macOS recipe, its exports
#                              checked; the single-object step itself needs Apple's ld -r
#
# A missing tool stops its target with "check-platforms: CANNOT RUN <step>: <why>"; every
# target is tried, and check-platforms fails when any of them did. Output goes to
# target/<T>/ (cargo) and $(BUILD)/<T>/, never to $(BUILD)/libsocket_server.a.

PLATFORM_TARGETS := x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd \
	aarch64-unknown-linux-gnu
PLATFORM_MACHO := x86_64-apple-darwin aarch64-apple-darwin
# ld's -arch and the minimum macOS, both as rustc has them for the target.
PLAT_MACHO_x86_64-apple-darwin := x86_64 10.12
PLAT_MACHO_aarch64-apple-darwin := arm64 11.0

plat_rust_lib = target/$(1)/release/libsocket_server.a
plat_lib = $(BUILD)/$(1)/libsocket_server.a

# The C compiler build.rs runs for the skynet_error fallback (see build.rs).
PLAT_CC_x86_64-apple-darwin := clang
PLAT_CC_aarch64-apple-darwin := clang
PLAT_CC_x86_64-unknown-freebsd := clang
PLAT_CC_aarch64-unknown-linux-gnu := aarch64-linux-gnu-gcc

A64 := aarch64-unknown-linux-gnu
A64_PREFIX := aarch64-linux-gnu-
A64_SYSROOT := /usr/aarch64-linux-gnu
# -L: the aarch64 libraries of Debian's cross packages; binfmt_misc is not needed.
QEMU_A64 := qemu-aarch64 -L $(A64_SYSROOT)
# Deadlines under emulation (TEST_TIMEOUT_SCALE; valgrind gets 20). 4 passed every run on this
# 2-core machine with up to six busy loops beside it (the suite: 11 s idle, 23 s so loaded), and
# is the largest scale that leaves the EXPECT_NO_EVENT waits as they are (they grow by scale/4).
# CTEST_UNDER=qemu skips the RLIMIT_AS test: qemu-user does not apply the guest's RLIMIT_AS.
A64_CTEST_SCALE ?= 4
A64_CTEST_LIMIT ?= 600

# $(call plat_need,STEP,COMMANDS,FIX): stop loudly when a command is missing (no commas inside).
plat_need = for c in $(2); do command -v $$c >/dev/null 2>&1 || { \
	echo "check-platforms: CANNOT RUN $(1): $$c not found ($(3))"; exit 1; }; done

# $(call plat_need_std,TARGET): the target's Rust standard library.
plat_need_std = test -d "$$(rustc --print sysroot)/lib/rustlib/$(1)/lib" || { \
	echo "check-platforms: CANNOT RUN cargo build --target $(1): its Rust standard library is not installed (rustup target add $(1))"; \
	exit 1; }

.PHONY: check-platforms $(addprefix check-platform-,$(PLATFORM_TARGETS)) \
	$(addprefix platform-rust-,$(PLATFORM_TARGETS))

check-platforms:
	@start=$$(date +%s); failed=; \
	for t in $(PLATFORM_TARGETS); do \
		echo "== check-platforms: $$t"; \
		$(MAKE) --no-print-directory check-platform-$$t || failed="$$failed $$t"; \
	done; \
	echo "== check-platforms: $$(( $$(date +%s) - start )) s"; \
	for t in $(PLATFORM_TARGETS); do \
		case " $$failed " in *" $$t "*) echo "check-platforms: $$t FAILED (see above)";; \
		*) echo "check-platforms: $$t ok";; esac; \
	done; \
	echo "check-platforms: not done here: Apple's ld -r (the macOS single-object step); linking against the libraries of macOS or FreeBSD; running anything on them"; \
	test -z "$$failed"

# Both steps stop at the first rustc error: a target the library has no backend for fails here.
# clippy only type-checks, so --all-targets (tests included) needs no linker for the target.
$(addprefix platform-rust-,$(PLATFORM_TARGETS)): platform-rust-%:
	@$(call plat_need_std,$*)
	@$(call plat_need,cargo build --target $*,$(PLAT_CC_$*),build.rs compiles the skynet_error fallback with it)
	$(CARGO) build --release --quiet --target $*
	$(CARGO) clippy --quiet --target $* --all-targets -- -D warnings

# Apple's ld -r cannot run here and lld's Mach-O port has no -r. What it can do: link the Rust
# archive whole (-force_load) into a dylib with the exported-symbols list of the macOS recipe,
# which proves the archive links as Mach-O and that the list keeps exactly our globals and the
# weak skynet_error. Undefined symbols are left to dyld: there is no macOS SDK here.
$(addprefix check-platform-,$(PLATFORM_MACHO)): check-platform-%: platform-rust-%
	@$(call plat_need,the Mach-O link check for $*,lld llvm-nm,apt-get install lld llvm)
	@mkdir -p $(BUILD)/$*
	$(MACHO_EXPORTS) > $(BUILD)/$*/exports.macho
	lld -flavor darwin -arch $(word 1,$(PLAT_MACHO_$*)) \
		-platform_version macos $(word 2,$(PLAT_MACHO_$*)) $(word 2,$(PLAT_MACHO_$*)) \
		-dylib -undefined dynamic_lookup -exported_symbols_list $(BUILD)/$*/exports.macho \
		-force_load $(call plat_rust_lib,$*) -o $(BUILD)/$*/libsocket_server.dylib
	NM=llvm-nm sh tools/check_exports.sh --macho $(BUILD)/$*/libsocket_server.dylib $(EXPORTS)
	@echo "check-platforms: $*: built, linted, linked whole into a dylib by lld; not done here: Apple's ld -r (the single-object step), a link against macOS's libraries, running anything"

check-platform-x86_64-unknown-freebsd: platform-rust-x86_64-unknown-freebsd
	@$(call plat_need,the single-object step for x86_64-unknown-freebsd,ld.lld llvm-objcopy llvm-ar llvm-nm,apt-get install lld llvm)
	$(call elf_single_object,$(call plat_rust_lib,x86_64-unknown-freebsd),$(call plat_lib,x86_64-unknown-freebsd),ld.lld,llvm-objcopy,llvm-ar)
	NM=llvm-nm sh tools/check_exports.sh $(call plat_lib,x86_64-unknown-freebsd) $(EXPORTS)
	@echo "check-platforms: x86_64-unknown-freebsd: built, linted, archived with lld as on FreeBSD; nothing linked or run"

# The C tests' make runs with -o $(HEADER): the header's rule is the native cargo build, which
# must not run with CC set to the cross compiler (make exports command-line variables).
check-platform-$(A64): platform-rust-$(A64)
	@$(call plat_need,the $(A64) steps,$(addprefix $(A64_PREFIX),ld objcopy ar nm gcc),apt-get install gcc-aarch64-linux-gnu)
	@$(call plat_need,the $(A64) C tests,qemu-aarch64,apt-get install qemu-user)
	@test -e $(A64_SYSROOT)/lib/ld-linux-aarch64.so.1 || { \
		echo "check-platforms: CANNOT RUN the $(A64) C tests: no $(A64_SYSROOT)/lib/ld-linux-aarch64.so.1 (apt-get install libc6-dev-arm64-cross)"; exit 1; }
	@unshare -n true 2>/dev/null || { \
		echo "check-platforms: CANNOT RUN the $(A64) test_lookup: unshare -n is not permitted here"; exit 1; }
	$(call elf_single_object,$(call plat_rust_lib,$(A64)),$(call plat_lib,$(A64)),$(A64_PREFIX)ld,$(A64_PREFIX)objcopy,$(A64_PREFIX)ar)
	NM=$(A64_PREFIX)nm sh tools/check_exports.sh $(call plat_lib,$(A64)) $(EXPORTS)
	$(MAKE) --no-print-directory -o $(HEADER) ctest CC=$(A64_PREFIX)gcc SOCKET_LIB=$(call plat_lib,$(A64)) \
		CTEST_OUT=$(BUILD)/$(A64)/c_tests VALGRIND="$(QEMU_A64)" \
		CTEST_SCALE=$(A64_CTEST_SCALE) CTEST_LIMIT=$(A64_CTEST_LIMIT) CTEST_UNDER=qemu
	$(A64_PREFIX)gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude demo/echo_demo.c \
		$(call plat_lib,$(A64)) $(LDLIBS_TEST) -o $(BUILD)/$(A64)/echo_demo
	timeout -k 10 120 $(QEMU_A64) $(BUILD)/$(A64)/echo_demo
