#!/usr/bin/env bash
# Tests for what deploys the tuning: `make install` into a DESTDIR (wharf-tune, its
# profiles, wharf-tune(8), the tuned profile) and `make uninstall`; the tuned profile
# against the wharf-tune profile it is generated from; wharfd's start-up line about the
# file limit against `wharf-tune check`; and check's conntrack report inside a network
# namespace of its own with an nftables conntrack rule (skipped, with the reason, where
# there is no nf_conntrack or no nft).
#
# Writes only below a temporary directory and inside the namespace wt-deploy-$$ (deleted
# on exit, also on Ctrl-C); reads the host's sysctls before and after and fails if any
# changed. Needs root (ip netns). Prints "ok - name" / "FAIL - name: why" /
# "skip - name: why" and ends with "N passed, M failed"; exit status 1 if M > 0.

# The check functions are called through check(); shellcheck cannot see that.
# shellcheck disable=SC2317
set -uo pipefail
export LC_ALL=C

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
PROFILES=$REPO/tuning/profiles
export WHARF_BUILD=${WHARF_BUILD:-build}
case $WHARF_BUILD in /*) B=$WHARF_BUILD ;; *) B=$REPO/$WHARF_BUILD ;; esac
# make install builds `all` first: ask for the build that is there, with its flags.
case $WHARF_BUILD in
    *asan*) MAKEVARS=(SANITIZE=1) ;;
    *tsan*) MAKEVARS=(SANITIZE=thread) ;;
    *) MAKEVARS=() ;;
esac

PASS=0 FAIL=0
ok()   { printf 'ok - %s\n' "$1"; PASS=$((PASS + 1)); }
fail() { printf 'FAIL - %s: %s\n' "$1" "$2"; FAIL=$((FAIL + 1)); }
skip() { printf 'skip - %s: %s\n' "$1" "$2"; }
check() {  # NAME WHY-IF-FAILED COMMAND...
    local name=$1 why=$2
    shift 2
    if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}
finish() {
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    [[ $FAIL -eq 0 ]]
    exit
}

if [[ $EUID -ne 0 ]]; then fail "root" "needs root (ip netns)"; finish; fi
if [[ ! -x $B/wharfd || ! -x $B/wharf ]]; then fail "binaries" "no $B/wharfd or $B/wharf: run make"; finish; fi

WORK=$(mktemp -d)
NS="wt-deploy-$$"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

host_values() {
    local k
    for k in fs.nr_open fs.file-max net.core.somaxconn net.netfilter.nf_conntrack_max \
             net.netfilter.nf_conntrack_buckets; do
        printf '%s = %s\n' "$k" "$(sysctl -n "$k" 2>&1)"
    done
}
BEFORE=$(host_values)
START=$SECONDS
RC=0
run() { RC=0; "$@" >"$WORK/out" 2>&1 || RC=$?; }
why() { tail -n 5 "$WORK/out" | tr '\n' ' '; }

# "key<TAB>value" of a sysctl.d file, whitespace in values collapsed, later lines winning.
profile_kv() {
    awk '{ sub(/\r$/, "") } /^[ \t]*([#;]|$)/ { next }
         { k = $0; sub(/=.*/, "", k); v = $0; sub(/^[^=]*=/, "", v)
           gsub(/^[ \t-]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v); gsub(/[ \t]+/, " ", v)
           val[k] = v } END { for (k in val) printf "%s\t%s\n", k, val[k] }' "$1" | sort
}
# the [sysctl] section of a tuned.conf the same way, quotes removed
tuned_kv() {
    awk '/^\[/ { sec = $0; next } sec == "[sysctl]" && /=/ && !/^[ \t]*#/ {
           k = $0; sub(/=.*/, "", k); v = $0; sub(/^[^=]*=/, "", v); gsub(/^"|"$/, "", v)
           gsub(/[ \t]+/, " ", v); print k "\t" v }' "$1" | sort
}

# ---- make install into a DESTDIR, the installed wharf-tune -------------------------
D=$WORK/root
run make -C "$REPO" --no-print-directory install "DESTDIR=$D" PREFIX=/usr/local "${MAKEVARS[@]}"
check "make install DESTDIR=... exits 0" "rc=$RC: $(why)" test "$RC" -eq 0
missing=""
for f in usr/local/sbin/wharf-tune usr/local/share/man/man8/wharf-tune.8 \
         etc/tuned/wharf-high-concurrency/tuned.conf etc/wharf/wharfd.conf \
         usr/local/lib/systemd/system/wharfd.service usr/local/lib/systemd/system/wharfd.socket; do
    [[ -f $D/$f ]] || missing+=" $f"
done
for p in "$PROFILES"/*.conf; do
    cmp -s "$p" "$D/usr/local/share/wharf/profiles/${p##*/}" || missing+=" profiles/${p##*/}"
done
check "wharf-tune, every profile, wharf-tune(8) and the tuned profile installed" "missing:$missing" test -z "$missing"
check "wharf-tune installed executable" "mode $(stat -c %A "$D/usr/local/sbin/wharf-tune" 2>&1)" \
    test -x "$D/usr/local/sbin/wharf-tune"

TOOL=$D/usr/local/sbin/wharf-tune
# From / and with a PATH that does not lead to the source tree: it must find the
# installed profiles by its own location.
( cd / && env -u WHARF_TUNE_PROFILE_DIR PATH=/usr/sbin:/usr/bin:/sbin:/bin "$TOOL" profiles ) >"$WORK/out" 2>&1
RC=$?
check "installed wharf-tune lists the installed profiles" "rc=$RC: $(why)" \
    test "$RC" -eq 0 -a "$(grep -c . "$WORK/out")" -eq "$(find "$PROFILES" -name '*.conf' | wc -l)"
( cd / && env -u WHARF_TUNE_PROFILE_DIR PATH=/usr/sbin:/usr/bin:/sbin:/bin "$TOOL" check high-concurrency ) >"$WORK/out" 2>&1
RC=$?
check "installed wharf-tune check runs against the installed high-concurrency profile" "rc=$RC: $(head -n 2 "$WORK/out" | tr '\n' ' ')" \
    grep -q "^# check host against profile high-concurrency ($D/usr/local/share/wharf/profiles/high-concurrency.conf)" "$WORK/out"
check "installed wharf-tune check exits 0 or 1 (no usage error)" "rc=$RC" test "$RC" -le 1
ln -s "$TOOL" "$WORK/wt-link"
( cd / && "$WORK/wt-link" profiles ) >"$WORK/out" 2>&1
check "a symlink to the installed wharf-tune finds them too" "rc=$?: $(why)" grep -q '^high-concurrency ' "$WORK/out"
# The source tree's copy finds the source tree's profiles.
run "$REPO/tuning/wharf-tune" check high-concurrency
check "source tree wharf-tune uses tuning/profiles" "$(head -n 1 "$WORK/out")" \
    grep -q "^# check host against profile high-concurrency ($PROFILES/high-concurrency.conf)" "$WORK/out"

man_warnings() {
    MANWIDTH=80 man --warnings -l "$D/usr/local/share/man/man8/wharf-tune.8" 2>"$WORK/man.err" >"$WORK/man.out"
    [[ ! -s $WORK/man.err ]] && grep -q 'THE THREE FILE LIMITS' "$WORK/man.out" && grep -q 'conntrack' "$WORK/man.out"
}
if command -v man >/dev/null; then
    check "wharf-tune(8) renders without warnings" "$(head -c 300 "$WORK/man.err" 2>/dev/null)" man_warnings
else
    skip "wharf-tune(8) renders" "man is not installed (man-db)"
fi

# ---- make uninstall: everything install added goes, the configuration file stays ----
echo "# edited by the test" >>"$D/etc/wharf/wharfd.conf"
cp "$D/etc/wharf/wharfd.conf" "$WORK/conf.edited"
run make -C "$REPO" --no-print-directory uninstall "DESTDIR=$D" PREFIX=/usr/local
check "make uninstall exits 0" "rc=$RC: $(why)" test "$RC" -eq 0
left=$(cd "$D" && find . -type f | sort | tr '\n' ' ')
check "make uninstall leaves only the configuration file" "left: $left" test "$left" == "./etc/wharf/wharfd.conf "
check "the edited configuration file is kept as it was" "changed" cmp -s "$D/etc/wharf/wharfd.conf" "$WORK/conf.edited"
check "uninstall removes the directories it made for profiles and tuned" \
    "$(cd "$D" && find . -type d -name 'wharf*' | tr '\n' ' ')" \
    test ! -e "$D/usr/local/share/wharf" -a ! -e "$D/etc/tuned/wharf-high-concurrency"

# TUNED_DIR= for packagers (tuned also reads /usr/lib/tuned)
D2=$WORK/root2
run make -C "$REPO" --no-print-directory install "DESTDIR=$D2" PREFIX=/usr TUNED_DIR=/usr/lib/tuned "${MAKEVARS[@]}"
check "TUNED_DIR=/usr/lib/tuned installs the tuned profile there, not in /etc/tuned" "rc=$RC: $(why)" \
    test "$RC" -eq 0 -a -f "$D2/usr/lib/tuned/wharf-high-concurrency/tuned.conf" -a ! -e "$D2/etc/tuned"
( cd / && "$D2/usr/sbin/wharf-tune" profiles ) >"$WORK/out" 2>&1
check "PREFIX=/usr: the installed wharf-tune finds its profiles" "$(why)" grep -q '^loadgen ' "$WORK/out"

# ---- tuned profile == the wharf-tune profile it is generated from ---------------------
TUNED=$REPO/tuning/tuned/wharf-high-concurrency/tuned.conf
run "$REPO/tuning/tuned/generate" --check
check "tuned.conf is exactly what tuning/tuned/generate writes (generate --check)" "$(why)" test "$RC" -eq 0
check "tuned.conf [sysctl] has exactly the high-concurrency profile's keys and values" \
    "$(diff <(profile_kv "$PROFILES/high-concurrency.conf") <(tuned_kv "$TUNED") | grep '^[<>]' | tr '\n' ' ')" \
    test "$(profile_kv "$PROFILES/high-concurrency.conf")" == "$(tuned_kv "$TUNED")"
check "tuned.conf [main] includes network-throughput" "$(grep -n include "$TUNED")" \
    grep -qx 'include=network-throughput' "$TUNED"
# The comparison sees a drifted profile: one changed value makes generate disagree.
sed 's/^net.core.somaxconn = .*/net.core.somaxconn = 32768/' "$PROFILES/high-concurrency.conf" >"$WORK/high-concurrency.conf"
"$REPO/tuning/tuned/generate" "$WORK/high-concurrency.conf" "$WORK/drift.conf" >/dev/null 2>&1
check "a changed profile value shows up as a difference" "no difference found" \
    test "$(profile_kv "$WORK/high-concurrency.conf")" != "$(tuned_kv "$TUNED")" -a "$(tuned_kv "$WORK/drift.conf")" != "$(tuned_kv "$TUNED")"

# ---- one file-limit story: wharfd's log line == wharf-tune check ------------------------
# wharfd_room LOG -> "limit reserve room" from "file limit L: reserve R (...), room for C connections"
wharfd_room() {
    sed -n 's/.*file limit \([0-9]*\): reserve \([0-9]*\) .*room for \([0-9]*\) connections.*/\1 \2 \3/p' "$1" | head -n1
}
tune_room() {
    sed -n 's/^note *file limit \([0-9]*\): reserve \([0-9]*\) .*room for \([0-9]*\) connections.*/\1 \2 \3/p' "$1" | head -n1
}
start_wharfd() {  # LOG ARGS... (in a subshell whose file limit is 3000)
    local log=$1
    shift
    : >"$log"
    ( ulimit -n 3000 && exec "$B/wharfd" --listen raw://127.0.0.1:0 --listen http://127.0.0.1:0 "$@" ) >"$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        [[ -n $(wharfd_room "$log") ]] && return 0
        sleep 0.05
    done
    return 1
}
start_wharfd "$WORK/w1.log" -w 3
W1=${PIDS[-1]}
run "$REPO/tuning/wharf-tune" check high-concurrency --pid "$W1" --workers 3 --listeners 2
echo "# wharfd: $(wharfd_room "$WORK/w1.log"); wharf-tune check --pid: $(tune_room "$WORK/out")"
check "wharfd -w 3 and check --pid --workers 3: same limit, reserve and room" \
    "wharfd '$(wharfd_room "$WORK/w1.log")' vs check '$(tune_room "$WORK/out")'" \
    test -n "$(tune_room "$WORK/out")" -a "$(wharfd_room "$WORK/w1.log")" == "$(tune_room "$WORK/out")"
# Defaults on both sides: workers auto = nproc, two listeners; the limit of a shell
# wharfd would be started from (its hard limit, which wharfd raises its soft one to).
start_wharfd "$WORK/w2.log"
( ulimit -n 3000 && exec "$REPO/tuning/wharf-tune" check high-concurrency ) >"$WORK/out" 2>&1
check "wharfd's defaults and check's defaults, same shell limit: same line" \
    "wharfd '$(wharfd_room "$WORK/w2.log")' vs check '$(tune_room "$WORK/out")'" \
    test -n "$(tune_room "$WORK/out")" -a "$(wharfd_room "$WORK/w2.log")" == "$(tune_room "$WORK/out")"
run "$REPO/tuning/wharf-tune" check high-concurrency --pid "$W1" --workers 3 --listeners 2 --max-conns 2990
check "check --max-conns above the room warns with the limit it needs" "$(grep WARN "$WORK/out" | head -n 2 | tr '\n' ' ')" \
    grep -q "^WARN .*room for 2954 connections < --max-conns 2990.*at least 3036)" "$WORK/out"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
PIDS=()

# ---- conntrack: check reports it and warns when the target cannot fit ---------------------
ct_why=""
if [[ ! -e /proc/sys/net/netfilter/nf_conntrack_max ]]; then
    ct_why="nf_conntrack is not loaded (no /proc/sys/net/netfilter/nf_conntrack_max; modprobe nf_conntrack)"
elif ! command -v nft >/dev/null; then
    ct_why="nft is not installed (nftables; make deps installs it)"
elif ! ip netns add "$NS"; then
    ct_why="ip netns add $NS failed"
elif ! ip netns exec "$NS" nft -f - <<'EOF' 2>"$WORK/nft.err"
table inet wt {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    tcp dport 1-65535 ct state new accept
  }
}
EOF
then
    ct_why="nft cannot load a conntrack rule here: $(head -c 200 "$WORK/nft.err")"
fi
if [[ -n $ct_why ]]; then
    skip "conntrack in check" "$ct_why"
else
    ip netns exec "$NS" ip link set lo up
    ip netns exec "$NS" "$B/wharfd" -w 1 --listen frame://127.0.0.1:9100 --log-level warn >"$WORK/w3.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do ip netns exec "$NS" ss -Hltn 'sport = :9100' | grep -q . && break; sleep 0.05; done
    ip netns exec "$NS" "$B/wharf" hold -c 50 -d 3s --allow-errors frame://127.0.0.1:9100 >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        [[ $(ip netns exec "$NS" cat /proc/sys/net/netfilter/nf_conntrack_count) -ge 50 ]] && break
        sleep 0.05
    done
    max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
    run "$REPO/tuning/wharf-tune" check high-concurrency --netns "$NS" --max-conns 1000
    count=$(ip netns exec "$NS" cat /proc/sys/net/netfilter/nf_conntrack_count)
    reported=$(sed -n 's/^note *conntrack: nf_conntrack_count \([0-9]*\) \/ nf_conntrack_max \([0-9]*\), nf_conntrack_buckets \([0-9]*\).*/\1 \2 \3/p' "$WORK/out")
    echo "# conntrack in $NS: reported '$reported', namespace count now $count, max $max"
    ct_line_ok() {
        local c m b
        read -r c m b <<<"$reported"
        [[ -n $c && $c -ge 50 && $m == "$max" && $b == "$(cat /proc/sys/net/netfilter/nf_conntrack_buckets)" ]]
    }
    check "check --netns reports the namespace's nf_conntrack_count (held connections), max and buckets" \
        "'$reported' (count now $count, max $max)" ct_line_ok
    check "no conntrack warning when --max-conns fits" "$(grep 'WARN.*conntrack' "$WORK/out")" \
        test -z "$(grep 'WARN .*conntrack' "$WORK/out")"
    run "$REPO/tuning/wharf-tune" check high-concurrency --netns "$NS" --max-conns $((max + 1))
    rc_grep() { [[ $RC -eq 1 ]] && grep -q "^WARN .*conntrack: nf_conntrack_max = $max < $((max + 1)) connections (--max-conns)" "$WORK/out"; }
    check "--max-conns above nf_conntrack_max: a conntrack warning, exit 1" "rc=$RC" rc_grep
    # The profile's own target: what its nofile leaves room for.
    nofile=$(sed -n 's/^# nofile: //p' "$PROFILES/high-concurrency.conf")
    run "$REPO/tuning/wharf-tune" check high-concurrency --netns "$NS"
    if (( nofile > max )); then
        check "high-concurrency's nofile $nofile does not fit nf_conntrack_max $max: warned" "$(grep -c WARN "$WORK/out") warnings" \
            grep -q "^WARN .*conntrack: nf_conntrack_max = $max < .*(profile high-concurrency: nofile $nofile - reserve" "$WORK/out"
    else
        check "high-concurrency's nofile fits nf_conntrack_max: no conntrack warning" "$(grep 'WARN .*conntrack' "$WORK/out")" \
            test -z "$(grep 'WARN .*conntrack' "$WORK/out")"
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    PIDS=()
fi

AFTER=$(host_values)
check "no host value changed" "$(diff <(echo "$BEFORE") <(echo "$AFTER") | grep '^[<>]' | tr '\n' ' ')" \
    test "$BEFORE" == "$AFTER"
echo "# $((SECONDS - START)) s"
finish
