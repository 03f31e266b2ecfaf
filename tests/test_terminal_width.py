"""Lines the CLI prints fit an 80-column terminal, wrapped at words, never splitting a word or a number
(issue 25, "lines wider than the terminal"): the closing line of ``annotate`` and ``traces RUN stats``."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.cli.annotate import closing_line
from scireflect.cli.render import stats_tables
from scireflect.rundata.store import load_traces
from scireflect.rundata.summary import trace_stats

FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run"


def _lines(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text().splitlines()


def _words_intact(text: str, words: set[str]) -> None:
    """Each of ``words`` is in ``text`` whole, and no piece of one (``chemi`` / ``stry``) stands alone."""
    tokens = set(re.findall(r"[\w%,.:]+", text))
    for word in words:
        assert word in tokens, f"{word!r} missing in\n{text}"
        pieces = {t for t in tokens if t != word and len(t) >= 2 and (word.startswith(t) or word.endswith(t))}
        assert not pieces, f"{word!r} split into {pieces} in\n{text}"


def test_the_closing_line_wraps_at_words_within_80_columns():
    result = SimpleNamespace(finished_now=3, skipped=0, sft_count=3, run_dir=Path("run"))
    line = closing_line(result)
    assert line.plain == "3 annotated now, 0 already done; 3 SFT pairs in run/sft.jsonl, every attempt in run/traces.jsonl"
    lines = _lines(line)
    assert len(lines) == 2 and max(cell_len(x) for x in lines) <= 80
    assert " ".join(x.strip() for x in lines) == line.plain  # broken only at spaces


def test_traces_stats_at_80_columns_splits_no_word_and_no_number(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = []
    for line in (FIXTURE / "traces.jsonl").read_text().splitlines():  # a longer run: five-digit token counts
        record = json.loads(line)
        for step in record["steps"]:
            for key in ("input_tokens", "output_tokens"):
                step[key] = int(step.get(key) or 0) * 10
            step["latency_s"] = float(step.get("latency_s") or 0) * 100
        record["tokens"] = int(record.get("tokens") or 0) * 10
        record["seconds"] = float(record.get("seconds") or 0) * 100
        records.append(json.dumps(record))
    (run / "traces.jsonl").write_text("\n".join(records) + "\n")
    result = CliRunner().invoke(app, ["traces", str(run), "stats"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(cell_len(x) for x in lines) <= 80, result.output
    _words_intact(result.output, {"chemistry", "physics", "answer_guided", "numeric_mismatch", "choice_mismatch"})
    assert "67%" in result.output and "74.3k" in result.output


def test_large_numbers_drop_columns_rather_than_split():
    stats = trace_stats(load_traces(FIXTURE))
    big = copy.deepcopy(stats)
    for s in big["subjects"].values():
        s["questions"] *= 10_000
        s["rejected"] += 12_345
        s["tokens"] *= 1_000
        s["seconds"] *= 1_000
    for st in big["stages"]:
        st["tokens"] *= 1_000
        st["attempts"] *= 10_000
    for width in (80, 60):
        text = "\n".join(line for table in stats_tables(big, width=width) for line in _lines(table, width))
        assert max(cell_len(x) for x in text.splitlines()) <= width, text
        numbers = {f"{s['questions']}" for s in big["subjects"].values()} | {f"{st['attempts']}" for st in big["stages"]}
        _words_intact(text, numbers | {"60000", "12346"})
    wide = "\n".join(line for table in stats_tables(stats, width=80) for line in _lines(table))
    for header in ("cot", "refl", "guid", "tokens", "time", "rejected", "share"):  # nothing dropped when all fits
        assert f" {header}" in wide, header
