"""`python -m conformance.tools.doctor`: run only the preflight, with the suite's own options, and print what it found."""
from __future__ import annotations

import argparse
import sys

from conformance.gate.preflight import SETUP_ERROR_EXIT, preflight
from conformance.setup.fixtures import FixturesError, load_target_fixtures
from conformance.setup.redaction import REDACT
from conformance.setup.settings import OPTIONS, ConfigError, build_config
from conformance.wire.transport import TargetError

USAGE_EXIT = 4


def parse_args(argv: list[str] | None) -> dict[str, object]:
    """The suite's options (same flags, same environment variables)."""
    parser = argparse.ArgumentParser(prog="python -m conformance.tools.doctor", description=__doc__)
    for option in OPTIONS:
        help_text = option.help + (f" [env {option.env}]" if option.env else "")
        if option.kind == "flag":
            parser.add_argument(option.flag, action="store_true", dest=option.dest, help=help_text)
        else:
            parser.add_argument(option.flag, dest=option.dest, default=None, help=help_text)
    return vars(parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """0 when the setup is usable, 6 when it is wrong (one line per problem), 4 for unusable options or an unreachable target."""
    from conformance.gate.session import make_target

    try:
        suite = build_config(parse_args(argv))
        fixtures = load_target_fixtures(suite.fixtures_path)
    except (ConfigError, FixturesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    REDACT.add(fixtures.secrets())
    target = make_target(suite)
    print(f"target: {suite.target_url if suite.is_live else 'embedded reference mock (in-process)'}")
    print(f"fixtures: {fixtures.source}")
    try:
        found = preflight(target, fixtures)
    except TargetError as error:
        print(REDACT(f"error: {error}"), file=sys.stderr)
        return USAGE_EXIT
    finally:
        target.close()
    for line in found.lines():
        print(REDACT(line))
    print("setup ok" if found.ok else f"setup is wrong: {len(found.problems)} problem(s) (exit {SETUP_ERROR_EXIT})")
    return 0 if found.ok else SETUP_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
