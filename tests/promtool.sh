#!/bin/sh
# Print the path of a promtool (Prometheus's checker, for `promtool check metrics`),
# fetching one first when there is none.
#
# Debian 12 ships promtool only inside the `prometheus` package, whose postinst enables
# and starts a Prometheus server. Installing that package on a test machine would leave
# a server running on :9090, so this never installs it: it downloads the .deb with
# `apt-get download` (no root needed, no maintainer script runs) and unpacks only
# usr/bin/promtool with `dpkg-deb -x` into a cache directory. Nothing is started,
# nothing is registered with dpkg, and removing the cache removes it all.
#
# Order: $PROMTOOL, a promtool on PATH, the cache ($WHARF_CACHE, default
# ~/.cache/wharf), then the download. Exit 1 with a one-line reason when none is found.
set -eu

if [ -n "${PROMTOOL:-}" ]; then
    echo "$PROMTOOL"
    exit 0
fi
if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
fi
cache=${WHARF_CACHE:-${HOME:-/root}/.cache/wharf}
tool=$cache/promtool
if [ -x "$tool" ]; then
    echo "$tool"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
chmod 755 "$tmp" # apt's _apt user writes the download when run as root
fetch() { (cd "$tmp" && apt-get download prometheus >"$tmp/log" 2>&1); }
if ! fetch; then
    # a fresh machine may have no package lists yet; only root can fetch them
    if [ "$(id -u)" = 0 ] && apt-get update >"$tmp/log" 2>&1 && fetch; then
        :
    else
        echo "wharf: cannot download Debian's prometheus package for promtool:" \
            "$(tail -n1 "$tmp/log")" >&2
        exit 1
    fi
fi
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
mkdir -p "$cache"
# copied then renamed: a run that is cut short never leaves half a binary in the cache
cp "$tmp/x/usr/bin/promtool" "$tool.part.$$"
mv "$tool.part.$$" "$tool"
echo "wharf: promtool unpacked from Debian's prometheus package into $tool (nothing installed)" >&2
echo "$tool"
