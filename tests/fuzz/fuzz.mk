# Fuzzing rules (tests/fuzz/README.md). Included by build.mk after its own
# variables (CSTD, WARN, ALL_CFLAGS, LDFLAGS, LDLIBS, BUILD, COMMON_SRC, SERVER_SRC,
# COMMON_OBJ, SERVER_LIB_OBJ) are set.
#
#   make fuzz [FUZZ_TIME=600] [FUZZ_TARGETS="http line"]  run each fuzzer FUZZ_TIME seconds
#   make fuzz-merge                                        minimise new finds into the corpus
#   make fuzz-replay                                       the corpus replay binaries (gcc)
#
# libFuzzer builds (clang only) go to build/fuzz/, whatever SANITIZE says: they always
# have ASan+UBSan. The replay binaries (any C11 compiler, no libFuzzer) go to
# $(BUILD)/fuzz-replay/ and are what `make test` runs, with SANITIZE=1 under ASan too.

FUZZ_TARGETS ?= frame line raw http proxy http_resp hdr
FUZZ_TIME    ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := $(CSTD) -g -O1 -D_GNU_SOURCE -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRC := $(COMMON_SRC) $(filter-out server/main.c,$(SERVER_SRC))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_HDR     := $(wildcard tests/fuzz/*.h)
FUZZ_BIN     := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

FUZZ_REPLAY_BIN := $(patsubst %,$(BUILD)/fuzz-replay/fuzz_%,frame line raw http proxy http_resp hdr)
# The differential check needs Debian's libhttp-parser-dev (a test-only dependency).
ifneq ($(wildcard /usr/include/http_parser.h),)
  FUZZ_REPLAY_BIN += $(BUILD)/fuzz-replay/diff_http
endif

.PHONY: fuzz fuzz-build fuzz-merge fuzz-replay
.SECONDARY: $(FUZZ_LIB_OBJ)
fuzz-build: $(FUZZ_BIN)
fuzz-replay: $(FUZZ_REPLAY_BIN)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDR) $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS) $(SERVER_LIBS) $(CLIENT_LIBS)

$(BUILD)/fuzz-replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDR) \
                             $(COMMON_OBJ) $(SERVER_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c \
		$(COMMON_OBJ) $(SERVER_LIB_OBJ) $(LDLIBS) $(SERVER_LIBS) $(CLIENT_LIBS)

$(BUILD)/fuzz-replay/diff_http: tests/fuzz/diff_http.c $(FUZZ_HDR) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< $(COMMON_OBJ) \
		$(LDLIBS) $(CLIENT_LIBS) -lhttp_parser

# clang's libFuzzer and sanitizer runtimes are only "recommended" by clang-14, and
# deps.sh installs without recommends: name them.
FUZZ_PKGS := clang libclang-rt-14-dev

fuzz:
	@tests/deps.sh $(FUZZ_PKGS)
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) fuzz-build
	tests/fuzz/run_fuzz.sh -t $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-merge:
	@tests/deps.sh $(FUZZ_PKGS)
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) fuzz-build
	tests/fuzz/minimize.sh $(FUZZ_TARGETS)

-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)
