"""Review: labels.jsonl, precision with Wilson intervals, the label endpoint, export and the CLI (issue 26)."""

from __future__ import annotations

import http.client
import json
import math

import pytest
from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.rundata.jsonl import JsonlError
from scireflect.rundata.labels import (LabelError, append_label, current_labels, labels_needed, labels_path, make_label, precision,
                                   read_labels, trace_hash, wilson_interval)
from scireflect.rundata.store import load_traces
from scireflect.testing.large_run import write_large_run
from scireflect.viewer import serve


def accepted_record(n: int, subject: str = "math", stage: str = "cot", strategy: str = "cot") -> dict:
    return {"id": f"q{n}", "subject": subject, "status": "accepted", "accepted_stage": stage,
            "question": {"id": f"q{n}", "question": f"What is {n} + 1?", "answer": str(n + 1)},
            "steps": [{"kind": "solution", "stage": stage, "strategy": strategy, "response": f"\\boxed{{{n + 1}}}",
                       "verdict": {"ok": True, "reason": "equal"}}]}


def test_a_label_names_the_trace_as_it_was_seen_and_refuses_nonsense():
    record = accepted_record(1)
    label = make_label(record, "invalid", reviewer="ana", reason="wrong_reasoning", note="step 2 adds wrongly")
    assert label["trace_hash"] == trace_hash(record) and label["reviewer"] == "ana" and label["time"].endswith("+00:00")
    assert trace_hash({**record, "status": "rejected"}) != label["trace_hash"]
    with pytest.raises(LabelError, match="needs a reason"):
        make_label(record, "invalid", reviewer="ana")
    with pytest.raises(LabelError, match="unknown label"):
        make_label(record, "great", reviewer="ana")
    with pytest.raises(LabelError, match="reviewer"):
        make_label(record, "valid", reviewer=" ")
    with pytest.raises(LabelError, match="only an invalid label"):
        make_label(record, "valid", reviewer="ana", reason="other")


def test_labels_are_appended_and_read_back_a_cut_line_ignored_a_bad_one_named(tmp_path):
    record = accepted_record(1)
    for verdict in ("valid", "skip"):
        append_label(tmp_path, make_label(record, verdict, reviewer="ana"))
    with open(labels_path(tmp_path), "ab") as fh:
        fh.write(b'{"id": 3}\n{"id": "q1", "trace_ha')  # a line that is no label, then a write cut by a kill
    labels, problems = read_labels(tmp_path)
    assert [label["label"] for label in labels] == ["valid", "skip"]
    assert len(problems) == 1 and isinstance(problems[0], JsonlError) and f"{labels_path(tmp_path)}:3:" in str(problems[0])


def test_the_last_label_wins_a_skip_does_not_undo_a_judgement_and_stale_labels_do_not_count():
    a, b, c = accepted_record(1), accepted_record(2), accepted_record(3)
    labels = [make_label(a, "invalid", reviewer="ana", reason="wrong_answer"), make_label(a, "valid", reviewer="bo"),
              make_label(a, "skip", reviewer="ana"), make_label(b, "valid", reviewer="ana"),
              make_label(c, "valid", reviewer="ana"), make_label(b, "invalid", reviewer="model:judge", reason="other")]
    changed_c = {**c, "steps": [{**c["steps"][0], "response": "\\boxed{5}"}]}  # re-annotated after its label
    current, stale = current_labels([a, b, changed_c], labels)
    assert {k: v["label"] for k, v in current.items()} == {"q1": "valid", "q2": "valid"} and stale == 1
    models, _ = current_labels([a, b, changed_c], labels, models=True)
    assert {k: v["reviewer"] for k, v in models.items()} == {"q2": "model:judge"}


def test_precision_and_wilson_interval_match_a_hand_computation():
    records = [accepted_record(n, subject="math" if n < 6 else "physics", stage="cot" if n % 2 else "reflection",
                               strategy="cot" if n % 2 else "reflect") for n in range(10)]
    records.append({**accepted_record(99), "status": "rejected"})  # not an accepted trace: never counted
    labels = [make_label(r, "valid" if r["id"] not in ("q2", "q7") else "invalid", reviewer="ana",
                         reason=None if r["id"] not in ("q2", "q7") else "wrong_reasoning") for r in records]
    result = precision(records, labels)
    overall = result["overall"]
    assert (overall.valid, overall.labelled, result["accepted"], result["reasons"]) == (8, 10, 10, {"wrong_reasoning": 2})
    # Wilson 1927 by hand: centre (p + z^2/2n) / (1 + z^2/n), half-width z/(1 + z^2/n) sqrt(p(1-p)/n + z^2/4n^2).
    z, n, p = 1.959963984540054, 10, 0.8
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert overall.low == pytest.approx(centre - half, abs=1e-9) and overall.high == pytest.approx(centre + half, abs=1e-9)
    assert (round(overall.low, 4), round(overall.high, 4)) == (0.4902, 0.9433)
    by = result["by"]
    assert (by["subject"]["math"].valid, by["subject"]["math"].labelled) == (5, 6)  # q2 invalid among q0..q5
    assert (by["subject"]["physics"].valid, by["subject"]["physics"].labelled) == (3, 4)  # q7 invalid
    assert set(by["stage"]) == {"cot", "reflection"} and set(by["strategy"]) == {"cot", "reflect"}
    # Labels for +-5 points at p = 0.8: about z^2 p(1-p) / 0.05^2 = 246 in all (Wilson's is slightly narrower).
    assert 230 <= overall.more_for + 10 <= 250 and labels_needed(8, 10, 0.5) == 0
    assert wilson_interval(0, 0) == (0.0, 1.0) and labels_needed(0, 0) in range(375, 390)


def _post(server, body: bytes, *, origin: str | None = "self", ctype: str = "application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": ctype, "Host": f"127.0.0.1:{server.port}"}
    if origin:
        headers["Origin"] = f"http://127.0.0.1:{server.port}" if origin == "self" else origin
    conn.request("POST", "/api/label", body=body, headers=headers)
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"{}")
    conn.close()
    return resp.status, data


def test_the_label_endpoint_records_only_from_its_own_page_and_only_the_trace_shown(tmp_path):
    run_dir = write_large_run(tmp_path / "run", 30, trace_bytes=400)
    record = next(r for r in load_traces(run_dir) if r["status"] == "accepted")
    server = serve(run_dir, 0, reviewer="ana")
    try:
        body = json.dumps({"id": record["id"], "trace_hash": trace_hash(record), "label": "valid"}).encode()
        assert _post(server, body, origin="http://evil.example")[0] == 403
        assert _post(server, body, origin=None)[0] == 403
        assert _post(server, body, ctype="text/plain")[0] == 415  # a page elsewhere can send text/plain without a preflight
        stale = json.dumps({"id": record["id"], "trace_hash": "0" * 64, "label": "valid"}).encode()
        assert _post(server, stale)[0] == 409
        assert _post(server, json.dumps({"id": record["id"], "trace_hash": trace_hash(record), "label": "invalid"}).encode())[0] == 400
        assert read_labels(run_dir) == ([], [])
        status, data = _post(server, body)
        assert status == 200 and data["label"]["reviewer"] == "ana"
        [label], _ = read_labels(run_dir)
        assert label["id"] == record["id"] and label["label"] == "valid"
    finally:
        server.close()


def test_precision_command_and_export_leave_out_traces_labelled_invalid(tmp_path):
    run_dir = write_large_run(tmp_path / "run", 40, trace_bytes=400)
    accepted = [r for r in load_traces(run_dir) if r["status"] == "accepted"]
    for record in accepted[:4]:
        append_label(run_dir, make_label(record, "valid", reviewer="ana"))
    append_label(run_dir, make_label(accepted[4], "invalid", reviewer="ana", reason="wrong_reasoning"))
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(app, ["traces", str(run_dir), "precision"])
    assert result.exit_code == 0, result.output
    assert "Precision of accepted traces" in result.output and "80%" in result.output and "By subject" in result.output
    assert f"5 of {len(accepted)} accepted traces labelled" in result.output
    data = json.loads(runner.invoke(app, ["traces", str(run_dir), "precision", "--json"]).output)
    assert data["overall"]["valid"] == 4 and data["overall"]["labelled"] == 5

    out = tmp_path / "export"
    result = runner.invoke(app, ["export", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ids = {json.loads(line)["id"] for line in (out / "train.jsonl").read_text().splitlines()}
    assert accepted[4]["id"] not in ids and accepted[0]["id"] in ids and "review" in result.output
    result = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "all"), "--keep-invalid-labels"])
    assert result.exit_code == 0 and accepted[4]["id"] in {json.loads(line)["id"] for line in (tmp_path / "all" / "train.jsonl").read_text().splitlines()}


def test_the_review_sample_is_seeded_stratified_and_holds_each_accepted_trace_once(tmp_path):
    from collections import Counter

    from scireflect.viewer.index import TraceIndex
    from scireflect.viewer.review import ReviewSample

    run_dir = write_large_run(tmp_path / "run", 2000, trace_bytes=300)
    index = TraceIndex(run_dir)
    order = ReviewSample(index, seed=3).order()
    accepted = {r["id"]: (r["subject"], r["stage"]) for r in index.rows if r["status"] == "accepted"}
    assert sorted(order) == sorted(accepted) and order == ReviewSample(index, seed=3).order()
    assert order != ReviewSample(index, seed=4).order()
    # Proportional: the first 10% holds each stratum in about its share of the run.
    whole, head = Counter(accepted.values()), Counter(accepted[q] for q in order[: len(order) // 10])
    for stratum, n in whole.items():
        assert abs(head[stratum] - n / 10) <= 1.5, (stratum, head[stratum], n)


def test_the_strategy_of_an_old_trace_comes_from_its_stage():
    from scireflect.rundata.labels import accepted_strategy

    old = {"steps": [{"kind": "solution", "stage": "answer_guided", "response": "\\boxed{1}"}]}
    assert accepted_strategy(old) == "answer_guided"  # it read "cot" before it used graphs.state.strategy_of
    assert accepted_strategy({"steps": []}) == "cot"
