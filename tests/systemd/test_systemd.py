"""wharfd as a systemd service, tested without systemd as PID 1: the notify protocol
on our own datagram socket, socket activation through systemd-socket-activate, reload,
the configuration file, journald logging, --user, the unit files and make install."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from wharfkit.harness import (BUILD, ROOT, WHARFD, Server, Suite, frame, free_port,
                     read_frame, recv_exact, recv_until_close, run, wait_until)

t = Suite(__file__)


class Notify:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"wharf-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.dir = tempfile.mkdtemp()
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(10)

    def next(self, timeout=10):
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def expect(self, prefix, timeout=10, skip=()):
        """The next message, skipping those starting with any of skip."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next(max(0.05, deadline - time.monotonic()))
            if any(msg.startswith(s) for s in skip):
                continue
            t.check(msg.startswith(prefix), f"expected {prefix!r}", msg)
            return msg

    def drain(self, seconds):
        out, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                out.append(self.next(max(0.01, deadline - time.monotonic())))
            except socket.timeout:
                break
        return out

    def close(self):
        self.sock.close()


def write_conf(path, text):
    with open(path, "w") as f:
        f.write(text)


def spawn(args, env=None, **kw):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **(env or {})), **kw)


@t.test
def notify_sequence_ready_status_reload_stopping():
    n = Notify()
    port = free_port()
    conf = os.path.join(n.dir, "wharfd.conf")
    write_conf(conf, f"listen = frame://127.0.0.1:{port}\nmode = upper\n")
    p = spawn([WHARFD, "--config", conf], env={"NOTIFY_SOCKET": n.env})
    try:
        ready = n.expect("READY=1")
        # READY=1 promises the ports accept: connect at once, no retry.
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        t.check(f"MAINPID={p.pid}" in ready, "MAINPID sent", ready)
        t.check(re.match(r"STATUS=\d+ connections, \d+ requests/s", n.expect("STATUS=")),
                "a STATUS line follows")
        c.sendall(frame(b"before"))
        t.check(read_frame(c) == b"BEFORE", "upper before reload")
        write_conf(conf, f"listen = frame://127.0.0.1:{port}\nmode = echo\n")
        p.send_signal(signal.SIGHUP)
        reloading = n.expect("RELOADING=1", skip=("STATUS=",))
        usec = int(re.search(r"MONOTONIC_USEC=(\d+)", reloading).group(1))
        t.check(abs(usec - time.monotonic_ns() // 1000) < 5_000_000, "MONOTONIC_USEC is now",
                usec)
        n.expect("READY=1", skip=("STATUS=",))
        c.sendall(frame(b"after"))
        t.check(read_frame(c) == b"after", "the same connection now gets --mode echo")
        p.send_signal(signal.SIGTERM)
        stopping = n.expect("STOPPING=1", skip=("STATUS=",))
        t.check("STATUS=draining" in stopping, "says it drains", stopping)
        c.close()
        t.check(p.wait(15) == 0, "exit 0")
    finally:
        if p.poll() is None:
            p.kill()
        n.close()


@t.test
def notify_status_refreshes_every_few_seconds():
    n = Notify()
    with Server("frame", env={"NOTIFY_SOCKET": n.env}):
        n.expect("READY=1")
        msgs = n.drain(6.5)
        statuses = [m for m in msgs if m.startswith("STATUS=")]
        t.check(len(statuses) >= 2, "STATUS at start and again within 6 s", msgs)
    n.close()


@t.test
def notify_to_an_abstract_socket():
    n = Notify(abstract=True)
    with Server("frame", env={"NOTIFY_SOCKET": n.env}) as s:
        n.expect("READY=1")
        t.check(s.proc.poll() is None, "running")
    n.close()


@t.test
def bad_notify_socket_is_a_clear_error():
    r = subprocess.run([WHARFD, "--listen", f"raw://127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, NOTIFY_SOCKET="relative/path"))
    t.check(r.returncode == 1 and "NOTIFY_SOCKET" in r.stderr, "exit 1 naming it", r.stderr)


@t.test
def watchdog_pings_while_workers_live_and_stop_when_one_is_stuck():
    n = Notify()
    env = {"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "400000", "WHARFD_TEST_HOOKS": "1"}
    with Server("http", workers=1, env=env) as s:
        n.expect("READY=1")
        msgs = n.drain(1.3)
        pings = sum(m == "WATCHDOG=1" for m in msgs)
        t.check(pings >= 4, "a ping every 200 ms", msgs)
        # Block the only worker for 1.5 s: its loop stops, so the pings must stop.
        staller = socket.create_connection(("127.0.0.1", s.port["http"]))
        staller.sendall(b"GET /__test/stall?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.45)  # let a ping that was already due go by, then forget it
        n.drain(0.01)
        during = [m for m in n.drain(0.9) if m == "WATCHDOG=1"]
        t.check(not during, "no ping while the worker is stuck", during)
        t.check(b"stalled" in staller.recv(4096), "the stall request completes")
        staller.close()
        after = [m for m in n.drain(1.0) if m == "WATCHDOG=1"]
        t.check(len(after) >= 2, "pings resume", after)
        t.check("has not run its loop" in s.log(), "the stuck worker is logged")
    n.close()


@t.test
def watchdog_for_another_pid_is_ignored():
    n = Notify()
    env = {"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
    with Server("frame", env=env):
        n.expect("READY=1")
        msgs = n.drain(0.8)
        t.check("WATCHDOG=1" not in msgs, "no pings", msgs)
    n.close()


@t.test
def reload_applies_limits_and_timeouts_keeps_connections():
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "wharfd.conf")
    write_conf(conf, "idle-timeout = 60s\nmax-message = 1M\nlog-level = info\n")
    with Server("frame", "http", extra=["--config", conf]) as s:
        held = s.connect("frame")
        held.sendall(frame(b"x"))
        read_frame(held)
        write_conf(conf, "idle-timeout = 1s\nmax-message = 16\nlog-level = info\n")
        s.signal(signal.SIGHUP)
        wait_until(lambda: "reloaded" in s.log(), 5)
        st = s.stats()
        t.check(st["config"]["max_message"] == 16 and st["config"]["idle_timeout_ms"] == 1000,
                "/stats shows the new settings", st["config"])
        held.sendall(frame(b"0123456789abcdefXYZ"))
        t.check(recv_until_close(held) == b"", "new --max-message applies to an old connection")
        c = s.connect("frame")
        c.sendall(frame(b"y"))
        read_frame(c)
        t0 = time.monotonic()
        t.check(recv_until_close(c) == b"", "new --idle-timeout closes")
        t.check(time.monotonic() - t0 < 3, "after about 1 s", time.monotonic() - t0)
        c.close()
        held.close()
        # A broken file keeps the running settings, and says why.
        write_conf(conf, "idle-timeout = soon\n")
        s.signal(signal.SIGHUP)
        wait_until(lambda: "reload failed" in s.log(), 5)
        t.check(f"{conf}:1: idle-timeout" in s.log(), "names file, line and setting",
                s.log()[-400:])
        t.check(s.stats()["config"]["idle_timeout_ms"] == 1000, "running settings kept")
        # A setting that needs a restart is reported, not applied.
        write_conf(conf, "workers = 7\nidle-timeout = 1s\n")
        s.signal(signal.SIGHUP)
        wait_until(lambda: "needs a restart" in s.log(), 5)
        t.check("'workers' changed" in s.log(), "restart-only change named")


@t.test
def config_file_settings_and_flag_precedence():
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "wharfd.conf")
    p1, p2 = free_port(), free_port()
    write_conf(conf, f"# comment\n\nlisten = line://127.0.0.1:{p1}\nmode = echo\n"
                     f"idle-timeout = 5s\n")
    p = spawn([WHARFD, "--config", conf, "--mode", "upper"])
    try:
        c = None
        wait_until(lambda: subprocess.run(["ss", "-Hltn", f"sport = :{p1}"], capture_output=True,
                                          text=True).stdout.strip() != "", 10)
        c = socket.create_connection(("127.0.0.1", p1), timeout=5)
        c.sendall(b"mixed Case\n")
        t.check(recv_exact(c, 11) == b"MIXED CASE\n", "file's listener, flag's mode wins")
        c.close()
    finally:
        p.terminate()
        p.wait(10)
    # --listen on the command line replaces the file's listeners
    p = spawn([WHARFD, "--config", conf, "--listen", f"raw://127.0.0.1:{p2}"])
    try:
        wait_until(lambda: subprocess.run(["ss", "-Hltn", f"sport = :{p2}"], capture_output=True,
                                          text=True).stdout.strip() != "", 10)
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{p1}"], capture_output=True,
                                   text=True).stdout.strip()
        t.check(listening == "", "the file's listener is not opened", listening)
    finally:
        p.terminate()
        p.wait(10)
    write_conf(conf, "listen = raw://127.0.0.1:1\nbogus = 1\n")
    r = run([WHARFD, "--config", conf])
    t.check(r.returncode == 2 and f"{conf}:2: unknown setting 'bogus'" in r.stderr,
            "unknown setting: exit 2, file and line", r.stderr)
    r = run([WHARFD, "--config", os.path.join(d, "missing.conf")])
    t.check(r.returncode == 2 and "cannot read" in r.stderr, "missing file: exit 2", r.stderr)


def socket_activate(listens, names, extra_env=None):
    args = ["systemd-socket-activate"]
    for a in listens:
        args += ["-l", a]
    args += [f"--fdname={':'.join(names)}"]
    for k, v in (extra_env or {}).items():
        args += ["-E", f"{k}={v}"]
    return spawn(args + [WHARFD, "--workers", "1"])


@t.test
def socket_activation_one_socket_client_before_start():
    port = free_port()
    p = socket_activate([f"127.0.0.1:{port}"], ["raw"])
    try:
        c = wait_until(lambda: _try_connect(port), 10)
        t.check(c, "systemd-socket-activate listens")
        # wharfd is not running yet: it starts on this first connection.
        c.sendall(b"early bird")
        c.settimeout(10)
        t.check(recv_exact(c, 10) == b"EARLY BIRD", "served by the activated wharfd")
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=15)[0].decode()
    t.check("from systemd" in out, "wharfd says it uses systemd's sockets", out[-600:])


def _try_connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None


@t.test
def socket_activation_several_named_sockets():
    raw, http, fr = free_port(), free_port(), free_port()
    p = socket_activate([f"127.0.0.1:{raw}", f"127.0.0.1:{http}", f"127.0.0.1:{fr}"],
                        ["raw", "http", "frame"])
    try:
        c = wait_until(lambda: _try_connect(fr), 10)
        c.sendall(frame(b"framed"))
        c.settimeout(10)
        t.check(read_frame(c) == b"FRAMED", "frame socket speaks frame")
        c.close()
        h = wait_until(lambda: _try_connect(http), 10)
        h.sendall(b"GET / HTTP/1.0\r\n\r\n")
        t.check(recv_until_close(h).endswith(b"Hello, World!"), "http socket speaks http")
        h.close()
        r = wait_until(lambda: _try_connect(raw), 10)
        r.sendall(b"abc")
        t.check(recv_exact(r, 3) == b"ABC", "raw socket speaks raw")
        r.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=15)


@t.test
def socket_activation_bad_environment_is_a_clear_error():
    port = free_port()
    p = socket_activate([f"127.0.0.1:{port}"], ["gopher"])
    c = wait_until(lambda: _try_connect(port), 10)
    try:
        out = p.communicate(timeout=10)[0].decode() if c and not c.close() else ""
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode()
    t.check("named 'gopher'" in out, "unknown protocol name is explained", out[-500:])
    # fd 3 that is not a socket
    with open("/etc/hostname") as f3:
        r = subprocess.run(["sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS=1 exec "{WHARFD}" 3<&{f3.fileno()}'],
                           capture_output=True, text=True, timeout=10, pass_fds=(f3.fileno(),))
    t.check(r.returncode == 1 and "not a socket" in r.stderr, "fd 3 not a socket: exit 1",
            (r.returncode, r.stderr))


@t.test
def journald_stream_gets_syslog_priorities():
    with tempfile.TemporaryFile() as log:
        st = os.fstat(log.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        p = subprocess.Popen([WHARFD, "--listen", f"raw://127.0.0.1:{free_port()}"],
                             stdout=subprocess.DEVNULL, stderr=log, env=env)
        time.sleep(0.5)
        p.terminate()
        p.wait(10)
        log.seek(0)
        lines = log.read().decode().splitlines()
    t.check(lines and all(re.match(r"<[3467]>(debug|info|warn|error): ", x) for x in lines),
            "every line starts with <N>level:", lines[:3])
    t.check(not any(re.search(r"\d{4}-\d\d-\d\dT", x) for x in lines), "no timestamps", lines[:3])


@t.test
def user_flag_drops_root_after_binding():
    if os.geteuid() != 0:
        return
    nobody = int(run(["id", "-u", "nobody"]).stdout)

    def uids(pid):
        with open(f"/proc/{pid}/status") as f:
            return [int(u) for u in [x for x in f if x.startswith("Uid:")][0].split()[1:]]
    with Server("raw", extra=["--user", "nobody"]) as s:
        # The port accepts (in the kernel) as soon as it listens, a moment before wharfd
        # drops root and starts the threads that will serve it: wait for the drop.
        wait_until(lambda: all(u == nobody for u in uids(s.pid)), 5)
        t.check(all(u == nobody for u in uids(s.pid)), "every uid is nobody's", uids(s.pid))
        c = s.connect()
        c.sendall(b"still")
        t.check(recv_exact(c, 5) == b"STILL", "serves after dropping")
        c.close()
    r = run([WHARFD, "--listen", f"raw://127.0.0.1:{free_port()}", "--user", "no-such-user-x"])
    t.check(r.returncode == 1 and "no such user" in r.stderr, "unknown user: exit 1", r.stderr)


def make_install(prefix, destdir=""):
    args = ["make", "-C", ROOT, "--no-print-directory", "install", f"BUILD={BUILD}",
            f"PREFIX={prefix}"]
    if destdir:
        args.append(f"DESTDIR={destdir}")
    else:
        args.append(f"SYSCONFDIR={prefix}/etc")
    return run(args, timeout=300)


@t.test
def make_install_puts_every_file_in_place():
    d = tempfile.mkdtemp()
    r = make_install("/usr/local", destdir=d)
    t.check(r.returncode == 0, "make install", r.stderr[-500:])
    for path in ("usr/local/bin/wharfd", "usr/local/bin/wharf",
                 "usr/local/lib/systemd/system/wharfd.service",
                 "usr/local/lib/systemd/system/wharfd.socket",
                 "usr/local/share/man/man8/wharfd.8", "usr/local/share/man/man1/wharf.1",
                 "etc/wharf/wharfd.conf", "usr/local/sbin/wharf-tune",
                 "usr/local/share/man/man8/wharf-tune.8",
                 "usr/local/share/wharf/profiles/high-concurrency.conf",
                 "etc/tuned/wharf-high-concurrency/tuned.conf"):
        t.check(os.path.exists(os.path.join(d, path)), f"{path} installed")
    t.check(os.access(os.path.join(d, "usr/local/bin/wharfd"), os.X_OK), "executable")
    unit = open(os.path.join(d, "usr/local/lib/systemd/system/wharfd.service")).read()
    t.check("ExecStart=/usr/local/bin/wharfd --config /etc/wharf/wharfd.conf" in unit,
            "ExecStart points at the installed binary")
    # The shipped config file is valid: wharfd -t says so.
    conf = os.path.join(d, "etc/wharf/wharfd.conf")
    r = run([WHARFD, "-t", "--config", conf])
    t.check(r.returncode == 0 and r.stdout == "configuration ok\n",
            "wharfd -t accepts the shipped file", r.stdout + r.stderr)
    with Server("raw", extra=["--config", conf]) as s:
        c = s.connect()
        c.sendall(b"conf")
        t.check(recv_exact(c, 4) == b"CONF", "and serves with it")
        c.close()


@t.test
def unit_reload_checks_the_configuration_first():
    """The installed unit's ExecReload lines, run as systemd would run them, one after the
    other while each succeeds: a broken file stops before the SIGHUP."""
    d = tempfile.mkdtemp()
    prefix = os.path.join(d, "usr")
    r = make_install(prefix)
    t.check(r.returncode == 0, "make install", r.stderr[-500:])
    unit = unit_settings(os.path.join(prefix, "lib/systemd/system/wharfd.service"))
    reload = unit.get(("Service", "ExecReload"), [])
    conf = os.path.join(prefix, "etc/wharf/wharfd.conf")
    t.check(len(reload) == 2 and reload[0] == f"{prefix}/bin/wharfd -t --config {conf}" and
            reload[1] == "/bin/kill -HUP $MAINPID", "check, then SIGHUP", reload)
    check = reload[0].split()
    r = run(check)
    t.check(r.returncode == 0 and r.stdout == "configuration ok\n", "the shipped file passes",
            r.stdout + r.stderr)
    with open(conf, "a") as f:
        f.write("listen = http://192.0.2.1:8080\nmax-conns = lots\n")
    lines = len(open(conf).read().splitlines())
    r = run(check)
    t.check(r.returncode == 1 and r.stdout == "", "a broken file fails the reload", r)
    t.check(f"{conf}:{lines}: max-conns: " in r.stderr and
            f"{conf}:{lines - 1}: listen: 'http://192.0.2.1:8080': address 192.0.2.1 does not "
            "exist on this host" in r.stderr and len(r.stderr.splitlines()) == 2,
            "one line per problem, with the file's line numbers", r.stderr)


def unit_settings(path):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


@t.test
def unit_file_limit_matches_the_high_concurrency_profile():
    unit = unit_settings(os.path.join(ROOT, "server/systemd/wharfd.service"))
    prof = open(os.path.join(ROOT, "tuning/profiles/high-concurrency.conf")).read()
    m = re.search(r"^# nofile: (\d+)$", prof, re.M)
    t.check(m is not None, "the profile states nofile")
    t.check(unit.get(("Service", "LimitNOFILE")) == [m.group(1)],
            "LimitNOFILE= is the profile's nofile", (unit.get(("Service", "LimitNOFILE")), m.group(1)))


@t.test
def unit_waits_for_the_network_and_the_socket_binds_freely():
    unit = unit_settings(os.path.join(ROOT, "server/systemd/wharfd.service"))
    t.check("network-online.target" in " ".join(unit.get(("Unit", "After"), [])),
            "After=network-online.target", unit.get(("Unit", "After")))
    t.check("network-online.target" in " ".join(unit.get(("Unit", "Wants"), [])),
            "Wants=network-online.target", unit.get(("Unit", "Wants")))
    sock = unit_settings(os.path.join(ROOT, "server/systemd/wharfd.socket"))
    t.check(sock.get(("Socket", "FreeBind")) == ["yes"], "FreeBind=yes", sock.get(("Socket", "FreeBind")))


@t.test
def unit_files_verify_clean_and_score_ok():
    d = tempfile.mkdtemp()
    prefix = os.path.join(d, "usr")
    r = make_install(prefix)
    t.check(r.returncode == 0, "make install", r.stderr[-500:])
    unitdir = os.path.join(prefix, "lib/systemd/system")
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    v = subprocess.run(["systemd-analyze", "verify", os.path.join(unitdir, "wharfd.service"),
                        os.path.join(unitdir, "wharfd.socket")],
                       capture_output=True, text=True, env=env, timeout=60)
    t.check(v.returncode == 0, "systemd-analyze verify exits 0", v.stdout + v.stderr)
    t.check((v.stdout + v.stderr).strip() == "", "and prints no warning", v.stdout + v.stderr)
    sec = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                          os.path.join(unitdir, "wharfd.service")],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for wharfd.service: ([\d.]+) (\w+)", sec.stdout)
    t.check(m is not None, "a score", sec.stdout[-300:] + sec.stderr[-300:])
    print(f"# systemd-analyze security: {m.group(1)} {m.group(2)}")
    t.check(m.group(2) in ("OK", "SAFE", "PERFECT"), "OK or better", m.group(0))


t.main()
