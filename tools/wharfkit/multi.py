"""Multi: one `wharf bench` (or churn) command run on several load hosts at once, its
results merged -- no agent of our own: a launcher prefix is the transport (`ssh HOST` in
real use, `ip netns exec NS` in tests) and the HdrHistogram interval logs are the
protocol.

    hosts = [Launcher("lg1", ["ssh", "lg1"]), Launcher("lg2", ["ssh", "lg2"])]
    res = run_multi(hosts, ["bench", "-c", "100", "-d", "30s", "frame://10.0.0.1:9100"],
                    out_dir="bench/results/multi-x", remote_wharf="wharf")
    res.merged_text        # `wharf merge --per-host` of every host's log

Every host runs `WHARF ARGS --start-at T --hdr-log FILE --json` with one start time T
(now + lead seconds: enough for ssh and each host's connection ramp), so the hosts'
intervals line up. Each host's log is read back through the same launcher (`cat`) and
removed there; reports, logs and stderr land in out_dir, with the merged report, log and
.hgrm. The launchers are our children, stopped by PID on an error or Ctrl-C (what ssh
leaves running remotely ends with its own -d).
"""
import json
import os
import shlex
import subprocess
import time

from .proc import stop


class Launcher:
    def __init__(self, name, prefix):
        self.name, self.prefix = name, list(prefix)

    @classmethod
    def parse(cls, text, i):
        """"NAME=PREFIX" or "PREFIX" (named host1, host2, ...)."""
        name, eq, rest = text.partition("=")
        if eq and name and " " not in name:
            return cls(name, shlex.split(rest))
        return cls(f"host{i + 1}", shlex.split(text))


class Result:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.reports = {}    # name -> the host's --json report
        self.failed = {}     # name -> why
        self.merged_text = ""
        self.merge_status = None


def _collect(h, remote_log, local_log, timeout):
    """The host's log, through its launcher; removed there afterwards."""
    with open(local_log, "w") as f:
        r = subprocess.run(h.prefix + ["cat", remote_log], stdout=f, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    subprocess.run(h.prefix + ["rm", "-f", remote_log], capture_output=True, timeout=timeout)
    return r.returncode == 0, r.stderr.strip()


def _start(hosts, args, remote_wharf, at, tag, out_dir):
    procs = []
    for h in hosts:
        remote_log = f"/tmp/wharf-multi-{tag}-{h.name}.log"
        cmd = h.prefix + [remote_wharf, *args, "--start-at", f"{at:.3f}", "--hdr-log",
                          remote_log, "--json"]
        err = open(os.path.join(out_dir, f"{h.name}.stderr"), "w")
        procs.append((h, remote_log, err, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)))
    return procs


def run_multi(hosts, args, out_dir, remote_wharf="wharf", local_wharf="wharf", lead=3.0,
              timeout=None, say=print):
    """Run `wharf ARGS` on every host together; write out_dir; return a Result. timeout:
    seconds to wait for the hosts (default: the run's -d, if any, plus a minute)."""
    os.makedirs(out_dir, exist_ok=True)
    res = Result(out_dir)
    tag = f"{os.getpid()}-{int(time.time())}"
    at = time.time() + lead
    with open(os.path.join(out_dir, "command.txt"), "w") as f:
        f.write(" ".join(map(shlex.quote, [remote_wharf, *args])) + "\n")
        for h in hosts:
            f.write(f"{h.name}: {' '.join(map(shlex.quote, h.prefix))}\n")
        f.write(f"start-at: {at:.3f}\n")
    procs = _start(hosts, args, remote_wharf, at, tag, out_dir)
    say(f"multi: {len(hosts)} hosts start at {time.strftime('%H:%M:%S', time.gmtime(at))} UTC")
    try:
        deadline = time.time() + (timeout or 600)
        for h, remote_log, err, p in procs:
            out, _ = p.communicate(timeout=max(1, deadline - time.time()))
            err.close()
            try:
                res.reports[h.name] = json.loads(out)
                with open(os.path.join(out_dir, f"{h.name}.json"), "w") as f:
                    f.write(out)
            except ValueError:
                res.failed[h.name] = f"no report (exit {p.returncode}; see {h.name}.stderr)"
            ok, why = _collect(h, remote_log, os.path.join(out_dir, f"{h.name}.log"), 60)
            if not ok:
                res.failed.setdefault(h.name, f"log not collected: {why}")
    finally:
        stop([p for _, _, _, p in procs], timeout=5)
    logs = [f"{h.name}.log" for h in hosts if h.name not in res.failed]
    if logs:  # run in out_dir: the rows are named by the hosts' file names
        m = subprocess.run([os.path.abspath(local_wharf) if os.sep in local_wharf
                            else local_wharf, "merge", "--per-host", "--hdr-log", "merged.log",
                            "--hgrm", "merged.hgrm", *logs],
                           capture_output=True, text=True, timeout=120, cwd=out_dir)
        res.merge_status = m.returncode
        res.merged_text = m.stdout + m.stderr
        with open(os.path.join(out_dir, "merged.txt"), "w") as f:
            f.write(res.merged_text)
    return res
