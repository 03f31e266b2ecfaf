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
    available_verifiers,
    build_verifier,
    get_verifier,
)

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
