"""`katapult-conformance`: one command for what a user does with the suite (init, run, doctor, mock, replay, drift, mutants)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from conformance.setup.command import FAILED, INTERRUPTED_OR_UNREADABLE, MEANINGS, OK, PROGRAM, SETUP, USAGE, CommandParser, fail
from conformance.setup.paths import data_path
from conformance.setup.settings import OPTIONS

Main = Callable[[Sequence[str] | None], int]
RUN_USAGE = """usage: katapult-conformance run [PYTEST OPTIONS...]

Run the conformance suite: exactly `pytest --pyargs conformance` with the options given (every pytest option works too).
Without --target-url it runs against the embedded reference mock; `katapult-conformance init` writes target fixtures to start from.
"""
RUN_EXITS = (OK, FAILED, INTERRUPTED_OR_UNREADABLE, USAGE, SETUP)
STOPPED_READING = 141  # 128 + SIGPIPE
RUN_SAYS = {INTERRUPTED_OR_UNREADABLE: "interrupted (Ctrl-C, SIGTERM): verdicts are partial, cleanup still ran",
            USAGE: "an unknown option, a bad value, or the target cannot be reached: the message names it"}


def run_help() -> str:
    """`run --help`: the suite's options with their environment variables and defaults, then the exit codes."""
    lines = [RUN_USAGE, "suite options (each also read from its environment variable):"]
    for option in OPTIONS:
        said = option.default in (None, False, ()) or "default" in option.help
        default = "" if said else f" (default: {option.default})"
        lines.append(f"  {option.flag:<28} {option.help}{default}" + (f" [env {option.env}]" if option.env else ""))
    meanings = MEANINGS | RUN_SAYS
    lines += ["", "exit codes:", *(f"  {code}  {meanings[code]}" for code in RUN_EXITS)]
    return "\n".join(lines)


def pytest_command(args: Sequence[str], launched_as: str | None = None) -> list[str]:
    """What `run ARGS` becomes: `pytest --pyargs conformance ARGS`, by the `pytest` script installed beside this command's own."""
    # The script itself, as a user types it, not `python -m pytest`, whose working directory on sys.path can shadow modules.
    # (Which one no longer changes the cases drawn: profiles.without_local_constants keeps hypothesis off the constants of
    # the local modules loaded.) pip puts both scripts of one environment in one folder (resolved: pipx links only ours);
    # without it, -m with -P (the working directory kept off sys.path, as under the script) comes closest.
    ours = Path(sys.argv[0] if launched_as is None else launched_as)
    script = ours.resolve().parent / ("pytest.exe" if os.name == "nt" else "pytest")
    launcher = [str(script)] if ours.stem == "katapult-conformance" and script.is_file() else [sys.executable, "-P", "-m", "pytest"]
    return [*launcher, "--pyargs", "conformance", *joined_values(args)]


def joined_values(args: Sequence[str]) -> list[str]:
    """`--target-fixtures PATH` as `--target-fixtures=PATH` (and every suite option that takes a value).

    pytest picks its rootdir before any plugin's options exist, so the value of `--target-fixtures /elsewhere/x.yaml`
    counts as a path to test and moves the rootdir: the ids stay `conformance/...`, but pytest shows them relative to
    that rootdir (`../conformance/...`), and a user pastes what is shown. Joined, the value is no argument of its own.
    """
    takes_value = {option.flag for option in OPTIONS if option.kind != "flag"}
    joined: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in takes_value and index + 1 < len(args):
            joined.append(f"{arg}={args[index + 1]}")
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


def run(argv: Sequence[str] | None) -> int:
    """The suite: this process becomes `pytest --pyargs conformance ARGS`, so Ctrl-C and SIGTERM reach pytest itself."""
    # Not pytest.main() in this process: it has imported the conformance package already, so pytest could not rewrite it
    # (PytestAssertRewriteWarning).
    args = list(argv or [])
    if args and args[0] in ("-h", "--help"):
        print(run_help())
        return OK
    command = pytest_command(args)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(command[0], command)
    # Windows has no exec: wait for the child, which gets Ctrl-C from the console too and cleans up before it exits.
    child = subprocess.Popen(command)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


# What `init` writes: the file, the data it is copied from, what it is, and the next steps ({path} is where it went).
STARTERS = {
    "live": ("staging.yaml", ("fixtures", "staging.example.yaml"), "the target fixtures of a live Katapult deployment, to fill in", (
        "export KATAPULT_API_TOKEN=...   # a token with the ip_addresses scope; the optional tokens are named in the file",
        "edit {path}: the interface the suite may allocate to and the IPs it may use (each key is explained there)",
        "katapult-conformance doctor --target-url https://api.staging.katapult.dev/core/v1 --target-fixtures {path}",
        "katapult-conformance run --target-url https://api.staging.katapult.dev/core/v1 --target-fixtures {path}",
    )),
    "mock": ("mock-target.yaml", ("fixtures", "mock-target.yaml"), "the target fixtures of the served reference mock (its tokens are the"
             " mock's own, not secrets)", (
        "katapult-conformance mock --port 8080   # in another terminal: serves http://127.0.0.1:8080/core/v1",
        "katapult-conformance run --target-url http://127.0.0.1:8080/core/v1 --target-fixtures {path}",
        "least privilege: set credentials.valid in {path} to kmock-ipsonly-4e6d0b8a35, the mock's token with only the ip_addresses"
        " scope, and run again",
    )),
}


def init(argv: Sequence[str] | None) -> int:
    """Write the example target fixtures (or the served mock's, with --mock) into DIR and print the next steps."""
    parser = CommandParser("init", "Write a commented target fixtures file to start from, and print the next steps.",
                           says={OK: "the file was written", USAGE: "an unknown option, or the file exists (pass --force)"})
    parser.add_argument("dir", nargs="?", default=".", type=Path, help="directory to write it into, made if missing (default: .)")
    parser.add_argument("--mock", action="store_true", help="write mock-target.yaml, the fixtures of `katapult-conformance mock`,"
                        " instead of staging.yaml")
    parser.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    args = parser.parse_args(list(argv or []))
    name, source, what, steps = STARTERS["mock" if args.mock else "live"]
    path = args.dir / name
    if path.exists() and not args.force:
        return fail("init", f"{path} exists; pass --force to overwrite it, or name another directory", USAGE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data_path(*source).read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as error:
        return fail("init", f"cannot write {path}: {error.strerror or error}; name a directory you can write to", USAGE)
    print(f"wrote {path}: {what}")
    print("next:")
    print("\n".join(f"  {number}. {step.format(path=path)}" for number, step in enumerate(steps, 1)))
    return OK


def _delegate(module: str, function: str = "main") -> Main:
    def call(argv: Sequence[str] | None) -> int:
        return int(getattr(importlib.import_module(module), function)(argv))

    return call


COMMANDS: dict[str, tuple[Main, str]] = {
    "init": (init, "write a target fixtures file to start from (--mock: the served mock's) and print the next steps"),
    "run": (run, "run the conformance suite (pytest options pass through)"),
    "doctor": (_delegate("conformance.tools.doctor"), "preflight: check settings, fixtures and the target without running the suite"),
    "mock": (_delegate("conformance.mock.__main__"), "serve the reference mock over HTTP"),
    "replay": (_delegate("conformance.tools.replay.main"), "judge recorded traffic (go-vcr, HAR, JSON) against the fragment, sending nothing"),
    "drift": (_delegate("conformance.tools.drift"), "compare the fragment with Katapult's published OpenAPI document"),
    "mutants": (_delegate("conformance.tools.mutation"), "run the suite against each broken mock: does it catch them?"),
}


def usage() -> str:
    """The top-level help."""
    lines = ["usage: katapult-conformance COMMAND [OPTIONS...]", "", "commands:"]
    lines += [f"  {name:<9} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`katapult-conformance COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def package_version() -> str:
    """The installed version."""
    try:
        return version("katapult-conformance")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; a reader that stops reading (`... --help | head`) ends it quietly."""
    try:
        return dispatch(argv)
    except BrokenPipeError:
        # Python's own advice: point stdout at devnull, so the flush on the way out does not fail a second time; the status a
        # shell gives a command its pipe's reader stopped (killed by SIGPIPE), not 1, which says a promise fails.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return STOPPED_READING


def dispatch(argv: Sequence[str] | None) -> int:
    """Run the command named first; its own options (and --help) follow its name."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return OK
    if not args:
        print(usage(), file=sys.stderr)
        return USAGE
    if args[0] == "--version":
        print(f"{PROGRAM} {package_version()}")
        return OK
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"{PROGRAM}: error: unknown command {args[0]!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return USAGE
    return command[0](args[1:])


if __name__ == "__main__":
    sys.exit(main())
