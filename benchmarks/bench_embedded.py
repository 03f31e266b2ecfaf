"""Embedded model speed: llama.cpp's raw rates beside what the annotate loop gets (prints figures; not a test).

``raw``: the embedded server alone. For each server setting, one Solver request (a real GSM8K prompt,
greedy), then P requests at once (P = the slots): prompt-processing and generation rates from
llama.cpp's own ``timings``, the aggregate generation rate (tokens / wall second), and with a draft
model the drafted and accepted tokens.

``loop``: the whole annotate loop (graph, verifier, checkpoints, the agents' streamed calls) on the
first N GSM8K questions of ``data/sample/questions.jsonl``, once per configuration, side by side:
questions/hour, accepted questions, completion tokens/s over the whole run, and from the server's
counters the time in prompt processing vs generation, prompt tokens processed per call (the rest came
from the prompt cache), and the slots' idle share (slot-seconds not spent on a request).

    python benchmarks/bench_embedded.py raw --model 1.5b --slots 1,2,4 --draft none,0.5b
    python benchmarks/bench_embedded.py loop --questions 10 --configs today,cache,speculative,slots3

Run it under the shared measurement lock (``flock /work/measure.lock -c '...'``) and quote it with
the load average it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "questions.jsonl"


def _gsm8k(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    picked = [r for r in rows if r["id"].startswith("gsm8k")][:n]
    if len(picked) < n:
        raise SystemExit(f"{SAMPLE} has only {len(picked)} GSM8K questions")
    return picked


def _solver_messages(question: dict[str, Any]) -> list[dict[str, str]]:
    from scireflect.agents.prompts import ANSWER_PROMPTS, subject_variant

    template, variables = ANSWER_PROMPTS.solve(question, subject_variant(question.get("subject")))
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles[m.type], "content": str(m.content)} for m in template.format_messages(**variables)]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _complete(client: Any, base_url: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    body = {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": max_tokens, "cache_prompt": False}
    response = await client.post(f"{base_url}/chat/completions", json=body)
    response.raise_for_status()
    return response.json()


async def _raw_one(gguf: Path, slots: int, threads: int, draft: Any, questions: list[dict[str, Any]], max_tokens: int) -> dict:
    import httpx

    from scireflect.embedded import EmbeddedServer

    async with EmbeddedServer(gguf, parallel=slots, threads=threads, context_per_slot=4096, draft=draft) as server:
        async with httpx.AsyncClient(timeout=600.0) as client:
            await _complete(client, server.base_url, _solver_messages(questions[-1]), 8)  # warm up
            one = (await _complete(client, server.base_url, _solver_messages(questions[0]), max_tokens))["timings"]
            t0 = time.perf_counter()
            many = await asyncio.gather(*(_complete(client, server.base_url, _solver_messages(q), max_tokens)
                                          for q in questions[:slots]))
            wall = time.perf_counter() - t0
    timings = [m["timings"] for m in many]
    generated = sum(t["predicted_n"] for t in timings)
    drafted = sum(t.get("draft_n", 0) for t in timings) + one.get("draft_n", 0)
    accepted = sum(t.get("draft_n_accepted", 0) for t in timings) + one.get("draft_n_accepted", 0)
    return {"pp_1": one["prompt_per_second"], "tg_1": one["predicted_per_second"],
            "tg_1_wall": one["predicted_n"] / ((one["prompt_ms"] + one["predicted_ms"]) / 1000),
            "tg_P": generated / wall, "tokens_P": generated,
            "draft": f"{accepted}/{drafted}" if drafted else "-"}


def raw(args: argparse.Namespace) -> None:
    from scireflect.embedded import DraftSettings, materialise_embedded_model, resolve_embedded_model

    gguf = materialise_embedded_model(args.model)
    questions = _gsm8k(max(int(s) for s in args.slots.split(",")) + 1)
    print(f"raw llama.cpp rates: {resolve_embedded_model(args.model)}, {args.threads} threads, greedy, "
          f"max_tokens {args.max_tokens}, load average {_load()}")
    print(f"{'slots':>5} {'draft':>14} {'pp t/s (1)':>10} {'tg t/s (1)':>10} {'tg t/s (P at once)':>18} {'accepted/drafted':>16}")
    for draft_name in args.draft.split(","):
        for n_max in [int(x) for x in args.draft_max.split(",")] if draft_name != "none" else [0]:
            draft = None
            if draft_name != "none":
                draft = DraftSettings(materialise_embedded_model(draft_name), resolve_embedded_model(draft_name), n_max=n_max,
                                      p_min=args.draft_p_min)
            for slots in (int(s) for s in args.slots.split(",")):
                r = asyncio.run(_raw_one(gguf, slots, args.threads, draft, questions, args.max_tokens))
                label = f"{draft_name} n{n_max}" if draft else "none"
                print(f"{slots:>5} {label:>14} {r['pp_1']:>10.1f} {r['tg_1']:>10.2f} {r['tg_P']:>18.2f} {r['draft']:>16}",
                      flush=True)
    print(f"load average after: {_load()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("raw", help="llama.cpp alone: one request, then P at once")
    p.add_argument("--model", default="1.5b")
    p.add_argument("--slots", default="1,2,4", help="comma-separated slot counts")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--draft", default="none,0.5b", help="comma-separated: none or a draft model name")
    p.add_argument("--draft-max", default="8", help="comma-separated n_max values to try")
    p.add_argument("--draft-p-min", type=float, default=0.75)
    p.add_argument("--max-tokens", type=int, default=256)
    p.set_defaults(func=raw)
    q = sub.add_parser("loop", help="the annotate loop, side by side per configuration")
    q.add_argument("--questions", type=int, default=10)
    q.add_argument("--configs", default="today,cache,speculative,tuned")
    q.add_argument("--model", default="1.5b")
    q.add_argument("--keep", type=Path, default=None, help="keep the run directories and results here (the table then "
                   "also shows results of earlier invocations with the same directory)")
    q.set_defaults(func=lambda a: loop(a))
    args = parser.parse_args(argv)
    args.func(args)


#: The configurations of ``loop``, each adding one change to the one before (``load_settings`` keywords).
CONFIGS: dict[str, dict[str, Any]] = {
    "today": {"concurrency": 2, "speculative": "off", "slot_affinity": False},
    "cache": {"concurrency": 2, "speculative": "off", "slot_affinity": True},
    "speculative": {"concurrency": 2, "speculative": "auto", "slot_affinity": True},
    "tuned": {"concurrency": None, "speculative": "auto", "slot_affinity": True},  # slots from the core count
    "slots3": {"concurrency": 3, "speculative": "auto", "slot_affinity": True},  # one slot more than 2 cores get
}


def _server_metrics(log: Path) -> dict[str, float]:
    prefix = "scireflect embedded server metrics: "
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(prefix)] if log.exists() else []
    return json.loads(lines[-1][len(prefix):]) if lines else {}


def _loop_one(name: str, questions_path: Path, run_dir: Path, model: str) -> dict[str, Any]:
    from scireflect.run.config import load_settings
    from scireflect.rundata.files import SERVER_LOG, TRACES
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate

    settings = load_settings(embedded_model=model, **CONFIGS[name])
    shutil.rmtree(run_dir, ignore_errors=True)  # a run directory left by an earlier invocation would resume
    questions = load_questions(questions_path)
    t0 = time.perf_counter()
    asyncio.run(annotate(questions, run_dir, settings))
    wall = time.perf_counter() - t0
    records = [json.loads(line) for line in (run_dir / TRACES).read_text().splitlines()]
    steps = [s for r in records for s in r["steps"] if s.get("role")]
    m = _server_metrics(run_dir / SERVER_LOG)
    pp_s, tg_s = m.get("prompt_seconds_total", 0.0), m.get("tokens_predicted_seconds_total", 0.0)
    busy = (pp_s + tg_s) / (wall * settings.concurrency) if wall else 0.0
    return {"config": name, "slots": settings.concurrency, "questions": len(records), "wall_s": wall,
            "q_per_h": 3600 * len(records) / wall, "accepted": sum(r["status"] == "accepted" for r in records),
            "calls": len(steps), "out_tokens": sum(s["output_tokens"] for s in steps),
            "tok_s": sum(s["output_tokens"] for s in steps) / wall,
            "prompt_tokens_per_call": sum(s["input_tokens"] for s in steps) / max(1, len(steps)),
            "processed_per_call": m.get("prompt_tokens_total", float("nan")) / max(1, len(steps)),
            "pp_share": pp_s / (pp_s + tg_s) if pp_s + tg_s else float("nan"), "slot_idle": 1 - busy, "metrics": m}


def loop(args: argparse.Namespace) -> None:
    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-embedded-"))
    work.mkdir(parents=True, exist_ok=True)
    qpath = work / "questions.jsonl"
    qpath.write_text("".join(json.dumps(q) + "\n" for q in _gsm8k(args.questions)))
    print(f"annotate loop: first {args.questions} GSM8K questions of {SAMPLE.relative_to(ROOT)}, embedded {args.model}, "
          f"{os.cpu_count()} cores, load average {_load()}", flush=True)
    results = []
    for name in names:
        r = _loop_one(name, qpath, work / f"run-{name}", args.model)
        results.append(r)
        r["load_after"] = _load()
        print(f"  {name}: {r['questions']} questions in {r['wall_s']:.0f} s, accepted {r['accepted']}, "
              f"load average {r['load_after']}", flush=True)
        (work / f"result-{name}.json").write_text(json.dumps(r, indent=1))
    # Results of earlier invocations with the same --keep directory join the table, in config order.
    done = {r["config"]: r for r in results}
    for name in CONFIGS:
        if name not in done and (work / f"result-{name}.json").exists():
            done[name] = json.loads((work / f"result-{name}.json").read_text())
    results = [done[n] for n in CONFIGS if n in done]
    base = results[0]["q_per_h"]
    print(f"{'config':<12} {'slots':>5} {'q/hour':>7} {'x':>5} {'accepted':>8} {'tok/s':>6} {'calls':>5} "
          f"{'prompt tok/call':>15} {'processed/call':>14} {'pp share':>8} {'slot idle':>9}")
    for r in results:
        print(f"{r['config']:<12} {r['slots']:>5} {r['q_per_h']:>7.1f} {r['q_per_h'] / base:>5.2f} "
              f"{r['accepted']:>5}/{r['questions']:<2} {r['tok_s']:>6.2f} {r['calls']:>5} {r['prompt_tokens_per_call']:>15.0f} "
              f"{r['processed_per_call']:>14.0f} {r['pp_share']:>8.0%} {r['slot_idle']:>9.0%}")
    print(f"load average after: {_load()}; run directories in {work}")


if __name__ == "__main__":
    main()
