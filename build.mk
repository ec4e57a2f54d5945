# wharf's build rules: what gets compiled and how, and every decision about optional
# pieces (the io_uring backend, the differential fuzz check). Run as a sub-make by the
# top Makefile, which installs the Debian packages first: this file is only read after
# `deps` has run, so a package that deps installs is seen by the same `make test`.
# `make TARGET` for any target below works from the top Makefile too.

ifeq ($(origin CC),default)
  CC     := gcc
endif
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
SBINDIR  ?= $(PREFIX)/sbin
DATADIR  ?= $(PREFIX)/share
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
# tuned (2.20) reads profiles only from /usr/lib/tuned and /etc/tuned; packagers
# shipping into /usr/lib/tuned say TUNED_DIR=/usr/lib/tuned.
TUNED_DIR ?= $(SYSCONFDIR)/tuned
SANITIZE ?=

CSTD     := -std=gnu11
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE
LDLIBS   += -lpthread -lm
# zlib (Debian: zlib1g-dev, required): HdrHistogram's compressed encoding, which the
# client's --hdr-log and `wharf merge` use (common/hdr_codec.c). wharfd does not link
# that object, so it does not need the library.
CLIENT_LIBS := -lz

ifeq ($(SANITIZE),1)
  BUILD  := build/asan
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),thread)
  BUILD  := build/tsan
  CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
else
  BUILD  := build
endif

# ---- io_uring backend (optional) -------------------------------------------------
# Built when pkg-config finds liburing and what server/uring.c needs compiles and
# links (liburing >= 2.3: multishot receive and recvmsg with its io_uring_recvmsg_*
# helpers, buffer rings); io_uring_setup_buf_ring
# (liburing >= 2.4) is used when present. URING=0 leaves it out; URING=1 insists.
URING ?= auto
URING_PROBE = $(shell printf '%b' '$(1)' | $(CC) $(CSTD) -D_GNU_SOURCE \
    -Werror=implicit-function-declaration $(URING_CFLAGS) -x c - -o /dev/null \
    $(URING_LIBS) >/dev/null 2>&1 && echo yes)
URING_NEEDS := \#include <liburing.h>\nint main(void) { struct io_uring r; \
    struct io_uring_sqe s; struct io_uring_buf_reg g = {0}; \
    io_uring_prep_recv_multishot(&s, 0, 0, 0, 0); io_uring_prep_multishot_accept(&s, 0, 0, 0, 0); \
    io_uring_prep_poll_multishot(&s, 0, 1); io_uring_prep_cancel64(&s, 0, 0); \
    io_uring_prep_recvmsg_multishot(&s, 0, 0, 0); (void)io_uring_recvmsg_payload; \
    (void)io_uring_recvmsg_validate; (void)io_uring_recvmsg_cmsg_nexthdr; \
    io_uring_buf_ring_add(0, 0, 0, 0, 0, 0); io_uring_submit_and_get_events(&r); \
    return io_uring_register_buf_ring(&r, &g, 0) + io_uring_submit_and_wait_timeout(&r, 0, 1, 0, 0); }\n
URING_SETUP_BUF_RING := \#include <liburing.h>\nint main(void) { struct io_uring r; int e; \
    return io_uring_setup_buf_ring(&r, 8, 0, 0, &e) != 0; }\n
ifneq ($(URING),0)
  URING_CFLAGS := $(shell pkg-config --cflags liburing 2>/dev/null)
  URING_LIBS   := $(shell pkg-config --libs liburing 2>/dev/null)
  ifneq ($(shell pkg-config --exists liburing 2>/dev/null && echo yes),)
    HAVE_URING := $(call URING_PROBE,$(URING_NEEDS))
  endif
  ifeq ($(URING)$(HAVE_URING),1)
    $(error URING=1, but liburing >= 2.3 was not found or does not compile (Debian: liburing-dev))
  endif
endif
SERVER_SRC := $(wildcard server/*.c)
ifeq ($(HAVE_URING),yes)
  CPPFLAGS += -DWHARF_URING=1 '-DWHARF_BACKENDS="epoll, io_uring"' $(URING_CFLAGS)
  CPPFLAGS += $(if $(call URING_PROBE,$(URING_SETUP_BUF_RING)),-DHAVE_IO_URING_SETUP_BUF_RING=1)
  SERVER_LIBS += $(URING_LIBS)  # wharfd (and the unit tests linking its objects) only
else
  SERVER_SRC := $(filter-out server/uring%.c,$(SERVER_SRC))
endif

# ---- wrk's Lua scripts (optional) --------------------------------------------------
# `wharf bench -s FILE` embeds LuaJIT (Debian: libluajit-5.1-dev, what wrk embeds) when
# pkg-config finds it and a program using it links. LUA=0 leaves it out; LUA=1 insists.
LUA ?= auto
LUA_NEEDS := \#include <lauxlib.h>\nint main(void) { return luaL_newstate() == 0; }\n
ifneq ($(LUA),0)
  LUA_CFLAGS := $(shell pkg-config --cflags luajit 2>/dev/null)
  LUA_LIBS   := $(shell pkg-config --libs luajit 2>/dev/null)
  ifneq ($(shell pkg-config --exists luajit 2>/dev/null && echo yes),)
    HAVE_LUA := $(shell printf '%b' '$(LUA_NEEDS)' | $(CC) $(CSTD) $(LUA_CFLAGS) -x c - \
        -o /dev/null $(LUA_LIBS) >/dev/null 2>&1 && echo yes)
  endif
  ifeq ($(LUA)$(HAVE_LUA),1)
    $(error LUA=1, but LuaJIT was not found or does not link (Debian: libluajit-5.1-dev))
  endif
endif
ifeq ($(HAVE_LUA),yes)
  CPPFLAGS += -DWHARF_LUA=1 $(LUA_CFLAGS)
  CLIENT_LIBS += $(LUA_LIBS)  # wharf only: wharfd never runs scripts
endif

ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP

# Objects depend on the flags they were built with: switching URING (or CFLAGS)
# rebuilds them instead of linking stale ones.
FLAGS_FILE := $(BUILD)/flags
FLAGS_NOW   = $(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LDLIBS) $(SERVER_LIBS) $(CLIENT_LIBS)
ifneq ($(file <$(FLAGS_FILE)),$(FLAGS_NOW))
  $(shell mkdir -p $(BUILD))
  $(file >$(FLAGS_FILE),$(FLAGS_NOW))
endif

COMMON_SRC := $(wildcard common/*.c)
CLIENT_SRC := $(wildcard client/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
# Helpers of the unit tests (tests/unit/*.c that are not test_*.c, e.g. the fake
# backend), linked into every unit test.
UNIT_HELPER_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
# Common objects only the client (and the tests) use: left out of wharfd's link.
CLIENT_ONLY_OBJ := $(BUILD)/obj/common/hdr_codec.o
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPER_OBJ := $(UNIT_HELPER_SRC:%.c=$(BUILD)/obj/%.o)

# Server objects a unit test may link (everything but main).
SERVER_LIB_OBJ := $(filter-out $(BUILD)/obj/server/main.o,$(SERVER_OBJ))

.PHONY: all install uninstall clean
all: $(BUILD)/wharfd $(BUILD)/wharf $(BUILD)/floor

$(BUILD)/obj/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# GET /status's page: server/status.html as a list of byte values that status_page.c
# includes (od is in coreutils: nothing to install, nothing optional to decide); the
# libFuzzer build (tests/fuzz/fuzz.mk) compiles status_page.c too.
$(BUILD)/gen/status_html.h: server/status.html
	@mkdir -p $(dir $@)
	od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@.tmp && mv $@.tmp $@
STATUS_PAGE_OBJ := $(BUILD)/obj/server/status_page.o build/fuzz/obj/server/status_page.o
$(STATUS_PAGE_OBJ): $(BUILD)/gen/status_html.h
$(STATUS_PAGE_OBJ): CPPFLAGS += -I$(BUILD)/gen

$(BUILD)/wharfd: $(SERVER_OBJ) $(filter-out $(CLIENT_ONLY_OBJ),$(COMMON_OBJ))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

$(BUILD)/wharf: $(CLIENT_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CLIENT_LIBS)

# bench/floor: the minimal servers bench/http and bench/echo measure wharfd against.
$(BUILD)/floor: bench/floor/floor.c bench/floor/floor_udp.c $(filter-out $(CLIENT_ONLY_OBJ),$(COMMON_OBJ))
	$(CC) $(ALL_CFLAGS) -Icommon $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Faults a unit test injects below the server's code: the calls listed in WRAP_test_NAME
# go through the test's own __wrap_CALL (the linker's --wrap; README: adding a fault).
WRAP_test_conn := malloc calloc
WRAP_test_accept := accept4 open close clock_gettime log_msg
comma := ,
$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ) $(SERVER_LIB_OBJ) $(UNIT_HELPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(addprefix -Wl$(comma)--wrap=,$(WRAP_$*)) -o $@ $< \
	    $(UNIT_HELPER_OBJ) $(COMMON_OBJ) $(SERVER_LIB_OBJ) $(LDLIBS) $(SERVER_LIBS) $(CLIENT_LIBS) -lcmocka

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)

include tests/fuzz/fuzz.mk

# ---- running and testing (reached through the top Makefile, after deps) ---------
.PHONY: check serve bench-standard torture-run
# HdrHistogram's JavaScript port, the independent reader and writer of interval logs that
# tests/client/test_hdr.py checks wharf against. A failed install is not a build error:
# that test then says it was skipped and why (the log below).
HDR_JS := $(BUILD)/node_modules/hdr-histogram-js/package.json
$(HDR_JS):
	@mkdir -p $(BUILD)
	-@npm install --no-audit --no-fund --prefix $(BUILD) hdr-histogram-js@3 \
	    >$(BUILD)/npm-install.log 2>&1 || \
	    echo "wharf: npm install hdr-histogram-js failed (see $(BUILD)/npm-install.log)" >&2
# The Python of tests/, bench/ and tuning/ imports the wharfkit package (tools/wharfkit/)
# through PYTHONPATH, set here for what these recipes run (tools/README.md).
KIT_PYTHONPATH := $(CURDIR)/tools$(if $(PYTHONPATH),:$(PYTHONPATH))
# Every test: what it needs is built here, where the optional pieces are decided.
check: all $(UNIT_BIN) $(FUZZ_REPLAY_BIN) $(HDR_JS)
	@PYTHONPATH=$(KIT_PYTHONPATH) WHARF_BUILD=$(BUILD) tests/run-all $(UNIT_BIN)

serve: all
	exec $(BUILD)/wharfd

# The standard benchmark set (bench/README.md): at most 10 minutes.
bench-standard: all
	PYTHONPATH=$(KIT_PYTHONPATH) WHARF_BUILD=$(BUILD) bench/run-standard

# Every scenario of tests/torture/ against $(BUILD); prints the table, exits 1 on any
# FAIL. Its <= 2 minute subset runs inside make test (tests/torture/test_torture_quick.py).
TORTURE_ARGS ?=
torture-run: all
	@PYTHONPATH=$(KIT_PYTHONPATH) WHARF_BUILD=$(BUILD) tests/torture/run $(TORTURE_ARGS)

# The unit's ExecStart and --config follow BINDIR and SYSCONFDIR; an existing
# configuration file is never overwritten. wharf-tune finds its profiles at
# ../share/wharf/profiles from where it is installed (so also under a DESTDIR), else
# at PROFILEDIR, written into it.
PROFILEDIR    := $(DATADIR)/wharf/profiles
PROFILES      := $(wildcard tuning/profiles/*.conf)
TUNED_PROFILE := wharf-high-concurrency
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMD_UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)/wharf
	install -m 0755 $(BUILD)/wharfd $(BUILD)/wharf $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/bin/wharfd|$(BINDIR)/wharfd|' \
	    -e 's|/etc/wharf/wharfd.conf|$(SYSCONFDIR)/wharf/wharfd.conf|' \
	    server/systemd/wharfd.service > $(DESTDIR)$(SYSTEMD_UNITDIR)/wharfd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/wharfd.service
	install -m 0644 server/systemd/wharfd.socket $(DESTDIR)$(SYSTEMD_UNITDIR)/
	install -m 0644 server/wharfd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 client/wharf.1 $(DESTDIR)$(MANDIR)/man1/
	test -e $(DESTDIR)$(SYSCONFDIR)/wharf/wharfd.conf || \
	    install -m 0644 server/systemd/wharfd.conf $(DESTDIR)$(SYSCONFDIR)/wharf/wharfd.conf
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PROFILEDIR) $(DESTDIR)$(TUNED_DIR)/$(TUNED_PROFILE)
	sed -e 's|^INSTALLED_PROFILE_DIR=""$$|INSTALLED_PROFILE_DIR="$(PROFILEDIR)"|' tuning/wharf-tune \
	    > $(DESTDIR)$(SBINDIR)/wharf-tune
	chmod 0755 $(DESTDIR)$(SBINDIR)/wharf-tune
	install -m 0644 $(PROFILES) $(DESTDIR)$(PROFILEDIR)/
	install -m 0644 tuning/wharf-tune.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 tuning/tuned/$(TUNED_PROFILE)/tuned.conf $(DESTDIR)$(TUNED_DIR)/$(TUNED_PROFILE)/

# What install added, and the directories it made if they are left empty; never the
# configuration file (nor its directory).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/wharfd $(DESTDIR)$(BINDIR)/wharf $(DESTDIR)$(SBINDIR)/wharf-tune \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/wharfd.service $(DESTDIR)$(SYSTEMD_UNITDIR)/wharfd.socket \
	    $(DESTDIR)$(MANDIR)/man8/wharfd.8 $(DESTDIR)$(MANDIR)/man8/wharf-tune.8 \
	    $(DESTDIR)$(MANDIR)/man1/wharf.1 \
	    $(addprefix $(DESTDIR)$(PROFILEDIR)/,$(notdir $(PROFILES))) \
	    $(DESTDIR)$(TUNED_DIR)/$(TUNED_PROFILE)/tuned.conf
	-rmdir $(DESTDIR)$(PROFILEDIR) $(DESTDIR)$(DATADIR)/wharf \
	    $(DESTDIR)$(TUNED_DIR)/$(TUNED_PROFILE) 2>/dev/null

clean:
	rm -rf build
