"""The repository itself: nothing it tracks is something .gitignore says not to track."""
from __future__ import annotations

import shutil
import subprocess
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
