"""GET /status in a real browser: headless Chromium opens the page of a wharfd under a
short load, and what the DOM shows is checked against /stats, with JavaScript (the page
reads /stats every second) and without (the snapshot the server renders).

Every number on the page carries data-k (its path in the /stats JSON, or "=name" for one
the page derives) and data-v (its exact value), so the test reads the DOM, not pixels;
the text people see must be that value, formatted (12.3k, 4.1 MiB).

Under load the window between two /stats reads is wide; once the load is over it is a
few requests, and each run checks the page there too. A stand-in server in front of
wharfd adds a drain phase to /stats (as lame-duck draining reports it) and then stops
answering, for the page's phase badge.

--virtual-time-budget lets --dump-dom see the page after several of its one-second
reads: virtual time jumps over the waits, so they take milliseconds of real time.
--dump-dom reads the DOM with the page's JavaScript, so the run without it drives
Chromium through its DevTools pipe. Chromium runs in a session of its own with a
temporary profile and a time limit; its process group is killed when it returns.
Skipped, saying why, without chromium. The screenshot goes to $WHARF_BUILD/status.png
(STATUS_SCREENSHOT=docs/status.png renews the README's).
"""
import html.parser
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from wharfkit import ROOT, proc
from wharfkit.harness import BUILD, WHARF, Server, Suite

t = Suite(__file__)
CHROMIUM = shutil.which("chromium")
BUDGET = 16 * 1024  # the page, snapshot included, for two workers
SCREENSHOT = os.environ.get("STATUS_SCREENSHOT") or os.path.join(BUILD, "status.png")


def chromium_cmd(profile, *flags):
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-sync", "--disable-background-networking",
            "--disable-component-update", f"--user-data-dir={profile}", *flags]


def chromium(url, *flags, budget_ms=4000, timeout=60):
    """Run headless chromium on url; its stdout. Its whole process group is killed after."""
    with tempfile.TemporaryDirectory(prefix="wharf-chromium-") as profile:
        p = subprocess.Popen(chromium_cmd(profile, f"--virtual-time-budget={budget_ms}", *flags,
                                          url),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = None, f"chromium ran over {timeout} s"
        finally:
            proc.stop(p, timeout=5, group=True)
        t.check(out is not None and p.returncode == 0, "chromium ran",
                (p.returncode, err[-800:] if err else err))
        return out


class DevTools:
    """Chromium driven through the DevTools protocol on a pipe (--remote-debugging-pipe:
    it reads commands on fd 3 and writes answers on fd 4, each a JSON text and a NUL).
    --dump-dom needs the page's JavaScript to read the DOM, so a page with scripts off
    is read this way."""

    def __init__(self, timeout=30):
        self.deadline = time.monotonic() + timeout
        self.profile = tempfile.TemporaryDirectory(prefix="wharf-chromium-")
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()

        def fds_3_and_4():  # in the child, before exec: dup2 leaves them inheritable
            a, b = os.dup(cmd_r), os.dup(resp_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.p = subprocess.Popen(chromium_cmd(self.profile.name, "--remote-debugging-pipe",
                                               "about:blank"),
                                  close_fds=False, preexec_fn=fds_3_and_4,
                                  start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self.buf, self.next_id, self.session = b"", 0, None

    def wait_for(self, pred):
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if pred(m):
                    return m
            left = self.deadline - time.monotonic()
            t.check(left > 0 and select.select([self.resp_r], [], [], left)[0],
                    "chromium answers in time")
            chunk = os.read(self.resp_r, 1 << 16)
            t.check(chunk, "chromium still runs")
            self.buf += chunk

    def call(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        answer = self.wait_for(lambda m, i=self.next_id: m.get("id") == i)
        t.check("error" not in answer, method, answer.get("error"))
        return answer["result"]

    def html_without_script(self, url):
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Emulation.setScriptExecutionDisabled", value=True)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for(lambda m: m.get("method") == "Page.loadEventFired")
        root = self.call("DOM.getDocument", depth=0)["root"]
        return self.call("DOM.getOuterHTML", nodeId=root["nodeId"])["outerHTML"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.cmd_w)  # chromium exits on EOF; the group is killed in any case
        os.close(self.resp_r)
        proc.stop(self.p, timeout=5, group=True)
        self.profile.cleanup()


class Numbers(html.parser.HTMLParser):
    """Every element with data-k: (key, data-v or None, its text), the attributes of
    every element with an id, and every link."""

    def __init__(self):
        super().__init__()
        self.cells, self.ids, self.links, self._open = [], {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a":
            self.links.append(a.get("href"))
        if "id" in a:
            self.ids[a["id"]] = a
        if "data-k" in a:
            self._open.append([a["data-k"], a.get("data-v"), ""])

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data

    def handle_endtag(self, tag):
        if self._open:
            self.cells.append(tuple(self._open.pop()))


def parse(dom):
    p = Numbers()
    p.feed(dom)
    return p


UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "B": 1, "KiB": 1024,
         "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}
SHOWN = re.compile(r"^(-?\d+)(?:\.(\d+))? ?(k|M|G|T|B|KiB|MiB|GiB|TiB)?(?:/s)?$")


def check_text(key, value, text):
    """text is value for people: within half a unit of its last digit."""
    m = SHOWN.match(text.strip())
    t.check(m is not None, f"{key}: a formatted number", text)
    digits = m.group(2) or ""
    unit = UNITS[m.group(3) or ""]
    shown = float(m.group(1) + "." + digits if digits else m.group(1)) * unit
    half = 0.5 * 10 ** -len(digits) * unit
    t.check(abs(shown - value) <= half * 1.0001 + 1e-9, f"{key}: {text!r} shows {value}")


def lookup(stats, key):
    node = stats
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


GAUGES = re.compile(r"^(totals\.active|workers\.\d+\.active|files\.open)$")
EXACT = ("config.max_conns", "capacity", "files.limit")


def check_numbers(cells, before, after):
    """What the page shows lies between /stats read before it and /stats read after."""
    seen = set()
    for key, v, text in cells:
        seen.add(key)
        if key in ("backend", "drain.state"):
            want = after.get("drain", {}).get("state", "serving") if key == "drain.state" \
                else after["backend"]
            t.check(text == want, key, (text, want))
            continue
        if v in (None, "null"):
            t.check(text.startswith("\u2014"), f"{key}: a dash when not known yet", text)
            continue
        value = float(v)
        if key == "drain.delay_ms":  # a setting, shown as a duration
            t.check(value == after["drain"]["delay_ms"], key, (v, after["drain"]))
            t.check(re.match(r"^\d+[dhms]( \d+[hms])?$", text), "delay for people", text)
            continue
        if key == "uptime_ms":
            t.check(before[key] <= value <= after[key], key, (before[key], v, after[key]))
            t.check(re.match(r"^\d+[dhms]( \d+[hms])?$", text), "uptime for people", text)
            continue
        check_text(key, value, text)
        if key.startswith("="):
            t.check(value >= 0, key, v)
        elif key in EXACT:
            t.check(value == lookup(after, key), key, (v, lookup(after, key)))
        elif GAUGES.match(key):
            lo, hi = sorted((lookup(before, key), lookup(after, key)))
            t.check(lo - 8 <= value <= hi + 8, f"{key} near /stats", (lo, v, hi))
        else:
            t.check(lookup(before, key) <= value <= lookup(after, key), f"{key} in /stats",
                    (lookup(before, key), v, lookup(after, key)))
    for key in ("totals.active", "totals.messages", "config.max_conns", "files.open",
                "files.limit", "acceptor.accepted", "workers.1.messages", "=w1.timeouts"):
        t.check(key in seen, f"the page shows {key}", sorted(seen))
    return {k: (v, text) for k, v, text in cells}


def check_quiet(s, page):
    """With the load over, /stats moves only by the reads of the page and of this test:
    every number the page shows must lie in that narrow window."""
    before = s.stats()
    dom = parse(page())
    after = s.stats()
    moved = after["totals"]["messages"] - before["totals"]["messages"]
    t.check(moved < 50, "a quiet server (the window is narrow)", moved)
    check_numbers(dom.cells, before, after)
    return dom


class Load:
    """wharf bench on the frame listener for a bounded time, stopped by its PID."""

    def __init__(self, s, seconds):
        self.p = subprocess.Popen([WHARF, "bench", "-t1", "-c4", f"-d{seconds}s",
                                   f"frame://127.0.0.1:{s.port['frame']}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        proc.stop(self.p, timeout=5)


class StatsStandIn:
    """A loopback HTTP server in a thread of this process, in front of wharfd: /status is
    wharfd's page; /stats is wharfd's document with `extra` merged in (the drain phase,
    as a wharfd with lame-duck draining reports it), or a 503 when extra is None."""

    def __init__(self, s, extra):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/status":
                    code, ctype, body = 200, "text/html; charset=utf-8", fetch(s.url("/status"))[2]
                elif self.path == "/stats" and outer.extra is not None:
                    doc = dict(s.stats(), **outer.extra)
                    code, ctype, body = 200, "application/json", json.dumps(doc).encode()
                else:
                    code, ctype, body = 503, "text/plain", b"503 Service Unavailable\n"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.extra = extra
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/status"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def fetch(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start_server():
    return Server("http", "frame", workers=2)


@t.test
def page_is_small_self_contained_and_served_like_stats():
    with start_server() as s:
        status, headers, body = fetch(s.url("/status"))
        t.check(status == 200 and headers["Content-Type"] == "text/html; charset=utf-8",
                "200, HTML", (status, headers["Content-Type"]))
        print(f"# /status: {len(body)} bytes with 2 workers (budget {BUDGET})")
        t.check(len(body) <= BUDGET, "within 16 KiB", len(body))
        page = body.decode()
        refs = re.findall(r"""\b(?:src|href|action|poster)\s*=\s*["']?([^"'\s>]+)""", page)
        t.check(refs and all(r.startswith("/") and not r.startswith("//") for r in refs),
                "every reference is to this server", refs)
        t.check(not re.search(r"url\(|@import|<link|<img|<iframe|<object|<embed", page),
                "nothing fetched by styles or embedded elements")
        t.check(page.count("fetch(") == 1 and "fetch('/stats'" in page, "the script reads "
                "/stats and nothing else")
        t.check("<!--" not in page, "both slots filled")
        files = s.stats()["files"]
        with open(f"/proc/{s.pid}/limits") as f:
            soft = next(int(l.split()[3]) for l in f if l.startswith("Max open files"))
        t.check(files["limit"] == soft, "/stats: the soft file limit", (files, soft))
        t.check(abs(files["open"] - len(os.listdir(f"/proc/{s.pid}/fd"))) <= 4,
                "/stats: the descriptors open", files)
        status, _, body = fetch(s.url("/status"), "HEAD")
        t.check(status == 200 and body == b"", "HEAD", (status, body[:40]))
        status, headers, _ = fetch(s.url("/status"), "POST")
        t.check(status == 405 and headers["Allow"] == "GET, HEAD", "405", status)


@t.test
def live_page_matches_stats_and_moves():
    if not CHROMIUM:
        print("# skipped: no chromium (Debian package chromium; make deps installs it)")
        return
    with start_server() as s:
        with Load(s, 40):
            time.sleep(0.5)
            before = s.stats()
            first = parse(chromium(s.url("/status"), "--dump-dom"))
            middle = s.stats()
            second = parse(chromium(s.url("/status"), "--dump-dom"))
            after = s.stats()
            for dom, lo, hi in ((first, before, middle), (second, middle, after)):
                live = dom.ids.get("live", {})
                t.check(int(live.get("data-polls", 0)) >= 3, "the script read /stats again "
                        "and again", live)
                t.check("hidden" not in dom.ids["charts"], "charts shown", dom.ids["charts"])
                shown = check_numbers(dom.cells, lo, hi)
                t.check(float(shown["=rps"][0]) > 0, "requests/s under load", shown["=rps"])
                t.check(float(shown["=out_bps"][0]) > 0, "bytes/s under load",
                        shown["=out_bps"])
            a = dict((k, v) for k, v, _ in first.cells)
            b = dict((k, v) for k, v, _ in second.cells)
            t.check(float(b["totals.messages"]) > float(a["totals.messages"]) and
                    float(b["uptime_ms"]) > float(a["uptime_ms"]), "the numbers move",
                    (a["totals.messages"], b["totals.messages"]))
            os.makedirs(os.path.dirname(SCREENSHOT) or ".", exist_ok=True)
            chromium(s.url("/status"), "--hide-scrollbars", "--window-size=1280,900",
                     f"--screenshot={os.path.abspath(SCREENSHOT)}", budget_ms=60000)
            with open(SCREENSHOT, "rb") as f:
                t.check(f.read(8) == b"\x89PNG\r\n\x1a\n", "screenshot saved", SCREENSHOT)
            print(f"# screenshot: {os.path.relpath(SCREENSHOT, ROOT)}")
        check_quiet(s, lambda: chromium(s.url("/status"), "--dump-dom"))


@t.test
def drain_phase_and_a_server_gone():
    """The page shows /stats' drain phase and delay when the document has them (lame-duck
    draining), and says so when /stats stops answering."""
    if not CHROMIUM:
        print("# skipped: no chromium (Debian package chromium; make deps installs it)")
        return
    with start_server() as s:
        drain = {"drain": {"state": "delay", "delay_ms": 5000}}
        with StatsStandIn(s, drain) as stand_in:
            dom = parse(chromium(stand_in.url, "--dump-dom", budget_ms=2500))
        shown = {k: (v, text) for k, v, text in dom.cells}
        t.check(shown.get("drain.state", (0, ""))[1] == "delay", "the phase", shown.get(
            "drain.state"))
        t.check(shown.get("drain.delay_ms") == ("5000", "5s"), "the delay",
                shown.get("drain.delay_ms"))
        t.check("delay" in dom.ids["state"].get("class", ""), "in the phase's colour",
                dom.ids["state"])
        with StatsStandIn(s, None) as stand_in:
            dom = parse(chromium(stand_in.url, "--dump-dom", budget_ms=2500))
        t.check(dom.ids["state"].get("class") == "st down", "a server gone is shown as such",
                dom.ids["state"])


@t.test
def snapshot_without_javascript():
    if not CHROMIUM:
        print("# skipped: no chromium (Debian package chromium; make deps installs it)")
        return
    with start_server() as s:
        with Load(s, 10):
            time.sleep(1.5)

        def without_script():
            with DevTools() as browser:
                return browser.html_without_script(s.url("/status"))

        dom = check_quiet(s, without_script)
        t.check("data-polls" not in dom.ids.get("live", {}), "no script ran", dom.ids["live"])
        t.check("hidden" in dom.ids["charts"], "no empty charts", dom.ids["charts"])
        t.check("/status" in dom.links, "a refresh link", dom.links)
        shown = {k: v for k, v, _ in dom.cells}
        t.check(float(shown["=avg_rps"]) > 0, "requests/s since start", shown["=avg_rps"])
        t.check(float(shown["totals.messages"]) > 100, "the load is in the snapshot",
                shown["totals.messages"])


t.main()
