"""Check that imports go one way and never in circles (pyproject's [tool.importlinter] contracts) on the source tree.

Every subpackage of ``scireflect`` is a folder at the top of the repository, mapped into the
namespace by pyproject's ``[tool.setuptools] package-dir``. import-linter finds a package by its
folder, so this script lays that mapping out in a temporary folder as links (folders made, files
linked to the source, nothing copied or installed) and runs ``lint-imports`` there: what it checks
is the working tree as it is.

Usage: ``python .ci/check_layers.py`` (exit status 0 when every contract is kept).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_dirs(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Path]:
    """``{package: source folder}`` from pyproject's ``package-dir`` (``scireflect.run`` -> ``ROOT/run``)."""
    mapping = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    return {package: ROOT / folder for package, folder in mapping.items()}


def link_tree(target: Path) -> None:
    """Lay the package out under ``target`` as import paths say: ``target/scireflect/run/x.py`` links
    to ``ROOT/run/x.py``. Folders are made, ``.py`` files linked, so a file written into ``target`` never
    reaches the source."""
    for package, source in sorted(package_dirs().items()):
        dest = target.joinpath(*package.split("."))
        for folder, dirs, files in os.walk(source):
            dirs[:] = [d for d in dirs if d != "__pycache__" and (Path(folder) / d / "__init__.py").is_file()]
            out = dest / Path(folder).relative_to(source)
            out.mkdir(parents=True, exist_ok=True)
            for name in files:
                if name.endswith(".py"):
                    (out / name).symlink_to(Path(folder) / name)


def check_layers(plant: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the source tree, laid out by :func:`link_tree` in a temporary folder.

    Args:
        plant: ``{path inside the scireflect package: source}`` written into the temporary tree before
            the check, never into the source (a test plants an upward import to see a contract break).

    Returns:
        The finished ``lint-imports`` process (``returncode``, ``stdout`` with the contracts report).
    """
    with tempfile.TemporaryDirectory(prefix="scireflect-layers-") as target:
        link_tree(Path(target))
        for rel, source in (plant or {}).items():
            path = Path(target) / "scireflect" / rel
            path.unlink(missing_ok=True)
            path.write_text(source, encoding="utf-8")
        lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
        return subprocess.run([lint, "--no-cache", str(ROOT / "pyproject.toml")], cwd=target, capture_output=True, text=True,
                              env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": target})


if __name__ == "__main__":
    done = check_layers()
    print(done.stdout[done.stdout.find("Contracts"):] if "Contracts" in done.stdout else done.stdout, done.stderr, sep="")
    sys.exit(done.returncode)
