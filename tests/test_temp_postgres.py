"""The throwaway PostgreSQL of the tests leaves no system user, file or process behind (issue 25, "a
system user left behind")."""

from __future__ import annotations

import os
import pwd
import time

import pytest

from scireflect.testing.postgres import SERVER_USERS, TempPostgres, postgres_bin

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)")


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_throwaway_server_leaves_no_user_file_or_process():
    users = {u.pw_name for u in pwd.getpwall()}
    with TempPostgres() as pg:
        root = pg.root
        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select current_user").fetchone() == ("scireflect",)
        if os.geteuid() == 0:  # run as a user that was already there
            assert pwd.getpwuid(root.stat().st_uid).pw_name in SERVER_USERS
    assert {u.pw_name for u in pwd.getpwall()} == users
    assert not root.exists()
    assert _gone(pid), f"the server (pid {pid}) is still running"
