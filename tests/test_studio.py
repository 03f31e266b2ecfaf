"""LangGraph Studio entry point (``langgraph.json`` -> ``run/studio.py:make_graph``) and tracing defaults."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.tracers.langchain import LangChainTracer
from langgraph.graph.state import CompiledStateGraph
from langsmith import utils as ls_utils

from scireflect.graphs.budget import Budget
from scireflect.run.studio import StudioContext, make_graph, studio_settings

ROOT = Path(__file__).resolve().parents[1]
TRACING_VARS = ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING", "LANGCHAIN_TRACING_V2",
                "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


@pytest.fixture
def env(monkeypatch):
    for name in TRACING_VARS + ("OPENAI_BASE_URL", "OPENAI_API_KEY", "SCIREFLECT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    ls_utils.get_env_var.cache_clear()  # langsmith caches environment lookups
    yield monkeypatch
    ls_utils.get_env_var.cache_clear()


def load_by_path(spec: str):
    """Load ``./path.py:attr`` the way ``langgraph dev`` does: the file by path, then the attribute."""
    file, _, attr = spec.partition(":")
    path = (ROOT / file).resolve()
    module_spec = importlib.util.spec_from_file_location("studio_under_test", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, attr)


def test_langgraph_json_points_to_the_factory(env):
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    spec = config["graphs"]["annotation"]
    assert spec == "./run/studio.py:make_graph" and (ROOT / "run" / "studio.py").is_file()
    env.setenv("SCIREFLECT_MODEL", "qwen2.5-7b-instruct")
    factory = load_by_path(spec)
    graph = factory({"configurable": {}})
    assert isinstance(graph, CompiledStateGraph)


def test_langgraph_cli_accepts_the_config():
    cli_config = pytest.importorskip("langgraph_cli.config", reason="langgraph-cli is not installed")
    config = cli_config.validate_config_file(ROOT / "langgraph.json")
    assert config["graphs"] == {"annotation": "./run/studio.py:make_graph"}


def test_factory_builds_the_annotation_graph_without_calling_a_model(env):
    env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there: no call may be made
    env.setenv("SCIREFLECT_MODEL", "qwen2.5-7b-instruct")
    graph = make_graph({"configurable": {"budget": "attempts=3,reflections=1"}})
    assert isinstance(graph, CompiledStateGraph)
    assert {"solve", "verify", "critique", "revise", "answer_guided"} <= set(graph.get_graph().nodes)
    assert graph.context_schema is StudioContext
    assert graph.checkpointer is None  # the LangGraph server brings its own persistence


def test_settings_come_from_env_and_configurable(env):
    env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    env.setenv("SCIREFLECT_MODEL", "from-env")
    s = studio_settings({})
    assert (s["base_url"], s["model"], s["api_key"]) == ("http://127.0.0.1:8000/v1", "from-env", "local")
    assert s["budget"] == Budget()
    env.setenv("OPENAI_API_KEY", "sk-test")
    s = studio_settings({"configurable": {"model": "override", "base_url": "http://h/v1", "temperature": 0.7,
                                          "max_tokens": 99, "budget": "attempts=2,reflections=1"}})
    assert (s["model"], s["base_url"], s["api_key"], s["temperature"], s["max_tokens"]) == ("override", "http://h/v1", "sk-test", 0.7, 99)
    assert s["budget"].max_attempts == 2 and s["budget"].max_reflections == 1
    env.delenv("SCIREFLECT_MODEL")
    with pytest.raises(ValueError, match="SCIREFLECT_MODEL"):
        make_graph({})
    with pytest.raises(ValueError, match="budget"):
        studio_settings({"configurable": {"model": "m", "budget": "nonsense=1"}})


def test_the_studio_context_is_plain_values_and_builds_the_team_on_use(env):
    env.setenv("SCIREFLECT_MODEL", "m")
    graph = make_graph({})
    schema = graph.get_context_jsonschema()  # what Studio shows as the assistant's editable settings
    assert {"model", "base_url", "temperature", "max_tokens", "budget_spec"} <= set(schema["properties"])
    context = StudioContext(model="override", budget_spec="attempts=2,reflections=1")
    team = context.agents
    assert team.solver.model_name == team.critic.model_name == team.reviser.model_name == "override"
    assert team.solver.llm.openai_api_base is None  # OpenAI's default endpoint when OPENAI_BASE_URL is unset
    assert context.budget.max_attempts == 2 and context.budget.max_reflections == 1
    assert StudioContext().agents.solver.model_name == "m"  # unset values come from the environment
    assert context.verify.verifier.name == "answer"  # the sandboxed answer verifier


def _tracers() -> list:
    manager = CallbackManager.configure(inheritable_callbacks=None, local_callbacks=None)
    return [h for h in manager.handlers if isinstance(h, LangChainTracer)]


def test_no_tracer_unless_the_user_turns_langsmith_on(env):
    assert ls_utils.tracing_is_enabled() is False
    assert _tracers() == []
    # Positive control: the switch this test relies on is LangChain's own (no tracer is built here,
    # since building one makes the LangSmith client contact its server).
    env.setenv("LANGSMITH_TRACING", "true")
    ls_utils.get_env_var.cache_clear()
    assert ls_utils.tracing_is_enabled() is True
