#!/usr/bin/env bash
# Tests for tuning/experiments/conntrack: a --quick run (about 20 s) that must show one
# conntrack entry per connection, a full table's failure mode (SYNs dropped, connects of
# a second or more) and both fixes (a bigger table, notrack) as counts, not timings; a
# run interrupted with SIGINT that must clean up after itself; and the host's conntrack
# settings and nftables ruleset unchanged. Skipped, with the reason, where there is no
# nf_conntrack or no nft. Needs root. Prints "ok - name" / "FAIL - name: why" /
# "skip - name: why" and ends with "N passed, M failed"; exit status 1 if M > 0.

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

if [[ $EUID -ne 0 ]]; then fail "root" "needs root (ip netns)"; finish; fi
if [[ ! -e /proc/sys/net/netfilter/nf_conntrack_max ]]; then
    echo "skip - conntrack experiment: nf_conntrack is not loaded (no /proc/sys/net/netfilter/nf_conntrack_max; modprobe nf_conntrack)"
    finish
fi
if ! command -v nft >/dev/null; then
    echo "skip - conntrack experiment: nft is not installed (nftables; make deps installs it)"
    finish
fi
# The experiment's rules: conntrack state, ct count (nft_connlimit) and notrack.
PROBE_NS="wt-ctprobe-$$"
probe_err=$(ip netns add "$PROBE_NS" 2>&1 && ip netns exec "$PROBE_NS" nft -f - 2>&1 <<'EOF'
table inet p {
  chain input { type filter hook input priority filter; ct state established accept; tcp dport 9 ct state new ct count over 2 drop; }
  chain pre { type filter hook prerouting priority raw; tcp dport 9 notrack; }
}
EOF
)
probe_rc=$?
ip netns del "$PROBE_NS" 2>/dev/null
if [[ $probe_rc -ne 0 ]]; then
    echo "skip - conntrack experiment: nft cannot load its rules here (ct count, notrack): $(echo "$probe_err" | head -n 1)"
    finish
fi
case $WHARF_BUILD in /*) B=$WHARF_BUILD ;; *) B=$REPO/$WHARF_BUILD ;; esac
if [[ ! -x $B/wharfd || ! -x $B/wharf ]]; then fail "binaries" "no $B/wharfd or $B/wharf: run make"; finish; fi

OUT=$(mktemp -d)
EXP_PID=""
cleanup() {
    if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then
        kill -INT "$EXP_PID" 2>/dev/null
        wait "$EXP_PID" 2>/dev/null
    fi
    rm -rf -- "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

host_state() {
    local k
    for k in nf_conntrack_max nf_conntrack_buckets nf_conntrack_tcp_timeout_time_wait \
             nf_conntrack_tcp_timeout_established; do
        printf '%s = %s\n' "$k" "$(cat "/proc/sys/net/netfilter/$k" 2>/dev/null || echo missing)"
    done
    nft list ruleset 2>&1
}
marked() {  # processes started by experiment $1 (WX_LAB=PID in their environment)
    local f
    for f in /proc/[0-9]*/environ; do
        { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "WX_LAB=$1" && { f=${f#/proc/}; printf '%s ' "${f%/environ}"; }
    done
}
leftover_ns() { ip netns list | awk '{print $1}' | grep -E "^wx-.*-$1-[0-9]+$" || true; }

BEFORE=$(host_state)
start=$SECONDS

"$EXP/conntrack" --quick --out "$OUT" --max-time 50 >"$OUT/log" 2>&1 &
EXP_PID=$!
wait "$EXP_PID"
rc=$?
pid=$EXP_PID
EXP_PID=""
if [[ $rc -eq 0 ]]; then ok "conntrack --quick exits 0"; else
    fail "conntrack --quick exits 0" "exit $rc: $(tail -n 5 "$OUT/log" | tr '\n' ' ')"; fi

first() { [[ -e $1 ]] && printf '%s' "$1"; }  # the first match of a glob, or nothing
csv=$(first "$OUT"/conntrack-*[0-9].csv)
field() {  # ROW-ID COLUMN
    awk -F, -v id="$1" -v col="$2" '{ sub(/\r$/, "") } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $c["id"] == id { print $c[col] }' "$csv"
}
if [[ -n $csv ]]; then
    ok "CSV written"
    held=$(field tracked held) open=$(field tracked count_open) closed=$(field tracked count_after_close)
    echo "# tracked: $open entries for $held held connections, $closed after they closed"
    if [[ -n $held && $held -gt 0 && $open == "$held" ]]; then ok "one conntrack entry per open connection ($open for $held)"; else
        fail "one conntrack entry per open connection" "$open entries for $held"; fi
    if [[ -n $closed && $closed -ge $((held * 9 / 10)) ]]; then ok "the entries outlive the connections (TIME_WAIT): $closed"; else
        fail "the entries outlive the connections" "$closed of $held left"; fi
    fd=$(field full syn_dropped) fr=$(field full syn_retrans) fs=$(field full connects_ge_1s)
    echo "# full table: $fd SYNs dropped, $fr SYN retransmits, $fs connects >= 1 s, max $(field full connect_max_ms) ms"
    if [[ ${fd:-0} -gt 0 && ${fr:-0} -gt 0 ]]; then ok "full table: SYNs dropped ($fd) and retransmitted ($fr)"; else
        fail "full table: SYNs dropped and retransmitted" "dropped ${fd:-?}, retransmitted ${fr:-?}"; fi
    if [[ ${fs:-0} -gt 0 ]]; then ok "full table: connects of a second or more ($fs)"; else
        fail "full table: connects of a second or more" "${fs:-none}"; fi
    rd=$(field raised syn_dropped) nd=$(field notrack syn_dropped) nc=$(field notrack count_full)
    if [[ $rd == 0 ]]; then ok "bigger table: no SYN dropped"; else fail "bigger table: no SYN dropped" "${rd:-?}"; fi
    if [[ $nd == 0 && $nc == 0 ]]; then ok "notrack: no entry, no SYN dropped"; else
        fail "notrack: no entry, no SYN dropped" "entries ${nc:-?}, dropped ${nd:-?}"; fi
else
    fail "CSV written" "none in $OUT"
fi
md=$(first "$OUT"/conntrack-*[0-9].md)
if [[ -n $md ]] && grep -q '^## Capacity' "$md" && grep -q 'entries\*\*' "$md"; then ok "Markdown with the capacity calculation"; else
    fail "Markdown with the capacity calculation" "${md:-no .md}"; fi
# Global nf_conntrack_max (read-only in a namespace, as on Linux 6.x): the report says so.
if [[ -n $md ]] && grep -Eq 'global on this kernel.*changed nothing on the host|does not write it' "$md"; then
    ok "the report says whether nf_conntrack_max is global and that the host was not changed"
else
    fail "the report says whether nf_conntrack_max is global and that the host was not changed" "not in ${md:-no .md}"
fi
left=$(leftover_ns "$pid")
if [[ -z $left ]]; then ok "namespaces deleted"; else fail "namespaces deleted" "$left"; fi
left=$(marked "$pid")
if [[ -z $left ]]; then ok "processes ended"; else fail "processes ended" "pids $left"; fi

# ---- Ctrl-C in the middle of a run: exit 130, nothing left behind ----
"$EXP/conntrack" --quick --out "$OUT/int" --max-time 50 >"$OUT/log2" 2>&1 &
EXP_PID=$!
pid=$EXP_PID
for _ in $(seq 100); do
    grep -q 'conntrack: tracked' "$OUT/log2" 2>/dev/null && break
    sleep 0.1
done
sleep 1.5
running=$(marked "$pid")
if [[ -n $running ]]; then ok "the leftover check sees the running experiment's processes"; else
    fail "the leftover check sees the running experiment's processes" "found none"; fi
kill -INT "$EXP_PID"
wait "$EXP_PID"
rc=$?
EXP_PID=""
if [[ $rc -eq 130 ]]; then ok "SIGINT: exit 130"; else fail "SIGINT: exit 130" "exit $rc: $(tail -n 3 "$OUT/log2" | tr '\n' ' ')"; fi
left=$(leftover_ns "$pid")
if [[ -z $left ]]; then ok "SIGINT: namespaces deleted"; else fail "SIGINT: namespaces deleted" "$left"; fi
left=$(marked "$pid")
if [[ -z $left ]]; then ok "SIGINT: processes ended"; else fail "SIGINT: processes ended" "pids $left"; fi

AFTER=$(host_state)
if [[ $BEFORE == "$AFTER" ]]; then ok "host conntrack settings and ruleset unchanged"; else
    fail "host conntrack settings and ruleset unchanged" "$(diff <(echo "$BEFORE") <(echo "$AFTER") | tr '\n' ' ')"; fi
echo "# $((SECONDS - start)) s"
finish
