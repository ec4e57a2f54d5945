#!/usr/bin/env bash
# Tests for tuning/wharf-tune.
#
# Everything that writes runs inside a throwaway network namespace
# (wt-test-$$), deleted on exit, also on Ctrl-C. Host values are read at the
# start and at the end and must be identical: this test never changes the host.
# Needs root and `ip netns`. Prints "ok - name" / "FAIL - name: why" per check
# and ends with one line "N passed, M failed"; exit status 1 if M > 0.

# The check functions are called through check(); shellcheck cannot see that.
# shellcheck disable=SC2317
set -uo pipefail
export LC_ALL=C

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
TOOL=$REPO/tuning/wharf-tune
PROFILES=$REPO/tuning/profiles

PASS=0 FAIL=0
ok()   { printf 'ok - %s\n' "$1"; PASS=$((PASS + 1)); }
fail() { printf 'FAIL - %s: %s\n' "$1" "$2"; FAIL=$((FAIL + 1)); }
# check NAME WHY-IF-FAILED COMMAND...
check() {
    local name=$1 why=$2
    shift 2
    if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [[ $FAIL -eq 0 ]]
    exit
}

if [[ $EUID -ne 0 ]]; then
    fail "root" "needs root (ip netns, sysctl -w inside the namespace)"
    finish
fi
if ! command -v ip >/dev/null || ! command -v sysctl >/dev/null; then
    fail "tools" "needs ip (iproute2) and sysctl (procps)"
    finish
fi

NS="wt-test-$$"
WORK=$(mktemp -d)
BK=$(mktemp -d)
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf -- "$WORK" "$BK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Backups never go to /var/lib/wharf-tune from this test.
export WHARF_TUNE_BACKUP_DIR=$BK

# The knobs wharf-tune shows; which of them each network namespace owns.
ALL_KNOBS=(
    net.ipv4.tcp_tw_reuse net.ipv4.tcp_fin_timeout net.ipv4.tcp_syncookies
    net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_max_tw_buckets
    net.ipv4.ip_local_port_range net.core.somaxconn net.core.netdev_max_backlog
    net.ipv4.tcp_rmem net.ipv4.tcp_wmem net.ipv4.tcp_notsent_lowat net.core.rmem_max
    fs.file-max fs.nr_open
)
NS_KNOBS=(
    net.ipv4.tcp_tw_reuse net.ipv4.tcp_timestamps net.ipv4.tcp_fin_timeout
    net.ipv4.tcp_syncookies net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_max_tw_buckets
    net.ipv4.ip_local_port_range net.core.somaxconn net.ipv4.tcp_rmem
    net.ipv4.tcp_wmem net.ipv4.tcp_notsent_lowat
)
GLOBAL_KNOBS=(net.core.netdev_max_backlog net.core.rmem_max fs.file-max fs.nr_open)

path_of() { printf '/proc/sys/%s' "${1//.//}"; }
norm() { local -a p; read -ra p <<<"$1" || true; printf '%s' "${p[*]}"; }
nsget() { ip netns exec "$NS" sysctl -n "$1" 2>/dev/null; }
# Raw "key = value" lines (tabs kept) of every per-namespace knob.
dump_ns() { local k; for k in "${NS_KNOBS[@]}"; do ip netns exec "$NS" sysctl "$k" 2>&1; done; }
dump_host() {
    local k
    for k in "${ALL_KNOBS[@]}" net.ipv4.tcp_timestamps; do
        printf '%s = %s\n' "$k" "$(sysctl -n "$k" 2>&1)"
    done
}
# Run the tool; output to $WORK/out, status to RC.
RC=0
# rc_and_grep WANT-RC REGEX... : $RC is WANT-RC (255 = any failure) and every REGEX is in $WORK/out
rc_and_grep() {
    local want=$1 re
    shift
    if [[ $want -eq 255 ]]; then [[ $RC -ne 0 ]] || return 1
    else [[ $RC -eq $want ]] || return 1
    fi
    for re in "$@"; do grep -Eq -- "$re" "$WORK/out" || return 1; done
}
run() { RC=0; "$TOOL" "$@" >"$WORK/out" 2>&1 || RC=$?; }
# A copy of a profile whose "# nofile:" is this shell's soft limit. RLIMIT_NOFILE
# is per process, not per namespace, and raising the hard limit needs
# CAP_SYS_RESOURCE, which a container may not have; the sysctl part of the
# profile stays exactly as shipped.
nofile_copy() {
    sed "s/^# nofile: .*/# nofile: $(ulimit -Sn)/" "$PROFILES/$1.conf" >"$WORK/$1.conf"
    printf '%s' "$WORK/$1.conf"
}
# profile_keys FILE -> "key<TAB>value" lines
profile_kv() {
    sed -n 's/^[[:space:]]*-\{0,1\}\([A-Za-z0-9_.-]*\)[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1\t\2/p' "$1"
}
values_match() {  # PROFILE-FILE -> every key in it reads back (in the ns) as in the profile
    local key val cur bad=0
    while IFS=$'\t' read -r key val; do
        cur=$(nsget "$key") || { echo "$key unreadable" >>"$WORK/why"; bad=1; continue; }
        if [[ $(norm "$cur") != "$(norm "$val")" ]]; then
            echo "$key = '$(norm "$cur")', want '$(norm "$val")'" >>"$WORK/why"
            bad=1
        fi
    done < <(profile_kv "$1" | grep -v '^fs\.' |
             awk -F '\t' -v g="${GLOBAL_KNOBS[*]}" 'BEGIN { split(g, a, " "); for (i in a) skip[a[i]] = 1 } !($1 in skip)')
    return "$bad"
}

HOST_BEFORE=$(dump_host)
START=$SECONDS

if ! ip netns add "$NS"; then
    fail "netns" "ip netns add $NS failed"
    finish
fi
FRESH=$(dump_ns)

# --- basics -----------------------------------------------------------------
run --help
check "help exits 0 and documents exit status 3" "rc=$RC" \
    rc_and_grep 0 '^  3 '

run profiles
check "profiles lists every profile with its description" "$(tr '\n' '|' <"$WORK/out")" \
    rc_and_grep 0 '^default +[^ (]' '^high-concurrency +[^ (]' '^loadgen +[^ (]' '^seed-tutorial +[^ (]'

run nope-no-such-profile
check "unknown command exits 2" "rc=$RC" test "$RC" -eq 2
run apply nope-no-such-profile --netns "$NS" --dry-run
check "unknown profile exits 2" "rc=$RC" test "$RC" -eq 2
run check default --netns "wt-missing-$$"
check "unknown namespace exits 2" "rc=$RC" test "$RC" -eq 2

# Every profile: description first, every value has a comment right above it.
lint_profile() {
    local f=$1 prev="" line n=0
    head -n1 "$f" | grep -q '^# description: .' || { echo "$f: first line is not '# description: ...'" >"$WORK/why"; return 1; }
    while IFS= read -r line; do
        n=$((n + 1))
        if [[ $line =~ ^[[:space:]]*-?[a-z][A-Za-z0-9_.-]*[[:space:]]*= ]]; then
            if [[ $prev != '#'* ]]; then echo "$f:$n: '$line' has no comment above it" >"$WORK/why"; return 1; fi
        fi
        prev=$line
    done <"$f"
}
for f in "$PROFILES"/*.conf; do
    : >"$WORK/why"
    check "profile $(basename "$f" .conf): described, every value commented" "$(cat "$WORK/why")" lint_profile "$f"
done

# --- show ---------------------------------------------------------------------
show_lists_all() {
    local k
    for k in "${ALL_KNOBS[@]}"; do
        grep -q "^$k " "$WORK/out" || { echo "missing $k" >"$WORK/why"; return 1; }
    done
    grep -Eq '^RLIMIT_NOFILE.* [0-9]+/[0-9]+ ' "$WORK/out" || { echo "missing RLIMIT_NOFILE soft/hard" >"$WORK/why"; return 1; }
    local soft hard
    soft=$(ulimit -Sn) hard=$(ulimit -Hn)
    grep -q "^RLIMIT_NOFILE.* $soft/$hard " "$WORK/out" || { echo "RLIMIT_NOFILE is not $soft/$hard" >"$WORK/why"; return 1; }
}
scope_col() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/out"; }
scopes_right() {
    local k s
    for k in "${NS_KNOBS[@]}"; do
        s=$(scope_col "$k"); [[ $s == netns ]] || { echo "$k scope '$s', want netns" >"$WORK/why"; return 1; }
    done
    for k in "${GLOBAL_KNOBS[@]}"; do
        s=$(scope_col "$k"); [[ $s == global ]] || { echo "$k scope '$s', want global" >"$WORK/why"; return 1; }
    done
}

: >"$WORK/why"
run show
check "show (host, read-only) exits 0" "rc=$RC" test "$RC" -eq 0
check "show lists every knob with RLIMIT_NOFILE soft/hard" "$(cat "$WORK/why")" show_lists_all
check "show marks per-netns and global knobs" "$(cat "$WORK/why")" scopes_right
grep -q '^net.core.somaxconn .* 65535 ' "$WORK/out"
check "show compares with high-concurrency by default" "no 65535 for somaxconn" test $? -eq 0

: >"$WORK/why"
run show loadgen --netns "$NS"
if [[ $RC -eq 0 ]] && show_lists_all && scopes_right; then ok "show --netns: every knob, scopes from the live namespace"
else fail "show --netns: every knob, scopes from the live namespace" "rc=$RC $(cat "$WORK/why")"; fi

: >"$WORK/why"
run show --probe
if [[ $RC -eq 0 ]] && scopes_right; then ok "show --probe: scopes measured in a throwaway namespace agree"
else fail "show --probe: scopes measured in a throwaway namespace agree" "rc=$RC $(cat "$WORK/why")"; fi
! ip netns list | grep -q "wharf-tune-probe"
check "show --probe removed its namespace" "a wharf-tune-probe namespace is left" test $? -eq 0

# The kernel itself: per-netns knobs are writable in a fresh namespace; the
# global net.core one does not exist there; fs.* are the host's objects.
kernel_scopes() {
    local k
    for k in "${NS_KNOBS[@]}"; do
        ip netns exec "$NS" test -w "$(path_of "$k")" || { echo "$k not writable in a namespace" >"$WORK/why"; return 1; }
    done
    if ip netns exec "$NS" test -e "$(path_of net.core.netdev_max_backlog)"; then
        echo "netdev_max_backlog exists in the namespace" >"$WORK/why"; return 1
    fi
    if ip netns exec "$NS" sysctl -q -w net.core.netdev_max_backlog=1000 2>/dev/null; then
        echo "sysctl -w netdev_max_backlog succeeded in the namespace" >"$WORK/why"; return 1
    fi
    for k in fs.file-max fs.nr_open; do
        [[ $(nsget "$k") == "$(sysctl -n "$k")" ]] || { echo "$k differs in the namespace" >"$WORK/why"; return 1; }
    done
}
: >"$WORK/why"
check "kernel: net knobs per namespace, netdev_max_backlog init-ns only, fs.* shared" "$(cat "$WORK/why")" kernel_scopes

# --- check ----------------------------------------------------------------------
run check default --netns "$NS"
check "check default == a fresh namespace (kernel defaults), exit 0" "rc=$RC: $(grep -E '^(DIFF|WARN)' "$WORK/out" | tr '\n' ' ')" test "$RC" -eq 0
run check loadgen --netns "$NS"
check "check loadgen on a fresh namespace: exit 1" "rc=$RC" test "$RC" -eq 1
grep -q '^DIFF .*net.ipv4.ip_local_port_range' "$WORK/out"
check "check names what differs" "no DIFF line for ip_local_port_range" test $? -eq 0
run check loadgen --netns "$NS" --max-conns 100000
check "check --max-conns warns about a port range too small" "$(grep WARN "$WORK/out" | head -n 3 | tr '\n' ' ')" \
    grep -q '^WARN .*ip_local_port_range.*28232 ports' "$WORK/out"
check "check --max-conns warns about nofile below it" "no nofile warning" \
    grep -q '^WARN .*RLIMIT_NOFILE soft' "$WORK/out"
check "check warns about tcp_tw_reuse not 1 on a load generator" "no tw_reuse warning" \
    grep -q '^WARN .*tcp_tw_reuse' "$WORK/out"
ip netns exec "$NS" sysctl -q -w net.core.somaxconn=1024
run check high-concurrency --netns "$NS"
check "check warns about somaxconn below wharfd's 4096 backlog" "no somaxconn warning (rc=$RC)" \
    grep -q '^WARN .*somaxconn = 1024 < 4096' "$WORK/out"
ip netns exec "$NS" sysctl -q -w net.core.somaxconn=4096

# --- dry run --------------------------------------------------------------------
before=$(dump_ns)
run apply loadgen --netns "$NS" --dry-run
after=$(dump_ns)
check "apply --dry-run exits 0 and says what would change" "rc=$RC" \
    rc_and_grep 0 '^would set net.ipv4.ip_local_port_range = 1024 65535'
check "apply --dry-run changes nothing" "values changed" test "$before" == "$after"
check "apply --dry-run writes no backup" "$(ls "$BK")" test -z "$(ls -A "$BK")"

# --- apply ----------------------------------------------------------------------
run apply loadgen --netns "$NS"
S1=$(dump_ns)
check "apply loadgen --netns exits 0" "rc=$RC: $(grep -Ev '^(set|same|note) ' "$WORK/out" | tr '\n' ' ')" test "$RC" -eq 0
: >"$WORK/why"
check "apply loadgen: every value reads back in the namespace" "$(tr '\n' ';' <"$WORK/why")" values_match "$PROFILES/loadgen.conf"
mapfile -t backups < <(ls "$BK")
check "apply made exactly one backup" "${#backups[@]} files: ${backups[*]}" test "${#backups[@]}" -eq 1
backup_ok() {
    local f=$BK/${backups[0]} n
    # sysctl.d format: only comments and "key = value" lines
    if grep -Ev '^(#.*|[a-z][A-Za-z0-9_.-]* = .+)?$' "$f" >"$WORK/why"; then return 1; fi
    n=$(grep -c ' = ' "$f")
    [[ $n -eq 4 ]] || { echo "$n keys, want 4" >"$WORK/why"; return 1; }
    grep -q $'^net.ipv4.ip_local_port_range = 32768\t60999$' "$f" || { echo "port range not kept exactly (tabs)" >"$WORK/why"; return 1; }
}
check "backup is sysctl.d format with the previous values, tabs kept" "$(cat "$WORK/why")" backup_ok
run check "$(nofile_copy loadgen)" --netns "$NS"
check "check loadgen after apply: exit 0" "rc=$RC: $(grep -E '^(DIFF|WARN)' "$WORK/out" | tr '\n' ' ')" test "$RC" -eq 0

RC=0
( ulimit -Sn 1024 && exec "$TOOL" check loadgen --netns "$NS" ) >"$WORK/out" 2>&1 || RC=$?
check "check reports RLIMIT_NOFILE below the profile's nofile (exit 1)" "rc=$RC" \
    rc_and_grep 1 '^DIFF .*RLIMIT_NOFILE soft/hard = 1024/'

# Global knobs are refused inside the namespace; the host keeps its values.
host_globals() { local k; for k in "${GLOBAL_KNOBS[@]}"; do sysctl "$k"; done; }
hg_before=$(host_globals)
run apply high-concurrency --netns "$NS"
hg_after=$(host_globals)
S2=$(dump_ns)
check "apply high-concurrency --netns exits 3 (global keys skipped)" "rc=$RC" test "$RC" -eq 3
refused_all() {
    local k
    for k in "${GLOBAL_KNOBS[@]}"; do
        grep -q "^GLOBAL *$k = .*refused" "$WORK/out" || { echo "no refusal line for $k" >"$WORK/why"; return 1; }
    done
}
: >"$WORK/why"
check "global keys (fs.*, netdev_max_backlog) refused inside the namespace" "$(cat "$WORK/why")" refused_all
check "host values of the global keys unchanged" "$(diff <(echo "$hg_before") <(echo "$hg_after") | tr '\n' ' ')" test "$hg_before" == "$hg_after"
: >"$WORK/why"
check "apply high-concurrency: every per-netns value reads back" "$(tr '\n' ';' <"$WORK/why")" values_match "$PROFILES/high-concurrency.conf"
run check "$(nofile_copy high-concurrency)" --netns "$NS"
check "check high-concurrency after apply: exit 0" "rc=$RC: $(grep -E '^(DIFF|WARN)' "$WORK/out" | tr '\n' ' ')" test "$RC" -eq 0
check "apply changed the namespace" "dump identical to before" test "$S1" != "$S2"

# --- revert ---------------------------------------------------------------------
run revert --netns "$NS"
R1=$(dump_ns)
check "revert (newest backup) exits 0" "rc=$RC" test "$RC" -eq 0
check "revert restores exactly the values before high-concurrency" \
    "$(diff <(echo "$S1") <(echo "$R1") | grep '^[<>]' | tr '\n' ' ')" test "$S1" == "$R1"
mapfile -t backups < <(ls "$BK")
oldest=$BK/${backups[0]}
run revert "$oldest" --netns "$NS"
R0=$(dump_ns)
check "revert BACKUP exits 0" "rc=$RC" test "$RC" -eq 0
check "revert BACKUP restores the fresh namespace exactly (tabs included)" \
    "$(diff <(echo "$FRESH") <(echo "$R0") | grep '^[<>]' | tr '\n' ' ')" test "$FRESH" == "$R0"
run revert "$oldest"
check "revert refuses a namespace backup on the host (exit 2)" "rc=$RC" test "$RC" -eq 2
run revert --netns "$NS" --dry-run
check "revert --dry-run changes nothing" "rc=$RC" test "$R0" == "$(dump_ns)"

# --- the tutorial's recipe -----------------------------------------------------
run apply seed-tutorial --netns "$NS"
check "apply seed-tutorial exits 3" "rc=$RC" test "$RC" -eq 3
check "apply seed-tutorial reports tcp_tw_recycle as missing/obsolete" "$(grep tw_recycle "$WORK/out")" \
    grep -Eq '^MISSING +net.ipv4.tcp_tw_recycle.*obsolete.*4\.12' "$WORK/out"
seed_applied() {
    [[ $(nsget net.ipv4.tcp_syncookies) == 1 && $(nsget net.ipv4.tcp_tw_reuse) == 1 && $(nsget net.ipv4.tcp_fin_timeout) == 30 ]]
}
check "apply seed-tutorial still applies the other three keys" \
    "syncookies=$(nsget net.ipv4.tcp_syncookies) tw_reuse=$(nsget net.ipv4.tcp_tw_reuse) fin_timeout=$(nsget net.ipv4.tcp_fin_timeout)" seed_applied
run revert --netns "$NS"
check "revert after seed-tutorial restores the fresh namespace" "rc=$RC" test "$FRESH" == "$(dump_ns)"

# The profiles are plain sysctl.d files: `sysctl -p FILE` reads them. Only for
# profiles with per-namespace keys alone (anything else would touch the host).
only_ns_keys() { ! profile_kv "$1" | cut -f1 | grep -Ev '^net\.ipv4\.' | grep -q .; }
if only_ns_keys "$PROFILES/loadgen.conf"; then
    ip netns exec "$NS" sysctl -q -p "$PROFILES/loadgen.conf" >/dev/null 2>&1
    rc=$?
    : >"$WORK/why"
    if [[ $rc -eq 0 ]] && values_match "$PROFILES/loadgen.conf"; then ok "sysctl -p reads the loadgen profile"
    else fail "sysctl -p reads the loadgen profile" "rc=$rc $(cat "$WORK/why")"; fi
else
    fail "sysctl -p reads the loadgen profile" "loadgen has non-net.ipv4 keys; not run"
fi
if only_ns_keys "$PROFILES/seed-tutorial.conf"; then
    ip netns exec "$NS" sysctl -q -p "$PROFILES/seed-tutorial.conf" >"$WORK/out" 2>&1
    RC=$?
    check "plain sysctl -p of the tutorial recipe fails on tcp_tw_recycle (the myth)" "rc=$RC" \
        rc_and_grep 255 'tcp_tw_recycle'
else
    fail "sysctl -p of seed-tutorial" "seed-tutorial has non-net.ipv4 keys; not run"
fi

# --- the host ---------------------------------------------------------------------
HOST_AFTER=$(dump_host)
check "no host value changed" "$(diff <(echo "$HOST_BEFORE") <(echo "$HOST_AFTER") | grep '^[<>]' | tr '\n' ' ')" \
    test "$HOST_BEFORE" == "$HOST_AFTER"
check "finished in under 30 s" "took $((SECONDS - START)) s" test $((SECONDS - START)) -lt 30

finish
