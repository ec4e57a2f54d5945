#!/usr/bin/env bash
# Run libFuzzer targets for a set time each: `make fuzz` (FUZZ_TIME, FUZZ_TARGETS).
#
#   tests/fuzz/run_fuzz.sh [-t SECONDS] [-p PARALLEL] [TARGET...]   (default: all, 60 s)
#
# Expects the clang builds build/fuzz/fuzz_<target> (`make fuzz-build`). Each target
# starts from the committed corpus tests/fuzz/corpus/<target> (read only) and writes
# what it finds to build/fuzz/corpus/<target>; `make fuzz-merge` then minimises new
# finds into the committed corpus. A crash leaves its input in
# build/fuzz/crash-<target>-* and fails the run. One fuzzing process per target
# (-jobs=1), at most PARALLEL targets at once (default 1).
set -u
cd "$(dirname "$0")/../.."

time=60 parallel=1
while getopts t:p: opt; do
    case $opt in
        t) time=$OPTARG ;;
        p) parallel=$OPTARG ;;
        *) echo "usage: $0 [-t SECONDS] [-p PARALLEL] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame line raw http proxy http_resp)

# Inputs longer than this are not generated: HTTP needs room past the 8 KiB header
# limit; the codecs' small limits (< 48 bytes) are reached by short inputs.
max_len() { case $1 in http) echo 12000 ;; http_resp) echo 20000 ;; raw) echo 4096 ;; *) echo 2048 ;; esac; }

run_one() {
    local t=$1 root=$PWD
    local bin=$root/build/fuzz/fuzz_$t work=$root/build/fuzz/corpus/$t
    local logs=$root/build/fuzz/logs log=$root/build/fuzz/logs/$t.log
    local extra=()
    [ -x "$bin" ] || { echo "FAIL - $t: $bin missing (make fuzz-build)"; return 1; }
    mkdir -p "$work" "$logs/$t"
    [ -f "tests/fuzz/$t.dict" ] && extra+=("-dict=$root/tests/fuzz/$t.dict")
    # -jobs=1: one fuzzing process, supervised by libFuzzer, which logs to fuzz-0.log in
    # the current directory (a directory of its own per target).
    (cd "$logs/$t" && rm -f fuzz-0.log &&
        "$bin" -jobs=1 -workers=1 -max_total_time="$time" -max_len="$(max_len "$t")" \
            -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$root/build/fuzz/crash-$t-" "${extra[@]}" \
            "$work" "$root/tests/fuzz/corpus/$t" >/dev/null 2>&1
        rc=$?; mv -f fuzz-0.log "$log"; exit $rc)
    local rc=$?
    local execs units
    execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')
    units=$(grep -Eo 'corp: [0-9]+' "$log" | tail -n1 | awk '{print $2}')
    if [ "$rc" -eq 0 ]; then
        echo "ok - $t: ${time}s, ${execs:-?} executions, corpus ${units:-?} inputs (log $log)"
    else
        echo "FAIL - $t: exit $rc, see $log and build/fuzz/crash-$t-*"
        grep -m3 -E 'ERROR|invariant failed|runtime error' "$log" | sed 's/^/    /'
    fi
    return $rc
}

pass=0 fail=0 running=0
results=$(mktemp)
for t in "${targets[@]}"; do
    (run_one "$t" >>"$results") &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
cat "$results"
pass=$(grep -c '^ok - ' "$results")
fail=$(grep -c '^FAIL - ' "$results")
rm -f "$results"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
