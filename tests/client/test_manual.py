"""wharf(1) against the option table: the OPTIONS section is what `wharf man-options` prints.

The table in client/options.c gives parsing, --help and the manual's option list; the list
is pasted into client/wharf.1 between its "Generated" markers. A change to the table
without regenerating the page fails here, so the manual cannot drift from the binary."""

import os
import subprocess

from clientlib import Suite, WHARF

t = Suite(__file__)

PAGE = os.path.join(os.environ.get("WHARF_ROOT", "."), "client", "wharf.1")
BEGIN = '.\\" Generated: wharf man-options'
END = '.\\" End of generated options.'


def generated_part(text):
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    t.check(len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0],
            "wharf.1 has one pair of generated-options markers", (starts, ends))
    return lines[starts[0] + 1:ends[0]]


@t.test
def manual_options_are_the_tables():
    with open(PAGE) as f:
        page = generated_part(f.read())
    out = subprocess.run([WHARF, "man-options"], capture_output=True, text=True, timeout=10)
    t.check(out.returncode == 0, "wharf man-options exits 0", out.stderr)
    table = out.stdout.splitlines()
    first = next((i for i, (a, b) in enumerate(zip(page, table)) if a != b),
                 min(len(page), len(table)))
    t.check(page == table,
            "wharf.1's OPTIONS equal `wharf man-options` (regenerate the page: client/README.md)",
            f"first difference at generated line {first + 1}: "
            f"page {page[first:first + 1]!r}, table {table[first:first + 1]!r}")


@t.test
def every_long_option_of_help_is_in_the_manual():
    with open(PAGE) as f:
        page = f.read()
    for cmd in ("bench", "churn", "hold"):
        out = subprocess.run([WHARF, cmd, "--help"], capture_output=True, text=True, timeout=10)
        longs = {w.split("=")[0].rstrip(",") for w in out.stdout.split() if w.startswith("--")}
        t.check(longs, f"wharf {cmd} --help lists long options", out.stdout[:200])
        for name in sorted(longs):
            t.check(name.replace("-", "\\-") in page, f"wharf.1 documents {cmd} {name}")


t.main()
