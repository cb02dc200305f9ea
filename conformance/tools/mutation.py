"""The mutation score: run the suite, as a user does, against the faithful mock and every mutant (`python -m conformance.tools.mutation`).

Each run is a subprocess `python -m pytest --pyargs conformance` with its own JUnit XML report; runs go in parallel.
A mutant is caught when at least one JUnit test case fails (a promise failed only by findings has a case of its own,
`conformance::promise[...]`); the faithful mock must pass everything. A few mutants (and the
faithful mock) are also served over loopback HTTP and run in live mode, as a user runs against a staging URL.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from conformance.contract.promises import BY_ID
from conformance.mock.mutants import MUTANTS, mock_class
from conformance.setup.command import FAILED, OK, USAGE, CommandParser
from conformance.setup.fixtures import IPRef, load_target_fixtures
from conformance.setup.paths import data_path
from conformance.wire import api
from conformance.wire.transport import TargetError, live_target

FAITHFUL = "faithful"
MOCK_FIXTURES = data_path("fixtures", "mock-target.yaml")
# Served over HTTP by default: the transport-level deviations (a hang, a header, a broken body) and a side effect.
LIVE_PREFERRED = ("hang-on-allocate-by-address", "errors-text-html", "200-invalid-json", "unallocate-noop", "check-then-act-allocator")
DEFAULT_LIVE_SAMPLE = 5
# The cheap, precise tests first: a run with --maxfail stops at its first failure, and the scenarios find most mutants
# within a second, where the generated tests take seconds. The order changes no verdict.
FIRST_MODULES = ("conformance.test_scenarios", "conformance.test_concurrency")
DEFAULT_RUN_TIMEOUT = 600.0
SERVER_START_TIMEOUT = 30.0
# A short rate-limit window keeps the pacer from waiting out a minute when the generated tests send fast. With it,
# the burst in test_rate_limit_reached cannot reach the limit within one window, so live runs leave that test out
# (it runs in-process, where the clock is virtual).
LIVE_WINDOW_SECONDS = "2"
LIVE_DESELECT = "not test_rate_limit_reached"
LIVE_MAX_RATE = "2000"
LIVE_PERMITTED = "1000000"
# Loopback answers in milliseconds; a mutant that never answers need not cost the default 10 s a request.
LIVE_REQUEST_TIMEOUT = "2"
# --live-pace suite: the suite's own pacing and budget, as a user runs it, against a mock whose window is 10 s, the suite
# pacing by a clock six times as fast (conformance.tools.scaled_clock): its 60 s window is the mock's 10 s, so a run sends
# what a default run sends, burst included, in a sixth of the time.
DEFAULT_PACE_WINDOW_SECONDS = "10"
# The plugin's default scale, 6, is what makes the mock's 10 s window the suite's 60 s one.
SCALED_CLOCK = ("-p", "conformance.tools.scaled_clock")
# The loopback mock costs nothing per request; the default budget exists to protect real targets.
LIVE_MAX_REQUESTS = "100000"
SHOWN_TESTS = 3
OUTPUT_TAIL = 1500


@dataclass(frozen=True)
class Run:
    """One run of the suite: against the faithful mock or a mutant, in-process or over loopback HTTP."""

    mutant: str
    live: bool = False
    # Live only: the suite's default pacing and budget (slow, as a user runs it) instead of the matrix's fast one.
    default_pace: bool = False

    @property
    def mode(self) -> str:
        """How the suite reaches the mock."""
        return "live" if self.live else "in-process"

    @property
    def expected(self) -> str:
        """The status that makes this run a success."""
        return "clean" if self.mutant == FAITHFUL else "caught"

    @property
    def description(self) -> str:
        """What the mock does differently."""
        return mock_class(self.mutant).description

    @property
    def breaks(self) -> tuple[str, ...]:
        """The promises the mutant's deviation breaks: a full run must fail exactly these."""
        return mock_class(self.mutant).breaks


@dataclass
class Outcome:
    """What one run found: status is clean, false-alarm, caught, misattributed, missed, left-changed, error or timeout."""

    run: Run
    status: str
    seconds: float
    tests: int = 0
    failed: list[str] = field(default_factory=list)
    first_failure: float | None = None
    detail: str = ""
    # The promises the run's conformance report says fail (what the deviation was attributed to).
    failing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the run came out as it should (faithful clean, mutant caught)."""
        return self.status == self.run.expected


@dataclass(frozen=True)
class JUnitSummary:
    """Test ids from a JUnit XML report: how many ran, which failed, seconds into the session of the first failure."""

    tests: int
    failed: list[str]
    first_failure: float | None


def case_id(case: ET.Element) -> str:
    """A pytest-like id for a JUnit testcase: `test_scenarios::test_scenario[missing-token]`."""
    module = (case.get("classname") or "").removeprefix("conformance.")
    name = case.get("name") or "?"
    return f"{module.replace('.', '::')}::{name}" if module else name


def parse_junit(path: Path) -> JUnitSummary:
    """Read a pytest JUnit XML report; a teardown error counts as a failure of its test."""
    seen: set[str] = set()
    failed: list[str] = []
    elapsed = 0.0
    first_failure: float | None = None
    for case in ET.parse(path).getroot().iter("testcase"):
        elapsed += float(case.get("time") or 0.0)
        name = case_id(case)
        seen.add(name)
        if case.find("failure") is None and case.find("error") is None:
            continue
        if name not in failed:
            failed.append(name)
        if first_failure is None:
            first_failure = elapsed
    return JUnitSummary(len(seen), failed, first_failure)


def classify(run: Run, returncode: int, summary: JUnitSummary | None) -> str:
    """The run's status from pytest's exit code (0 passed, 1 failed, else trouble) and its JUnit report.

    Only a failing JUnit case is a catch: a run failed by a finding that no test of its promise saw reports a case of its own
    (`conformance::promise[...]`), so exit 1 with no failing case is an error, whatever the conformance report says.
    """
    caught = bool(summary and summary.failed)
    if summary is None or returncode not in (0, 1) or (returncode == 1) != caught:
        return "error"
    if run.mutant == FAITHFUL:
        return "false-alarm" if caught else "clean"
    return "caught" if caught else "missed"


def attributed(run: Run, status: str, failing: Sequence[str], full: bool) -> str:
    """A caught mutant is `misattributed` when a full run's failing promises are not exactly those its deviation breaks.

    Such a report would send its reader to the wrong promise; a run stopped by --maxfail cannot be judged on this. A live
    run draws a share of the examples, so a break that needs a rarer case (cleanup after a generated request moved an IP
    held elsewhere) may not show there: live, failing some of the named promises and no other is the right attribution.
    """
    if status != "caught" or not full:
        return status
    exact = set(failing) == set(run.breaks)
    within = bool(failing) and set(failing) <= set(run.breaks)
    return status if exact or (run.live and within) else "misattributed"


def child_environment(pycache: Path) -> dict[str, str]:
    """The caller's environment without settings that change what the suite runs against; bytecode cached (in `pycache` if read-only)."""
    dropped = ("PYTEST_ADDOPTS", "PYTHONDONTWRITEBYTECODE")
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("KATAPULT_", "PYTEST_XDIST_")) and key not in dropped}
    # Without a bytecode cache every pytest start rewrites ~300 plugin modules again: seconds per run, times every run. Where
    # the install is writable, the __pycache__ beside each module (pip compiled most on install) serves every run; a cache
    # of our own there would make the first runs compile every module, the standard library's too, afresh (5-7 s each).
    if not os.access(Path(__file__).resolve().parent, os.W_OK):
        environ.setdefault("PYTHONPYCACHEPREFIX", str(pycache))
    # Each run starts in a fresh directory, where hypothesis would rebuild its Unicode tables (~4.5 s) in .hypothesis.
    environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(pycache / "hypothesis"))
    return environ


def suite_modules() -> list[str]:
    """Every test module of the suite, FIRST_MODULES first."""
    found = sorted(f"conformance.{path.stem}" for path in Path(__file__).parent.parent.glob("test_*.py"))
    return [name for name in FIRST_MODULES if name in found] + [name for name in found if name not in FIRST_MODULES]


def pytest_command(run: Run, junit: Path, base_url: str | None, maxfail: int = 0, max_examples: int | None = None) -> list[str]:
    """The command a user types (the suite's modules one by one) with JUnit and JSON reports: the mock (or mutant) in-process, or a URL."""
    return [sys.executable, "-m", "pytest", *pytest_arguments(run, junit, base_url, maxfail, max_examples)]


def pytest_arguments(run: Run, junit: Path, base_url: str | None, maxfail: int = 0, max_examples: int | None = None) -> list[str]:
    """pytest's arguments for one run (also what the project's tests pass to an in-process pytest)."""
    command = ["--pyargs", *suite_modules(), "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
               f"--conformance-report={junit.with_name('report.json')}"]
    if maxfail:
        command.append(f"--maxfail={maxfail}")
    if max_examples is not None:
        command += ["--conformance-max-examples", str(max_examples)]
    if base_url is not None:
        command += ["--target-url", base_url, "--target-fixtures", str(MOCK_FIXTURES)]
        if run.default_pace:
            command += SCALED_CLOCK
        else:
            command += ["--max-rate", LIVE_MAX_RATE, "--max-requests", LIVE_MAX_REQUESTS, "-k", LIVE_DESELECT,
                        "--request-timeout", LIVE_REQUEST_TIMEOUT]
    elif run.mutant != FAITHFUL:
        command += ["--mock-mutant", run.mutant]
    return command


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]


def first_line(stream: IO[str], timeout: float) -> str:
    """The first line a child prints, or "" if it prints none within `timeout` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


@contextmanager
def served(run: Run, workdir: Path, environ: dict[str, str]) -> Iterator[str]:
    """Serve the mock (or a mutant) with `python -m conformance.mock --port 0`; yield its base URL; stop it after."""
    mutant = run.mutant
    window = DEFAULT_PACE_WINDOW_SECONDS if run.default_pace else LIVE_WINDOW_SECONDS
    command = [sys.executable, "-m", "conformance.mock", "--port", "0", "--window-seconds", window]
    if not run.default_pace:
        # The suite paces itself to 80% of X-RateLimit-Permitted a minute; at the world's 1,000 that is 13 requests a
        # second, which would make the fast matrix wait on pacing, not on the mock.
        command += ["--permitted", LIVE_PERMITTED]
    if mutant != FAITHFUL:
        command += ["--mutant", mutant]
    with (workdir / "server.err").open("w+", encoding="utf-8") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environ, cwd=workdir)
        assert process.stdout is not None
        try:
            url = first_line(process.stdout, SERVER_START_TIMEOUT)
            if not url.startswith("http"):
                errors.seek(0)
                raise RuntimeError(f"python -m conformance.mock printed no URL within {SERVER_START_TIMEOUT:g} s: {_tail(errors.read()) or url!r}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


def execute(run: Run, environ: dict[str, str], timeout: float, maxfail: int = 0, max_examples: int | None = None) -> Outcome:
    """Run the suite once, from an empty working directory, and judge the outcome."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"kc-mutant-{run.mutant}-") as tmp:
        workdir = Path(tmp)
        junit = workdir / "junit.xml"
        try:
            with served(run, workdir, environ) if run.live else nullcontext() as base_url:
                before = fixture_holders(base_url) if base_url else {}
                completed = subprocess.run(
                    pytest_command(run, junit, base_url, maxfail, max_examples),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    env=environ,
                    cwd=workdir,
                    check=False,
                )
                left = left_changed(before, fixture_holders(base_url), completed.stdout) if base_url else []
        except subprocess.TimeoutExpired:
            return Outcome(run, "timeout", time.monotonic() - started, detail=f"the suite did not finish within {timeout:g} s")
        except (RuntimeError, TargetError) as error:
            return Outcome(run, "error", time.monotonic() - started, detail=str(error))
        seconds = time.monotonic() - started
        summary = parse_junit(junit) if junit.exists() else None
        failing = failing_promises(workdir / "report.json")
        status = attributed(run, classify(run, completed.returncode, summary), failing, full=not maxfail)
        detail = "" if status in ("clean", "caught", "missed") else _tail(completed.stdout + completed.stderr)
        if status == "misattributed":
            detail = f"fails {', '.join(failing)}; its deviation breaks {', '.join(run.breaks)}"
        if left:
            # Whatever else happened, a live run that leaves the target changed without naming it broke its word.
            status, detail = "left-changed", "the run left the target changed without naming it: " + "; ".join(left)
        if summary is None:
            return Outcome(run, status, seconds, detail=detail)
        return Outcome(run, status, seconds, summary.tests, summary.failed, summary.first_failure, detail, failing)


def fixture_holders(base_url: str) -> dict[IPRef, str | None]:
    """Who holds each IP of the mock's target fixtures, read straight from the served mock."""
    fixtures = load_target_fixtures(MOCK_FIXTURES, environ={})
    target = live_target(base_url, timeout=10.0, max_requests=1000, max_rate=1000.0)
    # The runner reads the mock's state, it does not judge it: a mutant's rate-limit headers must not make it wait or stop.
    target.pacer.trust_remaining = False
    try:
        return {ip: api.holder_of(target, fixtures.credential("valid"), ip, budgeted=False) for ip in fixtures.known_ips()}
    finally:
        target.close()


def left_changed(before: dict[IPRef, str | None], after: dict[IPRef, str | None], output: str) -> list[str]:
    """The IPs a run left changed that its output does not name (a cleanup failure names each IP it could not put back)."""
    return [f"{ip.id} was {before[ip] or 'free'}, now {after[ip] or 'free'}" for ip in before
            if after.get(ip) != before[ip] and ip.id not in output]


def failing_promises(report: Path) -> list[str]:
    """The promises a conformance report says fail (none when the run wrote no report)."""
    if not report.exists():
        return []
    return [promise["id"] for promise in json.loads(report.read_text(encoding="utf-8"))["promises"] if promise["verdict"] == "fails"]


def live_provokable(name: str) -> bool:
    """Whether a live run can show the mutant's deviation at all: not when every promise it breaks needs the in-process
    mock's switches (maintenance cannot be switched on at a live target)."""
    return any(BY_ID[promise].live_provokable for promise in mock_class(name).breaks)


def live_sample(names: Sequence[str], size: int) -> list[str]:
    """A deterministic sample of the live-provokable mutants to also run live: the preferred transport mutants first, then by name."""
    provokable = [name for name in names if live_provokable(name)]
    ordered = [name for name in LIVE_PREFERRED if name in provokable] + sorted(name for name in provokable if name not in LIVE_PREFERRED)
    return ordered[:size]


def plan(names: Sequence[str], live_size: int, default_pace: bool = False, in_process: bool = True) -> list[Run]:
    """Every run of the matrix: the faithful mock and each mutant in-process, then the live sample with its own control."""
    runs = [Run(FAITHFUL), *(Run(name) for name in names)] if in_process else []
    sample = live_sample(names, live_size)
    if sample:
        runs += [Run(FAITHFUL, live=True, default_pace=default_pace), *(Run(name, live=True, default_pace=default_pace) for name in sample)]
    return runs


def run_matrix(runs: Sequence[Run], jobs: int, timeout: float, maxfail: int = 0, progress: bool = True,
               max_examples: int | None = None) -> list[Outcome]:
    """Execute the runs in parallel (live runs first, as they take longest); outcomes in the order of `runs`."""
    outcomes: dict[Run, Outcome] = {}
    ordered = sorted(runs, key=lambda run: not run.live)
    with tempfile.TemporaryDirectory(prefix="kc-mutants-pycache-") as pycache, ThreadPoolExecutor(max_workers=jobs) as pool:
        environ = child_environment(Path(pycache))
        futures = {pool.submit(execute, run, environ, timeout, maxfail, max_examples): run for run in ordered}
        for done, future in enumerate(as_completed(futures), 1):
            outcome = outcomes[futures[future]] = future.result()
            if progress:
                mark = "ok" if outcome.ok else "!!"
                print(f"[{done}/{len(runs)}] {mark} {outcome.status:11} {outcome.run.mode:10} {outcome.run.mutant} ({outcome.seconds:.1f} s)",
                      file=sys.stderr, flush=True)
    return [outcomes[run] for run in runs]


def caught_by(outcome: Outcome, quote: Callable[[str], str] = str) -> str:
    """The first few failing test ids, and how many more."""
    shown = ", ".join(quote(name) for name in outcome.failed[:SHOWN_TESTS])
    more = len(outcome.failed) - SHOWN_TESTS
    return shown + (f" (+{more} more)" if more > 0 else "")


def evidence(outcome: Outcome) -> str:
    """The tests that caught the mock, or the last line of what went wrong."""
    lines = outcome.detail.strip().splitlines()
    if outcome.status in ("error", "timeout", "misattributed") and lines:
        return lines[-1]
    return caught_by(outcome)


def timing(outcome: Outcome) -> str:
    """Seconds into the session of the first failure, or the whole run's time when nothing failed."""
    if outcome.first_failure is not None:
        return f"{outcome.first_failure:.2f} s"
    return f"run {outcome.seconds:.1f} s"


def result(outcome: Outcome) -> str:
    """The status as shown: upper case when it is not what the run should give."""
    return outcome.status if outcome.ok else outcome.status.upper()


def text_table(outcomes: Sequence[Outcome]) -> str:
    """The score as a plain-text table."""
    header = ("mutant", "mode", "result", "first failure", "caught by")
    rows = [(o.run.mutant, o.run.mode, result(o), timing(o), evidence(o)) for o in outcomes]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in [header, *rows]]
    lines.insert(1, "-" * min(max(len(line) for line in lines), 150))
    return "\n".join(lines)


def markdown_table(outcomes: Sequence[Outcome]) -> str:
    """The score as a Markdown table, for the README."""
    lines = ["| mutant | deviation | mode | result | promises failing | first failure | caught by |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        tests = caught_by(o, lambda name: f"`{name}`") or "-"
        promises = ", ".join(o.failing) or "-"
        cells = [f"`{o.run.mutant}`", o.run.description.replace("|", "\\|"), o.run.mode, result(o), promises, timing(o), tests]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def score_line(outcomes: Sequence[Outcome], wall: float, jobs: int) -> str:
    """One line: mutants caught per mode, the faithful mock's verdict, and the matrix wall time."""
    parts = []
    for mode in ("in-process", "live"):
        mutants = [o for o in outcomes if o.run.mode == mode and o.run.mutant != FAITHFUL]
        controls = [o for o in outcomes if o.run.mode == mode and o.run.mutant == FAITHFUL]
        if mutants or controls:
            caught = sum(o.status == "caught" for o in mutants)
            control = ", ".join(o.status for o in controls) or "not run"
            parts.append(f"{mode}: {caught}/{len(mutants)} mutants caught, faithful {control}")
    total = sum(o.seconds for o in outcomes)
    judged = [o for o in outcomes if not o.run.live and o.run.mutant != FAITHFUL and o.failing]
    precision = f" In-process, {sum(len(o.failing) for o in judged) / len(judged):.2f} promises fail per caught mutant." if judged else ""
    return f"{'; '.join(parts)}.{precision} Matrix wall time {wall:.1f} s with {jobs} jobs ({total:.1f} s of runs)."


def report_json(outcomes: Sequence[Outcome], wall: float, jobs: int) -> dict[str, Any]:
    """Everything the run found, for --json."""
    runs = []
    for o in outcomes:
        entry = asdict(o)
        entry.update(mutant=o.run.mutant, mode=o.run.mode, description=o.run.description, expected=o.run.expected, ok=o.ok,
                     pace="default" if o.run.default_pace else "fast", breaks=list(o.run.breaks))
        del entry["run"]
        runs.append(entry)
    return {"ok": all(o.ok for o in outcomes), "wall_seconds": round(wall, 2), "jobs": jobs, "runs": runs}


def live_sample_size(text: str) -> int:
    """A number of mutants, or `all` for the whole catalogue."""
    return len(MUTANTS) if text == "all" else int(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = CommandParser("mutants", __doc__.splitlines()[0] if __doc__ else None, exits=(OK, FAILED, USAGE),
                           says={OK: "the faithful mock is clean and every mutant is caught, each charged to what it breaks",
                                 FAILED: "a false alarm, a missed or misattributed mutant, or a run that errored"})
    parser.add_argument("--only", default=None, metavar="NAME,...", help="mutants to run (default: all); the faithful mock always runs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel (default: the number of CPUs)")
    parser.add_argument("--live-sample", type=live_sample_size, default=DEFAULT_LIVE_SAMPLE,
                        help=f"also run this many mutants, and the faithful mock, live over loopback HTTP (default {DEFAULT_LIVE_SAMPLE}; 0: none;"
                             " all: the whole catalogue)")
    parser.add_argument("--live-pace", choices=("fast", "suite"), default="fast",
                        help="fast (default): live runs at --max-rate 2000 against a 2 s window, without the 429 burst; suite: the suite's"
                             " own pacing and budget, burst included, as a user runs it, against a 10 s window on a clock 6x as fast")
    parser.add_argument("--live-only", action="store_true", help="run only the live sample (and its faithful control), nothing in-process")
    parser.add_argument("--timeout", type=float, default=DEFAULT_RUN_TIMEOUT, help=f"seconds allowed per run (default {DEFAULT_RUN_TIMEOUT:g})")
    parser.add_argument("--maxfail", type=int, default=0, metavar="N",
                        help="stop each run after N failures: faster, but lists fewer catching tests (default 0: run everything)")
    parser.add_argument("--conformance-max-examples", type=int, default=None, metavar="N", dest="max_examples",
                        help="generated examples per property test in each run, as for `run` (default: the ci profile's); fewer is faster")
    parser.add_argument("--markdown", action="store_true", help="print the score table as Markdown")
    parser.add_argument("--conformance-report", type=Path, default=None, metavar="PATH",
                        help="also write the results to PATH: .json (the runs and the score) or .md (the table)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.timeout <= 0 or args.live_sample < 0 or args.maxfail < 0 or (args.max_examples is not None and args.max_examples < 1):
        parser.error("--jobs, --timeout and --conformance-max-examples must be positive, --live-sample and --maxfail not negative")
    if args.conformance_report is not None and args.conformance_report.suffix not in (".json", ".md"):
        parser.error(f"--conformance-report {args.conformance_report} must end in .json or .md")
    if args.only is not None:
        args.only = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in args.only if name not in MUTANTS]
        if unknown:
            parser.error(f"unknown mutant {', '.join(unknown)}: choose from {', '.join(sorted(MUTANTS))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix, print the table and the score; 0 only when the faithful mock is clean and every mutant is caught."""
    args = parse_args(argv)
    names = args.only if args.only is not None else list(MUTANTS)
    runs = plan(names, args.live_sample, default_pace=args.live_pace == "suite", in_process=not args.live_only)
    started = time.monotonic()
    outcomes = run_matrix(runs, args.jobs, args.timeout, args.maxfail, max_examples=args.max_examples)
    wall = time.monotonic() - started
    print(markdown_table(outcomes) if args.markdown else text_table(outcomes))
    problems = [o for o in outcomes if not o.ok and o.detail]
    for o in problems:
        print(f"\n--- {o.run.mutant} ({o.run.mode}): {o.status}\n{o.detail.strip()}", file=sys.stderr)
    print("\n" + score_line(outcomes, wall, args.jobs))
    unprovokable = [name for name in names if not live_provokable(name)]
    if args.live_sample and unprovokable:
        what = "what it breaks" if len(unprovokable) == 1 else "what they break"
        print(f"Never in the live sample: {', '.join(unprovokable)} ({what} cannot be provoked on a live target).")
    report: Path | None = args.conformance_report
    if report is not None:
        text = json.dumps(report_json(outcomes, wall, args.jobs), indent=2) + "\n" if report.suffix == ".json" else markdown_table(outcomes) + "\n"
        report.write_text(text, encoding="utf-8")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
