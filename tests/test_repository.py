"""The repository itself: nothing it tracks is something .gitignore says not to track."""
from __future__ import annotations

import ast
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_no_tracked_file_is_ignored() -> None:
    """A tracked file that .gitignore ignores (like a stray `.venv` file) breaks fresh clones: there must be none."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "-i", "-c", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"git cannot list this checkout: {done.stderr.strip()}")
    assert done.stdout.split() == [], "tracked but ignored: remove them with `git rm --cached`"


def test_test_modules_take_helpers_from_a_module_not_from_conftest() -> None:
    """pytest loads conftest.py as a plugin, not a module to import: helpers live in helpers.py, and no test imports conftest."""
    importing = [path.name for path in (ROOT / "tests").glob("*.py")
                 if any((isinstance(node, ast.ImportFrom) and node.module == "conftest") or
                        (isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names))
                        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert importing == [], "import shared helpers from helpers.py (fixtures stay in conftest.py, asked for by name)"


def test_markers_are_strict() -> None:
    """A misspelt marker is an error, not a new marker that selects nothing, and an xfail that passes fails."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split() and options["xfail_strict"] is True
