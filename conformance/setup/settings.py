"""The suite's settings: command line first, then environment variable, then default."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from conformance.setup.paths import data_path

PRODUCTION_HOSTS = frozenset({"api.katapult.io"})
PROFILES = ("ci", "dev", "thorough")


class ConfigError(ValueError):
    """A setting is unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its environment variable, its default and help."""

    dest: str
    flag: str
    env: str | None
    default: Any
    help: str
    kind: str = "str"


OPTIONS = (
    Option("target_url", "--target-url", "KATAPULT_TARGET_URL", None,
           "API base of a live target, e.g. https://api.staging.katapult.dev/core/v1 (default: the embedded mock)"),
    Option("target_fixtures", "--target-fixtures", "KATAPULT_TARGET_FIXTURES", None,
           "YAML file naming the target's test data; ${VAR} in it is read from the environment", "path"),
    Option("profile", "--conformance-profile", "KATAPULT_CONFORMANCE_PROFILE", "ci",
           "hypothesis profile for generated tests: ci (default, deterministic), dev, thorough"),
    Option("max_examples", "--conformance-max-examples", "KATAPULT_CONFORMANCE_MAX_EXAMPLES", None,
           "override the profile's number of examples per generated test", "int"),
    Option("mock_mutant", "--mock-mutant", "KATAPULT_MOCK_MUTANT", None,
           "run against a deliberately broken variant of the embedded mock (katapult-conformance mock --list-mutants names them)"),
    Option("mock_world", "--mock-world", "KATAPULT_MOCK_WORLD", None,
           "world file of the embedded mock: its tokens, interfaces and IPs (default: the world shipped in the package)", "path"),
    Option("request_timeout", "--request-timeout", "KATAPULT_REQUEST_TIMEOUT", 10.0,
           "seconds to wait for each response (default 10)", "float"),
    Option("request_retries", "--request-retries", "KATAPULT_REQUEST_RETRIES", 3,
           "times a request lost on the network (connection refused, reset or closed without an answer; a gateway's own error page)"
           " is sent again after a short jittered backoff; each attempt counts against --max-requests; 0 turns it off (default 3)",
           "int"),
    Option("max_requests", "--max-requests", "KATAPULT_MAX_REQUESTS", 4000,
           "request budget for a live target; tests that would exceed it are skipped (default 4000)", "int"),
    Option("max_rate", "--max-rate", "KATAPULT_MAX_RATE", 8.0,
           "requests per second sent to a live target (default 8, i.e. 480/min, under Katapult's 1000/min)", "float"),
    Option("max_duration", "--max-duration", "KATAPULT_MAX_DURATION", 1200.0,
           "seconds a live run may send for (default 1200, 20 min); then the tests left are skipped as not run, cleanup still runs", "float"),
    Option("ca_bundle", "--ca-bundle", "KATAPULT_CA_BUNDLE", None,
           "PEM file of CA certificates to trust for the live target (an internal CA); default: the system's, or SSL_CERT_FILE", "path"),
    Option("request_log", "--request-log", "KATAPULT_REQUEST_LOG", None,
           "write every request the tests send (redacted) and its status to PATH, one line each", "path"),
    Option("record", "--record", "KATAPULT_CONFORMANCE_RECORD", None,
           "write every request the run sends and every answer (preflight, tests, cleanup, end-of-run checks) to PATH as HAR 1.2,"
           " credentials redacted, each entry marked with its test and promises (docs/replay.md)", "path"),
    Option("allow_production", "--allow-production", None, False,
           "allow a target on Katapult's production API (api.katapult.io); refused otherwise", "flag"),
    Option("report", "--conformance-report", "KATAPULT_CONFORMANCE_REPORT", (),
           "write the conformance summary to PATH (.md or .json); give it again for both (env: paths separated by the OS path separator)",
           "paths"),
    Option("baseline", "--baseline", "KATAPULT_CONFORMANCE_BASELINE", None,
           "YAML file of accepted deviations keyed on findings (docs/baseline.md): what it lists is a known deviation, nothing else", "path"),
    Option("strict_baseline", "--strict-baseline", None, False,
           "fail when a baseline entry matched no finding (keep the baseline clean)", "flag"),
    Option("write_baseline", "--write-baseline", None, None,
           "write one baseline entry per finding of this run to PATH (review the reasons before committing)", "path"),
    Option("require_complete", "--require-complete", "KATAPULT_CONFORMANCE_REQUIRE_COMPLETE", False,
           "fail the run when any promise is not run or not provoked (every promise must be judged; one the target fixtures opt out"
           " of, as rate_limit.provoke: false, is reported as opted out and does not fail it)", "flag"),
)


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from (never holds a secret)."""

    value: Any
    source: str


def _flag(raw: Any) -> bool:
    """A flag from the command line (a bool) or the environment ("1", "true", "yes", "on"; anything else is off)."""
    return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")


def _paths(raw: Any) -> tuple[Path, ...]:
    """Several paths: repeated on the command line (a list), or os.pathsep-separated in the environment."""
    items = raw if isinstance(raw, list | tuple) else str(raw).split(os.pathsep)
    return tuple(Path(item) for item in items if str(item).strip())


def _convert(option: Option, raw: Any) -> Any:
    converters: dict[str, Callable[[Any], Any]] = {"str": str, "path": Path, "float": float, "int": int, "flag": _flag, "paths": _paths}
    try:
        return converters[option.kind](raw)
    except (TypeError, ValueError):
        where = option.flag if option.env is None else f"{option.flag} / {option.env}"
        raise ConfigError(f"{where} must be a {option.kind}, got {raw!r}") from None


def resolve(cli: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Setting]:
    """Each option's value: the command line beats the environment, which beats the default."""
    environ = os.environ if environ is None else environ
    settings = {}
    for option in OPTIONS:
        given = cli.get(option.dest)
        if given not in (None, False):
            settings[option.dest] = Setting(_convert(option, given), option.flag)
        elif option.env and environ.get(option.env):
            settings[option.dest] = Setting(_convert(option, environ[option.env]), f"env {option.env}")
        else:
            settings[option.dest] = Setting(option.default, "default")
    return settings


@dataclass(frozen=True)
class SuiteConfig:
    """Everything the suite needs to know about where and how to run."""

    settings: Mapping[str, Setting]

    @property
    def target_url(self) -> str | None:
        """--target-url, resolved."""
        return cast("str | None", self.settings["target_url"].value)

    @property
    def target_fixtures(self) -> Path | None:
        """--target-fixtures, resolved."""
        return cast("Path | None", self.settings["target_fixtures"].value)

    @property
    def profile(self) -> str:
        """--conformance-profile, resolved."""
        return cast("str", self.settings["profile"].value)

    @property
    def max_examples(self) -> int | None:
        """--conformance-max-examples, resolved."""
        return cast("int | None", self.settings["max_examples"].value)

    @property
    def mock_mutant(self) -> str | None:
        """--mock-mutant, resolved."""
        return cast("str | None", self.settings["mock_mutant"].value)

    @property
    def mock_world(self) -> Path | None:
        """--mock-world, resolved."""
        return cast("Path | None", self.settings["mock_world"].value)

    @property
    def request_timeout(self) -> float:
        """--request-timeout, resolved."""
        return cast("float", self.settings["request_timeout"].value)

    @property
    def request_retries(self) -> int:
        """--request-retries, resolved."""
        return cast("int", self.settings["request_retries"].value)

    @property
    def max_requests(self) -> int:
        """--max-requests, resolved."""
        return cast("int", self.settings["max_requests"].value)

    @property
    def max_rate(self) -> float:
        """--max-rate, resolved."""
        return cast("float", self.settings["max_rate"].value)

    @property
    def max_duration(self) -> float:
        """--max-duration, resolved."""
        return cast("float", self.settings["max_duration"].value)

    @property
    def ca_bundle(self) -> Path | None:
        """--ca-bundle, resolved."""
        return cast("Path | None", self.settings["ca_bundle"].value)

    @property
    def request_log(self) -> Path | None:
        """--request-log, resolved."""
        return cast("Path | None", self.settings["request_log"].value)

    @property
    def record(self) -> Path | None:
        """--record, resolved."""
        return cast("Path | None", self.settings["record"].value)

    @property
    def allow_production(self) -> bool:
        """--allow-production, resolved."""
        return cast("bool", self.settings["allow_production"].value)

    @property
    def report(self) -> tuple[Path, ...]:
        """--conformance-report, resolved."""
        return cast("tuple[Path, ...]", self.settings["report"].value)

    @property
    def baseline(self) -> Path | None:
        """--baseline, resolved."""
        return cast("Path | None", self.settings["baseline"].value)

    @property
    def strict_baseline(self) -> bool:
        """--strict-baseline, resolved."""
        return cast("bool", self.settings["strict_baseline"].value)

    @property
    def write_baseline(self) -> Path | None:
        """--write-baseline, resolved."""
        return cast("Path | None", self.settings["write_baseline"].value)

    @property
    def require_complete(self) -> bool:
        """--require-complete, resolved."""
        return cast("bool", self.settings["require_complete"].value)

    @property
    def is_live(self) -> bool:
        """Whether requests go to a real URL rather than the embedded mock."""
        return self.settings["target_url"].value is not None

    @property
    def fixtures_path(self) -> Path:
        """The target fixtures file: given, or the mock's own."""
        given = self.settings["target_fixtures"].value
        return Path(given) if given is not None else data_path("fixtures", "mock-target.yaml")

    def header_lines(self) -> list[str]:
        """What pytest's report header shows: each setting and where it came from."""
        target = self.target_url or "embedded reference mock (in-process)"
        if not self.is_live and self.mock_mutant:
            target += f", mutant {self.mock_mutant}"
        fixtures_source = self.settings["target_fixtures"].source
        return [
            f"katapult-conformance target: {target} [{self.settings['target_url'].source}]",
            f"katapult-conformance fixtures: {self.fixtures_path} [{fixtures_source}]",
            f"katapult-conformance profile: {self.profile} [{self.settings['profile'].source}]",
        ]


def build_config(cli: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> SuiteConfig:
    """Resolve and validate the settings; raise ConfigError with a one-line fix for anything unusable."""
    config = SuiteConfig(resolve(cli, environ))
    url = config.target_url
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"target URL {url!r} is not an http(s) URL; pass e.g. --target-url https://api.staging.katapult.dev/core/v1")
        if parts.username or parts.password:
            raise ConfigError("the target URL carries credentials, which would be printed; put tokens in the target fixtures (${VAR}) instead")
        if parts.hostname.rstrip(".") in PRODUCTION_HOSTS and not config.allow_production:
            raise ConfigError(
                f"refusing to run against Katapult's production API ({parts.hostname}): the suite allocates real IPs;"
                " point --target-url at staging, or pass --allow-production if you really mean it"
            )
    if config.profile not in PROFILES:
        raise ConfigError(f"unknown conformance profile {config.profile!r}; choose one of {', '.join(PROFILES)}")
    if config.is_live and config.settings["target_fixtures"].value is None:
        raise ConfigError("a live target needs --target-fixtures (or KATAPULT_TARGET_FIXTURES); `katapult-conformance init` writes one to fill in")
    if config.max_examples is not None and config.max_examples <= 0:
        raise ConfigError("--conformance-max-examples must be positive")
    if config.request_timeout <= 0 or config.max_rate <= 0 or config.max_requests <= 0 or config.max_duration <= 0:
        raise ConfigError("--request-timeout, --max-rate, --max-requests and --max-duration must be positive")
    if config.request_retries < 0:
        raise ConfigError(f"--request-retries must be 0 (no retries) or more, got {config.request_retries}")
    if config.ca_bundle is not None and not Path(config.ca_bundle).is_file():
        raise ConfigError(f"--ca-bundle {config.ca_bundle} is not a file; pass a PEM file of CA certificates")
    return config
