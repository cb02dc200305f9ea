"""The suite as other repositories use it: a pytest plugin by entry point, tox environments, the README's CI job."""
from __future__ import annotations

import configparser
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_plugin_is_registered_by_entry_point() -> None:
    """`pip install` alone makes pytest load conformance.gate.plugin (so `pytest --pyargs conformance` works anywhere)."""
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins.get("katapult_conformance") == "conformance.gate.plugin"
    # The users' fixture is a plugin of its own, so asking for it loads nothing of the gate's session.
    assert plugins.get("katapult_mock") == "conformance.tools.katapult_mock"


def test_tox_environments() -> None:
    """tox has the default (mock), live (passing KATAPULT_* through), lint (ruff) and type (mypy strict) environments."""
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    assert {"py", "lint", "type"} <= set(tox["tox"]["env_list"].replace(",", " ").split())
    assert "pytest conformance" in tox["testenv"]["commands"]
    assert "KATAPULT_*" in tox["testenv:live"]["pass_env"] and "--pyargs conformance" in tox["testenv:live"]["commands"]
    assert "ruff check" in tox["testenv:lint"]["commands"]
    assert "mypy --strict" in tox["testenv:type"]["commands"]


def readme_ci_job() -> dict[str, Any]:
    """The GitHub Actions workflow shown in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```yaml\n(# \.github/workflows/.*?)```", text, re.DOTALL)
    assert found is not None, "README.md shows no GitHub Actions workflow"
    workflow = yaml.safe_load(found.group(1))
    assert isinstance(workflow, dict)
    return workflow


def test_readme_ci_job_runs_the_gate_with_secrets_and_keeps_the_reports() -> None:
    """The job runs the suite against staging, takes tokens from the secret store, and uploads report and JUnit."""
    steps = [step for job in readme_ci_job()["jobs"].values() for step in job["steps"]]
    gate = next(step for step in steps if "katapult-conformance run" in step.get("run", ""))
    assert "--conformance-report" in gate["run"] and "--junitxml" in gate["run"]
    assert gate["env"]["KATAPULT_API_TOKEN"] == "${{ secrets.KATAPULT_API_TOKEN }}"
    assert not [value for value in gate["env"].values() if "token" in value.lower() and "secrets." not in value]
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()"
