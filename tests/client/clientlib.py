"""Helpers shared by the client suites: run build/wharf, read its JSON, diff /stats."""

import json
import os
import sys

from wharfkit.harness import Suite, Server, WHARF, run, CheckFailed, SANITIZED  # noqa: F401


def no_sanitizer_report(stderr):
    """A sanitizer's exit status (1) could pass for wharf's own 'there were errors'."""
    if SANITIZED and "Sanitizer" in stderr:
        raise CheckFailed("sanitizer report from wharf: " + stderr[-5000:])


def wharf(args, timeout=60):
    """Run `wharf ARGS`; returns the CompletedProcess."""
    p = run([WHARF] + list(args), timeout=timeout)
    no_sanitizer_report(p.stderr)
    return p


def wharf_json(args, timeout=60):
    """Run `wharf ARGS --json`; returns (exit status, parsed report, stderr)."""
    p = wharf(list(args) + ["--json"], timeout=timeout)
    try:
        report = json.loads(p.stdout)
    except ValueError:
        raise CheckFailed(f"no JSON from wharf {' '.join(args)} (status {p.returncode}): "
                          f"stdout={p.stdout[-500:]!r} stderr={p.stderr[-1500:]!r}")
    return p.returncode, report, p.stderr


def totals(server):
    return server.stats()["totals"]


def delta(before, after, key):
    return after[key] - before[key]


def messages_delta(before, after):
    """Messages the server answered between two /stats reads, without the /stats request
    itself: the earlier read's request is counted after it rendered (so it is in the
    delta), and each read counts its own http_2xx before rendering (so the later one's
    is in the delta) -- one of each, which cancel out."""
    return delta(before, after, "messages") - delta(before, after, "http_2xx")


def accepted_delta(before, after):
    """Connections the server accepted in between, without the later /stats read's."""
    return delta(before, after, "accepted") - 1


def addr(server, proto):
    return f"{proto}://127.0.0.1:{server.port[proto]}"
