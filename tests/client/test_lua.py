"""wharf bench -s: wrk's Lua scripts. Each part of the scripting API is observed where
it acts: the requests a small HTTP server receives (method, path, headers, body), the
figures done() is given against wharf's own report, a Lua error that sends nothing."""

import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import shutil

from clientlib import Suite, Server, WHARF, wharf, wharf_json, addr, totals

t = Suite(__file__)


class Seen(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; records every request; answers 200 with the request body."""
    protocol_version = "HTTP/1.1"
    wbufsize = 65536                 # one write per response (flushed after each)
    disable_nagle_algorithm = True

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with self.server.lock:
            self.server.log.append((self.command, self.path, dict(self.headers), body))
        out = body or b"ok"
        self.send_response(200)
        if self.path == "/authenticate":
            self.send_header("X-Token", "t0k3n")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_HEAD = handle_any

    def log_message(self, *a):
        pass


class LogServer:
    def __enter__(self):
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Seen)
        self.srv.daemon_threads = True
        self.srv.log, self.srv.lock = [], threading.Lock()
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/"
        return self

    @property
    def log(self):
        with self.srv.lock:
            return list(self.srv.log)

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()
        return False


TMP = tempfile.mkdtemp(prefix="wharf-lua-")


def script(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def bench(s, path, *extra, n=40):
    return wharf(["bench", "-c", "2", "-t", "2", "-n", str(n), "-s", path] + list(extra) +
                 [s.url] + (["--"] + ARGS if ARGS else []))


ARGS = []


@t.test
def version_says_lua_is_built_in():
    p = wharf(["--version"])
    t.check("lua" in p.stdout, "--version lists lua", p.stdout)


@t.test
def wrk_table_fields_shape_every_request():
    path = script("fields.lua", 'wrk.method = "POST"\nwrk.path = "/fields?q=1"\n'
                  'wrk.body = "abc"\nwrk.headers["X-Test"] = "yes"\n')
    with LogServer() as s:
        p = bench(s, path)
        log = s.log
    t.check(p.returncode == 0, "exit 0", p.stderr)
    t.check(len(log) == 40, "40 requests seen", len(log))
    t.check(all(m == "POST" and u == "/fields?q=1" and h.get("X-Test") == "yes" and b == b"abc"
                for m, u, h, b in log), "method, path, header and body as set", log[:2])


@t.test
def head_set_by_the_script_reads_bodiless_responses():
    path = script("head.lua", 'wrk.method = "HEAD"\n')
    with Server("http") as s:
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "50", "-s", path,
                                 addr(s, "http") + "/"])
    t.check(rc == 0 and r["requests"]["ok"] == 50 and r["errors"]["total"] == 0,
            "50 HEAD responses, no error", (rc, r.get("errors"), err))


@t.test
def flags_fill_the_wrk_table():
    path = script("show.lua", 'io.stderr:write("T ", wrk.scheme, " ", wrk.host, " ", wrk.port,'
                  ' " ", wrk.method, " ", wrk.path, " ", wrk.headers["X-H"], " ", wrk.body,'
                  ' "\\n")\n')
    with LogServer() as s:
        port = s.url.rsplit(":", 1)[1].strip("/")
        p = wharf(["bench", "-c", "1", "-t", "1", "-n", "5", "-s", path, "-m", "PUT", "-H",
                   "X-H: v", "--body", "B", s.url + "p"])
    t.check(f"T http 127.0.0.1 {port} PUT /p v B" in p.stderr, "wrk.* from the flags", p.stderr)


@t.test
def wrk_format_lookup_connect():
    path = script("fmt.lua", '''
function setup(thread)
   local addrs = wrk.lookup(wrk.host, wrk.port)
   for _, a in ipairs(addrs) do
      if wrk.connect(a) then thread.addr = a end
   end
end
function done(summary, latency, requests)
   io.write(wrk.format("PUT", "/f", {["X-A"] = "1"}, "xyz"))
   io.write("|", tostring(wrk.connect("127.0.0.1:1")), "|")
end
''')
    with LogServer() as s:
        p = bench(s, path, n=4)
    t.check(p.returncode == 0, "exit 0", p.stderr)
    out = p.stdout.split("Client CPU:")[1]
    # (the output is read as text: CRLF arrives as "\n")
    t.check("\nPUT /f HTTP/1.1\n" in out and "\nX-A: 1\n" in out and "\nContent-Length: 3\n"
            in out and "\nHost: 127.0.0.1:" in out and out.split("|")[0].endswith("\n\nxyz"),
            "wrk.format's request", out)
    t.check("|false|" in out, "wrk.connect to a closed port is false", out)


@t.test
def setup_get_set_and_init_args():
    global ARGS
    path = script("setup.lua", '''
local threads = {}
function setup(thread)
   thread:set("x", thread.id * 10)
   thread:set("t", {a = "s", b = true, [print] = 1, f = print})
   table.insert(threads, thread)
end
function init(args) io.stderr:write("ARGS ", table.concat(args, ","), "\\n") end
function done()
   for _, th in ipairs(threads) do
      io.write("X", th:get("x"), th:get("t").a, tostring(th:get("t").b), " ")
   end
end
''')
    ARGS = ["one", "two"]
    try:
        with LogServer() as s:
            p = bench(s, path, n=4)
    finally:
        ARGS = []
    t.check("ARGS one,two" in p.stderr, "init(args) after --", p.stderr)
    t.check("X10strue X20strue" in p.stdout, "thread:get sees thread:set", p.stdout[-300:])


@t.test
def done_figures_equal_the_report():
    path = script("done.lua", '''
function done(s, lat, req)
   io.write(string.format('{"requests":%d,"bytes":%d,"mean":%.3f,"p99":%.3f,"max":%.3f,'
      .. '"status":%d,"connect":%d,"n":%d}\\n', s.requests, s.bytes, lat.mean,
      lat:percentile(99), lat.max, s.errors.status, s.errors.connect, #lat))
end
''')
    with LogServer() as s:
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "2", "-n", "100", "-s", path, s.url])
    t.check(rc == 0, "exit 0", err)
    d = json.loads([l for l in err.splitlines() if l.startswith('{"requests"')][0])
    lat = r["latency"]
    t.check(d["requests"] == r["requests"]["ok"] == 100, "requests", (d, r["requests"]))
    t.check(d["bytes"] == r["bytes"]["in"], "bytes", (d, r["bytes"]))
    t.check(d["status"] == 0 and d["connect"] == 0 and d["n"] >= 1, "errors", d)
    t.check(abs(d["max"] - lat["max_us"]) < 0.01, "max (us)", (d, lat))
    t.check(abs(d["mean"] - lat["mean_us"]) < 0.01, "mean (us)", (d, lat))


@t.test
def lua_error_is_one_line_and_sends_nothing():
    for name, text in (("syntax.lua", "function init(\n"), ("init.lua",
                       'function init(args) error("boom") end\n'),
                       ("setup.lua", 'function setup(t) local x = nil; x.y = 1 end\n')):
        path = script(name, text)
        with LogServer() as s:
            p = bench(s, path)
            log = s.log
        lines = p.stderr.strip().splitlines()
        t.check(p.returncode == 2 and len(lines) == 1 and name in lines[0], f"{name}: one line, "
                "exit 2", (p.returncode, p.stderr))
        t.check(not log, f"{name}: nothing sent", log[:1])


@t.test
def lua_error_during_the_load_is_one_line_and_status_2():
    for fn in ("request", "response", "delay"):
        body = "return wrk.format()" if fn == "request" else "return 0" if fn == "delay" else ""
        path = script(f"late-{fn}.lua", f'''
local n = 0
function {fn}(...)
   n = n + 1
   if n == 3 then error("late {fn}") end
   {body}
end
''')
        with LogServer() as s:
            p = wharf(["bench", "-c", "1", "-t", "1", "-d", "2s", "-s", path, s.url])
            n = len(s.log)
        lines = [l for l in p.stderr.splitlines() if f"late {fn}" in l]
        t.check(p.returncode == 2 and len(lines) == 1 and "requests in" in p.stdout,
                f"{fn}(): one line, the report, status 2", (p.returncode, p.stderr))
        t.check(n <= 4, f"{fn}(): the thread stopped sending", n)


@t.test
def refused_combinations():
    with LogServer() as s:
        p = bench(s, script("delay.lua", "function delay() return 10 end\n"), "-R", "100")
        t.check(p.returncode == 2 and "delay() and -R" in p.stderr, "delay() with -R refused",
                p.stderr)
        p = bench(s, script("bad.lua", 'wrk.method = "G ET"\n'))
        t.check(p.returncode == 2 and "not one well-formed HTTP request" in p.stderr,
                "a malformed request is refused", p.stderr)
        t.check(not s.log, "nothing sent", s.log[:1])
    with LogServer() as s:
        for name, value in (("addr.lua", '"127.0.0.1:99999"'), ("addr-nil.lua", "nil")):
            p = bench(s, script(name, f'function setup(t) t.addr = {value} end\n'))
            lines = p.stderr.strip().splitlines()
            t.check(p.returncode == 2 and len(lines) == 1 and "thread.addr" in lines[0],
                    f"thread.addr = {value}: one line, exit 2", p.stderr)
        t.check(not s.log, "nothing sent", s.log[:1])
    p = wharf(["bench", "-n", "1", "-s", script("e.lua", ""), "raw://127.0.0.1:1"])
    t.check(p.returncode == 2 and "http://" in p.stderr, "-s needs http://", p.stderr)


@t.test
def request_rotates_paths_per_request():
    path = script("rotate.lua", '''
local paths = {"/r1", "/r2", "/r3"}
local i = 0
function request()
   i = i + 1
   return wrk.format(nil, paths[(i - 1) % 3 + 1])
end
''')
    with LogServer() as s:
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "90", "-s", path, s.url])
        log = s.log
    t.check(rc == 0 and r["requests"]["ok"] == 90, "90 requests answered", (rc, err))
    counts = {u: sum(1 for _, x, _, _ in log if x == u) for u in ("/r1", "/r2", "/r3")}
    t.check(counts == {"/r1": 30, "/r2": 30, "/r3": 30}, "each path a third", counts)
    t.check([x for _, x, _, _ in log[:4]] == ["/r1", "/r2", "/r3", "/r1"],
            "in the script's order", log[:4])


@t.test
def pipelined_string_counts_and_times_each_request():
    global ARGS
    path = script("pipe.lua", '''
function init(args)
   local r = {}
   for i = 1, tonumber(args[1]) do r[i] = wrk.format(nil, "/p" .. i) end
   req = table.concat(r)
end
function request() return req end
''')
    ARGS = ["4"]
    try:
        with LogServer() as s:
            p = wharf(["bench", "--json", "-c", "1", "-t", "1", "-n", "40", "-s", path,
                       s.url, "--", "4"])
            rc, r, err = p.returncode, json.loads(p.stdout), p.stderr
            log = s.log
    finally:
        ARGS = []
    t.check(rc == 0 and r["requests"]["ok"] == 40 and r["latency"]["count"] == 40,
            "40 requests, each counted and timed", (rc, r.get("requests"), err))
    t.check(len(log) == 40 and log[3][1] == "/p4" and log[4][1] == "/p1", "seen in order",
            [x for _, x, _, _ in log[:5]])


@t.test
def thread_stop_ends_the_threads_sending():
    path = script("stop.lua", '''
local n = 0
function request()
   n = n + 1
   if n == 5 then wrk.thread:stop() end
   return wrk.format()
end
''')
    with LogServer() as s:
        p = wharf(["bench", "-c", "2", "-t", "2", "-d", "3s", "-s", path, s.url])
        log = s.log
    t.check(p.returncode == 0 and len(log) == 10, "5 requests per thread, then none",
            (p.returncode, len(log), p.stderr))


@t.test
def malformed_request_sent_as_is_with_one_warning():
    path = script("bad.lua", 'function request() return "GARBAGE\\r\\n\\r\\n" end\n')
    with LogServer() as s:
        p = wharf(["bench", "-c", "1", "-t", "1", "-n", "5", "--allow-errors", "-s", path,
                   s.url])
    warn = [l for l in p.stderr.splitlines() if "cannot split" in l]
    t.check(len(warn) == 1, "one warning line", p.stderr)
    t.check(p.returncode in (0, 1) and "requests in" in p.stdout, "a report, no crash",
            (p.returncode, p.stdout[-400:], p.stderr[-400:]))


@t.test
def response_sees_status_headers_body_and_drives_auth():
    path = script("auth.lua", '''
token = nil
path = "/authenticate"
request = function() return wrk.format("POST", path, nil, "b-" .. tostring(token)) end
response = function(status, headers, body)
   if not token and status == 200 then
      token = headers["X-Token"]
      path = "/resource"
      wrk.headers["X-Token"] = token
      io.stderr:write("BODY ", body, "\\n")
   end
end
''')
    with LogServer() as s:
        p = wharf(["bench", "-c", "1", "-t", "1", "-n", "10", "-s", path, s.url])
        log = s.log
    t.check(p.returncode == 0 and len(log) == 10, "10 requests", (p.returncode, p.stderr))
    t.check(log[0][1] == "/authenticate" and "BODY b-nil" in p.stderr, "the first authenticates,"
            " its echoed body seen by response()", (log[0], p.stderr))
    t.check(all(u == "/resource" and h.get("X-Token") == "t0k3n" and b == b"b-t0k3n"
                for _, u, h, b in log[1:]), "then the token on every request", log[1:3])


@t.test
def delay_paces_each_connections_requests():
    path = script("delay.lua", "function delay() return 100 end\n")
    with LogServer() as s:
        p = wharf(["bench", "-c", "1", "-t", "1", "-d", "1s", "-s", path, s.url])
        n = len(s.log)
    # never faster than one per 100 ms (an upper bound: no timing noise can exceed it;
    # a loaded machine may answer only the first within the second)
    t.check(p.returncode == 0 and 1 <= n <= 11, "about 10 requests in 1 s, never more than 11",
            (p.returncode, n, p.stderr))
    # with request(): the first request (made before the load) survives delay()'s call,
    # and a batch of 2 is one request() per delay
    path = script("delay2.lua", "function delay() return 100 end\n"
                  "function request() return wrk.format(nil, '/d1') .. wrk.format(nil, '/d2') end\n")
    with LogServer() as s:
        p = wharf(["bench", "-c", "1", "-t", "1", "-d", "1s", "-s", path, s.url])
        n = len(s.log)
    t.check(p.returncode == 0 and 2 <= n <= 22 and n % 2 == 0, "with request(): whole batches "
            "of 2, one per 100 ms", (p.returncode, n, p.stderr))


def http_requests(before, after):
    """HTTP requests a wharfd answered between two /stats reads, without one of them."""
    return after["messages"] - before["messages"] - 1


ADDRS_LUA = '''
-- wrk's pattern: setup() sends each thread to an address wrk.lookup found
local addrs, n = {}, 0
function setup(thread)
   if #addrs == 0 then
      for _, host in ipairs({"127.0.0.2", "127.0.0.3"}) do
         for _, a in ipairs(wrk.lookup(host, wrk.port)) do
            if wrk.connect(a) then table.insert(addrs, a) end
         end
      end
   end
   n = n + 1
   thread.addr = addrs[n % #addrs + 1]
end
function init(args) io.stderr:write("thread addr: ", tostring(wrk.thread.addr), "\\n") end
'''


@t.test
def setup_sends_each_thread_to_its_own_address():
    path = script("addrs.lua", ADDRS_LUA)
    wrk = shutil.which("wrk")
    with Server("http", host="127.0.0.2") as a:
        port = a.port["http"]
        url = f"http://127.0.0.2:{port}/"
        with Server("http", host="127.0.0.3", ports={"http": port}) as b:
            before = [totals(a), totals(b)]
            rc, r, err = wharf_json(["bench", "-t", "2", "-c", "4", "-n", "100", "-s", path, url])
            after = [totals(a), totals(b)]
            got = [http_requests(x, y) for x, y in zip(before, after)]
            t.check(rc == 0 and r["requests"]["ok"] == 100, "100 answered", (rc, err))
            t.check(got == [50, 50], "each address served its thread's 50 (/stats)", got)
            t.check(f"thread addr: 127.0.0.2:{port}" in err and
                    f"thread addr: 127.0.0.3:{port}" in err, "init() sees wrk.thread.addr", err)
            if wrk:
                before = [totals(a), totals(b)]
                p = subprocess.run([wrk, "-t", "2", "-c", "2", "-d", "1s", "-s", path, url],
                                   capture_output=True, text=True, timeout=30)
                after = [totals(a), totals(b)]
                got = [http_requests(x, y) for x, y in zip(before, after)]
                t.check(p.returncode == 0 and min(got) > 0, "the same script under wrk: both "
                        "addresses served", (p.returncode, got, p.stderr[-300:]))


@t.test
def a_later_larger_batch_is_counted_and_timed_whole():
    path = script("grow.lua", '''
local n = 0
function request()
   n = n + 1
   if n % 2 == 1 then return wrk.format(nil, "/one") end
   return wrk.format(nil, "/three") .. wrk.format(nil, "/three") .. wrk.format(nil, "/three")
end
''')
    with LogServer() as s:
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "40", "-s", path, s.url])
        log = s.log
    t.check(rc == 0 and r["requests"]["ok"] == 40 and r["latency"]["count"] == 40 and
            r["errors"]["total"] == 0, "40 answered, 40 timed, no error",
            (rc, r.get("requests"), r.get("errors"), err))
    paths = [u for _, u, _, _ in log]
    t.check(paths.count("/one") == 10 and paths.count("/three") == 30, "batches of 1 and 3 seen",
            paths[:8])
    path = script("huge.lua", '''
local n = 0
function request()
   n = n + 1
   if n < 3 then return wrk.format() end
   return string.rep(wrk.format(), 4097)
end
''')
    with LogServer() as s:
        p = wharf(["bench", "-c", "1", "-t", "1", "-d", "2s", "-s", path, s.url])
        n = len(s.log)
    lines = [l for l in p.stderr.splitlines() if "more than 4096" in l]
    t.check(p.returncode == 2 and len(lines) == 1 and "requests in" in p.stdout and n == 2,
            "a batch over 4096: one line, status 2, not sent", (p.returncode, n, p.stderr))


PIPE4_LUA = '''
function init(args)
   local r = {}
   for i = 1, 4 do r[i] = wrk.format(nil, "/p" .. i) end
   req = table.concat(r)
end
function request() return req end
'''


@t.test
def rate_sends_batches_at_their_first_slot():
    path = script("pipe4.lua", PIPE4_LUA)
    with LogServer() as s:
        # 10 slots per connection: the last 2 are no whole batch; each batch goes at its
        # first slot, so 40 requests (a batch waiting for 4 slots would never complete)
        rc, r, err = wharf_json(["bench", "-c", "4", "-t", "1", "-n", "40", "-R", "400", "-s",
                                 path, s.url], timeout=20)
        n = len(s.log)
    t.check(rc == 0 and r["requests"]["ok"] == 40 and r["latency"]["count"] == 40 and n == 40,
            "40 sent, answered and timed", (rc, n, r.get("requests"), err))


@t.test
def head_in_a_mix_reads_a_bodiless_response():
    path = script("headmix.lua", '''
local reqs, n, th = {}, 0, nil
function setup(thread) th = thread end
function init(args)
   reqs[1] = wrk.format("GET", "/")
   reqs[2] = wrk.format("HEAD", "/")
   reqs[3] = wrk.format("GET", "/") .. wrk.format("HEAD", "/") .. wrk.format("GET", "/")
end
function request()
   n = n + 1
   return reqs[(n - 1) % 3 + 1]
end
empty, full = 0, 0
function response(status, headers, body)
   if #body == 0 then empty = empty + 1 else full = full + 1 end
end
function done() io.write("BODIES ", th:get("empty"), " ", th:get("full"), "\\n") end
''')
    with Server("http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "50", "-s", path,
                                 addr(s, "http") + "/"])
        got = http_requests(before, totals(s))
    t.check(rc == 0 and r["requests"]["ok"] == 50 and r["errors"]["total"] == 0,
            "50 answered, no error", (rc, r.get("requests"), r.get("errors"), err))
    t.check(got == 50, "the server answered 50 (/stats)", got)
    t.check("BODIES 20 30" in err, "response(): 20 HEADs without a body, 30 GETs with", err)


KIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "lua")
# script, path, arguments after --, what its output must show under both tools
KIT_RUNS = [
    ("json.lua", "/", [], '{"wrk":'),
    ("pipeline.lua", "/", ["8"], '"pipeline":8'),
    ("close.lua", "/", [], '"connection":"close"'),
    ("echo.lua", "/echo", ["1K", "upper"], '"bad_replies":0'),
    ("mix.lua", "/", [], "Non-2xx or 3xx responses:"),
    ("auth.lua", "/", [], "requests in"),
    ("setup.lua", "/", [], "thread 2 made"),
    ("stop.lua", "/", ["50"], "done: "),
    ("addr.lua", "/", [], "thread addr: 127.0.0.1:"),
]


@t.test
def bench_kit_scripts_run_unchanged_under_wrk_and_wharf():
    wrk = shutil.which("wrk")
    tools = [("wharf", [WHARF, "bench"])] + ([("wrk", [wrk])] if wrk else [])
    if not wrk:
        print("  (wrk not installed: wharf only)")
    env = dict(os.environ, WRK_CONNECTIONS="2")
    with Server("http") as s:
        for name, path, args, want in KIT_RUNS:
            for tool, argv in tools:
                cmd = argv + ["-t", "2", "-c", "2", "-d", "1s", "-s", os.path.join(KIT, name),
                              addr(s, "http") + path] + (["--"] + args if args else [])
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
                out = p.stdout + p.stderr
                t.check(p.returncode == 0 and want in out, f"{name} under {tool}",
                        (p.returncode, out[-600:]))
                if want.startswith('"') or want.startswith("{"):
                    who = '"client":"wharf ' if tool == "wharf" else '"client":"wrk"'
                    t.check(who in out, f"{name} under {tool}: the line names it", out[-600:])
                if name == "auth.lua":
                    t.check("Non-2xx" not in out, f"auth.lua under {tool}: authorized", out[-600:])


def lua_built_in():
    return "lua" in wharf(["--version"]).stdout


if __name__ == "__main__":
    if not lua_built_in():
        print("skipped: Lua support is not built in (libluajit-5.1-dev; see wharf --version)")
        print("0 passed, 0 failed")
        sys.exit(0)
    t.main()
