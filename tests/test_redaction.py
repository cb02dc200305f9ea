"""No credential value (from the target fixtures or the environment) appears in anything a run writes, at any verbosity."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from helpers import MOCK_TARGET_YAML, RunSuite
from test_record import secret_bytes

from conformance.mock.mutants import MUTANTS
from conformance.mock.world import DEFAULT_WORLD
from conformance.setup.redaction import PLACEHOLDER, RedactingFormatter, RedactingStream, Redactor, env_secrets

pytest_plugins = ["pytester"]

# The mock's own tokens, and the distinctive secrets that replace them for the run.
VALID = "kmock-valid-7d1e0c5a9b"
TOKENS = {
    VALID: "SECRET-valid-93a7f1c2d4e5",
    "kmock-noscope-2b8f4e61c3": "SECRET-noscope-5b2e8d0a7f41",
    "kmock-netlock-9a4c2e7f10": "SECRET-netlock-1c9f3e6b2a88",
    "kcap-expired-5e3a91d0b7": "SECRET-capabilities-7d4a0e9c3b",
}
ENV_ONLY_SECRET = "SECRET-env-only-4f8b2c6d1e07"
SECRETS = (*TOKENS.values(), ENV_ONLY_SECRET)

# A test-only mutant: the catalogue's token echo, plus 401 for every authentication error, so the echoing scenarios
# fail and print their exchange, locals and captured output. Registered for its run only: the run is in this process.
PROBE_PLUGIN = '''
from conformance.mock.app import ApiError
from conformance.mock.mutants import MUTANTS, mutant


@mutant("token-echoed-loudly", "authentication errors repeat the bearer token and come back as 401", breaks=("no credential echoed",))
class TokenEchoedLoudly(MUTANTS["token-echoed-in-error"]):
    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except ApiError as error:
            error.status = 401
            raise


def pytest_unconfigure(config):
    del MUTANTS["token-echoed-loudly"]
'''
# Tests that put the secrets everywhere a test can: stdout, stderr, logs, a JUnit property, an assertion, a falsifying example.
PROBE_TESTS = '''
import logging
import os
import sys

from hypothesis import given, note, strategies as st


def test_probe_everywhere(target_fixtures, record_property):
    token = target_fixtures.credential("valid").headers["Authorization"]
    env_only = os.environ["CI_DEPLOY_TOKEN"]
    print("stdout", token, env_only)
    sys.stderr.write(f"stderr {token} {env_only}\\n")
    logging.getLogger("probe").warning("log %s %s", token, env_only)
    record_property("probe", token)
    assert token == env_only


@given(st.sampled_from(["harmless", os.environ["KATAPULT_API_TOKEN"], os.environ["CI_DEPLOY_TOKEN"]]))
def test_probe_falsifying_example(token):
    note(f"tried {token}")
    assert not token.startswith("SECRET")
'''


def with_secrets(text: str, valid: str) -> str:
    """The text with each mock token replaced by its secret (the valid one by `valid`)."""
    for token, secret in TOKENS.items():
        text = text.replace(token, valid if token == VALID else secret)
    return text


def test_no_secret_in_any_output(run_suite: RunSuite, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The whole suite plus probe tests, against a token-echoing mutant, -vv -l -rA, JUnit with logs, report, baseline, log file, HAR record.

    In this process: what the run prints reaches sys.stdout and sys.stderr (the terminal, the live log, the captured
    sections), which pytester reads; every file it writes is under its working directory, pytester's.
    """
    inputs, plugins, probe = tmp_path / "inputs", tmp_path / "plugins", tmp_path / "probe"
    for directory in (inputs, plugins, probe):
        directory.mkdir()
    world = inputs / "world.yaml"
    world.write_text(with_secrets(DEFAULT_WORLD.read_text(encoding="utf-8"), TOKENS[VALID]), encoding="utf-8")
    fixtures = inputs / "target.yaml"
    fixtures.write_text(with_secrets(MOCK_TARGET_YAML.read_text(encoding="utf-8"), "${KATAPULT_API_TOKEN}"), encoding="utf-8")
    (plugins / "redaction_probe.py").write_text(PROBE_PLUGIN, encoding="utf-8")
    (probe / "test_probe.py").write_text(PROBE_TESTS, encoding="utf-8")
    workdir = pytester.path
    monkeypatch.syspath_prepend(plugins)
    # Every test of the suite runs (each sink and each failure's output is reached); its properties at 5 examples: with the
    # redaction switched off, they leak the same secrets into the same files and streams as at the ci profile's 50.
    done = run_suite(
        "--pyargs", "conformance", probe / "test_probe.py", "-p", "redaction_probe",
        "--mock-mutant", "token-echoed-loudly", "--mock-world", world, "--target-fixtures", fixtures,
        "-vv", "-l", "-rA", "--tb=long", "-o", "junit_logging=all", "--junitxml", "out/junit.xml",
        "--conformance-report", "out/report.json", "--write-baseline", "out/baseline.yaml",
        "--log-file", "out/run.log", "--log-file-level", "DEBUG", "--log-cli-level", "WARNING", "--record", "out/run.har",
        "--conformance-max-examples", "5",
        env={"KATAPULT_API_TOKEN": TOKENS[VALID], "CI_DEPLOY_TOKEN": ENV_ONLY_SECRET},
    )
    stdout, stderr = done.stdout.str(), done.stderr.str()
    assert done.ret == 1, stdout[-3000:] + stderr
    outputs = {"stdout": stdout.encode(), "stderr": stderr.encode()}
    outputs |= {str(path.relative_to(workdir)): path.read_bytes() for path in workdir.rglob("*") if path.is_file()}
    leaks = [(name, secret) for name, data in outputs.items() for secret in SECRETS if secret.encode() in data]
    assert not leaks, f"secrets written unredacted: {leaks}"
    # The secrets did reach every sink, as [redacted]: the echo, the live log, the log file, JUnit, the report.
    assert f"(token: {PLACEHOLDER})" in stdout
    assert f"log {PLACEHOLDER} {PLACEHOLDER}" in stdout
    assert f"tried {PLACEHOLDER}" in stdout
    # The record holds every request and answer, the token-echoing ones too; its base64 bodies were redacted before encoding.
    assert not secret_bytes(outputs["out/run.har"], set(SECRETS))
    for name in ("out/run.log", "out/junit.xml", "out/report.json", "out/run.har"):
        assert PLACEHOLDER.encode() in outputs[name], name
    # The test-only mutant went with its run: this process's catalogue is as it was.
    assert "token-echoed-loudly" not in MUTANTS


def test_scrub_reaches_strings_inside_reprs() -> None:
    """Strings nested in lists, tuples, dicts and pytest's repr objects are scrubbed; other values are left alone."""
    redact = Redactor()
    redact.add(["SECRET-abc-123"])

    class Repr:
        def __init__(self) -> None:
            self.lines = ["x = 'SECRET-abc-123'", ("SECRET-abc-123", 3)]
            self.count = 7

        def toterminal(self) -> None:
            """Marks it as a pytest repr."""

    scrubbed = redact.scrub({"k": [Repr(), ("a SECRET-abc-123 b",)]})
    inner = scrubbed["k"][0]
    assert inner.lines == [f"x = '{PLACEHOLDER}'", (PLACEHOLDER, 3)]
    assert inner.count == 7
    assert scrubbed["k"][1] == (f"a {PLACEHOLDER} b",)


def test_env_secrets_are_named_like_secrets_and_long() -> None:
    """Variables named like tokens or secrets count; short values and other names do not."""
    environ = {"GITHUB_TOKEN": "ghp_0123456789", "DB_PASSWORD": "hunter2hunter2", "SOME_API_KEY": "k-0123456789",
               "CI_DEBUG_TOKEN": "true", "PATH": "/usr/bin:/bin", "HOME": "/home/runner"}
    assert env_secrets(environ) == {"ghp_0123456789", "hunter2hunter2", "k-0123456789"}


def test_stream_and_log_formatter_scrub() -> None:
    """The terminal stream and log formatter wrappers write no secret."""
    redact = Redactor()
    redact.add(["SECRET-abc-123"])
    out = io.StringIO()
    RedactingStream(out, redact).write("token SECRET-abc-123\n")
    record = logging.LogRecord("probe", logging.WARNING, __file__, 1, "sent %s", ("SECRET-abc-123",), None)
    formatted = RedactingFormatter(logging.Formatter("%(levelname)s %(message)s"), redact).format(record)
    assert out.getvalue() == f"token {PLACEHOLDER}\n"
    assert formatted == f"WARNING sent {PLACEHOLDER}"


def test_a_session_leaves_no_secret_or_header_behind(pytester: pytest.Pytester) -> None:
    """The secrets and the run a run of the suite registers are gone when its session ends (nothing outlives it)."""
    from conformance.contract.findings import ACTIVE
    from conformance.setup.redaction import REDACT

    before = (REDACT.snapshot(), ACTIVE.run)
    result = pytester.runpytest_inprocess("--pyargs", "conformance.test_scenarios", "-p", "no:cacheprovider", "-q", "-k", "missing-token")
    assert result.ret == 0
    assert REDACT.snapshot() == before[0] and ACTIVE.run is before[1]
