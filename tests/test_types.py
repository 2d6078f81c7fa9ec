"""mypy on the library packages (issue 12): ``layers``, ``analytics`` and ``geodata`` type check.

mypy runs as a subprocess with the project's configuration (``[tool.mypy]`` in
pyproject.toml: the packages to check, the stubs it relies on and the few untyped
third-party modules it may not follow), so the test sees exactly what a developer
running ``mypy`` in the repository sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy(*args: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy", reason="mypy comes with the test extra")
    with tempfile.TemporaryDirectory() as cache:  # no stale cache shared with other runs
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                cache,
                "--no-error-summary",
                "--hide-error-context",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=500,
            env={**os.environ, "MYPY_FORCE_COLOR": "0"},
        )


def _errors(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stdout.splitlines() if ": error:" in line]


def test_library_packages_type_check():
    run = _mypy()
    errors = _errors(run)
    assert run.returncode == 0 and not errors, (
        f"mypy found {len(errors)} error(s) in layers/, analytics/, geodata/:\n"
        + "\n".join(errors or [run.stdout, run.stderr])
    )


def test_an_introduced_error_is_reported(tmp_path):
    """The check is live: a module with a type error, checked with the same config, fails."""
    pkg = tmp_path / "layers_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text(
        "from layers.district import UTM\n\n\ndef zone() -> str:\n    return UTM\n"
    )
    run = _mypy(str(pkg))
    errors = _errors(run)
    assert run.returncode == 1, run.stdout + run.stderr
    assert any("bad.py:5" in e and "return-value" in e for e in errors), run.stdout
