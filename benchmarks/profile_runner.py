"""Where the runner's CPU per question goes (prints figures; not a test).

The same N questions go through the real runner at concurrency 16 against the mock endpoint with
no latency (so the runner is CPU-bound), once as it is and once with one part replaced by a free
stand-in; the difference is that part's cost per question:

* model calls: the lean streaming client replaced by one that answers at once without HTTP;
* checkpoints: the SQLite checkpointer replaced by LangGraph's in-memory one;
* the trace line's fsync: appends without fsync.

    python benchmarks/profile_runner.py --questions 400

CPU is this process's and its children's (the sandbox workers), never the mock server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

from bench_runner import _cpu_seconds, _questions, _start_mock, _stop_mock


async def _variant(name: str, url: str, mock_pid: int, n: int, tmp: Path, patches: list[tuple[object, str, object]]) -> float:
    from scireflect.run.config import LLMSettings, RunSettings
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate, make_verifier

    questions = load_questions(_questions(tmp / f"{name}.jsonl", n))
    llm = LLMSettings(base_url=url, model="mock-model", max_retries=2)
    settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=16)
    verifier = make_verifier(settings, workers=1)
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    for owner, attr, value in patches:
        setattr(owner, attr, value)
    try:
        (cpu0, _), t0 = _cpu_seconds(mock_pid), time.perf_counter()
        await annotate(questions, tmp / f"run-{name}", settings, verifier=verifier)
        (cpu1, _), wall = _cpu_seconds(mock_pid), time.perf_counter() - t0
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)
        verifier.close()
    per_question = 1000 * (cpu1 - cpu0) / n
    print(f"  {name:<34} {per_question:6.2f} ms CPU per question  ({n / wall:5.0f} q/s)", flush=True)
    return per_question


def _stand_ins() -> dict[str, list[tuple[object, str, object]]]:
    from langchain_core.messages import AIMessage
    from langgraph.checkpoint.memory import InMemorySaver

    import scireflect.agents.openai_chat as chat
    import scireflect.rundata.checkpoints as checkpoints
    import scireflect.rundata.jsonl as jsonl
    import scireflect.run.runner as runner
    import scireflect.rundata.store as store

    reply = "Step 1: work it out.\nStep 2: the result is 42.\n\\boxed{42}"

    async def no_http(self, messages, on_text):
        on_text(reply)
        return AIMessage(content=reply, usage_metadata={"input_tokens": 60, "output_tokens": 12, "total_tokens": 72},
                         response_metadata={"model_name": self.model_name, "finish_reason": "stop"})

    @contextlib.asynccontextmanager
    async def in_memory(*args, **kwargs):
        yield InMemorySaver()

    async def no_threads(saver):
        return set()

    def no_fsync(path, lines):
        with open(path, "ab") as fh:
            fh.write(b"".join(lines))

    return {
        "model calls (HTTP, SSE parsing)": [(chat.OpenAIStreamingChat, "astream_reply", no_http)],
        "checkpoints (SQLite)": [(runner, "open_run_checkpointer", in_memory), (runner, "checkpointed_threads", no_threads),
                                 (checkpoints, "compact", lambda path: "kept")],
        "trace line fsync": [(store, "append_lines", no_fsync), (jsonl, "append_lines", no_fsync)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=400)
    args = parser.parse_args()
    server, parent, url = _start_mock(0.0)
    print(f"runner CPU per question, {args.questions} questions at concurrency 16, no model latency; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            await _variant("warm-up", url, server.pid, 50, Path(tmp), [])
            full = await _variant("everything", url, server.pid, args.questions, Path(tmp), [])
            for part, patches in _stand_ins().items():
                without = await _variant(f"without {part}", url, server.pid, args.questions, Path(tmp), patches)
                print(f"    -> {part}: {full - without:.2f} ms per question")

    try:
        asyncio.run(run())
    finally:
        _stop_mock(server, parent)


if __name__ == "__main__":
    main()
