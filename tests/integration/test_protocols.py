"""raw, line and frame against the real wharfd: the seed's scenario, wharf send,
limits, half-close, and the command line."""

import os
import socket
import tempfile
import subprocess
import time

from wharfkit.harness import (SANITIZED, WHARF, WHARFD, Server, Suite, frame, read_frame, recv_exact,
                     recv_until_close, run)

t = Suite(__file__)


@t.test
def seed_scenario_python_client_gets_upper_case():
    # The tutorial's own client, unchanged but for the port: connect, send, recv(1024).
    with Server("raw") as s:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(("127.0.0.1", s.port["raw"]))
        c.send("lheiehei ".encode("utf-8"))
        feedback = c.recv(1024)
        c.close()
        t.check(feedback.decode("utf-8") == "LHEIEHEI ", "upper-cased echo", feedback)


@t.test
def seed_communication_loop_many_messages_one_connection():
    with Server("raw") as s:
        c = s.connect()
        for i in range(50):
            msg = f"linhaifeng nb {i}".encode()
            c.send(msg)
            t.check(recv_exact(c, len(msg)) == msg.upper(), "reply per message")
        c.close()


@t.test
def default_listeners_are_the_seed_address_and_http():
    # With no --listen, wharfd serves raw on 127.0.0.1:9000 and HTTP on :8080.
    # Skipped (counted as passing) only if something else already holds those ports.
    for port in (9000, 8080):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                print(f"# port {port} busy, default-listener check skipped")
                return
    p = subprocess.Popen([WHARFD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                c = socket.create_connection(("127.0.0.1", 9000), timeout=1)
                break
            except OSError:
                t.check(time.monotonic() < deadline and p.poll() is None, "wharfd starts")
                time.sleep(0.05)
        c.sendall(b"hi")
        t.check(recv_exact(c, 2) == b"HI", "raw on 9000")
        c.close()
        h = socket.create_connection(("127.0.0.1", 8080), timeout=5)
        h.sendall(b"GET / HTTP/1.0\r\n\r\n")
        t.check(b"Hello, World!" in recv_until_close(h), "http on 8080")
        h.close()
    finally:
        p.terminate()
        out = p.communicate(timeout=15)[0].decode()
    t.check(p.returncode == 0, "exit 0 on SIGTERM", out[-500:])


@t.test
def wharf_send_each_protocol_from_a_pipe():
    with Server("raw", "line", "frame") as s:
        for proto in ("raw", "line", "frame"):
            r = run([WHARF, "send", "--proto", proto, f"127.0.0.1:{s.port[proto]}"],
                    input="hello\n\n  \nworld\nquit\nnot sent\n")
            t.check(r.returncode == 0, f"{proto}: exit 0", r.stderr)
            t.check(r.stdout == "HELLO\nWORLD\n", f"{proto}: replies printed, empties skipped",
                    r.stdout)
        r = run([WHARF, "send", f"frame://127.0.0.1:{s.port['frame']}"], input="x y\n")
        t.check(r.stdout == "X Y\n", "PROTO:// address picks the protocol", r.stdout)


@t.test
def netcat_half_close_gets_the_reply():
    # The README's raw example: nc -N shuts down its sending side at EOF.
    with Server("raw") as s:
        r = run(["nc", "-N", "127.0.0.1", str(s.port["raw"])], input="hello", timeout=10)
        t.check(r.stdout == "HELLO", "nc gets the reply", (r.stdout, r.stderr))


@t.test
def wharf_send_prompts_on_a_terminal():
    # Under a pseudo-terminal the tutorial's ">>> " prompt appears.
    import pty
    with Server("line") as s:
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(WHARF, [WHARF, "send", "--proto", "line", f"127.0.0.1:{s.port['line']}"])
        out = b""
        deadline = time.monotonic() + 10
        while b">>> " not in out and time.monotonic() < deadline:
            out += os.read(fd, 1024)
        os.write(fd, b"abc\n")
        while out.count(b">>> ") < 2 and time.monotonic() < deadline:
            out += os.read(fd, 1024)
        os.write(fd, b"quit\n")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        t.check(b"ABC" in out and out.count(b">>> ") >= 2, "prompt, reply, prompt", out)
        t.check(os.waitstatus_to_exitcode(status) == 0, "exit 0 after quit")


@t.test
def wharf_send_reports_a_refused_connection():
    r = run([WHARF, "send", "127.0.0.1:1"], input="x\n")
    t.check(r.returncode == 1 and "cannot connect" in r.stderr, "exit 1, one line", r.stderr)


@t.test
def line_keeps_crlf_and_splits_sticky_lines():
    with Server("line", mode="echo") as s:
        c = s.connect("line")
        c.sendall(b"one\r\ntwo\nthr")
        time.sleep(0.05)
        c.sendall(b"ee\n")
        t.check(recv_exact(c, len(b"one\r\ntwo\nthree\n")) == b"one\r\ntwo\nthree\n",
                "three lines back, CRLF kept")
        c.close()


@t.test
def line_too_long_gets_an_error_line_and_a_close():
    with Server("line", "http", extra=["--max-message", "1K"]) as s:
        c = s.connect("line")
        c.sendall(b"x" * 2000)
        data = recv_until_close(c)
        t.check(data.startswith(b"ERR line longer than 1024"), "error line", data[:80])
        c.close()
        t.check(s.stats()["totals"]["protocol_errors"] == 1, "counted")


@t.test
def frame_zero_length_is_valid_and_sticky_frames_split():
    with Server("frame") as s:
        c = s.connect("frame")
        c.sendall(frame(b"") + frame(b"ab") + frame(b"")[:2])
        t.check(read_frame(c) == b"" and read_frame(c) == b"AB", "empty and sticky frames")
        c.sendall(frame(b"")[2:] + frame(b"z"))
        t.check(read_frame(c) == b"" and read_frame(c) == b"Z", "split header reassembled")
        c.close()


@t.test
def frame_over_max_message_is_closed_unallocated():
    with Server("frame", "http", extra=["--max-message", "1M"]) as s:
        rss0 = s.rss_kib()
        c = s.connect("frame")
        c.sendall((0xFFFFFFFF).to_bytes(4, "big") + b"x" * 100)
        t.check(recv_until_close(c) == b"", "closed without a reply")
        c.close()
        st = s.stats()["totals"]
        t.check(st["protocol_errors"] == 1, "counted", st)
        bound = 8192 if SANITIZED else 2048  # sanitizers' shadow memory grows on first use
        t.check(s.rss_kib() - rss0 < bound, "nothing allocated for 4 GiB", s.rss_kib() - rss0)


@t.test
def large_frame_round_trips():
    with Server("frame", mode="echo") as s:
        c = s.connect("frame")
        payload = os.urandom(1 << 20)
        c.sendall(frame(payload))
        t.check(read_frame(c) == payload, "1 MiB frame echoed intact")
        c.close()


@t.test
def half_close_after_request_still_gets_the_reply():
    with Server("raw", "line", "frame") as s:
        for proto, req, want in (("raw", b"bye", b"BYE"), ("line", b"bye\n", b"BYE\n"),
                                 ("frame", frame(b"bye"), frame(b"BYE"))):
            c = s.connect(proto)
            c.sendall(req)
            c.shutdown(socket.SHUT_WR)
            t.check(recv_until_close(c) == want, f"{proto}: reply then EOF")
            c.close()


@t.test
def partial_message_then_eof_is_counted_not_answered():
    with Server("frame", "http") as s:
        c = s.connect("frame")
        c.sendall(frame(b"hello")[:6])
        c.shutdown(socket.SHUT_WR)
        t.check(recv_until_close(c) == b"", "no reply to half a frame")
        c.close()
        time.sleep(0.1)
        t.check(s.stats()["totals"]["truncated"] == 1, "counted as truncated")


@t.test
def ipv6_loopback_listener():
    if not socket.has_ipv6:
        return
    with Server("raw", host="::1") as s:
        c = socket.create_connection(("::1", s.port["raw"]), timeout=5)
        c.sendall(b"v6")
        t.check(recv_exact(c, 2) == b"V6", "served over ::1")
        c.close()


@t.test
def dispatch_modes_all_serve():
    for mode in ("least", "rr", "reuseport"):
        with Server("frame", "http", workers=2, extra=["--dispatch", mode]) as s:
            conns = [s.connect("frame") for _ in range(20)]
            for c in conns:
                c.sendall(frame(b"m"))
            for c in conns:
                t.check(read_frame(c) == b"M", f"{mode}: reply")
            per_worker = [w["accepted"] for w in s.stats()["workers"]]
            for c in conns:
                c.close()
            if mode != "reuseport":  # the kernel's hash decides there
                t.check(min(per_worker) >= 10, f"{mode}: spread over workers", per_worker)


@t.test
def help_documents_every_flag_with_default():
    r = run([WHARFD, "--help"])
    t.check(r.returncode == 0, "exit 0")
    for flag in ("--listen", "--workers", "--dispatch", "--mode", "--max-message",
                 "--max-output", "--max-conns", "--idle-timeout", "--shutdown-timeout",
                 "--backlog", "--stats-interval", "--log-level", "--version"):
        t.check(flag in r.stdout, f"--help mentions {flag}")
    t.check(r.stdout.count("[default:") >= 12, "defaults shown", r.stdout.count("[default:"))
    v = run([WHARFD, "--version"])
    t.check(v.returncode == 0 and "epoll" in v.stdout, "--version names the backends", v.stdout)


@t.test
def print_defaults_fed_back_is_no_config():
    """--print-defaults is a config file: fed back with --config it starts a server with
    the settings of one started with no config at all."""
    r = run([WHARFD, "--print-defaults"])
    t.check(r.returncode == 0 and r.stderr == "", "exit 0, nothing on stderr", r.stderr)
    names = [ln.split("=")[0].strip("# ") for ln in r.stdout.splitlines() if "=" in ln]
    h = run([WHARFD, "--help"]).stdout
    for n in names:
        t.check(f"--{n} " in h, f"{n} is a flag", n)
    t.check(names.count("listen") == 2 and "backlog" in names and "idle-timeout" in names,
            "every setting, listen twice", names)
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(r.stdout)
        f.flush()
        with Server("http") as plain, Server("http", extra=["--config", f.name]) as conf:
            a, b = plain.stats()["config"], conf.stats()["config"]
    t.check(a.pop("listen") != b.pop("listen"), "listeners from the flags (ports differ)")
    t.check(a == b, "same settings", {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)})


@t.test
def bad_flags_exit_2_with_one_line():
    for args in (["--workers", "0"], ["--mode", "shout"], ["--listen", "ftp://1.2.3.4:1"],
                 ["--listen", "127.0.0.1:9"], ["--idle-timeout", "soon"], ["--bogus"],
                 ["--max-message", "12Q"], ["extra-arg"]):
        r = run([WHARFD] + args)
        lines = r.stderr.strip().splitlines()
        t.check(r.returncode == 2, f"{args}: exit 2", r.returncode)
        t.check(len(lines) == 1 and lines[0].startswith("wharfd: "), f"{args}: one line",
                r.stderr)


@t.test
def unknown_listener_modifier_exit_2_with_one_line():
    """SCHEME[+MODIFIER]://HOST:PORT: a modifier wharfd does not know is named, with the
    known ones, on the one line."""
    for text, says in (("http+gzip://127.0.0.1:0", "unknown modifier 'gzip' (known: proxy)"),
                       ("http+://127.0.0.1:0", "empty modifier after '+' (known: proxy)"),
                       ("http+proxy+proxy://127.0.0.1:0", "modifier 'proxy' is given twice")):
        r = run([WHARFD, "--listen", text], timeout=10)
        t.check(r.returncode == 2, f"{text}: exit 2", (r.returncode, r.stderr))
        t.check(r.stderr.strip() == f"wharfd: --listen: '{text}': {says}", f"{text}: one line",
                r.stderr)


@t.test
def abbreviated_flags_are_refused():
    """getopt_long would take "--work 2" for --workers 2; wharfd wants names in full."""
    quiet = ["--listen", "raw://127.0.0.1:0"]  # should a broken parser let it start
    for args, typed in ((quiet + ["--work", "2"], "--work"), (quiet + ["--log-l=warn"], "--log-l"),
                        (["--listen", "raw://127.0.0.1:0", "--idle", "5s"], "--idle")):
        r = run([WHARFD] + args, timeout=10)
        t.check(r.returncode == 2, f"{args}: exit 2", (r.returncode, r.stderr))
        t.check(r.stderr.strip() == f"wharfd: unknown option '{typed}' (abbreviations are "
                "not accepted)", f"{args}: one clear line", r.stderr)


@t.test
def bind_failure_is_one_clear_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run([WHARFD, "--listen", f"raw://127.0.0.1:{port}"], timeout=10)
        t.check(r.returncode == 1, "exit 1", r.returncode)
        t.check("cannot bind 127.0.0.1:%d" % port in r.stderr, "says which address", r.stderr)


t.main()
