# wharf: `make` builds build/wharfd and build/wharf; `make run` starts the server on its
# defaults; `make test` runs every test. Both install missing Debian packages first.
#
#   make SANITIZE=1 test       ASan+UBSan build (in build/asan/), whole suite
#   make SANITIZE=thread test  TSan build (in build/tsan/)
#   make CC=clang              any C11 compiler with gcc-style flags
#   make URING=0               epoll only, even where liburing is installed
#   make install PREFIX=/usr/local DESTDIR=/tmp/x   (make uninstall: the same variables)
#   make bench                 the standard benchmark set (bench/, <= 10 min)
#   make torture               hostile clients, faults, floods (tests/torture/, <= 10 min, root)
#   make fuzz                  libFuzzer on every codec (tests/fuzz/, FUZZ_TIME seconds each)
#
# This file holds the entry points and the package lists, nothing else. Every rule and
# every decision that depends on what is installed (liburing, libhttp-parser, even the
# compiler) lives in build.mk, which is read only by a sub-make started after `deps`
# has run. A variable here that looked at the system would be expanded before deps
# installs what it looks for: the first `make test` on a new machine would then build
# one set of targets and test another.

# ---- Debian packages -------------------------------------------------------
# zlib1g-dev is required (the client's HdrHistogram encoding). liburing-dev is optional for wharfd (without it: epoll only); installed here so that
# make test also runs the integration suites on the io_uring backend.
# libluajit-5.1-dev is optional for wharf: without it `wharf bench -s` (wrk's Lua scripts)
# exits 2 saying so, and tests/client/test_lua.py is skipped.
BUILD_PKGS := gcc make pkg-config libc6-dev libcmocka-dev liburing-dev zlib1g-dev \
              libluajit-5.1-dev
TEST_PKGS  := curl python3 iproute2 procps netcat-openbsd systemd man-db groff-base \
              libhttp-parser-dev haproxy chromium
# tests/client/test_hdr.py: hdr-histogram-js (npm, into the build tree) reads wharf's logs.
# npm is installed only where no npm is: NodeSource's nodejs ships its own and conflicts
# with Debian's npm package.
TEST_PKGS  += nodejs
OPTIONAL_PKGS := npm
# tests/tuning: the conntrack rules (nft) of test_deploy.sh and the conntrack experiment
TEST_PKGS  += nftables
# bench/ (its smoke run is part of make test): wrk, nginx and h2o as the peers, charts,
# profiles. Their services are stopped and disabled after install (tests/deps.sh):
# the harnesses run their own instances on free loopback ports.
# bench/shortconn: tcpdump and strace.
BENCH_PKGS := wrk nginx-light h2o gnuplot-nox linux-perf valgrind tcpdump strace
DEPS_PKGS  := $(BUILD_PKGS) $(TEST_PKGS) $(BENCH_PKGS)

BUILD_MAKE := $(MAKE) --no-print-directory -f build.mk

.PHONY: all deps run test bench torture
all:
	+@$(BUILD_MAKE) all

# promtool (for the metrics test) comes unpacked from Debian's prometheus package, never
# installed: see tests/promtool.sh. Not fatal here: the test fetches it again if needed.
deps:
	@tests/deps.sh $(DEPS_PKGS)
	@tests/promtool.sh >/dev/null || echo "wharf: no promtool yet; tests/integration/test_metrics.py will try again"
	@command -v npm >/dev/null || tests/deps.sh $(OPTIONAL_PKGS) || \
	    echo "wharf: npm missing: the hdr-histogram-js cross-check will be skipped" >&2

# deps runs first and alone: the compiler itself may be what it installs.
run: deps
	+@$(BUILD_MAKE) serve

test: deps
	+@$(BUILD_MAKE) check

bench: deps
	+@$(BUILD_MAKE) bench-standard

#   make torture TORTURE_ARGS='--quick'    make torture TORTURE_ARGS='slowloris conn_flood'
torture: deps
	+@$(BUILD_MAKE) torture-run

# Anything else (clean, install, fuzz, fuzz-replay, build/tests/test_buf, ...) is
# build.mk's, always asked: FORCE keeps a file that exists (build/wharfd) from looking
# up to date here, where its sources are not known. The makefiles are never remade.
Makefile build.mk: ;
.PHONY: FORCE
FORCE:
%: FORCE
	+@$(BUILD_MAKE) $@
