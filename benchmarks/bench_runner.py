"""Framework-overhead benchmark of the annotation runner (prints figures; not a test).

With no arguments it prints, in one run, the figures README "Benchmarks" quotes: the runner's CPU
per question, wall/ideal at concurrency 64 with 50 ms and with 1 s model calls, and the rate of a
Ray run with 1 and with 2 shard workers against the mock endpoint (the Ray part runs in a
loopback-only network namespace of its own, see scireflect.testing.netns; it is skipped where that
cannot be made).

N questions go through the real runner (LangGraph graph, SQLite checkpointer, the run's verifier,
append-only traces) against the loopback mock OpenAI server with a fixed latency L per model call,
at several concurrencies. For each run it prints the wall time beside the ideal
``N * L * calls_per_question / concurrency`` (what an infinitely fast framework would take), the
framework's CPU time per graph step and per question (runner process plus its verifier workers; the
mock server runs in a separate process and is not counted), how busy that CPU was, the ceiling rate
that CPU cost allows, and the runner's peak memory.

    python benchmarks/bench_runner.py                              # the README figures
    python benchmarks/bench_runner.py --grid --questions 2000 --latency 0.05 --concurrency 1,16,64,256
    python benchmarks/bench_runner.py --verifier-checks 500        # sandboxed checks per second
    python benchmarks/bench_runner.py --skip-runner --skip-ray --http   # the HTTP client, aiohttp vs httpx2
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


async def _one_run(base_url: str, mock_pid: int, n: int, concurrency: int, workdir: Path, verifier, tag: str = "") -> dict:
    from scireflect.run.config import LLMSettings, RunSettings
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate

    questions = load_questions(_questions(workdir / f"q{concurrency}{tag}.jsonl", n))
    llm = LLMSettings(base_url=base_url, model="mock-model", max_retries=2)
    settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=concurrency)
    (cpu0, mock0), t0 = _cpu_seconds(mock_pid), time.perf_counter()
    await annotate(questions, workdir / f"run{concurrency}{tag}", settings, verifier=verifier)
    wall, (cpu1, mock1) = time.perf_counter() - t0, _cpu_seconds(mock_pid)
    cpu, mock_cpu = cpu1 - cpu0, mock1 - mock0
    records = [json.loads(line) for line in (workdir / f"run{concurrency}{tag}" / "traces.jsonl").read_text().splitlines()]
    calls = sum(len(r["steps"]) for r in records)
    # graph steps: every node execution (solve/critique/revise/answer_guided = one call each,
    # plus one verify per solution and one finalize per question)
    solutions = sum(r["n_attempts"] for r in records)
    steps = calls + solutions + len(records)
    return {"n": n, "concurrency": concurrency, "wall_s": wall, "cpu_s": cpu, "mock_cpu_s": mock_cpu, "calls": calls, "steps": steps,
            "accepted": sum(r["status"] == "accepted" for r in records)}


def _start_mock(latency: float):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve_mock, args=(latency, child), daemon=True)
    server.start()
    return server, parent, parent.recv()


def _stop_mock(server, parent) -> None:
    parent.send("stop")
    server.join(timeout=10)


HEADER = (f"{'conc.':>6} {'latency':>8} {'calls':>7} {'wall s':>8} {'ideal s':>8} {'wall/ideal':>10} {'CPU ms/step':>12} {'CPU ms/q':>9} "
          f"{'CPU busy':>8} {'q/s':>8} {'ceiling q/s':>11} {'peak RSS MiB':>12} {'mock CPU ms/call':>16}")


def _row(r: dict, latency: float) -> str:
    ideal = r["calls"] * latency / r["concurrency"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu_per_question = r["cpu_s"] / r["n"]
    # CPU busy: the runner's CPU seconds per wall second (1.0 = one core saturated);
    # ceiling: questions per second if the runner did nothing but its own work.
    return (f"{r['concurrency']:>6} {latency * 1000:>6.0f}ms {r['calls']:>7} {r['wall_s']:>8.2f} {ideal:>8.2f} {r['wall_s'] / ideal:>10.2f} "
            f"{1000 * r['cpu_s'] / r['steps']:>12.2f} {1000 * cpu_per_question:>9.2f} {r['cpu_s'] / r['wall_s']:>8.0%} "
            f"{r['n'] / r['wall_s']:>8.1f} {1 / cpu_per_question:>11.0f} {rss:>12.0f} {1000 * r['mock_cpu_s'] / r['calls']:>16.2f}")


def bench_runner(runs: list[tuple[int, float, int]]) -> None:
    """``runs``: ``(questions, latency s, concurrency)``; one mock server per latency."""
    print(f"runner benchmark: one process, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f}")
    print(HEADER)
    for latency in dict.fromkeys(lat for _, lat, _ in runs):
        server, parent, base_url = _start_mock(latency)
        try:
            # One event loop for every run of a latency, sharing the sandboxed verifier (each run opens its own connections).
            asyncio.run(_all_runs(base_url, server.pid, [(n, c) for n, lat, c in runs if lat == latency], latency))
        finally:
            _stop_mock(server, parent)
    print("wall/ideal nears 1 only while the ideal rate (concurrency / latency per question) stays well below the "
          "ceiling q/s: the runner's event loop is one core.")


async def _all_runs(base_url: str, mock_pid: int, runs: list[tuple[int, int]], latency: float) -> None:
    from scireflect.run.config import RunSettings
    from scireflect.run.runner import make_verifier

    with tempfile.TemporaryDirectory() as tmp:
        verifier = make_verifier(RunSettings(concurrency=64))  # the run's verifier: sandbox, cheap answers in-process
        await verifier.averify("\\boxed{x+1}", {"answer": "1+x"})  # start the sandbox worker before timing
        try:
            for i, (n, concurrency) in enumerate(runs):
                r = await _one_run(base_url, mock_pid, n, concurrency, Path(tmp), verifier, tag=f"-{i}")
                print(_row(r, latency), flush=True)
        finally:
            verifier.close()


def bench_ray(n: int, latency: float, concurrency: int, workers: list[int]) -> None:
    """Questions per second of a Ray run (``annotate_on_ray``) with 1, 2, ... shard workers, in a
    loopback-only network namespace (this script runs itself there with ``--ray-inside``)."""
    import subprocess

    from scireflect.testing.netns import loopback_only, why_no_netns

    reason = why_no_netns()
    if reason:
        print(f"Ray: skipped ({reason})")
        return
    cmd = [sys.executable, __file__, "--ray-inside", "--ray-questions", str(n), "--latency", str(latency),
           "--concurrency", str(concurrency), "--ray-workers", ",".join(map(str, workers))]
    subprocess.run(loopback_only(cmd), check=True)


def _ray_inside(n: int, latency: float, concurrency: int, workers: list[int]) -> None:
    import logging

    import ray

    from scireflect.run.cluster import annotate_on_ray
    from scireflect.run.config import LLMSettings, RunSettings
    from scireflect.rundata.questions import load_questions

    server, parent, base_url = _start_mock(latency)
    ray.init(num_cpus=max(workers), object_store_memory=100 * 1024 * 1024, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    print(f"Ray: {n} questions, mock latency {latency * 1000:.0f} ms, concurrency {concurrency} per worker; "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k in workers:
                questions = load_questions(_questions(Path(tmp) / f"q{k}.jsonl", n))
                llm = LLMSettings(base_url=base_url, model="mock-model", max_retries=2)
                settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=concurrency)
                stamps: list[float] = []

                def on_event(kind, data, stamps=stamps):
                    if kind == "done":
                        stamps.append(time.perf_counter())

                t0 = time.perf_counter()
                result = asyncio.run(annotate_on_ray(questions, Path(tmp) / f"run{k}", settings, address="auto", shards=k,
                                                     on_event=on_event))
                wall = time.perf_counter() - t0
                steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
                print(f"  {k} worker(s): {result.finished_now} questions in {wall:.1f} s = {n / wall:.0f} q/s with start-up; "
                      f"{steady:.0f} q/s from the first answer to the last", flush=True)
                if not ray.is_initialized():  # annotate_on_ray disconnects: start the next one afresh
                    ray.init(num_cpus=max(workers), object_store_memory=100 * 1024 * 1024, include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False)
    finally:
        ray.shutdown()
        _stop_mock(server, parent)


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


def bench_http(latency: float, rounds: int, concurrencies: list[int]) -> None:
    """CPU per streamed call of the lean client (aiohttp) beside the same request and event reading
    over httpx2 (the openai SDK's HTTP library, which the lean client used before), ``c`` calls at
    once for ``rounds`` rounds against the mock: the figure behind agents/openai_chat.py's choice."""
    import json as json_

    from scireflect.agents.openai_chat import OpenAIStreamingChat, http

    messages = [{"role": "system", "content": "You solve."}, {"role": "user", "content": "Item 1: what is 6 x 7?"}]

    async def lean(url: str, c: int) -> float:
        chat = OpenAIStreamingChat(base_url=url, model="mock-model", api_key="k", temperature=0.0, max_tokens=64, timeout_s=30)
        try:
            return await _timed_rounds(lambda: chat.astream_reply(messages, lambda text: None), c, rounds)
        finally:
            await chat.aclose()

    async def httpx2(url: str, c: int) -> float:
        async with http.AsyncClient(timeout=http.Timeout(30), limits=http.Limits(max_connections=1000, max_keepalive_connections=100)) as client:
            body = OpenAIStreamingChat(base_url=url, model="mock-model", api_key="k", temperature=0.0, max_tokens=64, timeout_s=30).request(messages)

            async def call() -> None:
                async with client.stream("POST", url + "/chat/completions", json=body) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:") and line[5:].strip() != "[DONE]":
                            json_.loads(line[5:])

            return await _timed_rounds(call, c, rounds)

    server, parent, base_url = _start_mock(latency)
    try:
        print(f"HTTP client: CPU ms per streamed call, mock latency {latency * 1000:.0f} ms, {rounds} rounds; "
              f"load average {os.getloadavg()[0]:.2f}")
        for c in concurrencies:
            print(f"  {c:>3} at once: lean client (aiohttp) {asyncio.run(lean(base_url, c)):.2f} ms, "
                  f"httpx2 {asyncio.run(httpx2(base_url, c)):.2f} ms", flush=True)
    finally:
        _stop_mock(server, parent)


async def _timed_rounds(call, c: int, rounds: int) -> float:
    """CPU ms per call of ``rounds`` rounds of ``c`` calls at once, after one warm-up round."""
    await asyncio.gather(*(call() for _ in range(c)))
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(rounds):
        await asyncio.gather(*(call() for _ in range(c)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return 1000 * cpu / (c * rounds)


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
    parser.add_argument("--grid", action="store_true", help="run --questions at --latency for each of --concurrency instead")
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="mock latency per model call, seconds")
    parser.add_argument("--concurrency", default="1,16,64,256", help="comma-separated concurrencies (--grid)")
    parser.add_argument("--fast-questions", type=int, default=1000, help="questions of the c=64, 50 ms run")
    parser.add_argument("--slow-questions", type=int, default=640, help="questions of the c=64, 1 s run")
    parser.add_argument("--ray-questions", type=int, default=1000)
    parser.add_argument("--ray-workers", default="1,2")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--ray-inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--verifier-checks", type=int, default=0, help="also time this many sandboxed verifier checks")
    parser.add_argument("--embedded", type=int, default=0, help="also annotate this many sample questions with the embedded model")
    parser.add_argument("--embedded-model", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
    parser.add_argument("--skip-runner", action="store_true")
    parser.add_argument("--http", action="store_true", help="also compare the lean client's HTTP library with httpx2 (CPU per call)")
    args = parser.parse_args()
    workers = [int(k) for k in args.ray_workers.split(",")]
    if args.ray_inside:
        _ray_inside(args.ray_questions, args.latency, int(args.concurrency.split(",")[0]), workers)
        return
    if not args.skip_runner:
        if args.grid:
            bench_runner([(args.questions, args.latency, int(c)) for c in args.concurrency.split(",")])
        else:
            bench_runner([(args.fast_questions, 0.05, 64), (args.slow_questions, 1.0, 64)])
    if not args.skip_ray and not args.grid:
        bench_ray(args.ray_questions, 0.05, 64, workers)
    if args.verifier_checks:
        bench_verifier(args.verifier_checks)
    if args.http:
        bench_http(0.2, 10, [1, 16, 64])
    if args.embedded:
        bench_embedded(args.embedded, args.embedded_model)


if __name__ == "__main__":
    main()
