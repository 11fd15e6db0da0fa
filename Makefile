# media-relay / media-dispatcher build. Everything goes out of tree into
# build/ (build/san/ for the sanitizer variant, build/fuzz/ for libFuzzer).
#
#   make            daemons, BPF object + skeleton, unit and BPF test binaries
#   make SAN=1      the same with -fsanitize=address,undefined into build/san
#   make test       deps check, both builds, every suite (tests/run.sh)
#   make test-san   every suite on the sanitizer build
#   make fuzz       libFuzzer targets (clang); FUZZ_SECONDS=N runs each N s
#   make run        both daemons in the foreground on loopback (build/run/)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool

ifeq ($(SAN),1)
BUILD    ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
else
BUILD    ?= build
SANFLAGS :=
endif

PKGS     := libbpf libxdp openssl json-c libevent libevent_openssl inih \
            libnetfilter_conntrack libnftables libmnl libmariadb radcli zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -DMP_VERSION='"$(VERSION)"' -Icommon -Ibpf -I$(BUILD)/bpf
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -MMD -MP $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

COMMON_SRC     := $(wildcard common/*.c)
RELAY_SRC      := $(filter-out relayd/main.c,$(wildcard relayd/*.c))
DISPATCHER_SRC := $(filter-out dispatcherd/main.c,$(wildcard dispatcherd/*.c)) \
                  $(wildcard accounting/*.c)
UNIT_SRC       := $(wildcard tests/unit/test_*.c)
BPFTEST_SRC    := $(wildcard tests/bpf/test_*.c)
TESTHELP_SRC   := $(wildcard tests/helpers/*.c)
BPF_SRC        := $(wildcard bpf/*.bpf.c)
FUZZ_SRC       := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC      := $(filter-out %.bpf.c,$(wildcard tests/bench/*.c))
BENCH_BPF_SRC  := $(wildcard tests/bench/*.bpf.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON     := $(BUILD)/lib/libcommon.a
LIBRELAY      := $(BUILD)/lib/librelay.a
LIBDISPATCHER := $(BUILD)/lib/libdispatcher.a
BPF_OBJ       := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_SKEL      := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRC))
VMLINUX_H     := $(BUILD)/bpf/vmlinux.h
UNIT_BIN      := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
BPFTEST_BIN   := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(BPFTEST_SRC))
HELPER_BIN    := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(TESTHELP_SRC))
BIN           := $(BUILD)/bin/media-relay $(BUILD)/bin/media-dispatcher
BENCH_BIN     := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_BPF     := $(patsubst tests/bench/%.bpf.c,$(BUILD)/bench/%.bpf.o,$(BENCH_BPF_SRC)) \
                 $(patsubst tests/bench/%.bpf.c,$(BUILD)/bench/%.skel.h,$(BENCH_BPF_SRC))

.PHONY: all deps run demo test test-san fuzz clean install unit-tests bench
.DEFAULT_GOAL := all
# Keep object files of test programs: they are not throw-away intermediates.
.SECONDARY:

all: $(BIN) $(BPF_OBJ) $(BPF_SKEL) $(UNIT_BIN) $(BPFTEST_BIN) $(HELPER_BIN) $(BENCH_BPF) $(BENCH_BIN)

unit-tests: $(UNIT_BIN)

deps:
	@scripts/install-deps.sh

# --- libraries and daemons -------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The relay includes the generated skeletons.
$(call obj,$(RELAY_SRC) relayd/main.c $(BPFTEST_SRC)): $(BPF_SKEL)

# The dispatcher and its accounting see each other's headers.
$(call obj,$(DISPATCHER_SRC) dispatcherd/main.c): CPPFLAGS += -Idispatcherd -Iaccounting

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBRELAY): $(call obj,$(RELAY_SRC))
$(LIBDISPATCHER): $(call obj,$(DISPATCHER_SRC))
$(BUILD)/lib/%.a:
	@mkdir -p $(@D)
	rm -f $@
	$(if $^,ar rcs $@ $^,ar rcs $@)

$(BUILD)/bin/media-relay: $(call obj,relayd/main.c) $(LIBRELAY) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/media-dispatcher: $(call obj,dispatcherd/main.c) $(LIBDISPATCHER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- BPF ----------------------------------------------------------------------
$(VMLINUX_H):
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	mv $@.tmp $@

BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) \
              -I$(BUILD)/bpf -Ibpf

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp
	mv $@.tmp $@

# --- tests --------------------------------------------------------------------
TEST_LIBS := $(LIBDISPATCHER) $(LIBRELAY) $(LIBCOMMON)

# Tests reach into the daemons' modules; the daemons never include each other.
$(BUILD)/obj/tests/%.o: CPPFLAGS += -Irelayd -Idispatcherd -Iaccounting

$(BUILD)/tests/unit/%: $(call obj,tests/unit/%.c) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/bpf/%: $(call obj,tests/bpf/%.c) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/helpers/%: $(call obj,tests/helpers/%.c) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- benchmarks (tests/bench; `make bench`, never part of `make test`) --------
# Bench programs may include the relay's skeleton and their own.
$(call obj,$(BENCH_SRC)): $(BPF_SKEL) $(BENCH_BPF)
$(call obj,$(BENCH_SRC)): CPPFLAGS += -I$(BUILD)/bench

$(BUILD)/bench/%.bpf.o: tests/bench/%.bpf.c $(VMLINUX_H) $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/bench/%.skel.h: $(BUILD)/bench/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp
	mv $@.tmp $@

$(BUILD)/bench/%: $(call obj,tests/bench/%.c) $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- fuzzing (clang + libFuzzer; own object tree) ------------------------------
FUZZ_BUILD  := build/fuzz
FUZZ_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -g -O1
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -Werror -MMD -MP -D_GNU_SOURCE -DMP_VERSION='"$(VERSION)"' \
               -Icommon -Ibpf -Ibuild/bpf -Irelayd -Idispatcherd -Iaccounting $(PKG_CFLAGS)
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_LIB    := $(FUZZ_BUILD)/libfuzzed.a
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(COMMON_SRC) $(RELAY_SRC) $(DISPATCHER_SRC))
FUZZ_SECONDS ?= 60

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# relayd/ includes the skeleton.
$(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(RELAY_SRC)): build/bpf/relay.skel.h

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# Each target pulls from the library only the objects its parser needs.
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@tests/run.sh --only fuzz --fuzz-seconds $(FUZZ_SECONDS)

# --- running and testing -----------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 unit-tests
	@$(MAKE) --no-print-directory fuzz-build
	@tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/run.sh

test-san: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory fuzz-build
	@tests/run.sh --build build/san

# --- install ------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mediaproxy/bpf \
		$(DESTDIR)/etc/mediaproxy/radius
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BPF_OBJ) $(DESTDIR)$(PREFIX)/share/mediaproxy/bpf/
	install -m 0644 config.ini.sample $(DESTDIR)$(PREFIX)/share/mediaproxy/
	test -e $(DESTDIR)/etc/mediaproxy/config.ini || \
		install -m 0644 config.ini.sample $(DESTDIR)/etc/mediaproxy/config.ini
	install -m 0755 tls/make-certs.sh $(DESTDIR)$(PREFIX)/share/mediaproxy/
	# [Radius] additional_dictionary's default: <config dir>/radius/dictionary
	install -m 0644 radius/dictionary $(DESTDIR)/etc/mediaproxy/radius/dictionary

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
