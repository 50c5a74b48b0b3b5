# kiln — top-level Makefile. A plain Makefile on purpose: one file a newcomer
# can read top to bottom. `make help` lists the targets.
#
#   make            build ./build/kiln
#   make check      install dependencies, build, run every test (unit tests
#                   also under ASan+UBSan), print "N passed, N failed"
#   make demo       install dependencies, build, run the main job on the
#                   default example

CC      ?= cc
# `make Q=` shows full compiler command lines
Q       ?= @
PKGS    := yaml-0.1 libcrypto libzstd zlib liblzma libcurl sqlite3 libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lcrypto -lzstd -lz -llzma -lcurl -lsqlite3 -lmicrohttpd)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 -Wundef \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wimplicit-fallthrough \
           -Wno-unused-parameter -Wno-sign-compare
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -Isrc -DKILN_VERSION='"$(VERSION)"' \
             -D_GNU_SOURCE $(PKG_CFLAGS) -MMD -MP
LDLIBS  = $(PKG_LIBS) -lm -lpthread

# Library sources: every src/ module except the CLI, in dependency order.
LIB_SRCS := $(wildcard src/base/*.c) $(wildcard src/os/*.c) $(wildcard src/net/*.c) $(wildcard src/db/*.c) \
            $(wildcard src/spec/*.c) $(wildcard src/provision/*.c) \
            $(wildcard src/image/*.c) $(wildcard src/vm/*.c) $(wildcard src/check/*.c) \
            $(wildcard src/store/*.c) $(wildcard src/publish/*.c) $(wildcard src/pipeline/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

# Two build trees: build/ (optimised) and build-san/ (ASan + UBSan, for tests).
B  := build
BS := build-san
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all

.PHONY: all check demo deps unit unit-san clean help fuzz
all: $(B)/kiln

define tree
$(1)/%.o: %.c
	@mkdir -p $$(@D)
	@echo "  CC      $$@"
	$$(Q)$$(CC) $$(ALL_CFLAGS) $(2) -c $$< -o $$@

$(1)/libkiln.a: $$(LIB_SRCS:%.c=$(1)/%.o)
	@rm -f $$@
	$$(AR) rcs $$@ $$^

$(1)/kiln: $$(CLI_SRCS:%.c=$(1)/%.o) $(1)/libkiln.a
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(ALL_CFLAGS) $(2) -o $$@ $$^ $$(LDLIBS)

$(1)/tests/unit/%: $(1)/tests/unit/%.o $(1)/tests/unit/harness.o $(1)/libkiln.a
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(ALL_CFLAGS) $(2) -o $$@ $$^ $$(LDLIBS)
endef

$(eval $(call tree,$(B),))
$(eval $(call tree,$(BS),$(SAN_FLAGS)))

UNIT_BINS     := $(UNIT_SRCS:%.c=$(B)/%)
UNIT_SAN_BINS := $(UNIT_SRCS:%.c=$(BS)/%)

unit: $(UNIT_BINS)
unit-san: $(UNIT_SAN_BINS) $(BS)/kiln

deps:
	./scripts/install-deps.sh

# The test command (README, .ci/run): dependencies, both trees, every suite.
check: deps
	$(MAKE) all unit unit-san
	./tests/run-all.sh

demo: deps
	$(MAKE) all
	./scripts/demo.sh

clean:
	rm -rf $(B) $(BS) build-fuzz

help:
	@sed -n '1,10p' Makefile

-include $(shell find $(B) $(BS) build-fuzz -name '*.d' 2>/dev/null)
.SECONDARY:

# Coverage-guided fuzzing (needs clang: apt-get install clang): one entry
# point per parser, tests/fuzz/fuzz_<name>.c (see tests/fuzz/fuzz.h), each
# with a seed corpus in tests/fuzz/corpus-<name>/ (the spec's: corpus/).
# tests/unit/test_fuzz_replay.c replays every corpus without clang. Run one:
#   ./build-fuzz/fuzz_varfile -max_total_time=60 tests/fuzz/corpus-varfile
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=gnu11 -g -O1 -Isrc -D_GNU_SOURCE -DKILN_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -MMD -MP
FZ         := build-fuzz

$(FZ)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(FZ)/libkiln.a: $(LIB_SRCS:%.c=$(FZ)/obj/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FZ)/libkiln.a
	@echo "  LINK    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined $< $(FZ)/libkiln.a \
	  -o $@ $(LDLIBS)

# One line per entry point.
fuzz: \
	$(FZ)/fuzz_spec \
	$(FZ)/fuzz_varfile \
	$(FZ)/fuzz_varargs \
	$(FZ)/fuzz_checks \
	$(FZ)/fuzz_publish \
	$(FZ)/fuzz_manifest \
	$(FZ)/fuzz_serve \

