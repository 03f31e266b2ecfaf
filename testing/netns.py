"""Running a command in a network namespace of its own with only loopback up (tests, benchmarks).

Ray advertises the host's interface address even when told ``127.0.0.1``; in a namespace where
``lo`` is the only interface it falls back to loopback, so a local Ray cluster, the mock endpoint
and every byte between them stay on ``127.0.0.1`` of that namespace. Needs root (``unshare --net``)
and ``ip`` (iproute2).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


@functools.cache
def why_no_netns() -> str | None:
    """``None`` when :func:`loopback_only` works here, else the reason it does not."""
    if os.geteuid() != 0:
        return "a network namespace needs root (unshare --net)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (util-linux / iproute2)"
    probe = subprocess.run(loopback_only(["true"]), capture_output=True, text=True, timeout=30)
    if probe.returncode:
        return f"unshare --net failed here: {probe.stderr.strip()[:200]}"
    return None


def loopback_only(argv: list[str]) -> list[str]:
    """``argv`` wrapped to run in a new network namespace whose only interface, ``lo``, is up."""
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


__all__ = ["loopback_only", "why_no_netns"]
