"""``--ray auto`` with no cluster starts a local Ray that listens on loopback only (issue 25, finding 11).

The driver runs in a subprocess with a temporary directory of its own (so no cluster that
``ray start`` made on this machine is found) and no ``RAY_ADDRESS``; it connects as the CLI does,
runs one task, and lists the TCP sockets its process tree listens on (``/proc/net/tcp*``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
pytestmark = pytest.mark.slow

DRIVER = r'''
import json, os, socket, struct, sys
import ray
from scireflect.run.cluster import LOCAL_ONLY_ENV, connect

def listening():
    found = {}
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in open(path).read().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A":  # LISTEN
                continue
            raw = bytes.fromhex(parts[1].split(":")[0])
            ip = (socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))) if v6
                  else socket.inet_ntoa(raw[::-1]))
            found[parts[9]] = ip
    return found

def tree(root):
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(pid))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out

connect("auto")
assert ray.get(ray.remote(lambda: 1).remote()) == 1
sockets, addresses = listening(), []
for pid in tree(os.getpid()):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in sockets:
            addresses.append(sockets[link[8:-1]])
from ray._private import ray_constants
restored = LOCAL_ONLY_ENV not in os.environ and ray_constants.ENABLE_RAY_CLUSTER
ray.shutdown()
print(json.dumps({"addresses": addresses, "restored": restored}))
'''


def test_a_local_ray_started_by_auto_listens_on_loopback_only():
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    with tempfile.TemporaryDirectory(prefix="sr-", dir="/tmp", ignore_cleanup_errors=True) as tmp:  # short: Ray's socket paths
        env["TMPDIR"] = tmp
        done = subprocess.run([sys.executable, "-c", DRIVER], env=env, cwd=Path(__file__).parents[1], capture_output=True,
                              text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["addresses"]) >= 3, report  # GCS, raylet, the driver's and the worker's core workers
    assert set(report["addresses"]) <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, report
    assert report["restored"], "the driver's Ray settings are restored after the start"
