#!/usr/bin/env bash
# Replay the committed fuzz corpora as regression tests (part of `make test`).
#
# Each target's checks (tests/fuzz/fuzz_<target>.c) run over every input of
# tests/fuzz/corpus/<target>, linked with replay.c instead of libFuzzer: the binaries are
# prebuilt by `make fuzz-replay` in $WHARF_BUILD/fuzz-replay/ (gcc; under ASan+UBSan
# with SANITIZE=1). Then the differential check of the HTTP parser against Debian's
# libhttp-parser (diff_http, when libhttp-parser-dev is installed): every disagreement
# on the HTTP corpus must be one of the classes of tests/fuzz/DIFFERENCES.md, and every
# class must have its section there.
set -u
cd "$(dirname "$0")/../.."
build=${WHARF_BUILD:-build}
pass=0 fail=0

ok() { echo "ok - $*"; pass=$((pass + 1)); }
failed() { echo "FAIL - $*"; fail=$((fail + 1)); }

for t in frame line raw http proxy http_resp hdr; do
    bin=$build/fuzz-replay/fuzz_$t dir=tests/fuzz/corpus/$t
    n=$(find "$dir" -maxdepth 1 -type f | wc -l)
    if [ ! -x "$bin" ]; then
        failed "fuzz_$t: $bin is missing (make fuzz-replay)"
        continue
    fi
    if out=$("$bin" "$dir" 2>&1); then
        ok "fuzz_$t ($n inputs)"
    else
        failed "fuzz_$t ($n inputs)"
        printf '%s\n' "$out" | tail -n 25 | sed 's/^/    /'
    fi
done

if [ -e /usr/include/http_parser.h ]; then
    bin=$build/fuzz-replay/diff_http
    if [ ! -x "$bin" ]; then
        failed "diff_http: $bin is missing (make fuzz-replay)"
    elif out=$("$bin" -l tests/fuzz/corpus/http 2>&1); then
        ok "diff_http against libhttp-parser: $(printf '%s\n' "$out" | tail -n 1)"
    else
        failed "diff_http against libhttp-parser: $(printf '%s\n' "$out" | tail -n 1)"
        printf '%s\n' "$out" | grep -A1 '^UNEXPLAINED' | head -n 40 | sed 's/^/    /'
    fi
    if [ -x "$bin" ]; then
        missing=()
        for id in $("$bin" --ids); do
            grep -qs "\`$id\`" tests/fuzz/DIFFERENCES.md || missing+=("$id")
        done
        if [ ${#missing[@]} -eq 0 ]; then
            ok "every class of difference is in tests/fuzz/DIFFERENCES.md"
        else
            failed "classes missing from tests/fuzz/DIFFERENCES.md: ${missing[*]}"
        fi
    fi
else
    echo "skip - diff_http: libhttp-parser-dev is not installed (make deps installs it)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
