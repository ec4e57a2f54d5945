#!/usr/bin/env bash
# Fold what the fuzzers found (build/fuzz/corpus/<target>) into the committed corpus
# (tests/fuzz/corpus/<target>), keeping it small: `make fuzz-merge`.
#
#   tests/fuzz/minimize.sh [TARGET...]   (default: all)
#
# The hand-written inputs (seed-*, written by make_seeds.py) and the inputs of fixed bugs
# (regress-*) always stay. Every other committed input is replaced by libFuzzer's
# -merge=1 choice: the fewest inputs, smallest first, that add coverage to the kept ones.
# For HTTP, coverage means edges only (-use_counters=0): counting how often each edge
# runs keeps about a thousand inputs, edges alone under two hundred. The working corpus
# in build/fuzz/corpus keeps the rest between runs.
set -eu
cd "$(dirname "$0")/../.."
root=$PWD

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame line raw http proxy)

for t in "${targets[@]}"; do
    bin=$root/build/fuzz/fuzz_$t committed=$root/tests/fuzz/corpus/$t
    found=$root/build/fuzz/corpus/$t merged=$root/build/fuzz/merge/$t
    [ -x "$bin" ] || { echo "minimize: $bin missing (make fuzz-build)" >&2; exit 1; }
    mkdir -p "$found"
    rm -rf "$merged"
    mkdir -p "$merged"
    # the inputs that always stay go first: merge only adds what they do not cover
    find "$committed" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'regress-*' \) \
        -exec cp {} "$merged/" \;
    kept=$(find "$merged" -type f | wc -l)
    before=$(find "$committed" -maxdepth 1 -type f | wc -l)
    counters=1
    [ "$t" = http ] && counters=0
    (cd "$root/build/fuzz" &&
        "$bin" -merge=1 -use_counters=$counters -rss_limit_mb=2048 -timeout=10 \
            "$merged" "$committed" "$found" \
            >"$root/build/fuzz/merge-$t.log" 2>&1)
    # replace the committed fuzzer-found inputs by the merge's choice
    find "$committed" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'regress-*' -delete
    find "$merged" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'regress-*' \
        -exec cp {} "$committed/" \;
    after=$(find "$committed" -maxdepth 1 -type f | wc -l)
    bytes=$(du -sb "$committed" | cut -f1)
    echo "$t: $before committed + $(find "$found" -type f | wc -l) found -> $after" \
        "($kept seeds/regressions kept, $bytes bytes)"
done
