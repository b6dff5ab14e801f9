# Outpost — two commands on a fresh Debian 12 machine, as root:
#   make run    installs what is missing, builds, starts outpostd with conf/outpost.conf
#   make test   installs what is missing, builds, runs every test layer
# Also: make bench (against the ceiling and the peers), make bench-parts, make bench-jit,
# make check (validate the shipped config), make clean.

CC      ?= gcc
CXX     ?= g++
PKGS     = luajit libuv libcares libidn2 libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# Where `make install` puts things (FHS; DESTDIR for packaging).  The
# configuration, Lua and state paths are compiled in as the defaults
# (engine/config/paths.h), so an installed outpostd needs no -c; the
# build tree's binaries get the same defaults and the tests pass -c.
PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/outpost
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
STATEDIR   ?= /var/lib/outpost
RUNDIR     ?= /run/outpost
UNITDIR    ?= /lib/systemd/system
PATH_DEFS = -DOP_SYSCONF_DIR='"$(SYSCONFDIR)/outpost"' -DOP_DATA_DIR='"$(DATADIR)"' \
            -DOP_STATE_DIR='"$(STATEDIR)"'
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DOP_VERSION='"$(VERSION)"' $(PATH_DEFS) $(WARN) $(PKG_CFLAGS) -Iengine -Ibuild/gen
# Every RocksDB function the counters call at run time goes through
# engine/counters/rocks_guard.cc, where C++ exceptions stop: the linker sends
# each call of rocksdb_X to __wrap_rocksdb_X.  A newly used function is
# added here and there.
ROCKS_GUARDED = open close write get create_iterator iter_seek iter_next iter_valid \
	iter_key iter_value iter_get_error iter_destroy create_snapshot release_snapshot \
	writebatch_create writebatch_put writebatch_merge writebatch_delete \
	writebatch_delete_range writebatch_count readoptions_create \
	readoptions_set_iterate_upper_bound readoptions_set_snapshot
LDLIBS   = $(PKG_LIBS) -lldap -llber $(foreach f,$(ROCKS_GUARDED),-Wl,--wrap=rocksdb_$(f)) \
	-lrocksdb -lstdc++ -lopendkim -lhiredis -lm
CXXFLAGS_GUARD = -std=c++17 -Wall -Wextra -Werror -Iengine
ASAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# engine/<folder>/<file>.c -> build/{rel,asan}/<folder>/<file>.o; the
# objects of every folder but main.c form libengine.a, which the C tests and
# the bench tools link against (docs/architecture.md, "Folders").
ENGINE_DIRS := core proto lookup counters lua config control metrics lib
ENGINE_SRC  := $(filter-out engine/core/main.c, $(foreach d,$(ENGINE_DIRS),$(wildcard engine/$(d)/*.c)))
ENGINE_CXX  := $(foreach d,$(ENGINE_DIRS),$(wildcard engine/$(d)/*.cc))
ENGINE_HDR  := $(foreach d,$(ENGINE_DIRS),$(wildcard engine/$(d)/*.h))
REL_OBJ     := $(ENGINE_SRC:engine/%.c=build/rel/%.o) $(ENGINE_CXX:engine/%.cc=build/rel/%.o)
ASAN_OBJ    := $(ENGINE_SRC:engine/%.c=build/asan/%.o) $(ENGINE_CXX:engine/%.cc=build/asan/%.o)
REL_LIB     := build/rel/libengine.a
ASAN_LIB    := build/asan/libengine.a
CTEST_SRC   := $(wildcard spec/c/test_*.c)
CTEST_BIN   := $(CTEST_SRC:spec/c/%.c=build/asan/%)
BENCH_SRC   := $(wildcard bench/*.c)
BENCH_BIN   := $(BENCH_SRC:bench/%.c=build/rel/bench-%)

.PHONY: all deps build run test e2e check bench bench-jit bench-parts fuzz clean install man deb
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
	$(Q)$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
build/asan/%.o: engine/%.c $(ENGINE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(ASAN) -c -o $@ $<
# The C++ files: the RocksDB guard and the memtable's insert hints.
build/rel/%.o: engine/%.cc $(ENGINE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CXX     $@")
	$(Q)$(CXX) $(CXXFLAGS_GUARD) $(CFLAGS) -c -o $@ $<
build/asan/%.o: engine/%.cc $(ENGINE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CXX     $@")
	$(Q)$(CXX) $(CXXFLAGS_GUARD) -O1 -g $(ASAN) -c -o $@ $<

$(REL_LIB): $(REL_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^
$(ASAN_LIB): $(ASAN_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

build/outpostd: build/rel/core/main.o $(REL_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
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

# The operator's CLI: standalone, nothing of the engine but the request-dump
# codec it shares with outpostd ask --dry-run (engine/lib/reqfile.c: plain
# malloc, no core/mem).
CTL_SRC := cli/outpostctl.c cli/ctl_conf.c cli/ctl_io.c cli/ctl_explain.c engine/lib/reqfile.c
build/outpostctl: $(CTL_SRC) cli/ctl_conf.h cli/ctl_io.h cli/ctl_explain.h engine/lib/reqfile.h | build/rel
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -DOP_VERSION='"$(VERSION)"' $(PATH_DEFS) $(WARN) -Iengine $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(CTL_SRC)

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

# The compiled-in paths: what uses them is built again when PREFIX & co.
# change (the stamp is rewritten only then).
PATHS_STAMP := build/gen/paths.stamp
$(shell mkdir -p build/gen; echo '$(PATH_DEFS)' | cmp -s - $(PATHS_STAMP) || echo '$(PATH_DEFS)' > $(PATHS_STAMP))
build/rel/config/config_sections.o build/asan/config/config_sections.o build/rel/core/main.o \
build/asan/core/main.o build/outpostctl: $(PATHS_STAMP)

# The sub-make sees the pkg-config flags of packages deps just installed.
run: deps
	@$(MAKE) --no-print-directory build/outpostd build/outpostctl
	@scripts/run.sh

# The shipped config names the example directory's bind password, which
# `make run` writes with the directory (spec/harness/svc_ldap.sh); a check
# before the first run writes the same file, since --check refuses an
# unreadable bind_password_file as a start would.
check: build/outpostd
	@[ -f var/example/ldap/bind.pw ] || { mkdir -p var/example/ldap && \
	  printf 'policyd-secret\n' > var/example/ldap/bind.pw && chmod 600 var/example/ldap/bind.pw; }
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
# counters, milter, AO6's scanners, MO8's DKIM verification).  docs/performance.md.
bench: deps
	@bench/deps.sh
	@$(MAKE) --no-print-directory build
	@bench/run.sh
	@bench/scaling.sh
	@BENCH_CONNS="8 64" bash bench/bench_milter.sh
	@$(if $(BENCH_BASELINE),BENCH_TREE=$(BENCH_BASELINE) BENCH_CONNS="8 64" bash bench/bench_milter.sh)

# bench/jit.sh: postout and mailout under load with the JIT on and LuaJIT's
# jit.v and jit.p: the trace aborts of the warm path by reason and place, and
# the profile's interpreted/compiled/C/GC shares; then what a classic and an
# FFI call into C cost with the JIT on and off (docs/performance.md).
bench-jit: deps
	@$(MAKE) --no-print-directory build/outpostd build/outpostctl $(BENCH_BIN)
	@bench/jit.sh
	@build/rel/bench-ffi_call

bench-parts: deps
	@$(MAKE) --no-print-directory build
	@for b in bench/bench_*.sh; do [ -f "$$b" ] && bash "$$b" || exit 1; done

# Coverage-guided fuzzing of the codecs with libFuzzer (clang).  `make test`
# runs each target for 15 s; FUZZ_SECONDS bounds each target here.
FUZZ_SECONDS ?= 60
fuzz:
	@spec/fuzz/run.sh $(FUZZ_SECONDS)

# make install [PREFIX=/usr] [DESTDIR=...]: the daemon, the CLI, the Lua
# library and policies (DATADIR/lua, as shipped), the configuration and
# lists (SYSCONFDIR/outpost, never overwritten: an admin's edits stay),
# SYSCONFDIR/outpost/lua for the site's overrides (daemon { site_lua_dir }).
# State (STATEDIR) and sockets (RUNDIR) are made by the unit's
# StateDirectory= and RuntimeDirectory= (the daemon makes state_dir itself).
# Man pages: outpostd(8) and outpostctl(8) are their --help (written as
# man pages), outpost.conf(5) the schema's reference with docs/man's prose;
# generated, so neither can drift from the programs.
MAN_PAGES = build/man/outpostd.8 build/man/outpostctl.8 build/man/outpost.conf.5
man: $(MAN_PAGES)
build/man/%.8: build/% scripts/gen-man-help.py VERSION
	@mkdir -p $(@D)
	$(Q)scripts/gen-man-help.py $< 8 > $@.tmp && mv $@.tmp $@
build/man/outpost.conf.5: build/outpostd scripts/gen-man-conf.py docs/man/outpost.conf.5.in VERSION
	@mkdir -p $(@D)
	$(Q)scripts/gen-man-conf.py $< > $@.tmp && mv $@.tmp $@

ETC = $(DESTDIR)$(SYSCONFDIR)/outpost
install: build/outpostd build/outpostctl $(MAN_PAGES)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/lua \
	    $(ETC)/lists $(ETC)/lua/lib $(ETC)/lua/policies \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR)
	install -m 755 build/outpostd $(DESTDIR)$(SBINDIR)/outpostd
	install -m 755 build/outpostctl $(DESTDIR)$(BINDIR)/outpostctl
	cp -R lua/lib lua/policies $(DESTDIR)$(DATADIR)/lua/
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/lua
	[ -e $(ETC)/outpost.conf ] || \
	    scripts/install-conf.sh $(SYSCONFDIR) $(RUNDIR) < conf/outpost.conf > $(ETC)/outpost.conf
	chmod 644 $(ETC)/outpost.conf
	for f in conf/lists/*; do [ -e $(ETC)/lists/$${f##*/} ] || install -m 644 $$f $(ETC)/lists/; done
	[ -e $(ETC)/lua/README ] || install -m 644 conf/site-lua-README $(ETC)/lua/README
	install -m 644 build/man/outpostd.8 build/man/outpostctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 build/man/outpost.conf.5 $(DESTDIR)$(MANDIR)/man5/
	sed -e 's|/usr/sbin/outpostd|$(SBINDIR)/outpostd|g' -e 's|/usr/bin/outpostctl|$(BINDIR)/outpostctl|g' \
	    conf/systemd/outpostd.service > $(DESTDIR)$(UNITDIR)/outpostd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/outpostd.service

# make deb: the Debian package (debian/, dpkg-buildpackage -us -uc -b),
# built from a copy of the tree in build/deb/src so that the package's
# clean step never touches this tree's build/; the .deb lands here.
deb:
	rm -rf build/deb && mkdir -p build/deb/src
	tar --exclude=./build --exclude=./var --exclude=./.git --exclude='./*.deb' -cf - . | tar -C build/deb/src -xf -
	cd build/deb/src && DEB_BUILD_OPTIONS="parallel=2 $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b
	cp build/deb/outpost_*.deb .

clean:
	rm -rf build
