"""Check that imports go one way (pyproject's [tool.importlinter] contracts) on a regular install.

The top-level folders (agents/, graphs/, ...) are installed into the scireflect namespace by a
package-dir mapping that an editable install hides from import-linter, so the package is first
installed (no dependencies, no build isolation: about a second) into a temporary folder.

Usage: ``python .ci/check_layers.py`` (exit status 0 when every contract is kept).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check_layers(plant: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Install the package into a temporary folder and run ``lint-imports`` on it.

    Args:
        plant: ``{path inside the installed scireflect package: source}`` written before the check
            (a test plants an upward import to see the contract break).

    Returns:
        The finished ``lint-imports`` process (``returncode``, ``stdout`` with the contracts report).
    """
    with tempfile.TemporaryDirectory(prefix="scireflect-layers-") as target:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", target, str(ROOT)], check=True, capture_output=True, text=True)
        for rel, source in (plant or {}).items():
            (Path(target) / "scireflect" / rel).write_text(source, encoding="utf-8")
        lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
        return subprocess.run([lint, "--no-cache", str(ROOT / "pyproject.toml")], cwd=target, capture_output=True, text=True,
                              env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": target})


if __name__ == "__main__":
    done = check_layers()
    print(done.stdout[done.stdout.find("Contracts"):] if "Contracts" in done.stdout else done.stdout, done.stderr, sep="")
    sys.exit(done.returncode)
