"""The four cluster scenarios, each a function of a running Cluster, a `check(cond, what,
detail)` (the test suite's t.check, or run.py's recorder) and a Size (short for make
test, full for tests/cluster/run). Each returns its figures as a flat dict.

Only what the issue asks to hold is checked: the spread's shares, zero failed HTTP
requests, the frames unanswered at a drain within one pipeline window per drained
connection, and that the load ran and HAProxy saw the events at all. Times (detection,
p99 before and after) are measured and reported, never pass/fail: the machine is
shared."""

import signal
import subprocess
import time

from wharfkit import proc
from wharfkit.net import wait_until
from wharfkit.sampler import cpu_seconds

from cluster import BACKENDS, CLIENTS, FRONT_FRAME
from load import frame_load, http_load, window


class Size:
    def __init__(self, seconds, rate, conns, fconns, frate, pipeline=4, idle=500,
                 window=2, crash_rate=1000):
        self.seconds = seconds      # one load phase
        self.rate = rate            # HTTP requests/s per client host
        self.conns = conns          # HTTP connections per client host
        self.fconns = fconns        # frame connections per client host
        self.frate = frate          # frames/s per client host
        self.pipeline = pipeline    # frames in flight per connection at most
        self.idle = idle            # idle connections per client host (scale)
        self.window = window        # seconds in each latency window compared (crash)
        self.crash_rate = crash_rate  # HTTP requests/s per client host in the crash


# crash windows: 2 x 1,000/s x 2 s = 4,000 requests, p99 on the 40 slowest (short);
# 2 x 1,000/s x 10 s = 20,000, on the 200 slowest (full)
SHORT = Size(seconds=3, rate=400, conns=8, fconns=4, frate=200, idle=300, window=2)
FULL = Size(seconds=10, rate=1000, conns=16, fconns=8, frate=500, idle=3000, window=10)


def _url(c):
    return f"http://{c.addr('balancer')}/"


def _http(c, size, seconds, rate=None, **kw):
    rate = size.rate if rate is None else rate
    return [http_load(c.popener(h), _url(c), c.dir, rate, size.conns, seconds, wharf=c.wharf,
                      **kw) for h in CLIENTS]


def _frames(c, size, seconds):
    return [frame_load(c.popener(h), c.addr("balancer"), FRONT_FRAME, c.wharf, size.frate,
                       size.fconns, seconds, size.pipeline) for h in CLIENTS]


def _sum(results, key):
    return sum(r.get(key) or 0 for r in results)


def _worst(results, key):
    return max((r.get(key) or 0) for r in results)


def _ran(check, results, what):
    check(all(r["ran"] for r in results), f"{what}: the load ran on both client hosts",
          [r.get("raw_tail") for r in results if not r["ran"]])


def served(c):
    return {b: c.stats(b)["totals"]["http_2xx"] for b in BACKENDS}


# ---- 1. spread ------------------------------------------------------------------------
def spread(c, check, size):
    """Both client hosts through HAProxy: each backend's share of the requests, and the
    client addresses each backend sees (PROXY v2) while the load runs."""
    before = served(c)
    runs = _http(c, size, size.seconds)
    time.sleep(size.seconds / 2)
    top = {b: c.stats(b)["top_peers"]["top"] for b in BACKENDS}
    peers = {b: [p["addr"] for p in top[b]] for b in BACKENDS}
    res = [r.result() for r in runs]
    _ran(check, res, "spread")
    after = served(c)
    n = {b: after[b] - before[b] for b in BACKENDS}
    total = sum(n.values())
    shares = {b: n[b] / total if total else 0 for b in BACKENDS}
    clients = {c.addr(h) for h in CLIENTS}
    loops = {b: c.stats(b).get("backend") for b in BACKENDS}
    out = {"requests": _sum(res, "requests"), "failed": _sum(res, "failed"),
           "event_loop": " ".join(sorted(set(map(str, loops.values()))))}
    if c.backend != "auto":
        check(set(loops.values()) == {c.backend},
              f"every wharfd runs the event loop asked for ({c.backend})", loops)
    for b in BACKENDS:
        out[f"share_{b}"] = round(shares[b], 4)
        out[f"peers_{b}"] = " ".join(f"{p['addr']}:{p['conns']}" for p in top[b])
        check(abs(shares[b] - 1 / 3) <= 0.1 / 3, f"{b}'s share is within 10% of a third",
              shares)
        check(clients <= set(peers[b]), f"{b}'s top_peers shows both client hosts", peers[b])
        # HAProxy's own health checks (a PROXY header saying LOCAL) count as from the
        # balancer while they last: one per pool (http, frame) at most, never the load
        own = sum(p["conns"] for p in top[b] if p["addr"] == c.addr("balancer"))
        check(own <= 2, f"{b}'s top_peers does not show HAProxy for the clients", top[b])
    return out


# ---- 2. crash -------------------------------------------------------------------------
SETTLE_S = 1.0  # after HAProxy has the victim DOWN: retries done, survivors' pools refilled


def _at(t):
    """Sleep until wall clock time t."""
    time.sleep(max(0.0, t - time.time()))


def machine_cpu():
    """(busy, all) jiffies of the whole machine (/proc/stat): neighbours' work included."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def _busy(c, survivors):
    """What runs now: HAProxy's and the survivors' CPU seconds, the machine's."""
    return (time.time(), cpu_seconds(c.haproxy.pid),
            cpu_seconds([c.servers[b].pid for b in survivors]), machine_cpu())


def _use(a, b):
    """Busy fractions between two _busy() samples: HAProxy (of one core), the survivors
    (of one core), the whole machine (of all its cores)."""
    dt = b[0] - a[0]
    return {"haproxy_busy": round((b[1] - a[1]) / dt, 3),
            "survivors_busy": round((b[2] - a[2]) / dt, 3),
            "machine_busy": round((b[3][0] - a[3][0]) / max(1, b[3][1] - a[3][1]), 3)}


def _windows(out, logs, wins, t_kill):
    """p99 and its sample count per window (name: (t0, t1)), merged over logs; the
    window's span as offsets from the kill."""
    for name, (t0, t1) in wins.items():
        w = window(logs, t0, t1)
        out[f"{name}_window_s"] = (f"{w['from'] - t_kill:+.1f}..{w['to'] - t_kill:+.1f}"
                                   if w else None)
        for k in ("count", "p50_ms", "p99_ms", "max_ms"):
            out[f"{name}_{k}"] = w[k] if w else None


def crash(c, check, size, victim="backend3"):
    """SIGKILL one backend under HTTP and frame load: failed requests (none), how long
    HAProxy took to take it out, the survivors' latency before and after, frame
    connections that failed and where they went.

    One HTTP run per client host spans it all (no new connections at a phase boundary),
    its latency logged every 100 ms, both hosts' intervals aligned (--start-at). Compared,
    from both hosts merged: 'before', the window seconds up to the kill; 'after', as long,
    starting SETTLE_S after HAProxy had the victim DOWN (the kill, detection and retries
    fall in 'event', reported apart); 'control', the window before 'before': its ratio
    to 'before' is what p99 moves by with no event at all, the noise the crash's ratio is
    read against. Each window's request count says how many requests its p99 rests on
    (count / 100 beyond it); the busy fractions say how far from capacity it ran."""
    w = size.window
    survivors = [b for b in BACKENDS if b != victim]
    frames = _frames(c, size, 300)  # stopped by SIGINT at the end
    logs = [f"{c.dir}/crash-{h}.hlog" for h in CLIENTS]
    start = time.time() + 1.0  # connections made before; both hosts measure from here
    http = [http_load(c.popener(h), _url(c), c.dir, size.crash_rate, size.conns, 300,
                      wharf=c.wharf, hdr_log=log, start_at=start)
            for h, log in zip(CLIENTS, logs)]
    try:
        t_ctl = start + 1.0  # a second of load first: pools filled
        _at(t_ctl)
        b0 = _busy(c, survivors)
        _at(t_ctl + 2 * w)
        b1 = _busy(c, survivors)
        on_victim = c.frame_conns(victim)
        t_kill, m0 = time.time(), time.monotonic()
        c.kill(victim)
        out_s = c.time_until("DOWN", victim, m0)
        t_after = t_kill + (out_s if out_s is not None else 15) + SETTLE_S
        _at(t_after)
        a0 = _busy(c, survivors)
        _at(t_after + w)
        a1 = _busy(c, survivors)
        time.sleep(0.3)  # the last interval written
        want = size.fconns * len(CLIENTS)
        wait_until(lambda: sum(c.frame_conns(b) for b in survivors) >= want, size.seconds)
        fconns = {b: c.frame_conns(b) for b in survivors}
    finally:
        for r in http + frames:
            r.stop()
    res, fres = [r.result() for r in http], [r.result() for r in frames]
    _ran(check, res + fres, "the crash")
    out = {"requests": _sum(res, "requests"), "failed": _sum(res, "failed"),
           "rate_per_s": size.crash_rate * len(CLIENTS),
           "out_s": round(out_s, 3) if out_s is not None else None,
           "inter_x_fall_s": c.inter_ms * c.fall / 1000, "settle_s": SETTLE_S,
           "frame_conns_on_victim": on_victim, "frame_failed": _sum(fres, "failed"),
           "frame_reconnects": _sum(fres, "connects") - want,
           "frame_conns_on_survivors": sum(fconns.values())}
    _windows(out, logs, {"control": (t_kill - 2 * w, t_kill - w),
                         "before": (t_kill - w, t_kill), "event": (t_kill, t_after),
                         "after": (t_after, t_after + w)}, t_kill)
    for h, log in zip(CLIENTS, logs):  # per host too
        for name, (t0, t1) in (("before", (t_kill - w, t_kill)),
                               ("after", (t_after, t_after + w))):
            one = window([log], t0, t1)
            out[f"{name}_p99_ms_{h}"] = one["p99_ms"] if one else None
    pc, pb, pa = out["control_p99_ms"], out["before_p99_ms"], out["after_p99_ms"]
    out["p99_ratio_after_before"] = round(pa / pb, 2) if pa and pb else None
    out["p99_ratio_before_control"] = round(pb / pc, 2) if pb and pc else None
    out.update({f"before_{k}": v for k, v in _use(b0, b1).items()})
    out.update({f"after_{k}": v for k, v in _use(a0, a1).items()})
    check(out_s is not None, "HAProxy took the killed backend out", c.states())
    check(out["failed"] == 0, "no HTTP request failed across the crash (retry-on, redispatch)",
          [r.get("raw_tail") for r in res])
    check(on_victim >= 1 and out["frame_reconnects"] >= on_victim and
          out["frame_conns_on_survivors"] == want,
          "the frame connections on the killed backend reconnected to the survivors",
          (out, fconns))
    return out


# ---- 3. rolling restart ---------------------------------------------------------------
def rolling(c, check, size):
    """Every backend in turn: SIGTERM (drains after --drain-delay), start again, wait
    until HAProxy has it UP; under HTTP and frame load the whole time."""
    check(c.drain_delay_ms > c.inter_ms * c.fall, "the drain delay exceeds inter x fall",
          (c.drain_delay_ms, c.inter_ms, c.fall))
    long = 300  # stopped by SIGINT when the restarts are done
    http, frames = _http(c, size, long), _frames(c, size, long)
    time.sleep(1)
    steps, drained = [], 0
    try:
        for b in BACKENDS:
            conns = c.frame_conns(b)
            drained += conns
            t0 = time.monotonic()
            c.servers[b].signal(signal.SIGTERM)
            out_s = c.time_until("DOWN", b, t0)
            code = c.servers[b].wait(30)
            gone = time.monotonic() - t0
            c.start_backend(b)
            t1 = time.monotonic()
            up_s = c.time_until("UP", b, t1)
            steps.append((b, conns, out_s, gone, up_s, code))
            check(out_s is not None and up_s is not None and code == 0,
                  f"{b}: out of the pool, exit 0, back in", steps[-1])
        time.sleep(1)
    finally:
        for r in http + frames:
            r.stop()
    res, fres = [r.result() for r in http], [r.result() for r in frames]
    _ran(check, res + fres, "across the restarts")
    out = {"requests": _sum(res, "requests"), "failed": _sum(res, "failed"),
           "frames": _sum(fres, "requests"), "frames_unanswered": _sum(fres, "closed"),
           "frame_other_errors": _sum(fres, "failed") - _sum(fres, "closed"),
           "drained_frame_conns": drained, "pipeline": size.pipeline,
           "drain_delay_s": c.drain_delay_ms / 1000}
    for b, conns, out_s, gone, up_s, code in steps:
        out[f"{b}_out_s"] = round(out_s, 3) if out_s else None
        out[f"{b}_exited_s"] = round(gone, 3)
        out[f"{b}_up_again_s"] = round(up_s, 3) if up_s else None
    check(out["failed"] == 0, "no HTTP request failed across the restarts",
          [r.get("raw_tail") for r in res])
    check(out["frames_unanswered"] <= size.pipeline * max(drained, 1),
          "frames unanswered at a close: at most one pipeline window per drained connection",
          out)
    check(out["frame_other_errors"] == 0, "no other frame error", out)
    return out


# ---- 4. scale -------------------------------------------------------------------------
def _cpu_run(c, runs):
    h0, w0 = c.cpu()
    res = [r.result() for r in runs]
    h1, w1 = c.cpu()
    n = _sum(res, "requests")
    return res, n, (h1 - h0) / n * 1e6 if n else 0, (w1 - w0) / n * 1e6 if n else 0


def scale(c, check, size):
    """CPU per request (keep-alive) and per request on a new connection, HAProxy's and
    wharfd's (the three together), at the scenarios' modest rate and as fast as the
    clients go (where work is batched: closer to a busy fleet's cost); and memory per
    idle connection. The measured side of the scale table."""
    out, failed = {}, 0
    for label, rate, close in (("keepalive", None, False), ("close", None, True),
                               ("keepalive_max", 0, False), ("close_max", 0, True)):
        res, n, h_us, w_us = _cpu_run(c, _http(c, size, size.seconds, rate=rate, close=close))
        _ran(check, res, label)
        failed += _sum(res, "failed")
        out[f"{label}_rate"] = round(_sum(res, "rate"))
        out[f"{label}_haproxy_us"] = round(h_us, 1)
        out[f"{label}_wharfd_us"] = round(w_us, 1)
    out["failed"] = failed
    out.update(idle(c, check, size))
    return out


def idle(c, check, size):
    """wharf hold through HAProxy's TCP frontend: memory per held connection."""
    h0, w0 = c.rss_kib()
    hold_s = 30
    holds = [c.popen(h, [c.wharf, "hold", "-c", str(size.idle), "-d", f"{hold_s}s",
                            "--connect-rate", "2000",
                            f"frame://{c.addr('balancer')}:{FRONT_FRAME}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL) for h in CLIENTS]
    want = size.idle * len(CLIENTS)
    held = wait_until(lambda: sum(c.frame_conns(b) for b in BACKENDS) >= want, 20)
    time.sleep(0.5)
    h1, w1 = c.rss_kib()
    for p in holds:
        p.send_signal(signal.SIGINT)
    proc.stop(holds, 5)
    check(held, "the idle connections were all held", sum(c.frame_conns(b) for b in BACKENDS))
    return {"idle_conns": want, "haproxy_kib_per_idle_conn": round((h1 - h0) / want, 2),
            "wharfd_kib_per_idle_conn": round((w1 - w0) / want, 2)}


SCENARIOS = {"spread": spread, "crash": crash, "rolling": rolling, "scale": scale}
