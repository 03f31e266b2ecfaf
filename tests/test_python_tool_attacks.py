"""Attacks on the sandbox driven end to end through ``annotate``: a scripted model writes the attack code.

Each question's Solver writes one attack in a ```python block (the plain-text tool format); the run
executes it in the sandbox, gives the model the output, and goes on. The test then checks the run
finished every question, the trace recorded each execution's containment (exit status, stderr,
killed reason), the host saw nothing (files, a loopback listener, the run directory's secret), no
sandbox process is left, and ``traces show`` and the viewer show the record.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.run.config import load_settings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.sandbox import sandbox_available
from tests.fakes import ScriptedChatModel
from tests.test_sandbox_security import sandbox_processes, wait_until_gone

AVAILABLE, WHY = sandbox_available()
pytestmark = [pytest.mark.skipif(not AVAILABLE and not os.environ.get("CI"), reason=f"sandbox unavailable here: {WHY}"),
              pytest.mark.timeout(300)]

READ = "import json\ntry:\n    print(open({path!r}).read()[:200])\nexcept OSError as e:\n    print(type(e).__name__)\n"
WRITE = "for p in {paths!r}:\n    try:\n        open(p, 'w').write('pwned')\n        print('wrote', p)\n    except OSError as e:\n        print(type(e).__name__)\n"


def _attacks(run_dir: Path, home: Path, port: int, project: Path) -> dict[str, str]:
    return {
        "shadow": READ.format(path="/etc/shadow"),
        "run-dir": READ.format(path=str(run_dir / "secret.txt")),
        "home": READ.format(path=str(home / ".secret")),
        "writes": WRITE.format(paths=[str(run_dir / "pwned"), str(project / "pwned"), "/pwned", "/tmp/ok"]),
        "loopback": ("import socket\nfor fam, addr in [(socket.AF_INET, ('127.0.0.1', PORT)), (socket.AF_UNIX, '\\0x')]:\n"
                     "    try:\n        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(2); s.connect(addr); print('connected')\n"
                     "    except OSError as e:\n        print(type(e).__name__, e.errno)\n").replace("PORT", str(port)),
        "fork-bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "memory": "b = bytearray(10 * 1024 ** 3)\nprint('allocated')\n",
        "busy-loop": "while True:\n    pass\n",
        "flood": "import sys\nsys.stdout.write('x' * 100_000_000)\n",
        "escape": ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('ptrace', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n"
                   "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\nprint('system', os.system('id'))\n"),
        "proc": (READ.format(path="/proc/1/environ") + "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
                 + "print(os.getuid())\n"),
    }


def _model(attacks: dict[str, str]) -> ScriptedChatModel:
    def reply(messages):
        if isinstance(messages[-1], AIMessage):  # the output is in: finish
            return "I have read the output.\n\\boxed{0}"
        name = str(messages[-1].content).split(":", 1)[1].split(".")[0].strip()
        return f"Let me check.\n```python\n{attacks[name]}```\n"

    return ScriptedChatModel(replies=[reply] * (2 * len(attacks) + 4))


async def test_attacks_through_the_annotate_run_are_contained_and_recorded(tmp_path: Path, monkeypatch) -> None:
    run_dir, home, project = tmp_path / "run", tmp_path / "home", Path(__file__).resolve().parents[1]
    run_dir.mkdir()
    home.mkdir()
    secret = uuid.uuid4().hex
    (run_dir / "secret.txt").write_text(secret)
    (home / ".secret").write_text(secret)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SCIREFLECT_TEST_SECRET", secret)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    attacks = _attacks(run_dir, home, listener.getsockname()[1], project)
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": name, "subject": "physics", "answer": "1",
                                             "question": f"Attack: {name}. What is printed?"}) + "\n" for name in attacks))
    model = _model(attacks)
    team = AgentTeam.from_models({r: (model, "scripted") for r in ("solver", "critic", "reviser")}, retry=RetryPolicy(max_retries=0))
    settings = load_settings(tools="python", tool_format="text", budget="attempts=1", concurrency=2)
    settings = type(settings)(**{**settings.__dict__, "python_timeout_s": 6.0})
    before = set(sandbox_processes())
    try:
        result = await annotate(load_questions(questions), run_dir, settings, team=team)
    finally:
        listener_got = None
        try:
            listener_got = listener.accept()
        except BlockingIOError:
            pass
        listener.close()

    # the run went on: every question has its trace line, each with its execution
    assert result.finished_now == len(attacks)
    records = {r["id"]: r for r in map(json.loads, (run_dir / "traces.jsonl").read_text().splitlines())}
    calls = {qid: r["steps"][0]["tool_calls"] for qid, r in records.items()}
    assert all(len(c) == 1 and c[0]["name"] == "python" and c[0]["args"]["code"] == attacks[qid].rstrip("\n") for qid, c in calls.items())
    ex = {qid: c[0]["execution"] for qid, c in calls.items()}
    shown = {qid: c[0]["result"] for qid, c in calls.items()}

    # what the code saw, as the trace recorded it
    assert shown["shadow"] == shown["run-dir"] == shown["home"] == "FileNotFoundError"
    writes = shown["writes"].splitlines()  # run dir: not mounted; project and /: read-only; the private /tmp: writable
    # a project under /tmp shows inside as an empty directory of the private tmpfs (a parent of the bound
    # venv), so a write there lands on that tmpfs; the host check below is what counts
    in_private_tmp = [f"wrote {project / 'pwned'}"] if str(project).startswith("/tmp/") else []
    assert writes[0] == "FileNotFoundError" and writes[1] in ("FileNotFoundError", "OSError", *in_private_tmp) and writes[2] == "OSError"
    assert writes[3] == "wrote /tmp/ok"
    assert shown["loopback"].splitlines()[0].startswith(("OSError 97", "ConnectionRefusedError")) and "connected" not in shown["loopback"]
    assert ex["fork-bomb"]["killed_reason"] is not None and calls["fork-bomb"][0]["error"].startswith("killed:")
    assert ex["memory"]["exit_status"] == 1 and "MemoryError" in ex["memory"]["stderr"] and calls["memory"][0]["error"] == "MemoryError"
    assert ex["busy-loop"]["killed_reason"] in ("CPU time limit of 4 s", "wall-clock limit of 6 s")
    assert ex["flood"]["truncated"] and ex["flood"]["killed_reason"].startswith("output limit")
    assert len(ex["flood"]["stdout"]) <= 200_000 and len(shown["flood"]) < 2_100  # the model is shown a clip
    assert shown["escape"].splitlines() == ["ptrace -1 1", "unshare -1 1", "system 32512"]  # EPERM, EPERM, no shell (127)
    proc = shown["proc"].splitlines()
    assert proc[0] in ("PermissionError", "FileNotFoundError") and max(json.loads(proc[1])) < 10 and proc[2] == "65534"
    assert all(secret not in json.dumps(r) for r in records.values())  # no secret reached a trace

    # what the host saw
    assert not (run_dir / "pwned").exists() and not (project / "pwned").exists() and not Path("/pwned").exists()
    assert listener_got is None
    assert not wait_until_gone(set(sandbox_processes()) - before)

    # the record is shown by `traces show` and the viewer
    from rich.console import Console

    from scireflect.cli.render import render_trace
    from scireflect.viewer.pages import question_html

    console = Console(width=200, record=True)
    console.print(render_trace(records["busy-loop"]))
    text = console.export_text()
    assert "tool call: python (killed: " in text and "while True:" in text
    page = question_html(records["memory"])
    assert "exit 1: MemoryError" in page and "bytearray(10 * 1024 ** 3)" in page and "MemoryError" in page
