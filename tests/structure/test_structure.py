#!/usr/bin/env python3
"""The shape of server/, checked on the source text (part of `make test`).

1. No two server modules depend on each other. A module is server/NAME.c with
   server/NAME.h (either may be missing: timer.h is a module too). Module a depends on
   module b when a.c or a.h has `#include "b.h"` (directly: a header that a.h includes
   counts for that header's own module, not again for a). Then b.c and b.h must not
   include a.h. Only pairs are checked, as issue 14 asks; a longer cycle (a -> b -> c
   -> a) is not. Includes of common/ are not server modules and do not count.
2. Only backend files include <sys/epoll.h> or <liburing.h>: server/epoll_*.{c,h} and
   server/uring*.{c,h} (the io_uring backend and its private headers).
3. No C file or header in server/, client/ or common/ is over 600 lines.
4. No function in server/, client/ or common/ is over 60 lines, counted from the first line of its
   definition (return type and name) to its closing brace, both included. Top-level
   definitions are found by matching braces after comments, strings and preprocessor
   lines are blanked out.

KNOWN below lists the exceptions that work in flight removes: each is
printed as a "known" line, not a failure. An entry that no longer matches anything
fails, so the list cannot outlive what it excuses: delete the entry then.

Usage: test_structure.py [--root DIR]   (DIR: a copy of the tree; default: this one)
Prints "ok - ..." / "FAIL - ..." / "known - ..." lines, then "N passed, M failed".
"""
import os
import re
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60
BACKEND_ONLY = ("sys/epoll.h", "liburing.h")
# Checks 3 and 4 cover the load client and the shared code too (issue 17: no client
# function over 60 lines); checks 1 and 2 are about the server's modules only.
SIZED = ("server", "client", "common")
BACKEND_FILE = re.compile(r"^(epoll_[A-Za-z0-9_]*|uring[A-Za-z0-9_]*)\.[ch]$")

# Known exceptions, with what ends each (none today). Keys: ("cycle", a, b) with a < b;
# ("include", file, header); ("file", path); ("function", path, name).
KNOWN = {
    ("file", "common/http_parse.c"):
        "the request parser and its chunked-body decoder in one file; ends when the "
        "chunked decoder moves to a file of its own, once the response parser (issue 18) "
        "has settled which byte tables the two share",
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def server_files(root, where="server"):
    d = os.path.join(root, where)
    return sorted(f for f in os.listdir(d) if f.endswith((".c", ".h")))


def read(root, name, where="server"):
    with open(os.path.join(root, where, name), encoding="utf-8") as f:
        return f.read()


def module_edges(root):
    """{(a, b): [why, ...]} for every server module a that depends on module b."""
    names = server_files(root)
    modules = {os.path.splitext(n)[0] for n in names}
    edges = {}
    for n in names:
        a = os.path.splitext(n)[0]
        for kind, target in INCLUDE.findall(read(root, n)):
            if kind != '"' or "/" in target:  # "../common/x.h" is not a server module
                continue
            b = os.path.splitext(target)[0]
            if b != a and b in modules:
                edges.setdefault((a, b), []).append(f"{n} includes {target}")
    return edges


def blank_code(text):
    """text with comments, string and character literals and preprocessor lines
    replaced by spaces (newlines kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if at_line_start and c == "#":  # a directive, with its continuation lines
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        at_line_start = c == "\n"
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """[(name, first line, last line)] of the top-level function definitions."""
    code = blank_code(text)
    found = []
    depth = 0
    start = 0  # where the current top-level item begins
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                head = code[start:i]
                name = function_name(head)
                if name:
                    lead = len(head) - len(head.lstrip())
                    first = code.count("\n", 0, start + lead) + 1
                    found.append([name, first, None, i])
                else:
                    found.append([None, 0, None, i])
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                found[-1][2] = code.count("\n", 0, i) + 1
                start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
    return [(f[0], f[1], f[2]) for f in found if f[0] and f[2]]


def function_name(head):
    """The function's name when head (the text before a top-level "{") is a function
    definition's signature, else None (struct, enum, union, initialiser)."""
    h = head.strip()
    if not h.endswith(")") or "=" in h:
        return None
    if re.match(r"(typedef|struct|union|enum)\b[^(]*$", h):
        return None
    depth = 0
    for k in range(len(h) - 1, -1, -1):  # the "(" matching the last ")"
        if h[k] == ")":
            depth += 1
        elif h[k] == "(":
            depth -= 1
            if depth == 0:
                m = re.search(r"([A-Za-z_]\w*)\s*$", h[:k])
                return m.group(1) if m else None
    return None


class Report:
    def __init__(self):
        self.passed = self.failed = 0
        self.known_used = set()

    def ok(self, what):
        print(f"ok - {what}")
        self.passed += 1

    def fail(self, what):
        print(f"FAIL - {what}")
        self.failed += 1

    def check(self, key, problems, what):
        """problems: not empty. A known key is printed, not failed; returns 1 if failed."""
        if key in KNOWN:
            self.known_used.add(key)
            print(f"known - {what}: {'; '.join(problems)} (excused {KNOWN[key]})")
            return 0
        for p in problems:
            self.fail(f"{what}: {p}")
        return 1

    def result(self, bad, found, what):
        """One ok line for a check with no failure; found counts the known ones too."""
        if not bad:
            self.ok(what + (f" ({found} known)" if found else ""))


def check_cycles(root, r):
    edges = module_edges(root)
    bad = found = 0
    for (a, b), why in sorted(edges.items()):
        if a < b and (b, a) in edges:
            found += 1
            bad += r.check(("cycle", a, b), why + edges[(b, a)],
                           f"modules {a} and {b} depend on each other")
    modules = {os.path.splitext(n)[0] for n in server_files(root)}
    r.result(bad, found, f"no two of the {len(modules)} server modules ({len(edges)} "
             "dependencies between them) depend on each other")


def check_backend_headers(root, r):
    bad = 0
    for n in server_files(root):
        if BACKEND_FILE.match(n):
            continue
        for kind, target in INCLUDE.findall(read(root, n)):
            if kind == "<" and target in BACKEND_ONLY:
                bad += r.check(("include", n, target), ["only backend files may"],
                               f"server/{n} includes <{target}>")
    r.result(bad, 0, "only backend files (server/epoll_*, server/uring*) include "
             "<sys/epoll.h> or <liburing.h>")


def check_file_lengths(root, r, where):
    bad = found = 0
    for n in server_files(root, where):
        lines = read(root, n, where).count("\n")
        if lines > MAX_FILE_LINES:
            found += 1
            bad += r.check(("file", f"{where}/{n}"), [f"{lines} lines"],
                           f"{where}/{n} is over {MAX_FILE_LINES} lines")
    r.result(bad, found, f"no file in {where}/ is over {MAX_FILE_LINES} lines")


def check_function_lengths(root, r, where):
    bad = found = count = 0
    for n in server_files(root, where):
        for name, first, last in functions(read(root, n, where)):
            count += 1
            lines = last - first + 1
            if lines > MAX_FUNCTION_LINES:
                found += 1
                bad += r.check(("function", f"{where}/{n}", name),
                               [f"{lines} lines (line {first})"],
                               f"{where}/{n}: {name} is over {MAX_FUNCTION_LINES} lines")
    if count == 0:
        r.fail(f"no function found in {where}/: the scan is broken")
    else:
        r.result(bad, found, f"no function of the {count} in {where}/ is over "
                 f"{MAX_FUNCTION_LINES} lines")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    if len(sys.argv) == 3 and sys.argv[1] == "--root":
        root = sys.argv[2]
    elif len(sys.argv) != 1:
        sys.exit(__doc__.split("Usage: ")[1].split("\n")[0])
    r = Report()
    check_cycles(root, r)
    check_backend_headers(root, r)
    for where in SIZED:
        check_file_lengths(root, r, where)
        check_function_lengths(root, r, where)
    stale = sorted(set(KNOWN) - r.known_used)
    for key in stale:
        r.fail(f"known exception {key} no longer occurs: delete it from KNOWN")
    if not stale:
        r.ok(f"every known exception still occurs ({len(KNOWN)})")
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
