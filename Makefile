# Outpost — two commands on a fresh Debian 12 machine, as root:
#   make run    installs what is missing, builds, starts outpostd with conf/outpost.conf
#   make test   installs what is missing, builds, runs every test layer
# Also: make bench (against the ceiling and the peers), make bench-parts,
# make check (validate the shipped config), make clean.

CC      ?= gcc
PKGS     = luajit libuv libcares libidn2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DOP_VERSION='"$(VERSION)"' $(WARN) $(PKG_CFLAGS) -Iengine -Ibuild/gen
LDLIBS   = $(PKG_LIBS) -lldap -llber -lrocksdb -lhiredis -lm
ASAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# engine/<folder>/<file>.c -> build/{rel,asan}/<folder>/<file>.o; the
# objects of every folder but main.c form libengine.a, which the C tests and
# the bench tools link against (docs/architecture.md, "Folders").
ENGINE_DIRS := core proto lookup counters lua config control lib
ENGINE_SRC  := $(filter-out engine/core/main.c, $(foreach d,$(ENGINE_DIRS),$(wildcard engine/$(d)/*.c)))
ENGINE_HDR  := $(foreach d,$(ENGINE_DIRS),$(wildcard engine/$(d)/*.h))
REL_OBJ     := $(ENGINE_SRC:engine/%.c=build/rel/%.o)
ASAN_OBJ    := $(ENGINE_SRC:engine/%.c=build/asan/%.o)
REL_LIB     := build/rel/libengine.a
ASAN_LIB    := build/asan/libengine.a
CTEST_SRC   := $(wildcard spec/c/test_*.c)
CTEST_BIN   := $(CTEST_SRC:spec/c/%.c=build/asan/%)
BENCH_SRC   := $(wildcard bench/*.c)
BENCH_BIN   := $(BENCH_SRC:bench/%.c=build/rel/bench-%)

.PHONY: all deps build run test e2e check bench bench-parts fuzz clean
all: build

# Idempotent: costs one dpkg query per package when everything is there.
deps:
	@scripts/deps.sh

build: build/outpostd build/asan/outpostd $(CTEST_BIN) $(BENCH_BIN) build/outpostctl

# V=1 shows the full commands.
Q = $(if $(V),,@)
build/rel/%.o: engine/%.c $(ENGINE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<
build/asan/%.o: engine/%.c $(ENGINE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(ASAN) -c -o $@ $<

$(REL_LIB): $(REL_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^
$(ASAN_LIB): $(ASAN_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

build/outpostd: build/rel/core/main.o $(REL_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
build/asan/outpostd: build/asan/core/main.o $(ASAN_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -g $(ASAN) -o $@ $^ $(LDLIBS)

build/asan/test_%: spec/c/test_%.c spec/c/ctest.h spec/c/ctest_loop.h $(ASAN_LIB)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(ASAN) -Ispec/c -o $@ $< $(ASAN_LIB) $(LDLIBS)

build/rel/bench-%: bench/%.c $(REL_LIB)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< $(REL_LIB) $(LDLIBS)

build/rel build/asan build/gen:
	mkdir -p $@

# The operator's CLI: standalone, nothing of the engine.
build/outpostctl: cli/outpostctl.c | build/rel
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -o $@ $<

# Lua files built into the engine (the sandbox, the test host) become C
# string literals, so no file on disk can replace them.
EMBEDDED := $(patsubst engine/lua/%.lua,build/gen/%_lua.h,$(wildcard engine/lua/*.lua))
build/gen/%_lua.h: engine/lua/%.lua | build/gen
	$(Q){ printf 'static const char %s_lua[] =\n' '$*'; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  printf ';\n'; } > $@
# The Redis backend's server-side script (engine/counters/counters_redis.lua).
EMBEDDED += $(patsubst engine/counters/%.lua,build/gen/%_lua.h,$(wildcard engine/counters/*.lua))
build/gen/%_lua.h: engine/counters/%.lua | build/gen
	$(Q){ printf 'static const char %s_lua[] =\n' '$*'; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  printf ';\n'; } > $@
$(REL_OBJ) $(ASAN_OBJ) build/rel/core/main.o build/asan/core/main.o: $(EMBEDDED)

# The sub-make sees the pkg-config flags of packages deps just installed.
run: deps
	@$(MAKE) --no-print-directory build/outpostd build/outpostctl
	@scripts/run.sh

check: build/outpostd
	build/outpostd --check -c conf/outpost.conf

test: deps
	@$(MAKE) --no-print-directory build
	@spec/run-all.sh

# Only the end-to-end layer (spec/e2e/, real Postfix, slapd, unbound, swaks):
# docs/testing.md.
e2e: deps
	@$(MAKE) --no-print-directory build
	@spec/run-all.sh e2e

# bench/run.sh: outpostd against the ceiling and the peers (postfwd,
# policyd-rate-limit, installed by bench/deps.sh, which only `make bench`
# runs); bench/scaling.sh: postout as subjects and connections grow;
# bench/bench_milter.sh: whole milter sessions/s (docs/milter.md).
# BENCH_BASELINE=DIR (a built checkout of another commit) adds its daemon
# beside this one in run.sh and the milter part: a change against what it
# replaces, in one run.  `make bench-parts`: each bench/bench_*.sh measures one part (DNS, LDAP,
# counters, milter).  docs/performance.md.
bench: deps
	@bench/deps.sh
	@$(MAKE) --no-print-directory build
	@bench/run.sh
	@bench/scaling.sh
	@BENCH_CONNS="8 64" bash bench/bench_milter.sh
	@$(if $(BENCH_BASELINE),BENCH_TREE=$(BENCH_BASELINE) BENCH_CONNS="8 64" bash bench/bench_milter.sh)

bench-parts: deps
	@$(MAKE) --no-print-directory build
	@for b in bench/bench_*.sh; do [ -f "$$b" ] && bash "$$b" || exit 1; done

# Coverage-guided fuzzing of the codecs with libFuzzer (clang).  `make test`
# runs each target for 15 s; FUZZ_SECONDS bounds each target here.
FUZZ_SECONDS ?= 60
fuzz:
	@spec/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
