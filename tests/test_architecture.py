"""The structure rules, checked by tools: imports go one way (import-linter), no eval/sympify/pickle of
untrusted text (ruff S307/S102/S301 and a banned-API list), and no module past ~600 lines."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def _layers_module():
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / ".ci" / "check_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_layers():
    return _layers_module().check_layers


def test_imports_go_one_way():
    done = _check_layers()()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


def test_every_subpackage_is_a_folder_at_the_top():
    """One rule (issue 27): each subpackage of scireflect is a top-level folder named as it is imported,
    and scireflect/ holds only the package's own __init__.py."""
    dirs = _layers_module().package_dirs()
    for package, folder in dirs.items():
        if package in ("scireflect", "scireflect.samples"):  # the root itself; the sample questions are data
            continue
        assert folder.parent == ROOT and folder.name == package.split(".")[-1], (package, folder)
        assert (folder / "__init__.py").is_file(), folder
    assert sorted(p.name for p in (ROOT / "scireflect").iterdir() if p.name != "__pycache__") == ["__init__.py", "py.typed"]
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests", "benchmarks"}
    assert on_disk == {f.name for f in dirs.values() if f.parent == ROOT}


def test_the_viewer_filtering_and_training_never_import_the_runner():
    planted = "training/_runner_import.py"
    done = _check_layers()({"viewer/_runner_import.py": "from scireflect.run import runner\n",
                            planted: "from scireflect.run.endpoints import open_teams\n"})
    assert done.returncode != 0
    assert "never the runner (scireflect.run) BROKEN" in done.stdout.replace("\n", " ")
    assert "scireflect.viewer._runner_import -> scireflect.run.runner" in done.stdout
    assert not (ROOT / planted).exists()  # planted in the laid-out tree, never in the source


def test_an_import_circle_breaks_the_acyclic_contract():
    done = _check_layers()({"rundata/_a.py": "from . import _b\n", "rundata/_b.py": "from . import _a\n"})
    assert done.returncode != 0
    assert "No cycles are allowed in scireflect.rundata" in done.stdout


def test_an_upward_import_breaks_the_layers_contract():
    # A verifier that imports the runner (the cycle verifiers/lean/integration.py used to make).
    done = _check_layers()({"verifiers/_upward.py": "from scireflect.run import runner\n"})
    assert done.returncode != 0
    assert "One-way layers" in done.stdout and "BROKEN" in done.stdout
    assert "scireflect.verifiers._upward -> scireflect.run.runner" in done.stdout


def _ruff() -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (it is in the 'test' extra)")
    return ruff


def test_ruff_passes_with_the_safety_rules():
    done = subprocess.run([_ruff(), "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("source, rule", [
    ("def f(text):\n    return eval(text)\n", "S307"),
    ("def f(text):\n    exec(text)\n", "S102"),
    ("import sympy as sp\n\n\ndef f(text):\n    return sp.sympify(text)\n", "TID251"),
    ("from sympy.parsing.sympy_parser import parse_expr\n\n\ndef f(text):\n    return parse_expr(text)\n", "TID251"),
    ("import pickle\n\n\ndef f(data):\n    return pickle.loads(data)\n", "TID251"),
])
def test_the_safety_rules_catch_untrusted_evaluation_anywhere(tmp_path, source, rule):
    nested = tmp_path / "verifiers" / "lean" / "deep"  # any depth, not only the top folder
    nested.mkdir(parents=True)
    (nested / "planted.py").write_text(source)
    done = subprocess.run([_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and rule in done.stdout, done.stdout


def test_no_source_module_is_over_600_lines():
    long = []
    for folder in set(_layers_module().package_dirs().values()):
        for path in folder.rglob("*.py"):
            n = len(path.read_text(encoding="utf-8").split("\n"))
            if n > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)} ({n} lines)")
    assert long == [], "split these by job: " + ", ".join(long)
