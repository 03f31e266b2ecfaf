"""``python -m scireflect.sandbox --check``: is the sandbox usable here, is it isolated, how fast.

Prints availability (and the reason when not), runs each of :data:`.check.PROBES` in a sandbox,
and times sandbox start-up with ``print(1)``. Exit status 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from .check import PROBES, sandbox_available
from .limits import SandboxLimits
from .supervise import execute


def check(runs: int) -> int:
    ok, why = sandbox_available()
    print(f"sandbox available: {'yes' if ok else 'NO'} - {why}")
    if not ok:
        return 1
    failed = 0
    limits = SandboxLimits(wall_s=60)
    for name, code, expected in PROBES:
        result = execute(code, limits)
        passed = result.ok and result.stdout == expected
        failed += not passed
        detail = "" if passed else f"  (got {result.stdout!r}, stderr {result.stderr[-300:]!r}, {result.killed_reason})"
        print(f"  [{'ok' if passed else 'FAIL'}] {name}{detail}")
    times = [execute("print(1)", limits).duration_s for _ in range(runs)]
    print(f"start-up + print(1): median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {runs} runs")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scireflect.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print availability, run the isolation probes and time start-up")
    parser.add_argument("--runs", type=int, default=20, help="sandboxes started to time start-up (default 20)")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 2
    return check(max(1, args.runs))


if __name__ == "__main__":
    sys.exit(main())
