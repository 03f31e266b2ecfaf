"""Third-party verifiers: entry point group ``scireflect.verifiers``, resolution by name, per-subject routing."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scireflect.verifiers import (
    InProcessAnswerVerifier,
    SandboxedAnswerVerifier,
    SubjectRouter,
    UnknownVerifier,
    Verdict,
    available_verifiers,
    averify_response,
    build_verifier,
    get_verifier,
    verify_response,
)
from scireflect.verifiers.base import accepts_finish_reason

PLUGIN = "scireflect_test_plugin_xyz"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("plugin")
    (root / PLUGIN).mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{PLUGIN.replace('_', '-')}"
        version = "0.0.1"

        [project.entry-points."scireflect.verifiers"]
        always-yes = "{PLUGIN}:AlwaysYes"

        [tool.setuptools]
        packages = ["{PLUGIN}"]
    """))
    (root / PLUGIN / "__init__.py").write_text(textwrap.dedent('''
        from scireflect.verifiers.base import Verdict

        class AlwaysYes:
            name = "always-yes"
            version = "0.0.1"

            def __init__(self, label="yes"):
                self.label = label

            def verify(self, response, question):
                return Verdict(ok=True, reason="equal", explanation=self.label, checker="always-yes")
    '''))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(root)],
                   check=True, capture_output=True, timeout=240)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "--quiet", "--yes", PLUGIN.replace("_", "-")], capture_output=True, timeout=120)
        importlib.invalidate_caches()


def test_plugin_from_a_separate_package_is_picked_up_by_name(installed_plugin) -> None:
    assert "always-yes" in available_verifiers()
    v = get_verifier("always-yes", label="plugin says yes", timeout_s=3)  # unknown settings are dropped
    assert type(v).__module__ == PLUGIN and v.verify("anything", {"answer": "1"}).explanation == "plugin says yes"
    router = build_verifier("answer-inprocess", {"formal": "always-yes"})
    assert isinstance(router, SubjectRouter)
    assert router.verify("\\boxed{2}", {"answer": "1", "subject": "formal"}).ok is True
    assert router.verify("\\boxed{2}", {"answer": "1", "subject": "physics"}).ok is False
    assert "formal=always-yes/0.0.1" in router.version
    # a plugin without the finish_reason keyword keeps working; the built-in one gets it
    assert router.verify("\\boxed{2}", {"answer": "1", "subject": "formal"}, finish_reason="length").ok is True
    assert router.verify("\\boxed{1}", {"answer": "1", "subject": "physics"}, finish_reason="length").reason == "invalid"


def test_builtins_are_registered_and_unknown_names_fail_clearly() -> None:
    assert {"answer", "answer-inprocess", "lean"} <= set(available_verifiers())
    v = get_verifier("answer", timeout_s=5, memory_mb=512, tolerance="scibench")
    assert isinstance(v, SandboxedAnswerVerifier) and v.tolerance == "scibench"
    assert isinstance(build_verifier("answer-inprocess"), InProcessAnswerVerifier)
    with pytest.raises(UnknownVerifier, match="unknown verifier 'coq'.*answer"):
        build_verifier("answer", {"formal": "coq"})


async def test_router_averify_uses_threads_for_sync_verifiers() -> None:
    router = SubjectRouter({"physics": InProcessAnswerVerifier(tolerance="scibench")}, InProcessAnswerVerifier())
    q = {"answer": "9.81", "unit": "m/s^2", "subject": "physics"}
    assert (await router.averify("\\boxed{9.8 m/s^2}", q)).ok is True
    assert (await router.averify("\\boxed{9.8 m/s^2}", {**q, "subject": "math"})).ok is False


class _OldStyle:
    """A plugin written before finish_reason existed: verify(response, question) only."""

    name, version = "old-style", "1"

    def verify(self, response, question):
        return Verdict(ok=True, reason="equal", explanation="old", checker="old-style")


class _Aware:
    name, version = "aware", "1"

    def __init__(self) -> None:
        self.seen: list = []

    def verify(self, response, question, *, finish_reason=None):
        self.seen.append(finish_reason)
        return Verdict(ok=finish_reason != "length", reason="equal", explanation="aware", checker="aware")

    async def averify(self, response, question, *, finish_reason=None):
        return self.verify(response, question, finish_reason=finish_reason)


async def test_finish_reason_reaches_the_verifiers_that_take_it() -> None:
    old, aware = _OldStyle(), _Aware()
    assert not accepts_finish_reason(old.verify) and accepts_finish_reason(aware.verify)
    assert verify_response(old, "x", {"answer": "1"}, finish_reason="length").ok is True
    assert verify_response(aware, "x", {"answer": "1"}, finish_reason="length").ok is False
    assert (await averify_response(old, "x", {"answer": "1"}, finish_reason="length")).ok is True  # in a thread
    assert (await averify_response(aware, "x", {"answer": "1"}, finish_reason="stop")).ok is True
    assert aware.seen == ["length", "stop"]
    sandboxed = SandboxedAnswerVerifier(timeout_s=5)
    v = await averify_response(sandboxed, "so \\boxed{72}. Checking again: 7", {"answer": "72"}, finish_reason="length")
    assert v.reason == "invalid" and v.details["invalid"] == "truncated" and sandboxed._pool is None  # decided in the parent
    assert v.ok is False and v.extracted is None
    assert InProcessAnswerVerifier().verify("\\boxed{72}", {"answer": "72"}, finish_reason="length").reason == "invalid"

