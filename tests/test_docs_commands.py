"""The `katapult-conformance` commands of docs/*.md run as written against the served mock, in this process where they can.

Commands for a team's own staging (a `--target-url` other than the mock's, `ci/staging.yaml`) cannot run here: they are
checked as the README's are, for real subcommands and options and for the files they read (tests/test_readme_commands.py).
"""
from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from test_readme_commands import DOC_PAGES, SEPARATORS, check_files, kept_in_repository, shell_blocks
from test_replay import har_entry

from conformance.gate.runlock import LOCK_DIR_ENV
from conformance.setup.fixtures import load_target_fixtures
from conformance.tools.cli import joined_values, main
from conformance.wire import api, transport
from conformance.wire.paths import ALLOCATE_PATH

if TYPE_CHECKING:
    from helpers import ServedMock

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
# The URL docs/mock.md serves the mock on and runs the suite against; any other --target-url is a team's staging.
MOCK_URL = "http://127.0.0.1:8080/core/v1"
CASSETTE = next((ROOT / "fixtures" / "recorded" / "cassettes").glob("*.cassette.yaml"))
# The served mock's rate window made short and the suite's clock as much faster (the scaled clock's way): the run's
# rate-limit scenario waits out a window of 2 s, not 60 (its 220-request burst fits well within one), and sends what a
# default run sends. Nothing else changes.
WINDOW_SECONDS, CLOCK_SCALE = 2, 30


def commands_of(block: str) -> list[list[str]]:
    """Each simple command of a shell block, as its words: split on whitespace only, so a URL keeps its `:` (comments dropped)."""
    found: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        found.append([])
        for token in lexer:
            if token in SEPARATORS:
                found.append([])
            else:
                found[-1].append(token)
    return [words for words in found if words]


def doc_commands() -> list[tuple[str, list[str]]]:
    """(page, words) of each `katapult-conformance` command in the shell blocks of docs/, in the order a reader meets them."""
    return [(page.name, words) for page in DOC_PAGES for block in shell_blocks(page.read_text(encoding="utf-8"))
            for words in commands_of(block) if words[0] == "katapult-conformance"]


def option_value(words: list[str], flag: str) -> str | None:
    """The value given to `flag` (as `--flag VALUE` or `--flag=VALUE`), or None."""
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(f"{flag}="):
            return word.split("=", 1)[1]
    return None


def how_tried(words: list[str]) -> str:
    """`serves` (the mock, started and asked), `served` (a run against it), `here` (in this process as written), `staging`."""
    if words[1] == "mock" and "--list-mutants" not in words:
        return "serves"
    url = option_value(words, "--target-url")
    if url is None:
        return "here"
    return "served" if url == MOCK_URL else "staging"


def test_every_docs_command_is_tried() -> None:
    """Each command runs below, or is a staging one checked as the README's; the served mock and a run against it are among them."""
    commands = doc_commands()
    kinds = {how_tried(words) for _, words in commands}
    assert {"serves", "served", "here"} <= kinds, commands
    # Their subcommands and options are checked with every docs block by test_every_readme_command_has_the_options_it_uses.
    staging = "\n".join(" ".join(words) for _, words in commands if how_tried(words) == "staging")
    required, _ = kept_in_repository()
    assert not check_files(staging, {}, required), staging


def stand_ins(words: list[str], served: str, workdir: Path) -> None:
    """The recordings a `replay` command names, where the reader has their own: a shipped cassette, a HAR of the served mock."""
    for word in words[2:]:
        path = workdir / word
        if word.startswith("-") or path.exists():
            continue
        if word.endswith((".yaml", ".yml")):
            shutil.copy(CASSETTE, path)
        elif word.endswith(".har"):
            answered = httpx.post(served + ALLOCATE_PATH, json={}, timeout=10)
            path.write_text(json.dumps({"log": {"version": "1.2", "entries": [har_entry(answered)]}}), encoding="utf-8")


@pytest.mark.usefixtures("suite_imports_warm")
def test_docs_commands_run_as_written_against_the_served_mock(serve_mock: Callable[..., ServedMock], pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Page by page: the mock served with the page's options, each command run where the reader runs it, each exits 0; the run
    leaves every fixture IP as it found it."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(transport, "LIVE_CLOCK", (lambda seconds: time.sleep(seconds / CLOCK_SCALE), lambda: time.monotonic() * CLOCK_SCALE))
    commands = doc_commands()
    serving = next(words for _, words in commands if how_tried(words) == "serves")
    port = option_value(serving, "--port")
    assert port == "8080" and MOCK_URL.endswith(f":{port}/core/v1"), serving
    # A free port instead of 8080, as the page itself offers (--port 0); the other options as written.
    options = serving[2:]
    kept = [word for index, word in enumerate(options) if word != "--port" and (index == 0 or options[index - 1] != "--port")]
    served = serve_mock(*kept, "--window-seconds", str(WINDOW_SECONDS), "--permitted", "200").base_url
    ran = []
    for page, words in commands:
        kind = how_tried(words)
        if kind in ("serves", "staging"):
            continue
        given = [served if word == MOCK_URL else word for word in words]
        if kind == "served":
            fixtures = load_target_fixtures(pytester.path / str(option_value(given, "--target-fixtures")), environ={})
            target = transport.live_target(served, timeout=10, max_requests=50, max_rate=1000.0)
            before = {ip: api.holder_of(target, fixtures.credential("valid"), ip) for ip in fixtures.known_ips()}
            result = pytester.runpytest_inprocess("--pyargs", "conformance", "-p", "no:cacheprovider", *joined_values(given[2:]))
            assert result.ret == 0, f"{page}: {' '.join(words)}\n" + "\n".join(result.outlines[-40:])
            assert result.parseoutcomes().get("passed", 0) > 40 and f"katapult-conformance target: {served}" in result.stdout.str()
            assert {ip: api.holder_of(target, fixtures.credential("valid"), ip) for ip in fixtures.known_ips()} == before
            target.close()
        else:
            stand_ins(given, served, pytester.path)
            try:
                code = main(given[1:])
            except SystemExit as exited:
                code = int(str(exited.code))
            assert code == 0, f"{page}: {' '.join(words)}"
        ran.append(" ".join(words))
    assert any(" run " in command for command in ran), ran
