"""Settings and target fixtures: where each value comes from, and every bad configuration as a user sees it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.setup.fixtures import Credential, FixturesError, MissingFixture, Reference, load_target_fixtures
from conformance.setup.paths import data_path
from conformance.setup.settings import OPTIONS, ConfigError, Option, build_config, resolve
from conformance.tools import doctor

if TYPE_CHECKING:
    from helpers import RunSuite

MOCK_FIXTURES = data_path("fixtures", "mock-target.yaml")
SAMPLES = {"str": ("cli-value", "env-value"), "path": ("cli.yaml", "env.yaml"), "float": ("2.5", "7.5"), "int": ("3", "9"), "flag": (True, "1"),
           "paths": (["a.md", "b.json"], "c.md")}
ENV_OPTIONS = [option for option in OPTIONS if option.env is not None]
TOKEN = "kc-conformance-secret-0d4f1a"
CAPABILITIES = "kc-capabilities-secret-77ab3e"
INTERFACE = "network_interface: {id: vmnet_test0000000001}\n"
# A live fixtures file like fixtures/staging.example.yaml: every credential comes from the environment.
STAGING_LIKE = (
    "credentials:\n"
    "  valid: ${KC_TEST_TOKEN}\n"
    "  without_scope: ${KC_TEST_UNSET}\n"
    "  network_restricted: ${KC_TEST_EMPTY}\n"
    "  invalid_capabilities: {headers: {X-Capabilities-Token: '${KC_TEST_CAPABILITIES}'}}\n"
    + INTERFACE
)


def write(directory: Path, name: str, text: str) -> Path:
    """Write a file and return its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def converted(option: Option, raw: str) -> object:
    """The value resolve() should give for a raw string."""
    if option.kind == "paths":
        return tuple(Path(item) for item in (raw if isinstance(raw, list) else [raw]))
    return {"str": str, "path": Path, "float": float, "int": int, "flag": bool}[option.kind](raw)


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("true", True), ("yes", True), ("0", False), ("false", False), ("", False)])
def test_flag_from_the_environment(raw: str, value: bool) -> None:
    """A flag's environment variable is on for 1/true/yes/on, off otherwise."""
    assert resolve({}, {"KATAPULT_CONFORMANCE_REQUIRE_COMPLETE": raw})["require_complete"].value is value


@pytest.mark.parametrize("option", ENV_OPTIONS, ids=[option.dest for option in ENV_OPTIONS])
def test_cli_beats_env_beats_default(option: Option) -> None:
    """Each option: the command line wins over its environment variable, which wins over the default."""
    assert option.env is not None
    cli_raw, env_raw = SAMPLES[option.kind]
    both = resolve({option.dest: cli_raw}, {option.env: env_raw})[option.dest]
    assert (both.value, both.source) == (converted(option, cli_raw), option.flag)
    env_only = resolve({}, {option.env: env_raw})[option.dest]
    assert (env_only.value, env_only.source) == (converted(option, env_raw), f"env {option.env}")
    neither = resolve({}, {})[option.dest]
    assert (neither.value, neither.source) == (option.default, "default")


def test_empty_env_var_means_default() -> None:
    """An empty environment variable is as good as unset."""
    setting = resolve({}, {"KATAPULT_TARGET_URL": "", "KATAPULT_MAX_RATE": ""})
    assert (setting["target_url"].source, setting["max_rate"].value) == ("default", 8.0)


def test_flag_comes_only_from_the_command_line() -> None:
    """--allow-production has no environment variable: only the command line sets it."""
    assert resolve({}, {"KATAPULT_ALLOW_PRODUCTION": "1"})["allow_production"].value is False
    assert resolve({"allow_production": True}, {})["allow_production"].source == "--allow-production"


def test_bad_number_names_flag_and_env_var() -> None:
    """A value that is not a number names both places it can come from."""
    with pytest.raises(ConfigError, match=r"--max-rate / KATAPULT_MAX_RATE must be a float, got 'fast'"):
        resolve({}, {"KATAPULT_MAX_RATE": "fast"})


@pytest.mark.parametrize("url", ["https://api.katapult.io/core/v1", "https://API.Katapult.IO/core/v1", "https://api.katapult.io./core/v1",
                                 "http://api.katapult.io:443/core/v1"])
def test_production_needs_allow_production(url: str) -> None:
    """api.katapult.io, however spelt, is refused unless --allow-production is given."""
    live = {"target_url": url, "target_fixtures": "staging.yaml"}
    with pytest.raises(ConfigError, match="--allow-production"):
        build_config(live, {})
    assert build_config({**live, "allow_production": True}, {}).is_live


def test_default_is_the_embedded_mock() -> None:
    """With nothing set, the suite runs in-process against the mock with its shipped fixtures."""
    config = build_config({}, {})
    assert not config.is_live
    assert config.fixtures_path == MOCK_FIXTURES


def test_env_var_is_read_into_a_credential(tmp_path: Path) -> None:
    """`${VAR}` takes its value from the environment given; the token is sent as a Bearer header."""
    fixtures = load_target_fixtures(write(tmp_path, "live.yaml", STAGING_LIKE), {"KC_TEST_TOKEN": TOKEN})
    assert fixtures.credential("valid").headers == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN in fixtures.secrets()


def test_unset_or_empty_env_var_makes_the_entry_absent(tmp_path: Path) -> None:
    """An unset or empty `${VAR}` leaves its entry out, so scenarios needing it are skipped naming the key."""
    fixtures = load_target_fixtures(write(tmp_path, "live.yaml", STAGING_LIKE), {"KC_TEST_TOKEN": TOKEN, "KC_TEST_EMPTY": ""})
    assert set(fixtures.credentials) == {"valid"}
    for key in ("without_scope", "network_restricted", "invalid_capabilities"):
        with pytest.raises(MissingFixture) as missing:
            fixtures.credential(key)
        assert missing.value.key == f"credentials.{key}"


def test_credential_as_headers_mapping(tmp_path: Path) -> None:
    """A credential given as `{headers: {...}}` is sent exactly as those headers, and its values are secrets."""
    environ = {"KC_TEST_TOKEN": TOKEN, "KC_TEST_CAPABILITIES": CAPABILITIES}
    fixtures = load_target_fixtures(write(tmp_path, "live.yaml", STAGING_LIKE), environ)
    credential = fixtures.credential("invalid_capabilities")
    assert credential == Credential("invalid_capabilities", {"X-Capabilities-Token": CAPABILITIES})
    assert CAPABILITIES in fixtures.secrets()
    assert CAPABILITIES not in repr(credential)


def test_unset_interface_variable_is_named(tmp_path: Path) -> None:
    """network_interface.id from an unset `${VAR}` is reported as missing, naming the variable to set."""
    path = write(tmp_path, "live.yaml", "credentials: {valid: t0ken}\nnetwork_interface: {id: '${KC_TEST_INTERFACE}'}\n")
    with pytest.raises(FixturesError, match=r"need network_interface.id: .*; set KC_TEST_INTERFACE in the environment$"):
        load_target_fixtures(path, {})
    assert load_target_fixtures(path, {"KC_TEST_INTERFACE": "vmnet_x"}).network_interface_id == "vmnet_x"


def test_a_credential_keeps_the_variable_it_came_from(tmp_path: Path) -> None:
    """Printed commands name a secret by its own `${VAR}`; one written inline by a placeholder after its key (CREDENTIALS_<KEY>)."""
    environ = {"KC_TEST_TOKEN": TOKEN, "KC_TEST_CAPABILITIES": CAPABILITIES}
    fixtures = load_target_fixtures(write(tmp_path, "live.yaml", STAGING_LIKE), environ)
    valid, capabilities = fixtures.credential("valid"), fixtures.credential("invalid_capabilities")
    assert valid.reference("Authorization") == Reference("KC_TEST_TOKEN", "credentials.valid")
    assert valid.shell_headers() == [("Authorization", "Bearer ${KC_TEST_TOKEN}")]
    assert capabilities.shell_headers() == [("X-Capabilities-Token", "${KC_TEST_CAPABILITIES}")]
    assert valid.secret_references() == {TOKEN: Reference("KC_TEST_TOKEN", "credentials.valid")}
    inline = load_target_fixtures(MOCK_FIXTURES, {})
    assert inline.credential("without_scope").shell_headers() == [("Authorization", "Bearer ${CREDENTIALS_WITHOUT_SCOPE}")]
    assert inline.credential("without_scope").reference("Authorization").inline


@pytest.mark.parametrize("value", ["${KC_TEST_TOKEN:-kc-default-secret}", "${KC_TEST_TOKEN", "$KC_TEST_TOKEN", "Bearer ${KC_TEST_TOKEN}",
                                   "${KC_TEST_TOKEN}${KC_TEST_CAPABILITIES}"])
def test_a_reference_that_is_not_exactly_dollar_brace_is_refused(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a whole `${VAR}` reads the environment: any other form is refused in one line naming the key and the form (exit 4),
    never sent as a token the server then refuses; the line never repeats the value (a default there would be a secret)."""
    path = write(tmp_path, "live.yaml", f"credentials:\n  valid: {TOKEN}\n  without_scope: '{value}'\n" + INTERFACE)
    with pytest.raises(FixturesError) as refused:
        load_target_fixtures(path, {"KC_TEST_TOKEN": TOKEN, "KC_TEST_CAPABILITIES": CAPABILITIES})
    message = str(refused.value)
    assert message.startswith(f"target fixtures {path}: credentials.without_scope is not a supported environment reference")
    assert "write the whole value as ${VAR}" in message and "kc-default-secret" not in message and "\n" not in message
    assert doctor.main(["--target-fixtures", str(path)]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "credentials.without_scope" in err[0] and "${VAR}" in err[0]


@dataclass(frozen=True)
class Run:
    """One `pytest --pyargs conformance` run; `{dir}` in args and env is where FILES are written."""

    id: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BadConfig(Run):
    """A configuration mistake and what the one-line message must say (the problem and the fix)."""

    says: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeaderRun(Run):
    """A run whose report header must show these katapult-conformance lines."""

    header: tuple[str, ...] = ()


FILES = {
    "broken.yaml": "credentials: {valid: [unclosed\n" + INTERFACE,
    "extra.yaml": "credentials: {valid: t0ken}\n" + INTERFACE + "interfaces: []\n",
    "novalid.yaml": "credentials: {without_scope: t0ken}\n" + INTERFACE,
    "nointerface.yaml": "credentials: {valid: t0ken}\nnetwork_interface: {}\n",
    "live.yaml": STAGING_LIKE,
}
COLLECT = ("--co", "-q")
MOCK = ("--target-fixtures", str(MOCK_FIXTURES))
BAD_CONFIGS = [
    BadConfig("url-not-http", (*COLLECT, "--target-url", "ftp://example.test/core/v1", *MOCK),
              says=("'ftp://example.test/core/v1' is not an http(s) URL", "pass e.g. --target-url https://")),
    BadConfig("live-without-fixtures", (*COLLECT, "--target-url", "http://127.0.0.1:9/core/v1"),
              says=("a live target needs --target-fixtures", "KATAPULT_TARGET_FIXTURES")),
    BadConfig("fixtures-file-missing", (*COLLECT, "--target-fixtures", "missing.yaml"),
              says=("cannot read target fixtures missing.yaml", "pass an existing file with --target-fixtures")),
    BadConfig("fixtures-not-yaml", (*COLLECT, "--target-fixtures", "{dir}/broken.yaml"),
              says=("broken.yaml is not valid YAML at line 2", "fix the syntax")),
    BadConfig("unknown-key", (*COLLECT, "--target-fixtures", "{dir}/extra.yaml"), says=("unknown key", "interfaces", "known keys: credentials")),
    BadConfig("valid-credential-absent", (*COLLECT, "--target-fixtures", "{dir}/novalid.yaml"),
              says=("novalid.yaml have no credentials.valid", "add credentials.valid: ${KATAPULT_API_TOKEN}")),
    BadConfig("valid-credential-env-unset", (*COLLECT, "--target-fixtures", "{dir}/live.yaml"),
              says=("live.yaml have no credentials.valid", "set KC_TEST_TOKEN in the environment")),
    BadConfig("interface-id-missing", (*COLLECT, "--target-fixtures", "{dir}/nointerface.yaml"), says=("need network_interface.id",)),
    BadConfig("unknown-profile", (*COLLECT, "--conformance-profile", "fastest"),
              says=("unknown conformance profile 'fastest'", "choose one of ci, dev, thorough")),
    BadConfig("unknown-mutant", (*COLLECT, "--mock-mutant", "no-such-mutant"), says=("unknown mutant 'no-such-mutant'", "choose one of")),
    BadConfig("production-without-allow", (*COLLECT, "--target-url", "https://api.katapult.io/core/v1", *MOCK),
              says=("refusing to run against Katapult's production API (api.katapult.io)", "--allow-production")),
]
HEADER_RUNS = [
    HeaderRun("defaults", ("--co",), header=(
        "katapult-conformance target: embedded reference mock (in-process) [default]",
        f"katapult-conformance fixtures: {MOCK_FIXTURES} [default]",
        "katapult-conformance profile: ci [default]",
    )),
    HeaderRun(
        "command-line-over-env",
        ("--co", "--target-url", "http://cli-host.invalid/core/v1", "--conformance-profile", "dev"),
        env={"KATAPULT_TARGET_URL": "http://env-host.invalid/core/v1", "KATAPULT_TARGET_FIXTURES": "{dir}/live.yaml",
             "KATAPULT_CONFORMANCE_PROFILE": "thorough", "KC_TEST_TOKEN": TOKEN, "KC_TEST_CAPABILITIES": CAPABILITIES},
        header=(
            "katapult-conformance target: http://cli-host.invalid/core/v1 [--target-url]",
            "katapult-conformance fixtures: {dir}/live.yaml [env KATAPULT_TARGET_FIXTURES]",
            "katapult-conformance profile: dev [--conformance-profile]",
        ),
    ),
    HeaderRun(
        "env",
        ("--co", "--target-fixtures", "{dir}/live.yaml"),
        env={"KATAPULT_TARGET_URL": "http://env-host.invalid/core/v1", "KATAPULT_CONFORMANCE_PROFILE": "dev", "KC_TEST_TOKEN": TOKEN},
        header=(
            "katapult-conformance target: http://env-host.invalid/core/v1 [env KATAPULT_TARGET_URL]",
            "katapult-conformance fixtures: {dir}/live.yaml [--target-fixtures]",
            "katapult-conformance profile: dev [env KATAPULT_CONFORMANCE_PROFILE]",
        ),
    ),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding FILES."""
    directory = tmp_path_factory.mktemp("config-files")
    for name, text in FILES.items():
        write(directory, name, text)
    return directory


def run(case: Run, run_suite: RunSuite, files: Path) -> pytest.RunResult:
    """The case's `pytest --pyargs conformance` run, in this process (the usage errors and the header need no child of their own)."""
    env = {name: value.format(dir=files) for name, value in case.env.items()}
    return run_suite("--pyargs", "conformance", *(arg.format(dir=files) for arg in case.args), env=env)


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[case.id for case in BAD_CONFIGS])
def test_bad_config_is_a_one_line_usage_error(case: BadConfig, run_suite: RunSuite, files: Path) -> None:
    """pytest exits 4 (usage error) with one line naming the problem and the fix; no traceback, nothing collected."""
    result = run(case, run_suite, files)
    out, err = result.stdout.str(), result.stderr.str()
    assert result.ret == 4, out + err
    assert out.strip() == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ERROR: katapult-conformance: ")
    for fragment in case.says:
        assert fragment in lines[0]


@pytest.mark.parametrize("case", HEADER_RUNS, ids=[case.id for case in HEADER_RUNS])
def test_header_shows_each_setting_and_its_source(case: HeaderRun, run_suite: RunSuite, files: Path) -> None:
    """`pytest --co` shows target, fixtures and profile with where each came from, and never a credential."""
    result = run(case, run_suite, files)
    out, err = result.stdout.str(), result.stderr.str()
    assert result.ret == 0, out + err
    shown = [line for line in out.splitlines() if line.startswith("katapult-conformance ")]
    missing = [line.format(dir=files) for line in case.header if line.format(dir=files) not in shown]
    assert not missing, "\n".join(shown)
    assert TOKEN not in out + err and CAPABILITIES not in out + err


def test_every_option_is_a_typed_setting() -> None:
    """Each option is read through a property with its own type (no `Any` from a catch-all __getattr__), so mypy checks every use."""
    import typing

    from conformance.setup.settings import OPTIONS, SuiteConfig

    for option in OPTIONS:
        read = getattr(SuiteConfig, option.dest, None)
        assert isinstance(read, property), f"SuiteConfig has no property for {option.dest}"
        assert typing.get_type_hints(read.fget)["return"] is not typing.Any
    assert not hasattr(SuiteConfig, "__getattr__")
