"""One vocabulary for every subcommand: `katapult-conformance SUB` usage, defaults and exit codes in --help, one error prefix."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

PROGRAM = "katapult-conformance"
# pytest's own numbers where they exist (1 tests failed, 2 interrupted, 4 usage error), so `run` and the others agree.
OK, FAILED, INTERRUPTED_OR_UNREADABLE, USAGE, SETUP = 0, 1, 2, 4, 6
MEANINGS = {
    OK: "everything judged conforms (or the command did what it was asked)",
    FAILED: "a promise fails",
    INTERRUPTED_OR_UNREADABLE: "interrupted, or an input file or URL could not be read",
    USAGE: "an unknown option or a bad value: the message names it",
    SETUP: "the target or its fixtures are set up wrong (the preflight names each problem)",
}


def error_line(sub: str, message: str) -> str:
    """The one error prefix every subcommand uses."""
    return f"{PROGRAM} {sub}: error: {message}"


def fail(sub: str, message: str, code: int) -> int:
    """Print one error line to stderr and return the exit code (for `return fail(...)` in a main)."""
    print(error_line(sub, message), file=sys.stderr)
    return code


class CommandParser(argparse.ArgumentParser):
    """An argparse parser for `katapult-conformance SUB`: defaults shown, exit codes in the epilog, bad options one line and exit 4."""

    def __init__(self, sub: str, description: str | None, exits: Sequence[int] = (OK, USAGE), says: Mapping[int, str] | None = None) -> None:
        meanings = MEANINGS | dict(says or {})
        epilog = "exit codes:\n" + "\n".join(f"  {code}  {meanings[code]}" for code in sorted(exits))
        super().__init__(prog=f"{PROGRAM} {sub}", description=description, epilog=epilog,
                         formatter_class=HelpFormatter)
        self.sub = sub

    def error(self, message: str) -> NoReturn:
        """One line naming the problem and where the options are listed, then exit 4 (as `run` does for a bad option)."""
        print(error_line(self.sub, f"{message}; see `{self.prog} --help`"), file=sys.stderr)
        sys.exit(USAGE)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's lines, and appends `(default: X)` to an option's help where it has a default and does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"
