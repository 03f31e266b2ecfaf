"""End to end on a real model: the CLI with the embedded Qwen2.5-Coder-0.5B on 2 real questions.

Needs the ``embedded-small`` extra (installed by ``pip install -e ".[test]"``). Marked ``slow``:
about a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scireflect.embedded import available_embedded_models

SMALL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "questions.jsonl"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SMALL not in available_embedded_models(), reason="embedded-small extra not installed"),
]


def test_cli_annotates_two_real_questions_with_the_embedded_model(tmp_path):
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    picked = [r for r in rows if r["id"] == "gsm8k-train-1235"] + [r for r in rows if r.get("choices")][:1]
    assert len(picked) == 2
    questions = tmp_path / "two.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in picked))
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["SCIREFLECT_CACHE"] = os.environ.get("SCIREFLECT_CACHE", str(Path.home() / ".cache" / "scireflect"))
    result = subprocess.run(
        [sys.executable, "-m", "scireflect.cli", "annotate", str(questions), "--out", str(run_dir),
         "--embedded-model", SMALL, "--concurrency", "2", "--budget", "attempts=3,reflections=1", "--max-tokens", "700"],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    traces = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    assert sorted(t["id"] for t in traces) == sorted(r["id"] for r in picked)
    for trace in traces:
        assert trace["status"] in ("accepted", "rejected", "invalid")
        first = trace["steps"][0]
        assert first["role"] == "solver" and first["response"].strip() and first["output_tokens"] > 0
        assert first["verdict"] is not None and first["model"] == SMALL
    accepted = [t for t in traces if t["status"] == "accepted"]
    sft = [json.loads(line) for line in (run_dir / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == len(accepted) >= 1
    # The summary table: one row per subject and the total.
    assert "scireflect annotate" in result.stdout and "all" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["all"]["questions"] == 2 and summary["all"]["accepted"] == len(accepted)
    assert (run_dir / "embedded-server.log").stat().st_size > 0


def test_embedded_server_exits_when_its_runner_is_killed(tmp_path):
    # A runner killed by SIGKILL cannot stop its server (own session, so Ctrl-C reaches only the
    # runner); the server must notice and exit rather than serve, and compute, forever.
    import signal
    import time

    script = (
        "import asyncio, os, sys\n"
        "from scireflect.embedded import EmbeddedServer, materialise_embedded_model\n"
        "async def main():\n"
        f"    async with EmbeddedServer(materialise_embedded_model({SMALL!r})) as server:\n"
        "        print(server._proc.pid, flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(runner.stdout.readline())
        os.kill(server_pid, 0)  # serving
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(server_pid, signal.SIGKILL)
            pytest.fail("the embedded server outlived its killed runner by 15 s")
    finally:
        if runner.poll() is None:
            runner.kill()
