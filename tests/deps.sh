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
# Some of these packages are daemons (nginx, h2o, haproxy) that Debian starts on install;
# two of them want port 80, and a failed start fails the install. On a machine with no
# invoke-rc.d policy of its own, forbid every start for the length of the install (the
# policy-rc.d interface, exit 101: "action forbidden"); the harnesses run their own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by wharf tests/deps.sh for one apt-get install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
    trap 'exit 130' INT TERM
fi
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi

# Servers installed as benchmark peers must not run as system services: Debian starts
# them on install (h2o on port 80 as well). Stop and disable whichever of them this
# run installed; bench/ starts its own instances on free ports.
for svc in nginx h2o; do
    case " $missing " in
        *" $svc "*|*" $svc-"*) ;;
        *) continue ;;
    esac
    if [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc" || echo "wharf: could not stop the $svc service" >&2
    elif [ -x "/etc/init.d/$svc" ]; then
        invoke-rc.d "$svc" stop || true
        update-rc.d "$svc" disable || echo "wharf: could not disable the $svc service" >&2
    fi
done
