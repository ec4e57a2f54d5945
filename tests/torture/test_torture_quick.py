"""The <= 2 minute subset of the torture suite, for make test (tests/run-all finds it):
each scenario of scenarios.QUICK at its --quick size, one "ok"/"FAIL" line each, the
table, then "N passed, M failed". The steady load's rate and p99 are reported here, not
checked: make test holds no timing assertion (make torture checks them). The whole suite
is `make torture` (tests/torture/run)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

import torture
from scenarios import QUICK

import runner as _run


def main():
    if os.geteuid() != 0:
        print("# skipped: the torture suite needs root (network namespaces, SCHED_FIFO, prlimit)")
        print("0 passed, 0 failed")
        return 0
    torture.TIMING_CHECKED = False   # no timing pass/fail inside make test
    results = _run.run_all(QUICK, True, stream=sys.stdout, retry=False)
    print()
    print("# " + _run.settings_text(True))
    torture.print_table(results)
    print()
    passed = failed = 0
    for r in results:
        if r.verdict == "FAIL":
            failed += 1
            print(f"FAIL - {r.name}: " + "; ".join(r.failed)[:1500])
        else:
            passed += 1
            print(f"ok - {r.name} ({r.seconds:.1f}s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
