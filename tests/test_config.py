"""Run settings: TOML per-role models, environment, flags, and clear errors."""

from __future__ import annotations

import json

import pytest

from scireflect.run.config import ConfigError, load_settings
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate


def test_toml_roles_env_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1111/v1")
    path = tmp_path / "c.toml"
    path.write_text('[llm]\nmodel = "base-model"\ntemperature = 0.0\n[roles.reviser]\nbase_url = "http://127.0.0.1:2222/v1"\n'
                    'model = "strong-model"\n[budget]\nattempts = 5\n[verifier]\nrel_tol = 0.05\n[run]\nconcurrency = 3\n')
    s = load_settings(path, max_tokens=800, model=None, budget="reflections=3")
    assert s.roles["solver"].base_url == "http://127.0.0.1:1111/v1" and s.roles["solver"].model == "base-model"
    assert s.roles["reviser"].base_url == "http://127.0.0.1:2222/v1" and s.roles["reviser"].model == "strong-model"
    assert all(r.max_tokens == 800 and r.temperature == 0.0 for r in s.roles.values())
    assert (s.budget.max_attempts, s.budget.max_reflections) == (5, 3)
    assert s.verifier.rel_tol == 0.05 and s.concurrency == 3 and not s.uses_embedded


def test_no_endpoint_means_embedded(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert load_settings().uses_embedded


@pytest.mark.parametrize("given, full", [
    ("0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m"), ("Small", "qwen2.5-coder-0.5b-instruct-q4_k_m"),
    ("1.5B", "qwen2.5-coder-1.5b-instruct-q4_k_m"),
    ("qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m"),
])
def test_embedded_model_aliases_resolve_to_full_names(monkeypatch, given, full):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert load_settings(embedded_model=given).embedded_model == full


def test_unknown_embedded_model_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="unknown embedded model 'tiny'.*aliases: 1.5b"):
        load_settings(embedded_model="tiny")
    path = tmp_path / "c.toml"
    path.write_text('[run]\nembedded_model = "qwen-7b"\n')
    with pytest.raises(ConfigError, match="unknown embedded model 'qwen-7b'"):
        load_settings(path)


@pytest.mark.parametrize("text, message", [
    ("[llm]\nmodle = 'x'\n", "unknown key(s) modle"),
    ("[roles.judge]\nmodel = 'x'\n", "unknown role(s) judge"),
    ("[llm]\nbase_url = 'http://h/v1'\n", "needs a model name"),
    ("[budget]\nattempts = 0\n", "attempts must be >= 1"),
    ("[llm\n", "invalid TOML"),
    ("[extras]\n", "unknown section(s) extras"),
])
def test_bad_config_is_named(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(path)


async def test_roles_reach_their_own_endpoints(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "subject": "math", "question": "What is 3 + 4?", "answer": "7"}) + "\n")
    with MockOpenAI(model="small") as weak, MockOpenAI(model="strong", default_answer="7") as strong:
        path = tmp_path / "c.toml"
        path.write_text(f'[llm]\nbase_url = "{weak.base_url}"\nmodel = "small"\n'
                        f'[roles.reviser]\nbase_url = "{strong.base_url}"\nmodel = "strong"\n[budget]\nreflections = 2\n')
        settings = load_settings(path)
        result = await annotate(load_questions(questions), tmp_path / "run", settings)
        assert len(strong.requests) == 1 and len(weak.requests) == 2  # solver + critic on the weak endpoint
    record = json.loads((tmp_path / "run" / "traces.jsonl").read_text())
    assert [(s["role"], s["model"]) for s in record["steps"]] == [("solver", "small"), ("critic", "small"), ("reviser", "strong")]
    assert record["accepted_stage"] == "reflection" and result.summary["all"].accepted_reflection == 1


# -- each setting declared once (issue 27): type, range, default, TOML key, environment, flag and help ----------

from dataclasses import fields  # noqa: E402

from scireflect.run.config import LLMSettings, RunSettings, VerifierSettings, declared_settings  # noqa: E402

SETTINGS_CLASSES = (LLMSettings, VerifierSettings, RunSettings)


def test_every_flag_of_annotate_comes_from_its_declaration():
    from typer.testing import CliRunner

    from scireflect.cli import app

    shown = " ".join(CliRunner().invoke(app, ["annotate", "--help"], terminal_width=400).output.split())
    flags = [(cls, name, s) for cls in SETTINGS_CLASSES for name, s in declared_settings(cls).items() if s.flag]
    assert len(flags) >= 20
    for _, name, s in flags:
        assert s.flag.split("/")[0] in shown, name
        assert " ".join(s.help.split())[:60] in shown, name  # the declared help text, as the option's help


def _numeric_settings():
    for cls in SETTINGS_CLASSES:
        for name, s in declared_settings(cls).items():
            if s.check.startswith(("int", "num")) and s.section in ("run", "verifier", "llm"):
                yield cls, name, s


@pytest.mark.parametrize("cls, name, declared", list(_numeric_settings()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_numeric_setting_is_read_from_its_table_and_refused_below_its_range(tmp_path, monkeypatch, cls, name, declared):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    key, bound = declared.key or name, int(declared.check.split(">")[-1].lstrip("="))
    good = bound + 3 if declared.check.startswith("int") else bound + 3.5
    path = tmp_path / "c.toml"
    path.write_text(f"[{declared.section}]\n{key} = {good}\n")
    def value(settings):
        return getattr(settings.roles["solver"] if cls is LLMSettings else settings.verifier if cls is VerifierSettings else settings, name)

    assert value(load_settings(path)) == good
    assert value(load_settings(path, **{name: good + 1})) == good + 1  # the command line over the file
    bad = bound - 1 if ">=" in declared.check else bound
    path.write_text(f"[{declared.section}]\n{key} = {bad}\n")
    with pytest.raises(ConfigError, match=rf"c.toml \[{declared.section}\]: {key} must be .* {bound}, not {bad}"):
        load_settings(path)
    with pytest.raises(ConfigError, match=rf"command line: {name} must be"):
        load_settings(**{name: bad})


def test_priority_is_default_then_environment_then_file_then_command_line(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[llm]\nbase_url = "http://127.0.0.1:2/v1"\nmodel = "m"\n[run]\nconcurrency = 3\n[verifier]\nsteps = "flag"\n')
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert load_settings(model="m").roles["critic"].base_url == "http://127.0.0.1:1/v1"  # the environment over the default
    s = load_settings(path)
    assert (s.roles["critic"].base_url, s.concurrency, s.verifier.steps) == ("http://127.0.0.1:2/v1", 3, "flag")  # the file over it
    s = load_settings(path, base_url=["http://127.0.0.1:3/v1", "http://127.0.0.1:4/v1"], concurrency=5, steps="off")
    assert (s.roles["critic"].base_url, s.roles["critic"].replicas) == ("http://127.0.0.1:3/v1", ("http://127.0.0.1:4/v1",))
    assert (s.concurrency, s.verifier.steps) == (5, "off")
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://elsewhere")  # the environment is checked like any value
    with pytest.raises(ConfigError, match=r"\$OPENAI_BASE_URL: base_url must be an http\(s\):// URL"):
        load_settings(model="m")


def test_the_budget_table_is_read_as_a_table_and_the_command_line_goes_over_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "c.toml"
    path.write_text('[budget]\nattempts = 5\nanswer_guided = false\nseconds = 120.5\nstrategy = ["cot", "resample", "reflect"]\n')
    b = load_settings(path).budget
    assert (b.max_attempts, b.answer_guided, b.max_seconds, b.order) == (5, False, 120.5, ("cot", "resample", "reflect"))
    b = load_settings(path, budget="attempts=3,strategy=cot/program").budget
    assert (b.max_attempts, b.max_seconds, b.order) == (3, 120.5, ("cot", "program"))
    for table, message in [("attempts = 4.5", "bad value for attempts: '4.5'"), ("answer_guided = 3", "bad value for answer_guided"),
                           ('strategy = ["reflect"]', "the first strategy must be 'cot'"), ("turns = 3", "unknown item 'turns'")]:
        path.write_text(f"[budget]\n{table}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(path)


def test_unknown_keys_are_refused_in_every_table(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "c.toml"
    for table in ("run", "verifier", "llm", "judge", "roles.critic"):
        path.write_text(f"[{table}]\nconcurency = 3\n")
        with pytest.raises(ConfigError, match=r"unknown key\(s\) concurency; known: "):
            load_settings(path)
    path.write_text("[run]\nmode = 'gate'\n")  # a key of another table ([judge] mode) is not a [run] key
    with pytest.raises(ConfigError, match=r"\[run\]: unknown key\(s\) mode"):
        load_settings(path)


def test_every_settings_field_is_declared_or_set_by_the_runner_alone():
    """A field without a declaration cannot be set from a file or the command line: these are the ones."""
    undeclared = {f.name for cls in SETTINGS_CLASSES for f in fields(cls)} - {
        name for cls in SETTINGS_CLASSES for name in declared_settings(cls)}
    assert undeclared == {"replicas", "roles", "verifier", "abort_after_transport_errors", "lean", "checkpoint_schema"}
