#!/usr/bin/env python3
"""make torture: run every torture scenario against the real wharfd, print the table,
exit non-zero on any FAIL.

    tests/torture/run                 every scenario (<= 10 minutes)
    tests/torture/run --quick         the <= 2 minute subset that make test runs
    tests/torture/run slowloris malformed      only these
    tests/torture/run --markdown FILE          also write the table and figures as Markdown
    WHARF_BUILD=build/asan tests/torture/run   another build (RSS bounds then not checked)
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

import runner

if __name__ == "__main__":
    sys.exit(runner.main(__doc__))
