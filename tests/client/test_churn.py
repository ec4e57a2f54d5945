"""wharf churn against a real wharfd: connections counted on both sides, TIME_WAIT where
--close says, failures by errno."""

import os
import socket
import subprocess
import sys

from clientlib import (Suite, Server, wharf, wharf_json, totals, messages_delta,
                       accepted_delta, addr)

t = Suite(__file__)


def time_wait(port, side):
    """Sockets in TIME_WAIT on the server's side (sport) or the client's (dport)."""
    key = "sport" if side == "server" else "dport"
    out = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( {key} = :{port} )"],
                         capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


@t.test
def connections_counted_by_both_sides():
    with Server("frame", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["churn", "-c", "5", "-n", "500", addr(s, "frame")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        t.check(r["connected"] == 500 and r["completed"] == 500, "500 cycles", r)
        t.check(accepted_delta(before, after) == 500, "the server accepted 500",
                accepted_delta(before, after))
        t.check(messages_delta(before, after) == 500, "one request each",
                messages_delta(before, after))
        t.check(r["connect_latency"]["count"] == 500, "connect latency of each", r)
        t.check(r["connections_per_sec"] > 0, "a rate", r)


@t.test
def timed_run_matches_server_accepts():
    with Server("line", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["churn", "-c", "8", "-t", "2", "-d", "1s", "-r", "3",
                                 addr(s, "line")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        t.check(r["connected"] > 100, "some hundreds of connections", r["connected"])
        t.check(accepted_delta(before, after) == r["connected"], "server accepts == connected",
                (accepted_delta(before, after), r["connected"]))
        t.check(messages_delta(before, after) == 3 * r["completed"] == r["replies"],
                "three requests per connection", (messages_delta(before, after), r))
        t.check(abs(r["connections_per_sec"] * r["duration_s"] - r["completed"]) < 2,
                "connections/s consistent", r)


@t.test
def close_server_puts_time_wait_on_the_server():
    with Server("http") as s:
        port = s.port["http"]
        # Counted as differences: the harness's own probe connection left one behind.
        srv0, cli0 = time_wait(port, "server"), time_wait(port, "client")
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "300", "--close", "server",
                                 addr(s, "http")])
        t.check(rc == 0 and r["completed"] == 300, "300 HTTP cycles", (rc, r, err))
        t.check(r["time_wait"] == "server", "reported", r["time_wait"])
        t.check(time_wait(port, "server") - srv0 >= 300, "TIME_WAIT on the server's side",
                time_wait(port, "server"))
        t.check(time_wait(port, "client") == cli0, "none on the client's",
                (time_wait(port, "client"), cli0))


@t.test
def close_client_and_half_put_time_wait_on_the_client():
    with Server("frame") as s:
        port = s.port["frame"]
        srv0, cli0 = time_wait(port, "server"), time_wait(port, "client")
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "200", "--close", "half",
                                 addr(s, "frame")])
        t.check(rc == 0 and r["completed"] == 200, "200 half-close cycles", (rc, r, err))
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "200", "--close", "client",
                                 addr(s, "frame")])
        t.check(rc == 0 and r["completed"] == 200, "200 client-close cycles", (rc, r, err))
        t.check(time_wait(port, "client") - cli0 >= 400, "TIME_WAIT on the client's side",
                (time_wait(port, "client"), cli0))
        t.check(time_wait(port, "server") == srv0, "none on the server's",
                (time_wait(port, "server"), srv0))


@t.test
def linger0_leaves_no_time_wait():
    # The cycles send nothing: with TCP_DEFER_ACCEPT (wharfd's default) the kernel would
    # drop each one before wharfd accepts it, and "300 accepted" could not be counted.
    with Server("raw", "http", extra=["--defer-accept", "0"]) as s:
        port = s.port["raw"]
        tw0 = time_wait(port, "client") + time_wait(port, "server")
        before = totals(s)
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "300", "--linger0", "-r", "0",
                                 addr(s, "raw")])
        after = totals(s)
        t.check(rc == 0 and r["completed"] == 300, "300 connect-and-reset cycles", (rc, r, err))
        t.check(r["time_wait"] == "none", "reported", r["time_wait"])
        t.check(time_wait(port, "client") + time_wait(port, "server") == tw0, "no TIME_WAIT",
                (time_wait(port, "client"), time_wait(port, "server"), tw0))
        t.check(accepted_delta(before, after) == 300, "300 accepted",
                accepted_delta(before, after))
        t.check(messages_delta(before, after) == 0, "-r 0: no requests",
                messages_delta(before, after))


@t.test
def failures_are_counted_by_errno():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        rc, r, err = wharf_json(["churn", "-c", "2", "-d", "300ms", f"frame://127.0.0.1:{port}"])
    t.check(rc == 1, "exit status 1", (rc, err))
    t.check(r["failures_by_errno"].get("ECONNREFUSED", 0) > 0, "ECONNREFUSED counted",
            r["failures_by_errno"])
    t.check(r["completed"] == 0, "nothing completed", r)
    # A source address this host does not have: the errno of a spent port range too.
    with Server("frame") as s:
        rc, r, err = wharf_json(["churn", "-c", "2", "-d", "300ms", "--source", "192.0.2.1",
                                 addr(s, "frame")])
    t.check(rc == 1 and r["failures_by_errno"].get("EADDRNOTAVAIL", 0) > 0,
            "EADDRNOTAVAIL counted", (rc, r["failures_by_errno"]))
    # Failed connects wait 10 ms before the next attempt: counted, not spun on.
    t.check(r["attempts"] <= 2 * 40, "a failing loop retries at most every 10 ms",
            r["attempts"])


@t.test
def echo_server_with_expect_upper_is_mismatch():
    with Server("frame", mode="echo") as s:
        rc, r, err = wharf_json(["churn", "-c", "2", "-n", "50", "--expect", "upper",
                                 addr(s, "frame")])
        t.check(rc == 1, "exit status 1", (rc, err))
        t.check(r["errors"]["mismatch"] == 50, "50 mismatches", r["errors"])
        t.check(r["replies"] == 0, "no reply counted as a success", r)


@t.test
def usage_errors():
    p = wharf(["churn", "--close", "server", "frame://127.0.0.1:1"])
    t.check(p.returncode == 2 and "--close half" in p.stderr,
            "--close server on frame: refused with the alternative", p.stderr)
    p = wharf(["churn", "--close", "half", "--linger0", "frame://127.0.0.1:1"])
    t.check(p.returncode == 2, "--linger0 goes with --close client", p.stderr)


t.main()
