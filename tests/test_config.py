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
    s = load_settings(path, cli_llm={"max_tokens": 800, "model": None}, budget_spec="reflections=3")
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
                        f'[roles.reviser]\nbase_url = "{strong.base_url}"\nmodel = "strong"\n')
        settings = load_settings(path)
        result = await annotate(load_questions(questions), tmp_path / "run", settings)
        assert len(strong.requests) == 1 and len(weak.requests) == 2  # solver + critic on the weak endpoint
    record = json.loads((tmp_path / "run" / "traces.jsonl").read_text())
    assert [(s["role"], s["model"]) for s in record["steps"]] == [("solver", "small"), ("critic", "small"), ("reviser", "strong")]
    assert record["accepted_stage"] == "reflection" and result.summary["all"].accepted_reflection == 1
