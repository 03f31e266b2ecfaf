"""Shared fixtures. ``spawn`` starts processes that never outlive the test run, Ctrl-C included."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

_LIVE: set[subprocess.Popen] = set()


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
        pass
    _LIVE.discard(proc)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """``spawn(cmd, **popen_kwargs)``: a process in its own session (so a test can kill its whole group,
    e.g. the CLI and the embedded server it started); every process spawned is killed with its group
    when the test ends, however it ends (failure, timeout, Ctrl-C)."""
    mine: list[subprocess.Popen] = []

    def start(cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        mine.append(proc)
        _LIVE.add(proc)
        return proc

    try:
        yield start
    finally:
        for proc in mine:
            _kill_group(proc)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Last resort (an interrupt between a spawn and its fixture's teardown): no orphans."""
    for proc in list(_LIVE):
        _kill_group(proc)
