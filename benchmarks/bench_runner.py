"""Framework-overhead benchmark of the annotation runner (prints figures; not a test).

N questions go through the real runner (LangGraph graph, SQLite checkpointer, sandboxed verifier,
append-only traces) against the loopback mock OpenAI server with a fixed latency L per model call,
at several concurrencies. For each run it prints the wall time beside the ideal
``N * L * calls_per_question / concurrency`` (what an infinitely fast framework would take), the
framework's CPU time per graph step and per question (runner process plus its verifier workers; the
mock server runs in a separate process and is not counted), how busy that CPU was, the ceiling rate
that CPU cost allows, and the runner's peak memory.

    python benchmarks/bench_runner.py --questions 2000 --latency 0.05 --concurrency 1,16,64,256
    python benchmarks/bench_runner.py --verifier-checks 500        # sandboxed checks per second
    python benchmarks/bench_runner.py --embedded 4                 # end-to-end rate, embedded model
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _serve_mock(latency_s: float, conn) -> None:
    from scireflect.testing.mock_openai import MockOpenAI

    with MockOpenAI(latency_s=latency_s) as server:
        conn.send(server.base_url)
        conn.recv()  # wait for "stop"


def _cpu_seconds(mock_pid: int) -> tuple[float, float]:
    """CPU seconds so far of (the runner: this process and its child processes, i.e. the verifier
    workers; the mock server at ``mock_pid``). Live children are read with psutil; without it only
    children that have exited count, and the mock reads 0."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that have exited
    runner, mock = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 0.0
    try:
        import psutil
    except ImportError:
        return runner, mock
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            if child.pid == mock_pid:
                mock += times.user + times.system
            else:
                runner += times.user + times.system
    return runner, mock


def _questions(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"b{i:06d}", "subject": "math", "question": f"Benchmark item {i}: what is 6 x 7?",
                                 "answer": "42"}) + "\n")
    return path


async def _one_run(base_url: str, mock_pid: int, n: int, concurrency: int, workdir: Path, verifier) -> dict:
    from scireflect.run.config import LLMSettings, RunSettings
    from scireflect.run.questions import load_questions
    from scireflect.run.runner import annotate

    questions = load_questions(_questions(workdir / f"q{concurrency}.jsonl", n))
    llm = LLMSettings(base_url=base_url, model="mock-model", max_retries=2)
    settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=concurrency)
    (cpu0, mock0), t0 = _cpu_seconds(mock_pid), time.perf_counter()
    await annotate(questions, workdir / f"run{concurrency}", settings, verifier=verifier)
    wall, (cpu1, mock1) = time.perf_counter() - t0, _cpu_seconds(mock_pid)
    cpu, mock_cpu = cpu1 - cpu0, mock1 - mock0
    records = [json.loads(line) for line in (workdir / f"run{concurrency}" / "traces.jsonl").read_text().splitlines()]
    calls = sum(len(r["steps"]) for r in records)
    # graph steps: every node execution (solve/critique/revise/answer_guided = one call each,
    # plus one verify per solution and one finalize per question)
    solutions = sum(r["n_attempts"] for r in records)
    steps = calls + solutions + len(records)
    return {"n": n, "concurrency": concurrency, "wall_s": wall, "cpu_s": cpu, "mock_cpu_s": mock_cpu, "calls": calls, "steps": steps,
            "accepted": sum(r["status"] == "accepted" for r in records)}


def bench_runner(n: int, latency: float, concurrencies: list[int]) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve_mock, args=(latency, child), daemon=True)
    server.start()
    base_url = parent.recv()
    print(f"runner benchmark: {n} questions, mock latency {latency * 1000:.0f} ms per call, {os.cpu_count()} CPU cores")
    print(f"{'conc.':>6} {'calls':>7} {'wall s':>8} {'ideal s':>8} {'wall/ideal':>10} {'CPU ms/step':>12} {'CPU ms/q':>9} "
          f"{'CPU busy':>8} {'q/s':>8} {'ceiling q/s':>11} {'peak RSS MiB':>12} {'mock CPU ms/call':>16}")
    try:
        # One event loop for every run: langchain-openai caches its HTTP client per process.
        asyncio.run(_all_runs(base_url, server.pid, n, latency, concurrencies))
    finally:
        parent.send("stop")
        server.join(timeout=10)


async def _all_runs(base_url: str, mock_pid: int, n: int, latency: float, concurrencies: list[int]) -> None:
    from scireflect.verifiers import SandboxedAnswerVerifier

    with tempfile.TemporaryDirectory() as tmp, SandboxedAnswerVerifier(workers=max(1, (os.cpu_count() or 2) - 1)) as verifier:
        await verifier.averify("\\boxed{42}", {"answer": "42"})  # start the worker before timing
        for concurrency in concurrencies:
            r = await _one_run(base_url, mock_pid, n, concurrency, Path(tmp), verifier)
            ideal = r["calls"] * latency / concurrency
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            cpu_per_question = r["cpu_s"] / n
            # CPU busy: the runner's CPU seconds per wall second (1.0 = one core saturated);
            # ceiling: questions per second if the runner did nothing but its own work.
            print(f"{concurrency:>6} {r['calls']:>7} {r['wall_s']:>8.2f} {ideal:>8.2f} {r['wall_s'] / ideal:>10.2f} "
                  f"{1000 * r['cpu_s'] / r['steps']:>12.2f} {1000 * cpu_per_question:>9.2f} {r['cpu_s'] / r['wall_s']:>8.0%} "
                  f"{n / r['wall_s']:>8.1f} {1 / cpu_per_question:>11.0f} {rss:>12.0f} {1000 * r['mock_cpu_s'] / r['calls']:>16.2f}", flush=True)
    print("wall/ideal nears 1 only while the ideal rate (concurrency / latency per question) stays well below the "
          "ceiling q/s: the runner's event loop is one core. c=64 at 50 ms asks for 1,280 q/s, i.e. < 0.7 ms of "
          "runner CPU per question, and as many calls/s from the mock.")


def bench_verifier(n: int) -> None:
    from scireflect.verifiers import SandboxedAnswerVerifier

    cases = [("The total is \\boxed{72}.", {"answer": "72"}), ("so \\boxed{\\frac{9}{7}}", {"answer": "\\dfrac{9}{7}"}),
             ("\\boxed{50.70}", {"answer": "50.7", "unit": "$\\mathrm{atm}$"}), ("\\boxed{B}", {"answer": "B", "choices": ["a", "b", "c", "d"]}),
             ("\\boxed{(x+1)^2}", {"answer": "x^2+2x+1"})]
    workers = os.cpu_count() or 1

    async def run() -> float:
        with SandboxedAnswerVerifier(workers=workers) as verifier:
            await verifier.averify(*cases[0])
            t0 = time.perf_counter()
            await asyncio.gather(*(verifier.averify(*cases[i % len(cases)]) for i in range(n)))
            return time.perf_counter() - t0

    wall = asyncio.run(run())
    print(f"verifier: {n} sandboxed checks in {wall:.2f} s with {workers} worker(s): {n / wall:.0f} checks/s, "
          f"{n / wall / workers:.0f} checks/s per core (mix: integer, fraction, number+unit, choice, expression)")


def bench_embedded(n: int, model: str) -> None:
    import subprocess

    sample = Path(__file__).resolve().parents[1] / "data" / "sample" / "questions.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scireflect.cli", "annotate", str(sample), "--out", f"{tmp}/run", "--limit", str(n),
                        "--embedded-model", model], check=True)
        wall = time.perf_counter() - t0
        records = [json.loads(line) for line in Path(f"{tmp}/run/traces.jsonl").read_text().splitlines()]
    calls = sum(len(r["steps"]) for r in records)
    tokens = sum(r["tokens"] for r in records)
    print(f"embedded {model}: {n} questions in {wall:.0f} s ({wall / n:.0f} s per question, {calls} model calls, "
          f"{tokens} tokens); accepted {sum(r['status'] == 'accepted' for r in records)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="mock latency per model call, seconds")
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated concurrencies")
    parser.add_argument("--verifier-checks", type=int, default=0, help="also time this many sandboxed verifier checks")
    parser.add_argument("--embedded", type=int, default=0, help="also annotate this many sample questions with the embedded model")
    parser.add_argument("--embedded-model", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
    parser.add_argument("--skip-runner", action="store_true")
    args = parser.parse_args()
    if not args.skip_runner:
        bench_runner(args.questions, args.latency, [int(c) for c in args.concurrency.split(",")])
    if args.verifier_checks:
        bench_verifier(args.verifier_checks)
    if args.embedded:
        bench_embedded(args.embedded, args.embedded_model)


if __name__ == "__main__":
    main()
