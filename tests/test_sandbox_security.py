"""Security tests of the code sandbox: model code that tries to get out, each attack contained.

Each test runs hostile code through :func:`scireflect.sandbox.run_python` and checks both what the
code saw (its output) and what the host saw (files, a listener, processes). After every test a
fixture checks that no sandbox process is left and that the next run still works. The tests
skip only where sandboxing is truly unavailable (no bubblewrap, no user namespaces); with
``CI`` set they fail instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scireflect.sandbox import SandboxLimits, run_python, sandbox_available

AVAILABLE, WHY = sandbox_available()
def bind_parents_in_tmp() -> list[str]:
    """What the sandbox's own /tmp shows before any code writes to it: nothing, unless the interpreter
    lives under /tmp (a checkout and its venv in /tmp/x): bwrap then makes /tmp/x on the private
    tmpfs to bind the interpreter below it, read-only."""
    from scireflect.sandbox.bwrap import host_layout

    return sorted({p.split("/")[2] for p in host_layout().ro_binds if p.startswith("/tmp/")})


requires_sandbox = pytest.mark.skipif(not AVAILABLE and not os.environ.get("CI"), reason=f"sandbox unavailable here: {WHY}")
pytestmark = [requires_sandbox, pytest.mark.timeout(180)]

QUICK = SandboxLimits(wall_s=20, cpu_s=10)


def sandbox_processes() -> dict[int, bytes]:
    """pid -> command line of every live sandbox process on this machine: bwrap and boot.py
    (their command lines name /sandbox/boot.py), the code (/sandbox/main.py), and whatever the
    code started (its environment carries SCIREFLECT_SANDBOX=1)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            environ = b""
        if b"/sandbox/boot.py" in cmdline or b"/sandbox/main.py" in cmdline or b"SCIREFLECT_SANDBOX=1" in environ:
            found[int(entry)] = cmdline
    return found


def is_code(cmdline: bytes) -> bool:
    """The command line is the sandboxed program's own (``python ... /sandbox/main.py``), not bwrap's."""
    return cmdline.rstrip(b"\0").split(b"\0")[-1] == b"/sandbox/main.py"


def wait_until_gone(pids: set[int], timeout_s: float = 10.0) -> set[int]:
    """The pids of ``pids`` still alive as sandbox processes after waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = pids & set(sandbox_processes())
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def contained_and_alive():
    """After each test: no sandbox process left over, and a fresh sandbox still works."""
    before = set(sandbox_processes())
    yield
    stray = wait_until_gone(set(sandbox_processes()) - before)
    assert not stray, f"sandbox processes left running: {stray}"
    after = run_python("print('alive')", limits=QUICK)
    assert after.ok and after.stdout == "alive\n", after


def run_json(code: str, limits: SandboxLimits = QUICK) -> dict:
    """Run code whose last stdout line is JSON; return it (asserting the run itself succeeded)."""
    result = run_python(code, limits=limits)
    assert result.ok, result
    return json.loads(result.stdout.strip().splitlines()[-1])


# Probes each path with open/listdir and reports the outcome as "ok" or the exception's name.
PROBE = r'''
import json, os, sys
def probe(path, mode="r"):
    try:
        if mode == "list":
            return sorted(os.listdir(path))
        if mode == "w":
            with open(path, "w") as f:
                f.write("pwned")
            return "ok"
        with open(path, "rb") as f:
            return f.read(200).decode("latin-1")
    except OSError as e:
        return type(e).__name__
'''


def test_sandbox_is_available_where_it_should_be() -> None:
    """CI runs as root on Debian with bubblewrap installed: the sandbox must work there."""
    assert AVAILABLE, WHY


def test_cannot_read_etc_shadow() -> None:
    out = run_json(PROBE + "print(json.dumps([probe('/etc/shadow'), probe('/etc/passwd'), probe('/etc', 'list')]))")
    assert out[0] == "FileNotFoundError" and out[1] == "FileNotFoundError"
    assert out[2] in (["ld.so.cache"], "FileNotFoundError"), out  # the loader's index of /usr/lib at most


def test_cannot_read_the_run_directory(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    secret = tmp_path / "secret.txt"
    secret.write_text(token)
    code = PROBE + f"print(json.dumps([probe({str(secret)!r}), probe({str(tmp_path)!r}, 'list'), probe('/tmp', 'list'),"
    code += f" probe({os.getcwd()!r}, 'list'), probe({str(Path(__file__).resolve())!r})]))"
    result = run_python(code, limits=QUICK)
    assert result.ok, result
    assert token not in result.stdout
    secret_read, run_dir, tmp, cwd, this_file = json.loads(result.stdout)
    assert secret_read == run_dir == this_file == "FileNotFoundError"
    assert tmp == bind_parents_in_tmp()  # /tmp is the sandbox's own, empty tmpfs
    # the working directory (the project) shows at most the virtual environment it holds
    assert cwd == "FileNotFoundError" or set(cwd) <= {".venv", "venv"}, cwd


def test_cannot_read_the_home_directories() -> None:
    home = Path.home()
    token = uuid.uuid4().hex
    secret = home / f".scireflect-sandbox-test-{token}"
    secret.write_text(token)
    try:
        code = PROBE + (f"print(json.dumps([probe({str(secret)!r}), probe({str(home)!r}, 'list'), probe('/root', 'list'),"
                        " probe('/root/.bashrc'), probe('/root/.ssh', 'list'), probe('/home', 'list'), os.path.expanduser('~')]))")
        result = run_python(code, limits=QUICK)
    finally:
        secret.unlink()
    assert result.ok, result
    assert token not in result.stdout
    secret_read, home_list, root_list, bashrc, ssh, homes, tilde = json.loads(result.stdout)
    assert secret_read == bashrc == ssh == homes == "FileNotFoundError"
    # only the directories that lead to the interpreter (e.g. /root/.pyenv) may show, never a file
    for listing, base in ((home_list, home), (root_list, Path("/root"))):
        if listing != "FileNotFoundError":
            assert all((base / name).is_dir() for name in listing), listing
            assert not any(name.startswith(".scireflect-sandbox-test") for name in listing)
    assert tilde == "/tmp"


def test_cannot_write_outside_its_tmp(tmp_path: Path) -> None:
    targets = [tmp_path / "pwned", Path.home() / f"pwned-{uuid.uuid4().hex}", Path(sys.prefix) / "pwned",
               Path(sys.base_prefix) / "pwned", Path("/usr/lib/pwned"), Path("/pwned"), Path("/sandbox/main.py"),
               Path("/sandbox/boot.py"), Path("/dev/pwned"), Path("/dev/shm/pwned"), Path("/proc/pwned")]
    code = PROBE + f"print(json.dumps([probe(p, 'w') for p in {[str(t) for t in targets]!r}] + [probe('/tmp/mine', 'w')]))"
    out = run_json(code)
    assert out[-1] == "ok"  # its private /tmp is writable
    assert all(outcome != "ok" for outcome in out[:-1]), dict(zip(map(str, targets), out, strict=False))
    for target in targets[:4]:  # and nothing appeared on the host
        assert not target.exists(), target


def test_cannot_connect_to_a_listener_on_the_host_loopback() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    code = r'''
import json, socket
out = {}
for name, family, kind in [("tcp4", socket.AF_INET, socket.SOCK_STREAM), ("udp4", socket.AF_INET, socket.SOCK_DGRAM),
                           ("tcp6", socket.AF_INET6, socket.SOCK_STREAM), ("netlink", socket.AF_NETLINK, socket.SOCK_RAW),
                           ("packet", socket.AF_PACKET, socket.SOCK_RAW)]:
    try:
        s = socket.socket(family, kind)
        out[name] = "socket created"
        s.settimeout(2)
        s.connect(("127.0.0.1", PORT))
        out[name] = "connected"
    except OSError as e:
        out[name] = e.errno
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2)
    out["create_connection"] = "connected"
except OSError as e:
    out["create_connection"] = e.errno
out["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
print(json.dumps(out))
'''.replace("PORT", str(port))
    try:
        out = run_json(code)
        readable, _, _ = select.select([listener], [], [], 0.5)
    finally:
        listener.close()
    assert not readable, "the host listener got a connection from the sandbox"
    assert out.pop("interfaces") == ["lo"]  # its own network namespace: loopback only
    assert all(v == 97 for v in out.values()), out  # EAFNOSUPPORT from the seccomp filter


def test_cannot_reach_an_abstract_unix_socket_of_the_host() -> None:
    """Abstract AF_UNIX sockets (X11, D-Bus, ...) belong to a network namespace: not reachable."""
    name = f"scireflect-sandbox-test-{uuid.uuid4().hex}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen(1)
    code = f"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\\0{name}")
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""
    try:
        result = run_python(code, limits=QUICK)
        readable, _, _ = select.select([listener], [], [], 0.3)
    finally:
        listener.close()
    assert result.stdout == "ConnectionRefusedError\n", result
    assert not readable


def test_fork_bomb_is_contained() -> None:
    limits = SandboxLimits(wall_s=4, cpu_s=30, max_processes=8, memory_mb=256)
    code = r'''
import os
told = False
while True:
    try:
        os.fork()
    except OSError as e:
        if not told:
            told = True
            print("refused", e.errno, sum(p.isdigit() for p in os.listdir("/proc")), flush=True)
'''
    t0 = time.monotonic()
    result = run_python(code, limits=limits)
    assert time.monotonic() - t0 < limits.wall_s + 10
    assert result.timed_out and result.killed_reason == "wall-clock limit of 4 s", result
    seen = [line.split() for line in result.stdout.splitlines()]
    assert seen, result  # at least one fork was refused ...
    for word, errno_, processes in seen:  # ... with EAGAIN, while at most max_processes existed
        assert word == "refused" and int(errno_) == 11 and int(processes) <= limits.max_processes


def test_10_gb_allocation_fails_inside_the_limit() -> None:
    result = run_python("b = bytearray(10 * 1024**3)", limits=QUICK)
    assert result.exit_status == 1 and result.signal is None and "MemoryError" in result.stderr, result
    # touching memory in 64 MiB steps stops below memory_mb too
    code = r'''
chunks = []
try:
    while True:
        chunks.append(bytearray(64 << 20))
except MemoryError:
    print(len(chunks) * 64)
'''
    result = run_python(code, limits=SandboxLimits(wall_s=30, memory_mb=512))
    assert result.ok, result
    assert 0 < int(result.stdout) < 512


SIX_CHILDREN = r'''
import json, os, time
wanted_mb, children, held = 900, [], 0
r, w = os.pipe()
for _ in range(6):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:  # a child touches up to 900 MiB in 64 MiB steps, reports what it holds, and waits
        os.close(r)
        chunks = []
        try:
            while len(chunks) * 64 < wanted_mb:
                chunks.append(bytearray(b"\x01") * (64 << 20))
        except MemoryError:
            pass
        os.write(w, b"%d\n" % (len(chunks) * 64))
        time.sleep(60)
        os._exit(0)
    children.append(pid)
os.close(w)
with os.fdopen(r) as reports:
    for _ in children:
        held += int(reports.readline())
rss_kb = 0
for entry in os.listdir("/proc"):
    try:
        with open(f"/proc/{entry}/status") as status:
            rss_kb += sum(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, ValueError):
        pass
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(json.dumps({"forked": len(children), "held_mb": held, "rss_mb": rss_kb // 1024}))
'''


def test_six_children_of_900_mib_stay_under_the_sandbox_total() -> None:
    """Issue 25, finding 1: per-process limits alone let 6 forked children hold 900 MiB each (5.4 GB
    in one execution). The processes' limits now add up to ``total_memory_mb`` (2 GiB): forks past
    ``max_processes`` fail, each child stops at ``memory_mb``, and the execution ends normally."""
    limits = SandboxLimits(wall_s=60, cpu_s=30)
    assert limits.total_memory_mb == 2048 and limits.memory_bound_mb <= 2048
    result = run_python(SIX_CHILDREN, limits=limits)
    assert result.ok, result
    out = json.loads(result.stdout)
    assert out["forked"] <= limits.max_processes - 2, out  # PID 1 and the code are the other two
    assert 0 < out["held_mb"] < 2048 and out["rss_mb"] < 2048, out
    assert run_python("print(6 * 7)", limits=QUICK).stdout == "42\n"  # and the next execution runs


def test_limits_that_could_exceed_the_sandbox_total_are_refused() -> None:
    with pytest.raises(ValueError, match="could hold 7296 MiB, more than total_memory_mb=2048"):
        SandboxLimits(memory_mb=1024, max_processes=8)
    assert SandboxLimits(memory_mb=1024, max_processes=8, total_memory_mb=8192).memory_bound_mb == 7296


def test_memory_the_address_space_limit_cannot_see_is_refused() -> None:
    """memfd and SysV shared memory stay allocated once unmapped, outside RLIMIT_AS: refused."""
    code = r'''
import ctypes, json, os
libc = ctypes.CDLL("libc.so.6", use_errno=True)
out = {"shmget": [libc.shmget(0, 1 << 30, 0o1000 | 0o600), ctypes.get_errno()]}
try:
    os.memfd_create("hoard")
    out["memfd"] = "created"
except OSError as e:
    out["memfd"] = e.errno
print(json.dumps(out))
'''
    assert run_json(code) == {"shmget": [-1, 1], "memfd": 1}


@pytest.mark.parametrize("code, signal_name", [
    ("while True:\n    pass", "SIGXCPU"),
    # a code that catches SIGXCPU and goes on is killed at the hard limit, a second later
    ("import signal\nsignal.signal(signal.SIGXCPU, lambda *_: None)\nwhile True:\n    pass", "SIGKILL"),
])
def test_infinite_loop_hits_the_cpu_limit(code: str, signal_name: str) -> None:
    result = run_python(code, limits=SandboxLimits(wall_s=30, cpu_s=1))
    assert result.signal == signal_name and result.killed_reason == "CPU time limit of 1 s", result
    assert not result.timed_out and result.cpu_s > 0.5  # rusage is sampled: it can read under 1 s


def test_sleeping_code_hits_the_wall_clock_limit() -> None:
    t0 = time.monotonic()
    result = run_python("import time\ntime.sleep(120)", limits=SandboxLimits(wall_s=1.5))
    assert time.monotonic() - t0 < 6
    assert result.timed_out and result.exit_status is None and result.killed_reason == "wall-clock limit of 1.5 s"


def test_100_mb_of_output_is_cut_and_the_writer_killed() -> None:
    limits = SandboxLimits(wall_s=30, max_output_bytes=1_000_000)
    code = "import sys\nsys.stderr.write('e' * 1000)\nsys.stderr.flush()\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)"
    t0 = time.monotonic()
    result = run_python(code, limits=limits)
    assert time.monotonic() - t0 < 10
    assert result.truncated and result.killed_reason.startswith("output limit"), result.killed_reason
    assert len(result.stdout) + len(result.stderr) == limits.max_output_bytes
    assert set(result.stdout) == {"x"} and result.stderr == "e" * 1000


def test_file_size_and_tmpfs_limits() -> None:
    code = r'''
import errno, json
out = []
try:
    with open("/tmp/big", "wb") as f:
        f.write(b"x" * (2 << 20))
    out.append("wrote")
except OSError as e:
    out.append(errno.errorcode[e.errno])
try:
    for i in range(100):
        with open(f"/tmp/part{i}", "wb") as f:
            f.write(b"x" * (1 << 20))
    out.append("wrote")
except OSError as e:
    out.append(errno.errorcode[e.errno])
print(json.dumps(out))
'''
    out = run_json(code, SandboxLimits(wall_s=20, max_file_mb=1, tmpfs_mb=8))
    assert out == ["EFBIG", "ENOSPC"]


def test_privileged_calls_through_ctypes_are_refused() -> None:
    code = r'''
import ctypes, json, os
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def call(fn, *args):
    ctypes.set_errno(0)
    return [fn(*args), ctypes.get_errno()]
NR = {"bpf": 321, "perf_event_open": 298, "keyctl": 250, "kexec_load": 246, "init_module": 175,
      "userfaultfd": 323, "process_vm_readv": 310, "open_by_handle_at": 304, "io_uring_setup": 425,
      "clone": 56, "setns": 308, "pivot_root": 155}
out = {
    "ptrace": call(libc.ptrace, 16, 1, 0, 0),                        # PTRACE_ATTACH to PID 1
    "ptrace_traceme": call(libc.ptrace, 0, 0, 0, 0),
    "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "umount": call(libc.umount2, b"/proc", 2),
    "unshare_user": call(libc.unshare, 0x10000000),
    "unshare_net": call(libc.unshare, 0x40000000),
    "unshare_mount": call(libc.unshare, 0x00020000),
    "chroot": call(libc.chroot, b"/tmp"),
    "personality": call(libc.personality, 0x0040000),                 # ADDR_NO_RANDOMIZE
    "socket_inet": call(libc.socket, 2, 1, 0),
}
for name, nr in NR.items():
    args = (0x10000000 | 17, 0, 0, 0, 0) if name == "clone" else (0, 0, 0, 0, 0)  # CLONE_NEWUSER | SIGCHLD
    out[name] = call(libc.syscall, nr, *args)
out["seccomp_mode"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]
print(json.dumps(out))
'''
    out = run_json(code)
    assert out.pop("seccomp_mode") == "2"
    assert out.pop("socket_inet") == [-1, 97]  # EAFNOSUPPORT
    assert all(value == [-1, 1] for value in out.values()), {k: v for k, v in out.items() if v != [-1, 1]}  # EPERM


@pytest.mark.parametrize("how", ["int 0x80", "x32"])
def test_system_calls_of_another_abi_kill_the_process(how: str) -> None:
    """A deny list by number could be bypassed with the i386 or x32 numbers: those are killed."""
    if os.uname().machine != "x86_64":
        pytest.skip("x86-64 only")
    code = {
        "int 0x80": r'''
import ctypes, mmap
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(bytes([0xB8, 26, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 26 (i386 ptrace); int 0x80; ret
print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))())
''',
        "x32": "import ctypes\nprint(ctypes.CDLL('libc.so.6').syscall(0x40000000 | 101, 16, 1, 0, 0))  # x32 ptrace",
    }[how]
    result = run_python(code, limits=QUICK)
    assert result.signal == "SIGSYS" and result.killed_reason == "a forbidden system call (seccomp)", result
    assert result.stdout == ""


def test_os_system_and_subprocesses_stay_inside() -> None:
    code = r'''
import json, os, subprocess, sys
out = {"os.system": os.system("cat /etc/shadow")}  # no shell in the sandbox
try:
    subprocess.run(["/usr/bin/id"])
    out["id"] = "ran"
except OSError as e:
    out["id"] = type(e).__name__
child = subprocess.run([sys.executable, "-c",
    "import os, socket, json\n"
    "s = open('/proc/self/status').read()\n"
    "r = {'uid': os.getuid(), 'seccomp': 'Seccomp:\\t2' in s, 'shadow': os.path.exists('/etc/shadow')}\n"
    "try:\n    socket.socket(); r['socket'] = 'created'\nexcept OSError as e:\n    r['socket'] = e.errno\n"
    "print(json.dumps(r))"], capture_output=True, text=True)
out["child"] = json.loads(child.stdout)
print(json.dumps(out))
'''
    out = run_json(code)
    assert out["os.system"] != 0 and out["id"] == "FileNotFoundError"
    assert out["child"] == {"uid": 65534, "seccomp": True, "shadow": False, "socket": 97}


def test_proc_does_not_lead_out(monkeypatch: pytest.MonkeyPatch) -> None:
    token = uuid.uuid4().hex
    monkeypatch.setenv("SCIREFLECT_TEST_SECRET", token)
    host_pid = os.getpid()
    code = PROBE + f'''
out = {{name: probe(path) for name, path in [("root", "/proc/1/root/etc/hostname"), ("exe", "/proc/1/exe"),
        ("environ1", "/proc/1/environ"), ("mem1", "/proc/1/mem"), ("host_environ", "/proc/{host_pid}/environ"),
        ("host_root", "/proc/{host_pid}/root/etc/shadow")]}}
out["root_list"] = probe("/proc/1/root", "list")
out["self_root"] = probe("/proc/self/root", "list")
out["exe_write"] = probe("/proc/self/exe", "w")
out["sysctl_write"] = probe("/proc/sys/kernel/hostname", "w")
out["sysrq"] = probe("/proc/sysrq-trigger", "w")
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
out["environ"] = [open(f"/proc/{{p}}/environ", "rb").read().decode("latin-1") for p in out["pids"]
                  if os.access(f"/proc/{{p}}/environ", os.R_OK)] + [repr(dict(os.environ))]
print(json.dumps(out))
'''
    result = run_python(code, limits=QUICK)
    assert result.ok, result
    assert token not in result.stdout  # the caller's environment reaches no process of the sandbox
    out = json.loads(result.stdout)
    # PID 1 (boot.py) is not dumpable: its root, exe, environ and memory are closed to the code
    assert out["root"] == out["exe"] == out["environ1"] == out["mem1"] == out["root_list"] == "PermissionError"
    assert out["host_environ"] == out["host_root"] == "FileNotFoundError"  # host PIDs do not exist here
    assert out["pids"] == [1, 2]  # its own PID namespace: boot.py and the code
    assert {"proc", "tmp", "dev", "sandbox"} <= set(out["self_root"]) and "home" not in out["self_root"]
    assert out["exe_write"] != "ok" and out["sysctl_write"] != "ok" and out["sysrq"] != "ok"


def test_no_descriptor_of_the_supervisor_is_inherited() -> None:
    out = run_json("import json, os\nprint(json.dumps(sorted(int(fd) for fd in os.listdir('/proc/self/fd'))))")
    assert out in ([0, 1, 2], [0, 1, 2, 3])  # 3: the descriptor listdir itself opened


def test_runs_unprivileged_inside_and_outside() -> None:
    """Inside: nobody, no capabilities, no_new_privs. Outside: never uid 0 (a root caller's
    sandbox runs as nobody), so it is subject to RLIMIT_NPROC and owns no root file."""
    code = r'''
import json, os, time
s = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "CapEff": s["CapEff"],
                  "CapPrm": s["CapPrm"], "CapBnd": s["CapBnd"], "NoNewPrivs": s["NoNewPrivs"]}), flush=True)
time.sleep(3)
'''
    proc = subprocess.Popen([sys.executable, "-c", "import sys\nfrom scireflect.sandbox import run_python\n"
                             "print(run_python(sys.stdin.read()).stdout)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(code)
    proc.stdin.close()
    host_uids: set[int] = set()
    deadline = time.monotonic() + 30
    while not host_uids and time.monotonic() < deadline:  # the host's view of the processes inside
        for pid in sandbox_processes():
            try:
                status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            except OSError:
                continue
            if len(status["NSpid"].split()) > 1:  # in the sandbox's PID namespace (not bwrap outside it)
                host_uids.add(int(status["Uid"].split()[0]))
        time.sleep(0.05)
    stdout = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    out = json.loads(stdout.strip().splitlines()[0])
    assert out == {"uid": 65534, "gid": 65534, "groups": [], "CapEff": "0000000000000000",
                   "CapPrm": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}
    assert host_uids == {65534 if os.geteuid() == 0 else os.getuid()}, host_uids


def test_the_sandbox_dies_with_its_caller() -> None:
    """--die-with-parent: a supervisor killed with SIGKILL (no cleanup runs) leaves nothing behind."""
    before = set(sandbox_processes())
    caller = subprocess.Popen([sys.executable, "-c", "from scireflect.sandbox import run_python\n"
                               "run_python('import time\\ntime.sleep(120)')"])
    try:
        deadline = time.monotonic() + 30
        running: set[int] = set()
        while time.monotonic() < deadline:  # wait for the long sleeper (not the availability self-test)
            running = {pid for pid, cmd in sandbox_processes().items() if is_code(cmd)} - before
            if running:
                time.sleep(0.5)
                running &= set(sandbox_processes())
                if running:
                    break
            time.sleep(0.05)
        assert running, "the sandbox did not start"
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    assert not wait_until_gone(set(sandbox_processes()) - before), "sandbox outlived its killed caller"
