"""`katapult-conformance doctor`: run only the preflight, with the suite's own target options, and print what it found."""
from __future__ import annotations

import sys

from conformance.gate.preflight import preflight, setup_verdict
from conformance.gate.runlock import RunLock, RunLockError
from conformance.setup.command import FAILED, OK, SETUP, USAGE, CommandParser, fail
from conformance.setup.fixtures import FixturesError, load_target_fixtures
from conformance.setup.redaction import REDACT
from conformance.setup.settings import OPTIONS, ConfigError, build_config
from conformance.wire.transport import TargetError

# The run options the preflight uses: where the target is, its fixtures, and how to reach it. The rest (reports, baseline,
# profile, bounds) only mean something to a run of the tests, so doctor refuses them rather than ignore them.
DOCTOR_OPTIONS = ("target_url", "target_fixtures", "mock_mutant", "mock_world", "request_timeout", "request_retries", "ca_bundle",
                  "allow_production")


def parse_args(argv: list[str] | None) -> dict[str, object]:
    """The suite's target options (same flags, same environment variables); the others are left at their defaults."""
    parser = CommandParser("doctor", "Check the settings, the target fixtures and the target, as the preflight does before a run,"
                           " and print what it found; sends at most 20 requests and changes nothing.", exits=(OK, FAILED, USAGE, SETUP),
                           says={OK: "the setup is usable", FAILED: "the setup is usable, with doubts: each names the promise a run would fail",
                                 USAGE: "an unknown option, a bad value, or the target cannot be reached or asked"
                                        " (its token's window stayed spent, maintenance, a gateway's page)"})
    for option in OPTIONS:
        if option.dest not in DOCTOR_OPTIONS:
            continue
        help_text = option.help + (f" [env {option.env}]" if option.env else "")
        if option.kind == "flag":
            parser.add_argument(option.flag, action="store_true", dest=option.dest, help=help_text)
        else:
            parser.add_argument(option.flag, dest=option.dest, default=None, help=help_text)
    given = vars(parser.parse_args(argv))
    return {option.dest: given.get(option.dest) for option in OPTIONS}


def main(argv: list[str] | None = None) -> int:
    """0 when the setup is usable, 1 when usable with doubts, 6 when it is wrong (one line per problem), 4 for unusable options or an
    unreachable target."""
    from conformance.gate.session import make_target

    try:
        suite = build_config(parse_args(argv))
        fixtures = load_target_fixtures(suite.fixtures_path)
    except (ConfigError, FixturesError) as error:
        return fail("doctor", str(error), USAGE)
    REDACT.add(fixtures.secrets())
    try:
        target = make_target(suite)
    except ValueError as error:  # an unknown --mock-mutant, an unusable --mock-world
        return fail("doctor", str(error), USAGE)
    try:
        # A run's lock, as `run` takes it: the preflight's requests would spend a running run's rate window and read IPs it moved.
        lock = RunLock.acquire(str(suite.target_url)) if suite.is_live else None
    except RunLockError as error:
        target.close()
        return fail("doctor", str(error), USAGE)
    print(f"target: {suite.target_url if suite.is_live else 'embedded reference mock (in-process)'}")
    print(f"fixtures: {fixtures.source}")
    # An optional entry whose variable is unset is absent, and its scenarios are skipped: named here, so a misspelt name shows.
    for key, variable in fixtures.unset:
        print(f"absent: {key}, because {variable} is unset or empty in the environment (its scenarios are skipped)")
    try:
        found = preflight(target, fixtures, lambda message: print(REDACT(message), flush=True))
    except TargetError as error:
        return fail("doctor", REDACT(str(error)), USAGE)
    finally:
        target.close()
        if lock is not None:
            lock.release()
    for line in found.lines():
        print(REDACT(line))
    if not found.ok:
        print(f"setup is wrong: {len(found.problems)} problem(s) (exit {SETUP})")
        return SETUP
    print(setup_verdict(found))
    # A doubt is a promise a run would fail (setup mistake or server fault): usable, but not ok.
    return FAILED if found.doubts else OK


if __name__ == "__main__":
    sys.exit(main())
