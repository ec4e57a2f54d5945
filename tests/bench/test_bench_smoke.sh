#!/usr/bin/env bash
# Smoke run of every bench/ harness in --quick mode (about 25 s in all), so they do
# not rot: each must finish, write its CSV and table, and report sane numbers
# (requests > 0, no errors against wharfd). The figures themselves are not judged
# here: a quick run on a shared machine says nothing about performance.
# WHARF_BUILD picks the build (build, build/asan, ...); a sanitizer build is fine
# (callgrind is then skipped, which the harness notes).
set -u
cd "$(dirname "$0")/../.."
export WHARF_BUILD=${WHARF_BUILD:-build}
pass=0 fail=0 skip=0
work=$(mktemp -d /tmp/wharf-bench-smoke.XXXXXX)
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp" # the harnesses' own temp dirs (servers' binaries, configs) go here
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1: $2"; fail=$((fail + 1)); }
skipped() { echo "skip - $1: $2"; skip=$((skip + 1)); }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# check NAME KIND FILE: tests/bench/check_outputs.py prints what is wrong, if anything.
check() {
    local name=$1 kind=$2 file=$3 why
    if [ ! -s "$file" ]; then bad "$name" "no $file"; return; fi
    why=$(python3 tests/bench/check_outputs.py "$kind" "$file" 2>&1)
    if [ -n "$why" ]; then bad "$name" "$why"; else ok "$name"; fi
}

if [ ! -x "$WHARF_BUILD/wharfd" ]; then
    bad "wharfd built" "$WHARF_BUILD/wharfd is missing (run make)"
    echo "$pass passed, $fail failed"
    exit 1
fi

if ! have wrk; then
    skipped "bench harnesses" "wrk is not installed ('make deps' installs it)"
    echo "$pass passed, $fail failed"
    exit 0
fi

# ---- the Lua scripts: echo.lua is not part of bench/http, so run it here ----
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$WHARF_BUILD/wharfd" --workers 1 --log-level warn --listen "http://127.0.0.1:$port" \
    >"$work/wharfd.log" 2>&1 &
wpid=$!
pids+=("$wpid")
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
if WRK_CONNECTIONS=4 timeout 20 wrk -t1 -c4 -d1s -s bench/lua/echo.lua \
        "http://127.0.0.1:$port/echo" -- 1K upper >"$work/echo.txt" 2>&1; then
    check "bench/lua/echo.lua" echo-json "$work/echo.txt"
else
    bad "bench/lua/echo.lua" "wrk failed: $(tail -c 300 "$work/echo.txt")"
fi
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null

# ---- bench/http ----
if ! have nginx; then
    skipped "bench/http" "nginx is not installed ('make deps' installs nginx-light)"
elif timeout 60 bench/http --quick --out "$work/http" >"$work/http.out" 2>&1; then
    check "bench/http runs" http "$work/http/runs.csv"
    if grep -q "wharfd/nginx" "$work/http/table.md" 2>/dev/null; then
        ok "bench/http table"
    else
        bad "bench/http table" "no table.md with ratios"
    fi
    if ! have gnuplot; then
        skipped "bench/http chart" "gnuplot is not installed"
    elif [ -s "$work/http/chart.png" ]; then
        ok "bench/http chart"
    else
        bad "bench/http chart" "no chart.png"
    fi
    [ -s "$work/http/meta.txt" ] && ok "bench/http meta.txt" || bad "bench/http meta.txt" "missing"
else
    bad "bench/http --quick" "exit $?: $(tail -c 600 "$work/http.out")"
fi

# ---- the floor servers (bench/floor) and bench/shortconn ----
if why=$(timeout 20 python3 tests/bench/check_floor.py "$WHARF_BUILD" 2>&1); then
    ok "build/floor answers HTTP, frames and datagrams"
else
    bad "build/floor answers HTTP, frames and datagrams" "$why"
fi
if [ "$(id -u)" != 0 ] || ! have tcpdump; then
    skipped "bench/shortconn" "needs root and tcpdump"
elif timeout 60 bench/shortconn --servers wharfd-epoll-1,floor --duration 1 --conns 10 \
        --no-strace --out "$work/shortconn" >"$work/shortconn.out" 2>&1; then
    check "bench/shortconn" shortconn "$work/shortconn/shortconn.json"
else
    bad "bench/shortconn" "exit $?: $(tail -c 600 "$work/shortconn.out")"
fi

# ---- bench/profile ----
if ! have perf || ! have valgrind; then
    skipped "bench/profile" "perf or valgrind is not installed ('make deps' installs them)"
elif timeout 90 bench/profile --quick --out "$work/profile" >"$work/profile.out" 2>&1; then
    check "bench/profile syscalls" profile-syscalls "$work/profile/syscalls.csv"
    if grep -q "callgrind skipped" "$work/profile/profile.md"; then
        ok "bench/profile callgrind (skipped for a sanitizer build, as it should be)"
    else
        check "bench/profile callgrind" profile-callgrind "$work/profile/callgrind.csv"
    fi
else
    bad "bench/profile --quick" "exit $?: $(tail -c 600 "$work/profile.out")"
fi

# ---- bench/echo and bench/memory (they need 'wharf bench' / 'wharf hold') ----
for h in echo memory; do
    if [ ! -x "bench/$h" ]; then
        skipped "bench/$h" "not written yet (needs 'wharf bench'; see bench/README.md)"
    elif timeout 60 "bench/$h" --quick --out "$work/$h" >"$work/$h.out" 2>&1; then
        f=$(ls "$work/$h"/*.csv 2>/dev/null | head -n1)
        check "bench/$h --quick" csv "${f:-$work/$h/none.csv}"
    else
        bad "bench/$h --quick" "exit $?: $(tail -c 600 "$work/$h.out")"
    fi
done

# ---- bench/udp (one backend, 1 s runs: the harness works, the numbers mean nothing) ----
if ! have perf; then
    skipped "bench/udp" "perf is not installed ('make deps' installs it)"
elif timeout 60 bench/udp --rounds 1 --duration 1 --warmup 0.3 --backends epoll \
        --out "$work/udp" >"$work/udp.out" 2>&1; then
    check "bench/udp" csv "$work/udp/runs.csv"
else
    bad "bench/udp" "exit $?: $(tail -c 600 "$work/udp.out")"
fi

# ---- bench/latency (HdrHistogram logs, the percentile and time-series charts) ----
if ! have gnuplot; then
    skipped "bench/latency" "gnuplot is not installed ('make deps' installs gnuplot-nox)"
elif timeout 60 bench/latency --quick --out "$work/latency" >"$work/latency.out" 2>&1; then
    check "bench/latency --quick" csv "$work/latency/runs.csv"
    for c in percentiles timeseries; do
        [ -s "$work/latency/$c.png" ] && ok "bench/latency $c.png" || bad "bench/latency $c.png" "missing"
    done
else
    bad "bench/latency --quick" "exit $?: $(tail -c 600 "$work/latency.out")"
fi

# ---- bench/backends (io_uring against epoll; only where io_uring is built in) ----
if ! "$WHARF_BUILD/wharfd" --version 2>/dev/null | grep -q io_uring; then
    skipped "bench/backends" "this wharfd has no io_uring backend"
else
    rc=0
    timeout 90 bench/backends --quick --out "$work/backends" >"$work/backends.out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        check "bench/backends --quick" backends "$work/backends/runs.csv"
    elif [ "$rc" -eq 3 ]; then
        skipped "bench/backends" "io_uring is built in but the kernel refuses it here"
    else
        bad "bench/backends --quick" "exit $rc: $(tail -c 600 "$work/backends.out")"
    fi
fi

# ---- bench/coreshare (where the server's core goes; both backends where io_uring is) ----
if python3 bench/lib/stackclass.py --self-test >"$work/stackclass.out" 2>&1; then
    ok "bench/lib/stackclass.py --self-test"
else
    bad "bench/lib/stackclass.py --self-test" "$(tail -c 600 "$work/stackclass.out")"
fi
if ! have perf; then
    skipped "bench/coreshare" "perf is not installed ('make deps' installs it)"
else
    be=epoll
    "$WHARF_BUILD/wharfd" --version 2>/dev/null | grep -q io_uring && be=epoll,io_uring
    for wl in frame http; do
        if timeout 90 bench/coreshare --quick --workload "$wl" --backends "$be" \
                --out "$work/coreshare-$wl" >"$work/coreshare-$wl.out" 2>&1; then
            check "bench/coreshare --quick --workload $wl ($be)" coreshare \
                "$work/coreshare-$wl/coreshare.csv"
        else
            bad "bench/coreshare --quick --workload $wl" \
                "exit $?: $(tail -c 600 "$work/coreshare-$wl.out")"
        fi
    done
fi

# ---- nothing left running ----
left=$(ps -eo pid,args | grep -F "$work/tmp" | grep -v grep || true)
if [ -n "$left" ]; then bad "no process left behind" "$left"; else ok "no process left behind"; fi

[ "$skip" -eq 0 ] || echo "($skip skipped)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
