"""Control sequences from a model, a tool or an input file never reach the terminal raw (issue 25, finding 5).

Each case feeds a terminal-control payload (an OSC title-set, a clear screen, colours, a one-byte C1
CSI, a bidi override) through a CLI path and checks that the bytes printed hold no ESC or C1 byte
except those rich writes for its own styles, and that the payload shows as escapes.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.cli.annotate import _fail as annotate_fail
from scireflect.cli.progress import LiveProgress
from scireflect.cli.untrusted import untrusted, visible

FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run"
PAYLOAD = "A\x1b]0;pwned\x07B\x1b[2J\x1b[31mC\x9b31mD\u202eE\x00F\x7fG"
SHOWN = "A\\x1b]0;pwned\\x07B\\x1b[2J\\x1b[31mC\\x9b31mD\\u202eE\\x00F\\x7fG"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_visible_escapes_controls_and_keeps_newlines_and_tabs():
    assert visible(PAYLOAD) == SHOWN
    assert visible("a\tb\r\nc\nd") == "a\tb\nc\nd"
    assert visible("x\ry") == "x\\x0dy"
    assert untrusted(None).plain == "-" and untrusted("[bold]x[/]").plain == "[bold]x[/]"


def test_traces_show_prints_a_tool_output_with_escapes_made_visible(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    lines = (run / "traces.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        if record["id"] == "math-algebra-0105":
            step = next(s for s in record["steps"] if s.get("tool_calls"))
            step["tool_calls"][0]["output"] = PAYLOAD
            step["response"] = "model says " + PAYLOAD
            record["question"]["caption"] = "caption " + PAYLOAD
    (run / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = CliRunner().invoke(app, ["traces", str(run), "show", "math-algebra-0105"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not RAW.search(result.output), repr(result.output)
    assert "output: " + SHOWN in result.output
    assert "model says " + SHOWN in result.output and "caption " + SHOWN in result.output


def test_live_lines_show_a_question_id_with_its_escapes_made_visible():
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None, force_terminal=False)
    display = LiveProgress(console, total=1)
    qid = "q\x1b[31mred\x9b2J"
    display.on_event("call", {"id": qid, "role": "solver", "attempt": 1, "phase": "start"})
    display.on_event("call", {"id": qid, "role": "solver", "attempt": 1, "phase": "failed", "error": "boom \x1b]0;t\x07"})
    display.on_event("warning", {"message": "bad \x1b[2J"})
    display.on_event("done", {"id": qid, "status": "accepted", "accepted_stage": "cot", "n_attempts": 1, "tokens": 5, "seconds": 1})
    console.print(display.render())
    out = buffer.getvalue()
    assert not RAW.search(out), repr(out)
    assert "q\\x1b[31mred\\x9b2J" in out and "boom \\x1b]0;t\\x07" in out and "bad \\x1b[2J" in out


def test_an_error_quoting_an_input_file_is_printed_with_escapes_made_visible(capsys):
    with pytest.raises(typer.Exit):
        annotate_fail("questions.jsonl:2: unknown field 'bogus\x1b]0;t\x07' in \x1b[2J")
    err = capsys.readouterr().err
    assert not RAW.search(err), repr(err)
    assert "unknown field 'bogus\\x1b]0;t\\x07' in \\x1b[2J" in err.replace("\n", "")


def test_the_training_and_filtering_commands_show_untrusted_text_and_wrap_it(capsys):
    """eval's progress line and the error lines of train/eval/export/classify: an id or answer like
    ``[/]`` or ``\\x1b[2J`` is shown as text (no markup error, no raw escape), and long lines wrap at the
    terminal's width."""
    import typer
    from rich.console import Console

    from scireflect.cli import filtering as filtering_cli
    from scireflect.cli import training as training_cli

    row = {"correct": False, "status": "done", "file": "q[/].jsonl", "id": "x\x1b[2Jy", "extracted": "[bold]7",
           "reference": "8", "output_tokens": 12, "seconds": 3.0}
    console = Console(width=60, record=True, color_system=None)
    console.print(training_cli.eval_progress_line(row, 1, 2))
    text = console.export_text()
    assert "\x1b" not in text and "\\x1b[2J" in text and "q[/].jsonl" in text and "'[bold]7'" in text
    assert text.startswith("[1/2] wrong ") and all(len(line) <= 60 for line in text.splitlines())
    for module, console_name in ((training_cli, "console"), (filtering_cli, "_err")):
        wide = Console(width=50, record=True, color_system=None, stderr=True)
        original = getattr(module, console_name)
        setattr(module, console_name, wide)
        try:
            with pytest.raises(typer.Exit):
                module._fail("cannot read /runs/a[/]b/traces.jsonl: line 3 is \x1b]0;owned\x07 not JSON, and this sentence is long")
        finally:
            setattr(module, console_name, original)
        shown = wide.export_text()
        assert "\x1b" not in shown and "\\x1b]0;owned\\x07" in shown and "a[/]b" in shown
        assert len(shown.splitlines()) > 1 and all(len(line) <= 50 for line in shown.splitlines())
