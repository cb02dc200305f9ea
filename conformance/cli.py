"""`katapult-conformance`: one command for what a user does with the suite (run, doctor, mock, replay, drift, mutants)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

import pytest

from conformance.config import OPTIONS

Main = Callable[[Sequence[str] | None], int]
RUN_USAGE = """usage: katapult-conformance run [PYTEST OPTIONS...]

Run the conformance suite: `pytest --pyargs conformance` with the options given (every pytest option works too).
Without --target-url it runs against the embedded reference mock. Exit 0 every promise conforms, 1 one fails, 4 unusable settings.

suite options (each also read from its environment variable):
"""


def run(argv: Sequence[str] | None) -> int:
    """The suite, in this process (so Ctrl-C and SIGTERM still undo its allocations), with pytest's options passed through."""
    args = list(argv or [])
    if args and args[0] in ("-h", "--help"):
        print(RUN_USAGE + "\n".join(f"  {o.flag:<28} {o.help}" + (f" [env {o.env}]" if o.env else "") for o in OPTIONS))
        return 0
    return int(pytest.main(["--pyargs", "conformance", *args]))


def doctor(argv: Sequence[str] | None) -> int:
    """The preflight, when this version has it."""
    try:
        module = importlib.import_module("conformance.doctor")
    except ModuleNotFoundError as missing:
        if missing.name != "conformance.doctor":
            raise
        if argv and argv[0] in ("-h", "--help"):
            print("usage: katapult-conformance doctor [OPTIONS...]\n\nCheck settings, fixtures and the target before a run.")
            return 0
        print("katapult-conformance doctor: the preflight is not available in this version; upgrade katapult-conformance", file=sys.stderr)
        return 2
    return int(module.main(argv))


def _delegate(module: str, function: str = "main") -> Main:
    def call(argv: Sequence[str] | None) -> int:
        return int(getattr(importlib.import_module(module), function)(argv))

    return call


COMMANDS: dict[str, tuple[Main, str]] = {
    "run": (run, "run the conformance suite (pytest options pass through)"),
    "doctor": (doctor, "preflight: check settings, fixtures and the target without running the suite"),
    "mock": (_delegate("conformance.mock.__main__"), "serve the reference mock over HTTP"),
    "replay": (_delegate("conformance.replay.main"), "judge recorded traffic (go-vcr, HAR, JSON) against the fragment, sending nothing"),
    "drift": (_delegate("conformance.drift"), "compare the fragment with Katapult's published OpenAPI document"),
    "mutants": (_delegate("conformance.mutants"), "run the suite against each broken mock: does it catch them?"),
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
    """Dispatch to a command; its own options (and --help) follow its name."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"katapult-conformance {package_version()}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"katapult-conformance: unknown command {args[0]!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command[0](args[1:])


if __name__ == "__main__":
    sys.exit(main())
