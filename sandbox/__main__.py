"""``python -m scireflect.sandbox --check``: is the sandbox usable here, is it isolated, how fast.

Prints availability (and the reason when not), runs each of :data:`.check.PROBES` in a sandbox,
and times sandbox start-up with ``print(1)``. Exit status 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

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
    plain = [_plain_python_s() for _ in range(runs)]
    sandboxed_ms, plain_ms = statistics.median(times) * 1000, statistics.median(plain) * 1000
    print(f"start-up + print(1): median {sandboxed_ms:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) "
          f"over {runs} runs; the same interpreter unsandboxed: {plain_ms:.0f} ms; the sandbox adds {sandboxed_ms - plain_ms:.0f} ms")
    return 1 if failed else 0


def _plain_python_s() -> float:
    """Seconds for this interpreter to run our own constant ``print(1)`` without a sandbox: the
    baseline that the sandbox's overhead is measured against (no model code runs here)."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-I", "-B", "-X", "utf8", "-c", "print(1)"], capture_output=True, check=True)
    return time.monotonic() - start


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
