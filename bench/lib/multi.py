"""bench/multi: one wharf load command on several hosts at once, merged (wharfkit.multi).

    bench/multi --host 'lg1=ssh lg1' --host 'lg2=ssh lg2' -- bench -c 200 -d 30s \\
        frame://10.0.0.1:9100

Every host needs wharf (--remote-wharf, default `wharf` on its PATH) and a clock in step
with the others (NTP: --start-at is wall clock time). The result directory (--out,
default bench/results/DATE-multi/) gets each host's report (NAME.json), interval log
(NAME.log) and stderr, and the merge: merged.txt (the report, a row per host),
merged.log and merged.hgrm.
"""
import argparse
import os
import sys
import time

from wharfkit.multi import Launcher, run_multi

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(prog="bench/multi", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", action="append", required=True, metavar="[NAME=]PREFIX",
                    help="a launcher prefix, e.g. 'ssh lg1' or 'ip netns exec ns1'")
    ap.add_argument("--out", help="result directory (default bench/results/DATE-multi)")
    ap.add_argument("--remote-wharf", default="wharf", help="wharf on the hosts")
    ap.add_argument("--lead", type=float, default=3.0,
                    help="seconds from now to the common start (ssh, the ramp)")
    ap.add_argument("wharf_args", nargs=argparse.REMAINDER,
                    help="-- then the command: bench ARGS (or churn ARGS)")
    a = ap.parse_args()
    args = a.wharf_args[1:] if a.wharf_args[:1] == ["--"] else a.wharf_args
    if not args or args[0] not in ("bench", "churn"):
        ap.error("give the command after --: bench ... or churn ...")
    build = os.environ.get("WHARF_BUILD", os.path.join(HERE, "..", "..", "build"))
    local = os.path.join(build, "wharf")
    out = a.out or os.path.join(HERE, "..", "results", time.strftime("%Y%m%d-%H%M%S-multi"))
    hosts = [Launcher.parse(h, i) for i, h in enumerate(a.host)]
    res = run_multi(hosts, args, out, remote_wharf=a.remote_wharf,
                    local_wharf=local if os.path.exists(local) else "wharf", lead=a.lead)
    print(res.merged_text, end="")
    for name, why in res.failed.items():
        print(f"bench/multi: {name}: {why}", file=sys.stderr)
    print(f"bench/multi: results in {out}")
    return 1 if res.failed or res.merge_status else 0


if __name__ == "__main__":
    sys.exit(main())
