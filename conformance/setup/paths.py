"""Where the project's data files (spec/, fixtures/) live, installed or in a checkout."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent

def data_path(*parts: str) -> Path:
    """Path of a shipped data file: inside the wheel (conformance/_data) or in the source checkout."""
    installed = _PACKAGE / "_data" / Path(*parts)
    return installed if installed.exists() else _PACKAGE.parent / Path(*parts)
