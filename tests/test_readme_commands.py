"""Every command the README and docs/ show is valid for the current CLI; the CI job's and the local reproduction's files exist or are made first."""
from __future__ import annotations

import contextlib
import re
import shlex
from pathlib import Path

import pytest
from test_packaging import readme_ci_job

from conformance.setup.settings import OPTIONS
from conformance.tools.cli import COMMANDS, STARTERS, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
INPUT_FLAGS = ("--target-fixtures", "--baseline", "--mock-world")
INPUT_ENVS = {option.env: option.flag for option in OPTIONS if option.flag in INPUT_FLAGS and option.env}
SEPARATORS = {";", "&&", "||", "|", "then", "fi", "if", "do", "done"}
LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")


@pytest.fixture
def pytest_options(pytester: pytest.Pytester) -> frozenset[str]:
    """Every long option pytest accepts (the suite's included), from the parser of a run from an empty directory, in this process."""
    # pytest's --help leaves out aliases such as --junitxml, so the names come from its parser. A child process gave the same set.
    parser = pytester.parseconfig("-p", "no:cacheprovider")._parser
    options = parser._anonymous.options + [option for group in parser._groups for option in group.options]
    return frozenset(name for option in options for name in option.names() if name.startswith("--"))


def subcommand_options(name: str, capsys: pytest.CaptureFixture[str]) -> frozenset[str]:
    """The long options `katapult-conformance NAME --help` lists."""
    with contextlib.suppress(SystemExit):
        main([name, "--help"])
    return frozenset(LONG_OPTION.findall(capsys.readouterr().out)) | {"--help"}


def shell_blocks(text: str) -> list[str]:
    """The bash/sh code blocks of a Markdown text."""
    return re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.DOTALL)


def segments(script: str) -> list[list[str]]:
    """Each simple command of a shell script as its words (line continuations joined, comments dropped)."""
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|")
    lexer.whitespace = " \t"
    lexer.commenters = "#"
    found: list[list[str]] = [[]]
    for token in lexer:
        if token in SEPARATORS or token == "\n" or "\n" in token:
            found.append([])
        else:
            found[-1].append(token)
    return [words for words in found if words]


def lexed(script: str) -> list[list[str]]:
    """segments(), one script line at a time (shlex does not split on newlines by itself here)."""
    return [words for line in script.replace("\\\n", " ").splitlines() for words in segments(line)]


def kept_in_repository() -> tuple[set[str], set[str]]:
    """The files docs/ci.md says a team keeps in its repository: (required, optional)."""
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    section = text.split("## What you keep in your repository", 1)[1].split("\n## ", 1)[0]
    required, optional = set(), set()
    for name, rest in re.findall(r"^- `([^`]+)`(.*)$", section, re.MULTILINE):
        (optional if "optional" in rest else required).add(name)
    return required, optional


def made_by_init(words: list[str]) -> str:
    """The file `katapult-conformance init [DIR] [--mock]` writes into DIR."""
    name, _, _, _ = STARTERS["mock" if "--mock" in words else "live"]
    return name


def check_options(words: list[str], capsys: pytest.CaptureFixture[str], pytest_options: frozenset[str]) -> list[str]:
    """Problems with one command: an unknown subcommand or an option the command does not have."""
    if words[0] == "katapult-conformance":
        if len(words) < 2 or words[1].startswith("-"):
            return []
        if words[1] not in COMMANDS:
            return [f"unknown subcommand {words[1]!r}"]
        known = subcommand_options(words[1], capsys)
        if words[1] == "run":
            known |= pytest_options
        given = words[2:]
    elif words[0] == "pytest":
        known, given = pytest_options, words[1:]
    else:
        return []
    return [f"{' '.join(words[:2])}: unknown option {word}" for word in given if LONG_OPTION.fullmatch(word.split("=", 1)[0])
            and word.split("=", 1)[0] not in known]


def check_files(script: str, env: dict[str, str], available: set[str]) -> list[str]:
    """Problems with one step: an input file neither shipped, kept in the team's repository, made earlier, nor guarded by [ -f ]."""
    problems = []
    guarded: set[str] = set()
    referenced: list[str] = [value for name, value in env.items() if name in INPUT_ENVS]
    for words in lexed(script):
        if words[0] == "[" and len(words) >= 3 and words[1] == "-f":
            guarded.add(words[2])
        elif words[0] == "cp" and len(words) >= 3:
            available.add(words[-1])
        elif words[:2] == ["katapult-conformance", "init"]:
            available.add(str(Path(next((word for word in words[2:] if not word.startswith("-")), ".")) / made_by_init(words)))
        elif words[0] == "export" and len(words) == 2 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            if name in INPUT_ENVS and value not in guarded:
                referenced.append(value)
        elif words[0] in ("katapult-conformance", "pytest"):
            referenced += [words[index + 1] for index, word in enumerate(words[:-1]) if word in INPUT_FLAGS]
    for name in referenced:
        if name not in available and name not in guarded and not (ROOT / name).exists():
            problems.append(f"{name} is read but neither exists, is kept in the repository (docs/ci.md), nor is made by an earlier step")
    return problems


def doc_blocks() -> list[str]:
    """The shell code blocks of the pages in docs/ (the sections moved out of the README)."""
    return [block for page in DOC_PAGES for block in shell_blocks(page.read_text(encoding="utf-8"))]


def test_every_readme_command_has_the_options_it_uses(capsys: pytest.CaptureFixture[str], pytest_options: frozenset[str]) -> None:
    """Each `katapult-conformance ...` and `pytest ...` in the README's and docs/' code blocks and the CI job uses real subcommands and options."""
    text = README.read_text(encoding="utf-8")
    steps = [str(step["run"]) for job in readme_ci_job()["jobs"].values() for step in job["steps"] if "run" in step]
    scripts = shell_blocks(text) + doc_blocks() + steps
    problems = [problem for script in scripts for words in lexed(script) for problem in check_options(words, capsys, pytest_options)]
    assert not problems, problems
    assert any(words[:2] == ["katapult-conformance", "run"] for script in scripts for words in lexed(script))


def test_ci_job_and_reproduction_read_only_files_they_have() -> None:
    """The job reads files kept in the team's repository (after checkout) or guarded by [ -f ]; so does the local reproduction line."""
    required, optional = kept_in_repository()
    assert "ci/staging.yaml" in required and "ci/baseline.yaml" in optional
    problems: list[str] = []
    for job in readme_ci_job()["jobs"].values():
        available: set[str] = set()
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout"):
                available |= required
            if "run" in step:
                problems += check_files(str(step["run"]), dict(step.get("env") or {}), available)
    text = README.read_text(encoding="utf-8")
    reproduction = text.split("To reproduce a CI failure locally", 1)[1]
    problems += check_files(shell_blocks(reproduction)[0], {}, set(required))
    assert not problems, problems


def test_ci_job_pins_a_version_that_exists() -> None:
    """The install step pins a commit SHA (or its placeholder), not a tag the repository may not have."""
    steps = [step for job in readme_ci_job()["jobs"].values() for step in job["steps"]]
    install = next(str(step["run"]) for step in steps if "pip install" in str(step.get("run", "")))
    ref = re.search(r"katapult-conformance\.git@([\w.-]+)\"|katapult-conformance@([\w.-]+)\"", install)
    assert ref is not None, install
    pinned = ref.group(1) or ref.group(2)
    assert pinned == "COMMIT_SHA" or re.fullmatch(r"[0-9a-f]{40}", pinned), f"pin a commit SHA, not {pinned!r}"
    assert "## 0.1.0" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_first_block_works_as_pasted_on_a_fresh_clone() -> None:
    """The README's first commands install this clone (no placeholder to fill in), then run the suite on the mock and the project's tests."""
    first = shell_blocks(README.read_text(encoding="utf-8"))[0]
    assert not re.search(r"YOUR-ORG|COMMIT_SHA|<[a-z-]+>|=\.\.\.", first), first
    commands = lexed(first)
    installs = [words for words in commands if words[:2] == ["pip", "install"]]
    assert installs, "the first block installs nothing"
    for words in installs:
        targets = [word for word in words[2:] if not word.startswith("-")]
        assert targets and all((ROOT / re.sub(r"\[.*\]$", "", target)).resolve() == ROOT for target in targets), f"not this clone: {words}"
    order = [" ".join(words[:2]) for words in commands]
    assert order.index("katapult-conformance run") > order.index("pip install") and ["pytest"] in commands, order
    assert order.index("pytest") > order.index("pip install")


def test_every_block_reads_only_files_it_has() -> None:
    """A block that passes --target-fixtures (or another input) makes the file first (`katapult-conformance init`); docs/ may read ci/ files."""
    text = README.read_text(encoding="utf-8")
    reproduction = text.split("To reproduce a CI failure locally", 1)[1]
    blocks = [block for block in shell_blocks(text) if block not in shell_blocks(reproduction)[:1]]
    problems = [problem for block in blocks for problem in check_files(block, {}, set())]
    required, _ = kept_in_repository()
    problems += [problem for block in doc_blocks() for problem in check_files(block, {}, set(required))]
    assert not problems, problems


def test_checks_catch_a_broken_command(capsys: pytest.CaptureFixture[str], pytest_options: frozenset[str]) -> None:
    """The checks above would notice an option that does not exist and a file nobody made."""
    assert check_options(["katapult-conformance", "replay", "x.har", "--no-such-option"], capsys, pytest_options)
    assert check_options(["katapult-conformance", "frobnicate"], capsys, pytest_options)
    assert check_options(["katapult-conformance", "run", "--no-such-option"], capsys, pytest_options)
    assert not check_options(["pytest", "--junitxml", "j.xml", "--target-url", "u", "-n", "2"], capsys, pytest_options)  # an alias, ours, xdist's
    assert check_files("katapult-conformance run --baseline ci/baseline.yaml", {}, set())
    assert not check_files("if [ -f ci/baseline.yaml ]; then export KATAPULT_CONFORMANCE_BASELINE=ci/baseline.yaml; fi", {}, set())
    assert not check_files("katapult-conformance init ci\nkatapult-conformance run --target-fixtures ci/staging.yaml", {}, set())
    assert not check_files("katapult-conformance init --mock\nkatapult-conformance run --target-fixtures mock-target.yaml", {}, set())
    assert check_files("katapult-conformance init --mock\nkatapult-conformance run --target-fixtures staging.yaml", {}, set())
