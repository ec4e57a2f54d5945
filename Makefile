# wharf: `make` builds build/wharfd and build/wharf; `make run` starts the server on its
# defaults; `make test` runs every test. Both install missing Debian packages first.
#
#   make SANITIZE=1 test       ASan+UBSan build (in build/asan/), whole suite
#   make SANITIZE=thread test  TSan build (in build/tsan/)
#   make CC=clang              any C11 compiler with gcc-style flags
#   make install PREFIX=/usr/local DESTDIR=/tmp/x

ifeq ($(origin CC),default)
  CC     := gcc
endif
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
SANITIZE ?=

CSTD     := -std=gnu11
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE
LDLIBS   += -lpthread -lm

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

ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP

COMMON_SRC := $(wildcard common/*.c)
SERVER_SRC := $(wildcard server/*.c)
CLIENT_SRC := $(wildcard client/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Server objects a unit test may link (everything but main).
SERVER_LIB_OBJ := $(filter-out $(BUILD)/obj/server/main.o,$(SERVER_OBJ))

.PHONY: all run test unit integration deps install clean
all: $(BUILD)/wharfd $(BUILD)/wharf

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/wharfd: $(SERVER_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/wharf: $(CLIENT_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ) $(SERVER_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(COMMON_OBJ) $(SERVER_LIB_OBJ) $(LDLIBS) -lcmocka

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- Debian packages -------------------------------------------------------
BUILD_PKGS := gcc make pkg-config libc6-dev libcmocka-dev
TEST_PKGS  := curl python3 iproute2 procps netcat-openbsd
DEPS_PKGS  := $(BUILD_PKGS) $(TEST_PKGS)

deps:
	@tests/deps.sh $(DEPS_PKGS)

# ---- running and testing -----------------------------------------------------
# deps runs first and alone: the compiler itself may be what it installs.
run: deps
	@$(MAKE) --no-print-directory all
	exec $(BUILD)/wharfd

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@WHARF_BUILD=$(BUILD) tests/run-all $(UNIT_BIN)

install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/wharfd $(DESTDIR)$(BINDIR)/wharfd
	install -m 0755 $(BUILD)/wharf $(DESTDIR)$(BINDIR)/wharf

clean:
	rm -rf build
