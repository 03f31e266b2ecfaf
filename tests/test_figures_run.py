"""The shipped figure sample through the whole path: annotate (mock endpoint), traces, viewer, show, export.

The mock endpoint refuses every chat request that carries no image (``require_images``) and keeps
the sha256 of every image it received, so an all-accepted run proves that every call of every
role (Solver, Critic, Reviser, answer-guided Reviser) sent its figure. Traces keep sha256 and path,
never base64. ``--figures text`` sends no pixels and needs no vision model.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from scireflect.filtering.export import ExportOptions, export_training_set
from scireflect.run.config import load_settings
from scireflect.rundata.errors import RunError
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.viewer import serve

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "figures"


@pytest.fixture(scope="module")
def figure_run(tmp_path_factory):
    """The 30-question sample annotated against the mock: the Solver and the Reviser answer wrong until
    the answer-guided revision, so all three roles are called for every question."""
    root = tmp_path_factory.mktemp("figrun")
    shutil.copytree(SAMPLE, root / "figures", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    questions = load_questions(root / "figures" / "questions.jsonl")
    with MockOpenAI(default_answer="999", require_images=True) as mock:
        settings = load_settings(base_url=[mock.base_url], model=mock.model, concurrency=4,
                                 budget="attempts=3,reflections=1")
        result = asyncio.run(annotate(questions, root / "run", settings))
        requests, images = list(mock.requests), list(mock.request_images)
    return {"root": root, "questions": questions, "result": result, "requests": requests, "images": images}


def test_every_call_of_every_role_carries_the_figure_and_traces_keep_only_references(figure_run):
    questions, result = figure_run["questions"], figure_run["result"]
    assert len(questions) == 30 and result.status_counts == Counter(accepted=30)
    traces = [json.loads(line) for line in (figure_run["root"] / "run" / "traces.jsonl").read_text().splitlines()]
    by_id = {q["id"]: q for q in questions.questions}
    roles = Counter()
    for trace in traces:
        [ref] = trace["question"]["images"]
        assert ref == by_id[trace["id"]]["images"][0] and len(ref["sha256"]) == 64 and ref["path"].startswith("images/")
        assert trace["question"]["ocr"] and trace["question"]["ocr_source"].startswith("tesseract ")  # filled by Tesseract
        assert trace["accepted_stage"] == "answer_guided"
        for step in trace["steps"]:
            roles[(step["role"], step["stage"])] += 1
            user = step["messages"][-1]["content"]
            assert user[0] == {"type": "image_url", "image_url": {"sha256": ref["sha256"], "path": ref["path"]}}
    assert set(roles) == {("solver", "cot"), ("critic", "reflection"), ("reviser", "reflection"), ("reviser", "answer_guided")}
    raw = (figure_run["root"] / "run" / "traces.jsonl").read_text()
    assert "base64" not in raw and "data:image" not in raw
    # The endpoint saw one image per call (the preflight's 1x1 probe first), each the question's figure.
    sent = figure_run["images"]
    assert len(sent) == 1 + sum(len(t["steps"]) for t in traces) and all(len(s) == 1 for s in sent)
    assert {s[0] for s in sent[1:]} == {t["question"]["images"][0]["sha256"] for t in traces}
    sft = [json.loads(line) for line in (figure_run["root"] / "run" / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == 30 and all(p["images"][0]["path"].startswith("images/") for p in sft)
    manifest = json.loads((figure_run["root"] / "run" / "run.json").read_text())["runs"][-1]["settings"]
    assert manifest["figures"] == "image" and manifest["input"]["dir"] == str((figure_run["root"] / "figures").resolve())


def test_a_text_only_model_stops_the_run_unless_figures_go_as_text(tmp_path):
    questions = load_questions(SAMPLE / "questions.jsonl", limit=2)
    with MockOpenAI(vision=False, default_answer="999") as mock:
        settings = load_settings(base_url=[mock.base_url], model=mock.model)
        with pytest.raises(RunError, match="cannot take images .* use --figures text"):
            asyncio.run(annotate(questions, tmp_path / "run", settings))
        assert not (tmp_path / "run" / "traces.jsonl").exists() or not (tmp_path / "run" / "traces.jsonl").read_text()
        text = load_settings(base_url=[mock.base_url], model=mock.model, figures="text", ocr=False,
                             budget="attempts=2,reflections=0")
        result = asyncio.run(annotate(questions, tmp_path / "run2", text))
        sent = [m for r in mock.requests[1:] for m in r]
    assert result.status_counts == Counter(accepted=2)
    assert mock.stats.refused_images == 1 and all(not s for s in mock.request_images[1:])
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert all(isinstance(u, str) and "Figure caption: " in u and "The paper says about the figure:" in u for u in users)


def test_viewer_serves_the_figure_path_checked_and_traces_show_names_it(figure_run):
    run_dir = figure_run["root"] / "run"
    qid = "fig-circuit-series-1"
    server = serve(run_dir, 0)
    try:
        page = urllib.request.urlopen(server.url + f"q/{qid}").read().decode()
        assert f'src="/figure/{qid}/0"' in page and "Circuit diagram of the bench set-up." in page
        response = urllib.request.urlopen(server.url + f"figure/{qid}/0")
        assert response.headers["Content-Type"] == "image/png" and "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.read() == (figure_run["root"] / "figures" / "images" / "circuit-series-1.png").read_bytes()
        for bad in (f"figure/{qid}/1", "figure/nope/0", f"figure/{qid}/-1", f"figure/{qid}/..%2F..%2Fetc%2Fpasswd"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(server.url + bad)
            assert info.value.code == 404
    finally:
        server.close()
    shown = subprocess.run([sys.executable, "-m", "scireflect.cli", "traces", str(run_dir), "show", qid, "--prompts"],
                           capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0, shown.stderr
    assert "figure 1: images/circuit-series-1.png (sha256 " in shown.stdout and "[figure images/circuit-series-1.png, sha256 " in shown.stdout


def test_a_trace_whose_figure_path_leads_out_is_not_served(figure_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(figure_run["root"] / "run", run_dir)
    records = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    records[0]["question"]["images"][0]["path"] = "../../../../etc/hostname"
    (run_dir / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    server = serve(run_dir, 0)
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + f"figure/{records[0]['id']}/0")
        assert info.value.code == 404
    finally:
        server.close()


def test_export_writes_datasets_images_and_chat_image_parts(figure_run, tmp_path):
    import datasets

    run_dir = figure_run["root"] / "run"
    export_training_set([run_dir], tmp_path / "hf", ExportOptions(format="hf", answer_guided="include"))
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 30 and isinstance(ds.features["images"], datasets.List)
    first = ds[0]
    [image] = first["images"]
    assert image.size == (500, 360) or image.size == (700, 360)  # plots and circuit diagrams
    assert image.mode in ("RGBA", "RGB")

    export_training_set([run_dir], tmp_path / "msgs", ExportOptions(format="messages", answer_guided="include"))
    rows = [json.loads(line) for line in (tmp_path / "msgs" / "train.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["id"] == "fig-hooke-1")
    user = row["messages"][0]["content"]
    assert user[0]["type"] == "image" and user[0]["path"] == row["images"][0] and user[-1]["type"] == "text"
    assert (tmp_path / "msgs" / row["images"][0]).read_bytes() == (figure_run["root"] / "figures" / "images" / "hooke-1.png").read_bytes()
    assert len(list((tmp_path / "msgs" / "images").iterdir())) == 30


def test_a_figure_replaced_during_a_run_stops_it_with_the_file_named(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "figures", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    questions = load_questions(tmp_path / "figures" / "questions.jsonl", limit=1)
    figure = tmp_path / "figures" / questions.questions[0]["images"][0]["path"]
    figure.write_bytes((SAMPLE / "images" / "hooke-1.png").read_bytes())  # another figure under the same name
    with MockOpenAI() as mock:
        settings = load_settings(base_url=[mock.base_url], model=mock.model, ocr=False)
        with pytest.raises(RunError, match=f"figure {figure} changed since the question file was read"):
            asyncio.run(annotate(questions, tmp_path / "run", settings))
        assert mock.stats.chat_requests == 1  # the preflight's probe only: no figure went out unchecked
