#!/usr/bin/env bash
# Tests for tuning/experiments: a shortened tw_reuse experiment (about 10 s) that must
# show the effect, and a run interrupted with SIGINT that must clean up after itself.
#
# The experiment makes its own network namespaces (wx-*-PID-N) and deletes them; the
# knobs it changes are set only inside them. This test reads the host's values before
# and after and fails if any changed. Binaries: $WHARF_BUILD (default build/, e.g.
# build/asan under `make SANITIZE=1 test`). Needs root. Prints "ok - name" /
# "FAIL - name: why" per check and ends with one line "N passed, M failed"; exit
# status 1 if M > 0.

# cleanup() runs from the EXIT trap; shellcheck cannot see that.
# shellcheck disable=SC2317
set -uo pipefail
export LC_ALL=C

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
EXP=$REPO/tuning/experiments
export WHARF_BUILD=${WHARF_BUILD:-build}

PASS=0 FAIL=0
ok()   { printf 'ok - %s\n' "$1"; PASS=$((PASS + 1)); }
fail() { printf 'FAIL - %s: %s\n' "$1" "$2"; FAIL=$((FAIL + 1)); }
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [[ $FAIL -eq 0 ]]
    exit
}

if [[ $EUID -ne 0 ]]; then
    fail "root" "needs root (ip netns)"
    finish
fi
for t in ip ss python3; do
    command -v "$t" >/dev/null || { fail "tools" "needs $t"; finish; }
done
case $WHARF_BUILD in /*) B=$WHARF_BUILD ;; *) B=$REPO/$WHARF_BUILD ;; esac
if [[ ! -x $B/wharfd || ! -x $B/wharf ]]; then
    fail "binaries" "no $B/wharfd or $B/wharf: run make"
    finish
fi

OUT=$(mktemp -d)
EXP_PID=""
cleanup() {
    # an experiment still running (this test interrupted): let it clean up
    if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then
        kill -INT "$EXP_PID" 2>/dev/null
        wait "$EXP_PID" 2>/dev/null
    fi
    rm -rf -- "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

KNOBS=(net.ipv4.tcp_tw_reuse net.ipv4.tcp_tw_reuse_delay net.ipv4.ip_local_port_range
       net.ipv4.tcp_fin_timeout net.ipv4.tcp_max_tw_buckets net.core.somaxconn
       net.ipv4.tcp_timestamps)
host_values() {
    local k
    for k in "${KNOBS[@]}"; do
        printf '%s = %s\n' "$k" "$(cat "/proc/sys/${k//.//}" 2>/dev/null || echo missing)"
    done
}
# processes started by experiment $1 (the experiments mark them with WX_LAB=PID)
marked() {
    local f
    for f in /proc/[0-9]*/environ; do
        { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "WX_LAB=$1" && { f=${f#/proc/}; printf '%s ' "${f%/environ}"; }
    done
}
# wx-* namespaces made by process $1 still present
leftover_ns() { ip netns list | awk '{print $1}' | grep -E "^wx-.*-$1-[0-9]+$" || true; }

BEFORE=$(host_values)
start=$SECONDS

# ---- 1. the shortened tw_reuse run: loopback, 1000 ports, 500 connections/s ----
"$EXP/tw_reuse" --quick --out "$OUT" --max-time 40 >"$OUT/log" 2>&1 &
EXP_PID=$!
wait "$EXP_PID"
rc=$?
pid=$EXP_PID
EXP_PID=""
if [[ $rc -eq 0 ]]; then ok "tw_reuse --quick exits 0"; else
    fail "tw_reuse --quick exits 0" "exit $rc: $(tail -n 5 "$OUT/log")"; fi

first() { [[ -e $1 ]] && printf '%s' "$1"; }  # the first match of a glob, or nothing
csv=$(first "$OUT"/tw_reuse-*[0-9].csv)
if [[ -n $csv ]]; then ok "CSV written"; else fail "CSV written" "none in $OUT"; fi
# field of the row whose id is $1, column named $2
field() {
    awk -F, -v id="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $c["id"] == id { print $c[col] }' "$csv"
}
if [[ -n $csv ]]; then
    e0=$(field lo-client-reuse0 eaddrnotavail)
    e1=$(field lo-client-reuse1 eaddrnotavail)
    c0=$(field lo-client-reuse0 connected)
    c1=$(field lo-client-reuse1 connected)
    echo "# tcp_tw_reuse=0: $c0 connected, $e0 EADDRNOTAVAIL; tcp_tw_reuse=1: $c1 connected, $e1 EADDRNOTAVAIL"
    if [[ ${e0:-0} -gt 0 ]]; then ok "tcp_tw_reuse=0, 1000 ports: EADDRNOTAVAIL appears ($e0)"; else
        fail "tcp_tw_reuse=0, 1000 ports: EADDRNOTAVAIL appears" "got ${e0:-nothing}"; fi
    if [[ -n $e1 && $((e1 * 10)) -le ${e0:-0} ]]; then
        ok "tcp_tw_reuse=1: EADDRNOTAVAIL gone or far lower ($e1 vs $e0)"
    else
        fail "tcp_tw_reuse=1: EADDRNOTAVAIL gone or far lower" "got ${e1:-nothing} vs ${e0:-nothing}"
    fi
    if [[ -n $c1 && -n $c0 && $c1 -gt $c0 ]]; then ok "tcp_tw_reuse=1 connects more ($c1 vs $c0)"; else
        fail "tcp_tw_reuse=1 connects more" "$c1 vs $c0"; fi
    r1=$(field lo-client-reuse1 tw_recycled)
    if [[ ${r1:-0} -gt 0 ]]; then ok "TcpExtTWRecycled counts the reuse ($r1)"; else
        fail "TcpExtTWRecycled counts the reuse" "got ${r1:-nothing}"; fi
fi
md=$(first "$OUT"/tw_reuse-*[0-9].md)
if [[ -n $md ]] && grep -q '^| lo | client | 0 |' "$md"; then ok "Markdown summary written"; else
    fail "Markdown summary written" "no table in ${md:-nothing}"; fi
if command -v gnuplot >/dev/null; then
    png=$(first "$OUT"/tw_reuse-*.png)
    if [[ -n $png ]] && [[ $(head -c 4 "$png" | od -An -c | tr -d ' ') == "211PNG" ]]; then
        ok "PNG chart written"; else fail "PNG chart written" "none or not a PNG"; fi
else
    echo "# gnuplot not installed (gnuplot-nox): chart not checked"
fi
left=$(leftover_ns "$pid")
if [[ -z $left ]]; then ok "namespaces deleted"; else fail "namespaces deleted" "$left"; fi
left=$(marked "$pid")
if [[ -z $left ]]; then ok "processes ended"; else fail "processes ended" "pids $left"; fi

# ---- 2. Ctrl-C in the middle of a run: exit 130, nothing left behind ----
"$EXP/tw_reuse" --quick --out "$OUT/int" --max-time 40 >"$OUT/log2" 2>&1 &
EXP_PID=$!
pid=$EXP_PID
for _ in $(seq 50); do  # until a run is under way (its wharfd is up)
    grep -q 'lo-client-reuse0' "$OUT/log2" 2>/dev/null && break
    sleep 0.1
done
sleep 1
running=$(marked "$pid")
if [[ -n $running ]]; then ok "the leftover check sees a running experiment's processes"; else
    fail "the leftover check sees a running experiment's processes" "found none"; fi
kill -INT "$EXP_PID"
wait "$EXP_PID"
rc=$?
EXP_PID=""
if [[ $rc -eq 130 ]]; then ok "SIGINT: exit 130"; else fail "SIGINT: exit 130" "exit $rc: $(tail -n 3 "$OUT/log2")"; fi
left=$(leftover_ns "$pid")
if [[ -z $left ]]; then ok "SIGINT: namespaces deleted"; else fail "SIGINT: namespaces deleted" "$left"; fi
left=$(marked "$pid")
if [[ -z $left ]]; then ok "SIGINT: processes ended"; else fail "SIGINT: processes ended" "pids $left"; fi

AFTER=$(host_values)
if [[ $BEFORE == "$AFTER" ]]; then ok "host sysctls unchanged"; else
    fail "host sysctls unchanged" "$(diff <(echo "$BEFORE") <(echo "$AFTER") | tr '\n' ' ')"; fi
echo "# $((SECONDS - start)) s"
finish
