#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet.
# Used by `make deps` (and so by `make run` and `make test`) on a fresh Debian 12.
set -eu

missing=""
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "wharf: missing Debian packages:$missing" >&2
    echo "wharf: run 'make deps' as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "wharf: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
