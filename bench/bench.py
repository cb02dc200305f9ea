"""Benchmark: the suite against the schemathesis CLI, measured in the same run on this machine, three ways.

- Whole process, as a user times them: `pytest --pyargs conformance` (the `ci` profile, on the in-process mock) and the
  schemathesis CLI on as many cases, each cases generated / wall seconds of the whole command, start-up included.
- Slope: cases per second between two run sizes (cases added / seconds added), so both sides pay their start-up once and
  it cancels out: what each costs per case once running. The CLI runs the same fragment, the same operation and the same
  response checks against the reference mock served on loopback, with the mock's valid token; the suite runs its
  generated tests on the in-process mock.
- Start-up: `pytest --pyargs conformance --co -q` (collecting the suite, running nothing), beside the floor under it in the
  same environment: `pytest --co -q` on an empty test file without this plugin (pytest and the other plugins installed,
  schemathesis' and hypothesis' among them) and with no plugin at all.
- Live requests: a default run (`katapult-conformance run`, `ci` profile) against `katapult-conformance mock --permitted 200`,
  the report's requests.sent (the preflight's counted apart). To finish in seconds, not minutes, the mock's rate window is
  10 s and the suite paces by a clock six times as fast (conformance/tools/scaled_clock.py), so its 60 s window is the mock's 10 s:
  the same requests, a sixth of the waiting.

Each timing runs --repeat times after a warm-up run and the fastest counts; the two whole-process runs take turns, so a slow
spell of the machine slows both. Run it on a quiet machine.

Usage: python bench/bench.py [--small N] [--large N] [--repeat N] [--no-live] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "allocate_ip.yaml"
MOCK_FIXTURES = ROOT / "fixtures" / "mock-target.yaml"
OPERATION = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"
VALID_TOKEN = "kmock-valid-7d1e0c5a9b"
SUITE_CASES = re.compile(r"^(test_\S+): (\d+) cases\b", re.MULTILINE)
CLI_CASES = re.compile(r"(\d+) generated")
BATCH_MEAN = 6
# The live count: a 200-a-minute token, its window served as 10 s and the suite's clock six times as fast to match.
LIVE_PERMITTED = 200
LIVE_WINDOW_SECONDS = 10
CLOCK_SCALE = 6
CLOCK_PLUGIN = "conformance.tools.scaled_clock"


@dataclass(frozen=True)
class Run:
    """One timed run: how many cases it sent and how long the whole process took."""

    cases: int
    seconds: float

    @property
    def rate(self) -> float:
        """Cases per second of the whole process, start-up included."""
        return self.cases / self.seconds


@dataclass(frozen=True)
class LiveCount:
    """What a default live run sent, from its report."""

    sent: int
    preflight: int
    throttled: int
    statuses: Mapping[str, int]
    seconds: float


@dataclass(frozen=True)
class StartUp:
    """Wall seconds to collect the suite, and of the floor under it: pytest with the environment's other plugins, and bare."""

    suite: float
    other_plugins: float
    bare: float


@dataclass(frozen=True)
class Figures:
    """Everything one bench run measured."""

    cli_small: Run
    cli_large: Run
    suite_small: Run
    suite_large: Run
    suite_whole: Run
    cli_whole: Run
    cores: int | None
    startup: StartUp | None = None
    live: LiveCount | None = None


@cache
def pycache() -> str:
    """One bytecode cache for every run of this bench (made on first use)."""
    return tempfile.mkdtemp(prefix="katapult-bench-pycache-")


def child_env(**extra: str) -> dict[str, str]:
    """Our environment with bytecode caching on (in a temporary prefix), as on a developer's machine, for both sides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KATAPULT_") and key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache()
    env.update(extra)
    return env


def script(name: str) -> str:
    """A console script of this environment (beside its python), as a user runs it; else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise SystemExit(f"cannot find the {name!r} command; install the project (pip install -e .) in this environment")
    return found


def timed(command: list[str], cwd: Path = ROOT, env: Mapping[str, str] | None = None) -> tuple[str, float, int]:
    """Run a command to completion; return its output, wall time and exit status."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=dict(env or child_env()), check=False)
    elapsed = time.perf_counter() - started
    return result.stdout + result.stderr, elapsed, result.returncode


@contextmanager
def served_mock(*options: str) -> Iterator[str]:
    """`katapult-conformance mock --port 0 OPTIONS` on loopback; yields its base URL, stops it after."""
    process = subprocess.Popen([script("katapult-conformance"), "mock", "--port", "0", *options],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env=child_env())
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"the mock printed no URL (got {url!r})")
        yield url
    finally:
        process.terminate()
        process.wait()
        process.stdout.close()


def suite_cases(output: str) -> int:
    """Generated cases of a suite run: the sum of its `test_x: N cases;` lines."""
    return sum(int(count) for _, count in SUITE_CASES.findall(output))


def cli_cases(output: str) -> int | None:
    """Generated cases of a schemathesis CLI run (`N generated`), or None if it printed no count."""
    found = CLI_CASES.search(output)
    return int(found.group(1)) if found else None


def cli_run(url: str, examples: int) -> Run:
    """The schemathesis CLI on the fragment's operation, the same checks, positive and negative modes."""
    output, seconds, _ = timed([
        script("st"), "run", str(SPEC), "--url", url, "--include-path", OPERATION, "-n", str(examples), "--phases", "fuzzing",
        "--mode", "all", "-c", CHECKS, "--seed", "1", "--generation-database", "none", "--no-color",
        "-H", f"Authorization: Bearer {VALID_TOKEN}",
    ])
    cases = cli_cases(output)
    if cases is None:
        raise SystemExit(f"could not read the CLI's case count; its output was:\n{output[-2000:]}")
    return Run(cases, seconds)


def suite_run(examples: int) -> Run:
    """The suite's generated tests on the in-process mock."""
    output, seconds, _ = timed(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "test_generated.py"), "-q", "-p", "no:cacheprovider",
         "--conformance-profile", "ci", "--conformance-max-examples", str(examples)],
    )
    return Run(passing_cases(output), seconds)


def passing_cases(output: str) -> int:
    """A suite run's generated cases; a run that did not pass on the faithful mock measures nothing."""
    if " passed" not in output or " failed" in output:
        raise SystemExit(f"the suite did not pass on the faithful mock:\n{output[-3000:]}")
    return suite_cases(output)


def whole_suite_run() -> Run:
    """`pytest --pyargs conformance` with the `ci` profile, as a user runs it: every test, start-up and end of run included."""
    output, seconds, _ = timed([script("pytest"), "--pyargs", "conformance", "-q", "-p", "no:cacheprovider", "--conformance-profile", "ci"])
    return Run(passing_cases(output), seconds)


def live_count(report: Mapping[str, Any], seconds: float) -> LiveCount:
    """The requests a live run's JSON report counts: sent by the tests, and the preflight's apart."""
    requests = report["requests"]
    return LiveCount(int(requests["sent"]), int(requests.get("preflight", 0)), int(requests.get("throttled", 0)),
                     dict(requests.get("by_status", {})), seconds)


def live_run() -> LiveCount:
    """A default live run against the served mock with a 200-a-minute token (window and clock scaled together, see above)."""
    with tempfile.TemporaryDirectory(prefix="katapult-bench-live-") as tmp, \
            served_mock("--permitted", str(LIVE_PERMITTED), "--window-seconds", str(LIVE_WINDOW_SECONDS)) as url:
        env = child_env(KATAPULT_CLOCK_SCALE=str(CLOCK_SCALE))
        output, seconds, status = timed([script("katapult-conformance"), "run", "-q", "-p", CLOCK_PLUGIN, "--target-url", url,
                                         "--target-fixtures", str(MOCK_FIXTURES), "--conformance-report", "report.json"],
                                        cwd=Path(tmp), env=env)
        report = Path(tmp) / "report.json"
        if status != 0 or not report.exists():
            raise SystemExit(f"the live run did not pass against the faithful served mock (exit {status}):\n{output[-3000:]}")
        return live_count(json.loads(report.read_text(encoding="utf-8")), seconds)


def startup(times: int) -> StartUp:
    """The fastest of `times` start-ups of each: the suite collected, and an empty test file with and without the other plugins."""
    with tempfile.TemporaryDirectory(prefix="katapult-bench-startup-") as tmp:
        (Path(tmp) / "test_empty.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
        collect = [script("pytest"), "--co", "-q", "-p", "no:cacheprovider"]

        def fastest(command: list[str], **extra: str) -> float:
            return min(timed(command, cwd=Path(tmp), env=child_env(**extra))[1] for _ in range(times + 1))  # the first warms the caches

        return StartUp(fastest([*collect, "--pyargs", "conformance"]),
                       fastest([*collect, "-p", "no:katapult_conformance", "-p", "no:katapult_mock", "test_empty.py"]),
                       fastest([*collect, "test_empty.py"], PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))


def whole_processes(times: int, url: str) -> tuple[Run, Run]:
    """The fastest of `times` whole-process runs of each side, taken in turns (suite, CLI, suite...), so that a slow spell of the
    machine falls on both sides alike rather than on whichever ran during it; the CLI generates as many cases as the suite did."""
    suite_runs: list[Run] = []
    cli_runs: list[Run] = []
    for _ in range(times):
        suite_runs.append(whole_suite_run())
        cli_runs.append(cli_run(url, suite_runs[0].cases))
    return min(suite_runs, key=lambda run: run.seconds), min(cli_runs, key=lambda run: run.seconds)


def best_of(times: int, measure: Callable[[], Run]) -> Run:
    """The fastest of several identical runs (the least disturbed by the rest of the machine)."""
    return min((measure() for _ in range(times)), key=lambda run: run.seconds)


def slope(small: Run, large: Run) -> float:
    """Cases per second between two run sizes."""
    return (large.cases - small.cases) / (large.seconds - small.seconds)


def ratio(ours: float, theirs: float) -> float:
    """How many times theirs ours is."""
    return ours / theirs


def markdown(figures: Figures) -> str:
    """The figures as Markdown, for docs/speed.md."""
    f = figures
    cli_slope, suite_slope = slope(f.cli_small, f.cli_large), slope(f.suite_small, f.suite_large)
    lines = [
        "| whole process, as a user times it | cases | wall | cases/s |",
        "| --- | --- | --- | --- |",
        f"| `pytest --pyargs conformance`, `ci` profile, in-process mock | {f.suite_whole.cases} | {f.suite_whole.seconds:.1f} s |"
        f" {f.suite_whole.rate:.0f} |",
        f"| `st run` (schemathesis CLI), same operation, loopback mock | {f.cli_whole.cases} | {f.cli_whole.seconds:.1f} s |"
        f" {f.cli_whole.rate:.0f} |",
        "",
        f"Whole process: **{ratio(f.suite_whole.rate, f.cli_whole.rate):.1f}x** the CLI's cases per second"
        f" ({f.cores} cores; the suite's run also runs its scenario and concurrency tests).",
        "",
        "| runner | small run | large run | cases/s (slope) |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {small.cases} cases in {small.seconds:.1f} s | {large.cases} cases in {large.seconds:.1f} s | {rate:.0f} |"
          for name, small, large, rate in (("schemathesis CLI, loopback mock", f.cli_small, f.cli_large, cli_slope),
                                           ("suite generated tests, in-process mock", f.suite_small, f.suite_large, suite_slope))),
        "",
        f"Slope (start-up cancelled out): **{ratio(suite_slope, cli_slope):.1f}x** the CLI's cases per second.",
    ]
    if f.startup is not None:
        lines += [
            "",
            f"Start-up, `pytest --pyargs conformance --co -q`: **{f.startup.suite:.2f} s**; under it, `pytest --co -q` on an empty"
            f" test file takes {f.startup.other_plugins:.2f} s with the environment's other plugins (schemathesis', hypothesis',"
            f" xdist's...) and {f.startup.bare:.2f} s with none.",
        ]
    if f.live is not None:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(f.live.statuses.items()))
        lines += [
            "",
            f"Live, default run against `katapult-conformance mock --permitted {LIVE_PERMITTED}`: **{f.live.sent} requests**"
            f" (plus {f.live.preflight} preflight), {f.live.throttled} throttled; by status {statuses}"
            f" ({f.live.seconds:.0f} s with a {LIVE_WINDOW_SECONDS} s window and the suite's clock {CLOCK_SCALE}x as fast).",
        ]
    return "\n".join(lines)


def plain(figures: Figures) -> str:
    """The figures as plain text, for a terminal."""
    f = figures
    lines = [f"{'whole process':42} suite {f.suite_whole.cases} cases {f.suite_whole.seconds:.1f} s = {f.suite_whole.rate:.0f} cases/s |"
             f" CLI {f.cli_whole.cases} cases {f.cli_whole.seconds:.1f} s = {f.cli_whole.rate:.0f} cases/s |"
             f" ratio {ratio(f.suite_whole.rate, f.cli_whole.rate):.1f}x"]
    for name, small, large in (("schemathesis CLI, loopback mock", f.cli_small, f.cli_large),
                               ("suite generated tests, in-process mock", f.suite_small, f.suite_large)):
        lines.append(f"{name:42} {small.cases:6} cases {small.seconds:6.1f} s | {large.cases:6} cases {large.seconds:6.1f} s |"
                     f" {slope(small, large):7.0f} cases/s (slope)")
    lines.append(f"slope ratio: suite / CLI = {ratio(slope(f.suite_small, f.suite_large), slope(f.cli_small, f.cli_large)):.1f}x")
    if f.startup is not None:
        lines.append(f"start-up: suite --co {f.startup.suite:.2f} s | empty file, other plugins {f.startup.other_plugins:.2f} s | bare pytest"
                     f" {f.startup.bare:.2f} s")
    if f.live is not None:
        lines.append(f"live default run (--permitted {LIVE_PERMITTED}): {f.live.sent} requests plus {f.live.preflight} preflight,"
                     f" {f.live.throttled} throttled, {f.live.seconds:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, then print the figures and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=300, help="cases in the small run of each side (default 300)")
    parser.add_argument("--large", type=int, default=1500, help="cases in the large run of each side (default 1500)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each timing; the fastest counts (default 5)")
    parser.add_argument("--no-live", action="store_true", help="leave out the live request count (about a minute)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown for docs/speed.md")
    args = parser.parse_args(argv)

    started = startup(max(5, args.repeat))
    # The suite first: the CLI's whole-process run generates as many cases as the suite's `ci` run did.
    # The generated tests are 9 properties, one with a fifth and one with a third of the examples, each example a batch.
    per_example = BATCH_MEAN * 8
    suite_run(1)  # warm-up: byte-compile caches and the page cache, for both sides alike
    suite_small = best_of(args.repeat, lambda: suite_run(max(1, args.small // per_example)))
    suite_large = best_of(args.repeat, lambda: suite_run(max(2, args.large // per_example)))
    with served_mock("--permitted", "100000000") as url:  # the rate limit out of the way
        cli_run(url, 20)
        cli_small = best_of(args.repeat, lambda: cli_run(url, args.small))
        cli_large = best_of(args.repeat, lambda: cli_run(url, args.large))
        suite_whole, cli_whole = whole_processes(args.repeat, url)
    live = None if args.no_live else live_run()
    figures = Figures(cli_small, cli_large, suite_small, suite_large, suite_whole, cli_whole, os.cpu_count(), started, live)
    print(markdown(figures) if args.markdown else plain(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
