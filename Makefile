# timenet — build, set-up, run and test. `make run` and `make test` work on a fresh Debian 12
# machine: missing Debian packages are installed first (target `deps`).

SHELL := /bin/bash
.DEFAULT_GOAL := all

DEB_PKGS := build-essential pkg-config lua5.4 liblua5.4-dev libuv1-dev libsodium-dev \
	libsqlite3-dev libcjson-dev lua-busted lua-luv lua-socket lua-cjson lua-dkjson lua-check \
	lua-system libcurl4-openssl-dev libmaxminddb-dev clang libclang-rt-14-dev llvm-14 prometheus nftables
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PKG_MODS := libuv libsodium sqlite3 lua5.4 libcjson libcurl libmaxminddb

# BUILD=build/asan selects the sanitizer build (see `make asan`).
BUILD ?= build
SAN ?=
VERSION := 0.1.0
OPT ?= -O2

CFLAGS_COMMON = -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -fPIC -DTN_VERSION='"$(VERSION)"' \
	$(shell pkg-config --cflags $(PKG_MODS) 2>/dev/null) $(SAN)
LIBS = $(shell pkg-config --libs libuv libsodium sqlite3 libcjson libcurl libmaxminddb 2>/dev/null) -lm
LUA_LIB = $(shell pkg-config --libs lua5.4 2>/dev/null)

SRC := $(wildcard c/tn_*.c)
HDR := $(wildcard c/*.h)
OBJ := $(SRC:c/%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)

.PHONY: all deps run test soak asan bench fuzz fuzz-bin fuzz-replay fuzz-corpus clean format check-deps

all: deps $(BUILD)/timenetd $(BUILD)/timenetctl $(BUILD)/timenet.so $(BUILD)/unit-tests

# Installs the Debian packages that are missing (nothing when all are present).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing </dev/null; \
	fi

$(BUILD)/obj/%.o: c/%.c $(HDR) | $(BUILD)/obj
	@echo "CC $<"
	@$(CC) $(CFLAGS_COMMON) -c $< -o $@

$(BUILD)/obj:
	@mkdir -p $@

$(BUILD)/libtimenet.a: $(OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/timenetd: c/timenetd.c $(BUILD)/libtimenet.a
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) $< $(BUILD)/libtimenet.a $(LUA_LIB) $(LIBS) -o $@

# The operator CLI: one lua5.4 script (LuaSocket, dkjson), copied so it runs from build/.
$(BUILD)/timenetctl: lua/timenetctl.lua
	@echo "GEN $@"
	@mkdir -p $(@D)
	@install -m 0755 $< $@

# Lua binding of the codec and handshake, used by tests and the adversarial peer.
# Not linked against liblua: the lua5.4 binary provides the API (TOOLCHAIN.md). Built from
# the codec sources without sanitizers even in the asan build: it is test tooling loaded
# into lua5.4, and an ASan module would need the runtime preloaded into every process.
CODEC_SRC := c/tn_common.c c/tn_buf.c c/tn_addr.c c/tn_proto.c c/tn_crypto.c c/tn_tx.c
$(BUILD)/timenet.so: c/lua_timenet.c $(CODEC_SRC) $(HDR)
	@echo "LD $@"
	@$(CC) $(filter-out $(SAN),$(CFLAGS_COMMON)) -shared $< $(CODEC_SRC) \
	  $(shell pkg-config --libs libsodium) -o $@

$(BUILD)/unit-tests: $(UNIT_SRC) tests/unit/tn_test.h $(BUILD)/libtimenet.a
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) -Ic $(UNIT_SRC) $(BUILD)/libtimenet.a $(LUA_LIB) $(LIBS) -o $@

run: all
	@mkdir -p var
	./$(BUILD)/timenetd $(if $(CONFIG),--config $(CONFIG))

# Every suite; the last line is "N passed, N failed". TEST_ONLY=<suite> narrows it.
test: all fuzz-replay
	@BUILD=$(BUILD) timeout --foreground -k 10 1500 tests/run.sh

# peers_spec's 60-node profile for the full 60 s (make test runs 16 s of it), then the resilience
# scenarios for SOAK_SECONDS each and repeated kill -9 rounds (tests/soak/run.sh).
soak: all
	@BUILD=$(BUILD) TN_SOAK=1 SPEC=tests/spec/peers_spec.lua TEST_ONLY=spec tests/run.sh
	@BUILD=$(BUILD) tests/soak/run.sh

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# Bench binaries: tests/bench/NAME.c -> $(BUILD)/bench-NAME. `bench` needs only the library and
# these (not the unit tests), so a bench run does not depend on unrelated targets.
BENCH_BIN := $(patsubst tests/bench/%.c,$(BUILD)/bench-%,$(wildcard tests/bench/*.c))

$(BUILD)/bench-%: tests/bench/%.c $(wildcard tests/bench/*.h) $(BUILD)/libtimenet.a
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) -Ic $< $(BUILD)/libtimenet.a $(LUA_LIB) $(LIBS) -o $@

# ONLY=name runs one bench and keeps the other entries of var/bench/results.json.
bench: deps $(BENCH_BIN) $(BUILD)/timenetd $(BUILD)/timenet.so
	@BUILD=$(BUILD) tests/bench/run.sh $(ONLY)

# Fuzz targets: tests/fuzz/fuzz_NAME.c, corpus in tests/fuzz/corpus/NAME/ (tests/fuzz/README.md).
# `make test` replays every corpus with a plain driver built by $(CC) ($(BUILD)/fuzz-replay/NAME,
# sanitized under `make asan`); `make fuzz` builds the libFuzzer binaries with clang into
# build/libfuzzer/ and runs each target FUZZ_SECONDS (ONLY=name for one); new inputs and crashes
# go to var/fuzz/, never into git by themselves.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SUPPORT := tests/fuzz/fz_common.c
FUZZ_DEPS := $(FUZZ_SUPPORT) tests/fuzz/fz_common.h $(BUILD)/libtimenet.a
FUZZ_SECONDS ?= 60
LIBFUZZER_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

$(BUILD)/fuzz-replay/%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) -Ic $< tests/fuzz/driver.c $(FUZZ_SUPPORT) $(BUILD)/libtimenet.a \
	  $(LUA_LIB) $(LIBS) -o $@

fuzz-replay: $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/%)

# Only meaningful with the libFuzzer flags (`make fuzz` sets them).
$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) -fsanitize=fuzzer -Ic $< $(FUZZ_SUPPORT) $(BUILD)/libtimenet.a \
	  $(LUA_LIB) $(LIBS) -o $@

fuzz-bin: $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/libfuzzer CC=clang OPT=-O1 SAN="$(LIBFUZZER_SAN)" \
	  fuzz-bin
	@FUZZ_BIN=build/libfuzzer/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(ONLY)

# Regenerates the seed corpora from the real encoders (tests/fuzz/gen_corpus.c).
$(BUILD)/fuzz-gen-corpus: tests/fuzz/gen_corpus.c $(FUZZ_DEPS)
	@echo "LD $@"
	@$(CC) $(CFLAGS_COMMON) -Ic $< $(FUZZ_SUPPORT) $(BUILD)/libtimenet.a $(LUA_LIB) $(LIBS) -o $@

fuzz-corpus: $(BUILD)/fuzz-gen-corpus
	./$(BUILD)/fuzz-gen-corpus tests/fuzz/corpus

# `make demo`: a local testnet of N real nodes (tests/lib/demo.lua; README "Local testnet").
# Options pass through: make demo N=20 DURATION=60 SEED=7 DEGREE=4 EXPERIMENTS=latency_probe
DEMO_VARS := N DURATION SEED DEGREE TOPOLOGY BLOCK_INTERVAL TX_RATE TX_SIZE DELAY LOSS FAULTS \
	EXPERIMENTS FEATURES RUN QUIET
.PHONY: demo
demo: all
	@LUA_PATH="tests/lib/?.lua;lua/?.lua;;" LUA_CPATH="$(BUILD)/?.so;;" BUILD=$(BUILD) \
	  lua5.4 tests/lib/demo.lua $(foreach v,$(DEMO_VARS),$(if $($(v)),"$(v)=$($(v))"))

# `make install` (PREFIX=/usr/local, DESTDIR for staging): timenetd and timenetctl in BINDIR;
# pristine policies, examples and docs in DATADIR; the systemd unit in UNITDIR; the operator's
# config and policy copy in SYSCONFDIR/timenet, created only when absent (never overwritten).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/timenet
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL_PATHS := sed -e 's|/usr/local/bin|$(BINDIR)|g' -e 's|/usr/local/etc|$(SYSCONFDIR)|g' \
	-e 's|/usr/local/share/timenet|$(DATADIR)|g'

.PHONY: install uninstall
install: $(BUILD)/timenetd $(BUILD)/timenetctl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/policies/lib $(DESTDIR)$(DATADIR)/examples \
	  $(DESTDIR)$(DATADIR)/doc $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/timenet
	install -m 0755 $(BUILD)/timenetd $(BUILD)/timenetctl $(DESTDIR)$(BINDIR)/
	install -m 0644 policies/*.lua policies/README.md $(DESTDIR)$(DATADIR)/policies/
	install -m 0644 policies/lib/*.lua $(DESTDIR)$(DATADIR)/policies/lib/
	install -m 0644 examples/*.conf $(DESTDIR)$(DATADIR)/examples/
	install -m 0644 README.md $(DESTDIR)$(DATADIR)/
	install -m 0644 doc/*.md $(DESTDIR)$(DATADIR)/doc/
	$(INSTALL_PATHS) examples/timenetd.service > $(DESTDIR)$(UNITDIR)/timenetd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/timenetd.service
	@conf=$(DESTDIR)$(SYSCONFDIR)/timenet/timenetd.conf; if [ -e "$$conf" ]; then \
	  echo "kept $$conf"; else $(INSTALL_PATHS) examples/timenetd.conf > "$$conf" && \
	  chmod 0644 "$$conf" && echo "installed $$conf"; fi
	@pol=$(DESTDIR)$(SYSCONFDIR)/timenet/policies; if [ -e "$$pol" ]; then \
	  echo "kept $$pol (new defaults are in $(DATADIR)/policies)"; else \
	  cp -R $(DESTDIR)$(DATADIR)/policies "$$pol" && echo "installed $$pol"; fi

# Removes what install put in BINDIR, DATADIR and UNITDIR; SYSCONFDIR/timenet (the operator's
# config and policies) and the data dir stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/timenetd $(DESTDIR)$(BINDIR)/timenetctl \
	  $(DESTDIR)$(UNITDIR)/timenetd.service
	rm -rf $(DESTDIR)$(DATADIR)

# The configuration reference, generated from the key list (a spec checks it is current).
.PHONY: doc
doc: $(BUILD)/timenetd
	./$(BUILD)/timenetd --print-config | lua5.4 lua/configdoc.lua > doc/config.md

format:
	clang-format -i c/*.c c/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build
