"""What the cluster's figures rest on, measured: tests/cluster/run noise cost profile.

noise: one steady HTTP run (the crash's rate) cut into consecutive windows with no event
in them: how far p99 moves by itself from one window to the next, first with every
process where the scheduler puts it, then with HAProxy and the backends on CPU 0 and
the client hosts on CPU 1 (taskset). The crash's after/before ratio reads against this.

cost: where CPU per request goes in the namespaces. (1) TIME_WAIT: a new connection per
request, as fast as the clients go, then who holds TIME_WAIT (HAProxy's side facing the
clients, its side facing the backends, the backends) and what the balancer's port range
and tcp_tw_reuse make of it. (2) One extra wharfd on backend1, no HAProxy, the same
load over loopback and over the bridge (veth, bridge, veth), with the bridge handing
frames to iptables (br_netfilter's bridge-nf-call-*, on where the module is loaded) and
without: µs of wharfd CPU and wake-ups (voluntary context switches) per request, at a
fixed rate and as fast as one client goes. (3) Through HAProxy, bridge-nf on and off.
(4) HAProxy with nbthread 2 against 1. Then whether anything in the namespaces tracked
connections (nf_conntrack_count).

profile: perf record -a -g under keep-alive load through HAProxy, bridge-nf on and off:
where the machine's samples went, by process and by kind of kernel symbol."""

import os
import subprocess
import time

from wharfkit.proc import stop as proc_stop
from wharfkit.sampler import cpu_seconds
from wharfkit.server import Wharfd

from cluster import BACKENDS, CLIENTS, FRAME_PORT, FRONT_FRAME, FRONT_HTTP, HAPROXY_STATS, \
    HTTP_PORT, ADMIN_PORT
from load import http_load, window
from scenarios import _at, _ran, _sum, _url, machine_cpu

PROBE_LO, PROBE = 8090, 8091  # the extra wharfd's loopback and bridge listeners


def _pin(pids, cpu):
    """Every thread of pids on cpu (taskset -a -p)."""
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                       capture_output=True, timeout=10)


def noise(c, check, size, n=6):
    """p99 per window over n consecutive windows of one steady run: free, then pinned."""
    w, out = size.window, {}
    for label in ("free", "pinned"):
        if label == "pinned":
            _pin([c.haproxy.pid] + [s.pid for s in c.servers.values()], 0)
        logs = [f"{c.dir}/noise-{label}-{h}.hlog" for h in CLIENTS]
        start = time.time() + 1.0
        pre = ["taskset", "-c", "1"] if label == "pinned" else []
        runs = [http_load(lambda cmd, h=h, **kw: c.popen(h, pre + cmd, **kw), _url(c), c.dir,
                          size.crash_rate, size.conns, int(3 + n * w), wharf=c.wharf,
                          hdr_log=log, start_at=start) for h, log in zip(CLIENTS, logs)]
        busy = []
        for k in range(n + 1):
            _at(start + 1 + k * w)
            busy.append(machine_cpu())
        res = [r.result() for r in runs]
        _ran(check, res, f"noise ({label})")
        wins = [window(logs, start + 1 + k * w, start + 1 + (k + 1) * w) for k in range(n)]
        p99 = [x["p99_ms"] for x in wins if x]
        out[f"{label}_p99_ms"] = " ".join(f"{p:g}" for p in p99)
        out[f"{label}_counts"] = " ".join(str(x["count"]) for x in wins if x)
        out[f"{label}_machine_busy"] = " ".join(
            f"{(b[0] - a[0]) / max(1, b[1] - a[1]):.2f}" for a, b in zip(busy, busy[1:]))
        out[f"{label}_p99_max_over_min"] = round(max(p99) / min(p99), 2) if p99 else None
        out[f"{label}_failed"] = _sum(res, "failed")
    out["window_s"], out["rate_per_s"] = w, size.crash_rate * len(CLIENTS)
    return out


def _ctx(pid):
    """Voluntary context switches (sleeps, so wake-ups) of every thread of pid."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                n += int(next(ln for ln in f
                              if ln.startswith("voluntary_ctxt_switches")).split()[1])
        except (OSError, StopIteration):
            pass
    return n


def _measure(groups, runs):
    """Requests answered by runs, their rate, and per request: µs of CPU of each group
    of processes ({name: [pids]}: '<name>_us'), of the whole machine ('machine_us',
    neighbours included, softirq work charged to no process too), and wake-ups
    (voluntary context switches) of the first group's first process."""
    first = next(iter(groups.values()))[0]
    c0 = {g: cpu_seconds(p) for g, p in groups.items()}
    v0, m0, t0 = _ctx(first), machine_cpu(), time.monotonic()
    res = [r.result() for r in runs]
    c1 = {g: cpu_seconds(p) for g, p in groups.items()}
    v1, m1, dt = _ctx(first), machine_cpu(), time.monotonic() - t0
    n = max(1, _sum(res, "requests"))
    fig = {"rate": round(_sum(res, "rate")), "failed": _sum(res, "failed"),
           "machine_us": round((m1[0] - m0[0]) / os.sysconf("SC_CLK_TCK") / n * 1e6, 1),
           "wakeups": round((v1 - v0) / n, 2)}
    for g in groups:
        fig[f"{g}_us"] = round((c1[g] - c0[g]) / n * 1e6, 1)
        fig[f"{g}_busy"] = round((c1[g] - c0[g]) / dt, 2)
    return res, fig


def _put(out, label, figures):
    out.update({f"{label}_{k}": v for k, v in figures.items()})


def time_wait(c, check, size):
    """A new connection per request through HAProxy, as fast as the clients go: TIME_WAIT
    per side afterwards, and the balancer's settings that decide what it costs."""
    bal = c.ns("balancer")
    front = (FRONT_HTTP, FRONT_FRAME, HAPROXY_STATS)
    own = (HTTP_PORT, FRAME_PORT, ADMIN_PORT)
    t0, k0 = bal.nstat(), [c.ns(b).nstat() for b in BACKENDS]
    runs = [http_load(c.popener(h), _url(c), c.dir, 0, size.conns, size.seconds, close=True,
                      wharf=c.wharf) for h in CLIENTS]
    res = [r.result() for r in runs]
    _ran(check, res, "time_wait")
    t1, k1 = bal.nstat(), [c.ns(b).nstat() for b in BACKENDS]
    bal_tw = c.tcp_states("balancer", front)
    out = {"conns": _sum(res, "requests"), "conns_per_s": round(_sum(res, "rate")),
           "seconds": size.seconds, "failed": _sum(res, "failed"),
           "tw_haproxy_front": bal_tw.get("srv:TIME-WAIT", 0),
           "tw_haproxy_to_backends": bal_tw.get("cli:TIME-WAIT", 0),
           "tw_backends": sum(c.tcp_states(x, own).get("srv:TIME-WAIT", 0) for x in BACKENDS),
           "tw_clients": sum(c.tcp_states(h, ()).get("TIME-WAIT", 0) for h in CLIENTS)}
    # TcpOutRsts: connections HAProxy ended with a reset (no TIME_WAIT on either side)
    for k in ("TcpExtTWRecycled", "TcpExtTCPTimeWaitOverflow", "TcpActiveOpens",
              "TcpOutRsts"):
        out[f"haproxy_{k}"] = t1.get(k, 0) - t0.get(k, 0)
    for k in ("TcpEstabResets", "TcpPassiveOpens"):
        out[f"backends_{k}"] = sum(y.get(k, 0) - x.get(k, 0) for x, y in zip(k0, k1))
    for k in ("net.ipv4.tcp_tw_reuse", "net.ipv4.ip_local_port_range",
              "net.ipv4.tcp_max_tw_buckets"):
        out[f"balancer_{k.split('.')[-1]}"] = " ".join(bal.get(k).split())
    return out


def direct(c, check, size, rate=4000):
    """The extra wharfd on backend1: loopback against bridge, bridge-nf on and off."""
    a, out = c.addr("backend1"), {}
    extra = [] if c.backend == "auto" else ["--backend", c.backend]
    s = Wharfd(binary_path=c.wharfd, workers=1, extra=extra, prefix=c.ns("backend1").ex(),
               listen=[f"http://127.0.0.1:{PROBE_LO}", f"http://{a}:{PROBE}"],
               log_path=f"{c.dir}/probe.log").start()
    try:
        for r in (rate, 0):
            for label, host, url, nf in (
                    ("loopback", "backend1", f"http://127.0.0.1:{PROBE_LO}/", None),
                    ("bridge_nf_on", "client1", f"http://{a}:{PROBE}/", True),
                    ("bridge_nf_off", "client1", f"http://{a}:{PROBE}/", False)):
                if nf is not None and not c.bridge_nf(nf) and nf:
                    continue  # no br_netfilter: 'on' is the same as 'off'
                run = http_load(c.popener(host), url, c.dir, r, 2 * size.conns, size.seconds,
                                wharf=c.wharf)
                res, fig = _measure({"wharfd": [s.pid]}, [run])
                _ran(check, res, f"direct {label}")
                _put(out, f"{label}_{'max' if r == 0 else r}", fig)
    finally:
        s.stop(5)
        c.bridge_nf(False)
    return out


def through_haproxy(c, check, size):
    """Keep-alive and close, as fast as the clients go, through HAProxy: bridge-nf on and
    off (nbthread 1), then nbthread 1 and 2 alternating. µs per request of HAProxy and of
    the three wharfd, and their busy fractions (cores)."""
    out = {}
    # nbthread 1 and 2 alternate, twice: neighbours' load moves between runs
    for label, nf, threads, close in (("nf_on_keepalive", True, 1, False),
                                      ("keepalive", False, 1, False),
                                      ("nbthread2_keepalive", False, 2, False),
                                      ("close", False, 1, True),
                                      ("nbthread2_close", False, 2, True),
                                      ("keepalive_again", False, 1, False),
                                      ("nbthread2_keepalive_again", False, 2, False),
                                      ("close_again", False, 1, True),
                                      ("nbthread2_close_again", False, 2, True)):
        if not c.bridge_nf(nf) and nf:
            continue
        if threads != c.nbthread:
            c.restart_haproxy(threads)
        runs = [http_load(c.popener(h), _url(c), c.dir, 0, size.conns, size.seconds,
                          close=close, wharf=c.wharf) for h in CLIENTS]
        res, fig = _measure({"haproxy": [c.haproxy.pid],
                             "wharfd": [s.pid for s in c.servers.values()]}, runs)
        _ran(check, res, label)
        _put(out, label, fig)
    c.bridge_nf(False)
    return out


def conntrack(c):
    """Connections tracked in any of the namespaces (nf_conntrack_count, per namespace;
    absent: nf_conntrack not loaded)."""
    key = "net.netfilter.nf_conntrack_count"
    nss = [c.topo.hub] + [c.ns(h) for h in c.topo.hosts]
    if not nss[0].has(key):
        return {"conntrack": "nf_conntrack not loaded"}
    return {"conntrack_entries": sum(int(ns.get(key)) for ns in nss)}


def cost(c, check, size):
    out = {"br_netfilter": "loaded" if c.bridge_nf(False) else "not loaded"}
    _put(out, "tw", time_wait(c, check, size))
    _put(out, "direct", direct(c, check, size))
    _put(out, "haproxy", through_haproxy(c, check, size))
    out.update(conntrack(c))
    return out



# perf's flat profile, by what the symbol belongs to (the first prefix that matches)
KINDS = (("br_netfilter", ("br_nf_", "nf_bridge", "brnf_", "br_validate_ipv4",
                           "setup_pre_routing", "br_parse_ip_options")),
         ("netfilter", ("nf_", "__nf_", "nft_", "ipt_", "ipv4_conntrack", "ipv4_confirm")),
         ("bridge", ("br_", "__br_")),
         ("veth", ("veth_", "__veth")),
         ("idle", ("default_idle", "pv_native_safe_halt", "native_safe_halt", "cpuidle",
                   "do_idle", "arch_cpu_idle", "acpi_idle", "cpu_idle")))


def _perf(seconds, path):
    """perf record -a -g for seconds into path: the Popen (stopped by PID at the end)."""
    return subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o", path, "--",
                             "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def _report(path, sort):
    """[(percent, name)] from perf report's flat view sorted by sort (sym, comm)."""
    r = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children", "-g", "none",
                        "--sort", sort, "--percent-limit", "0.2"], capture_output=True,
                       text=True, timeout=120)
    rows = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0].endswith("%") and not line.startswith("#"):
            rows.append((float(f[0][:-1]), f[-1]))
    return rows


def profile(c, check, size):
    """perf record -a -g while both client hosts run keep-alive through HAProxy as fast as
    they go, bridge-nf on, then off: samples by process and by kind of kernel symbol, and
    the top symbols (the whole machine: neighbours' work shows as other processes)."""
    out = {}
    for label, nf in (("nf_on", True), ("nf_off", False)):
        if not c.bridge_nf(nf) and nf:
            continue
        path = f"{c.dir}/perf-{label}.data"
        runs = [http_load(c.popener(h), _url(c), c.dir, 0, size.conns, size.seconds + 2,
                          wharf=c.wharf) for h in CLIENTS]
        time.sleep(1)
        p = _perf(size.seconds, path)
        try:
            p.wait(size.seconds + 30)
        finally:
            proc_stop(p)
        res = [r.result() for r in runs]
        _ran(check, res, f"profile {label}")
        out[f"{label}_rate"] = round(_sum(res, "rate"))
        by_comm = _report(path, "comm")
        out[f"{label}_by_process"] = " ".join(f"{n}:{pc:g}" for pc, n in by_comm[:8])
        syms = _report(path, "sym")
        kinds = {k: 0.0 for k, _ in KINDS}
        for pc, name in syms:
            for k, prefixes in KINDS:
                if name.startswith(prefixes):
                    kinds[k] += pc
                    break
        out.update({f"{label}_{k}_pct": round(v, 1) for k, v in kinds.items()})
        out[f"{label}_top"] = " ".join(f"{n}:{pc:g}" for pc, n in syms[:15])
    c.bridge_nf(False)
    return out
