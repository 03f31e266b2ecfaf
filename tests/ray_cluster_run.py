"""Helper of tests/test_ray_cluster.py, run inside a loopback-only network namespace (see
scireflect.testing.netns): a two-node local Ray cluster, the fault-free mock endpoint, and
`scireflect annotate --ray` as the driver; one fault is injected mid-run, then the command is run
again. Writes a JSON report (request counts per question, ids in the outputs, exit codes).

    python tests/ray_cluster_run.py --fault kill-node|kill-actor|kill-driver --report R.json [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

N_QUESTIONS = 48
PATTERN = r"Item (\d{3}):"


def questions(path: Path) -> Path:
    rows = [{"id": f"c{i:03d}", "subject": "math", "question": f"Item {i:03d}: compute the value.",
             "answer": "42" if i % 4 else str(i)} for i in range(N_QUESTIONS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def finished_ids(run: Path) -> set[str]:
    """Ids whose record is durable anywhere: committed by the driver, or in a shard's store."""
    ids = set()
    for path in [run / "traces.jsonl", *run.glob("shards/*/traces.jsonl")]:
        if path.exists():
            data = path.read_bytes()
            ids |= {json.loads(line)["id"] for line in data[: data.rfind(b"\n") + 1].splitlines() if line.strip()}
    return ids


def committed(run: Path) -> int:
    path = run / "traces.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", choices=["kill-node", "kill-actor", "kill-driver"], required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from scireflect.testing.mock_openai import MockOpenAI

    report: dict = {"fault": args.fault}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scireflect-ray-")))
        mock = stack.enter_context(MockOpenAI(latency_s=0.4))
        url = None
        if args.postgres:
            from scireflect.testing.postgres import TempPostgres

            url = stack.enter_context(TempPostgres()).url
        fast_health = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
        small = {"num_cpus": 2, "object_store_memory": 80 * 1024 * 1024}
        cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False, "_system_config": fast_health})
        stack.callback(cluster.shutdown)
        worker = cluster.add_node(**small)
        cluster.wait_for_nodes()
        run = tmp / "run"
        cmd = [sys.executable, "-m", "scireflect.cli", "annotate", str(questions(tmp / "q.jsonl")), "--out", str(run),
               "--ray", cluster.address, "--shards", "4", "--base-url", mock.base_url, "--model", mock.model,
               "--concurrency", "2", "--budget", "attempts=3,reflections=1"]
        if url:
            cmd += ["--checkpoints", url]
        env = dict(os.environ, OPENAI_API_KEY="test", COLUMNS="200")
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 180
        while committed(run) < 6 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        report["finished_at_fault"] = sorted(finished_ids(run))
        report["counts_at_fault"] = dict(mock.request_counts(PATTERN))
        if args.fault == "kill-node":
            cluster.remove_node(worker, allow_graceful=False)
        elif args.fault == "kill-actor":
            holders = [int((d / "lease").read_text().split()[1]) for d in sorted(run.glob("shards/[0-9]*")) if (d / "lease").exists()]
            victim = next(pid for pid in holders if pid)
            os.kill(victim, signal.SIGKILL)
            report["killed_pid"] = victim
        else:
            os.killpg(first.pid, signal.SIGKILL)
        out, err = first.communicate(timeout=240)
        report["first"] = {"rc": first.returncode, "stderr": err[-3000:], "stdout": out[-2000:]}
        report["counts_after_first"] = dict(mock.request_counts(PATTERN))
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        report["again"] = {"rc": again.returncode, "stderr": again.stderr[-3000:], "stdout": again.stdout[-2000:]}
        report["counts_final"] = dict(mock.request_counts(PATTERN))
        report["traces_ids"] = [json.loads(line)["id"] for line in (run / "traces.jsonl").read_text().splitlines() if line.strip()]
        report["sft_ids"] = [json.loads(line)["id"] for line in (run / "sft.jsonl").read_text().splitlines() if line.strip()]
        report["shards_left"] = (run / "shards").exists()
        report["n_questions"] = N_QUESTIONS
        ray.shutdown()
    Path(args.report).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
