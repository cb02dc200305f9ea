"""Benchmark: the suite's generated tests against the schemathesis CLI, measured in the same run on this machine.

Cases per second are taken as a slope between two run sizes (cases added / seconds added), so both sides pay
their start-up once and it cancels out. The CLI runs the same fragment, the same operation and the same response
checks against the reference mock served on loopback, with the mock's valid token; the suite runs its generated
tests on the in-process mock. Also timed: the whole `pytest conformance` run with the `ci` profile.

Each size runs --repeat times after a warm-up run and the fastest counts. Run it on a quiet machine.

Usage: python bench/bench.py [--small N] [--large N] [--repeat N] [--markdown]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "allocate_ip.yaml"
OPERATION = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"
VALID_TOKEN = "kmock-valid-7d1e0c5a9b"
SUITE_CASES = re.compile(r"^(test_\S+): (\d+) cases;", re.MULTILINE)
CLI_CASES = re.compile(r"(\d+) generated")
BATCH_MEAN = 6
PYCACHE = tempfile.mkdtemp(prefix="katapult-bench-pycache-")


@dataclass(frozen=True)
class Run:
    """One timed run: how many cases it sent and how long the whole process took."""

    cases: int
    seconds: float


def child_env() -> dict[str, str]:
    """Our environment with bytecode caching on (in a temporary prefix), as on a developer's machine, for both sides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KATAPULT_") and key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def timed(command: list[str]) -> tuple[str, float]:
    """Run a command to completion; return its output and wall time."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=child_env(), check=False)
    elapsed = time.perf_counter() - started
    return result.stdout + result.stderr, elapsed


def serve_mock() -> tuple[subprocess.Popen[str], str]:
    """Start the reference mock on a free loopback port (rate limit out of the way) and return its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.mock", "--port", "0", "--permitted", "100000000"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=child_env(),
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def cli_run(url: str, examples: int) -> Run:
    """The schemathesis CLI on the fragment's operation, the same checks, positive and negative modes."""
    output, seconds = timed([
        "st", "run", str(SPEC), "--url", url, "--include-path", OPERATION, "-n", str(examples), "--phases", "fuzzing",
        "--mode", "all", "-c", CHECKS, "--seed", "1", "--generation-database", "none", "--no-color",
        "-H", f"Authorization: Bearer {VALID_TOKEN}",
    ])
    found = CLI_CASES.search(output)
    if found is None:
        raise SystemExit(f"could not read the CLI's case count; its output was:\n{output[-2000:]}")
    return Run(int(found.group(1)), seconds)


def suite_run(examples: int) -> Run:
    """The suite's generated tests on the in-process mock."""
    output, seconds = timed(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "test_generated.py"), "-q", "-p", "no:cacheprovider",
         "--conformance-profile", "ci", "--conformance-max-examples", str(examples)],
    )
    if " passed" not in output or " failed" in output:
        raise SystemExit(f"the suite did not pass on the faithful mock:\n{output[-3000:]}")
    return Run(sum(int(count) for _, count in SUITE_CASES.findall(output)), seconds)


def best_of(times: int, measure: Callable[[], Run]) -> Run:
    """The fastest of several identical runs (the least disturbed by the rest of the machine)."""
    return min((measure() for _ in range(times)), key=lambda run: run.seconds)


def slope(small: Run, large: Run) -> float:
    """Cases per second between two run sizes."""
    return (large.cases - small.cases) / (large.seconds - small.seconds)


def main(argv: list[str] | None = None) -> int:
    """Measure both, print the figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=300, help="cases in the small run of each side (default 300)")
    parser.add_argument("--large", type=int, default=1500, help="cases in the large run of each side (default 1500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each size; the fastest counts (default 3)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for the README")
    args = parser.parse_args(argv)

    process, url = serve_mock()
    try:
        cli_run(url, 20)  # warm-up: byte-compile caches and the page cache, for both sides alike
        cli_small = best_of(args.repeat, lambda: cli_run(url, args.small))
        cli_large = best_of(args.repeat, lambda: cli_run(url, args.large))
    finally:
        process.terminate()
        process.wait()
    # The generated tests are 9 properties, one with a fifth and one with a third of the examples, each example a batch.
    per_example = BATCH_MEAN * 8
    suite_run(1)
    suite_small = best_of(args.repeat, lambda: suite_run(max(1, args.small // per_example)))
    suite_large = best_of(args.repeat, lambda: suite_run(max(2, args.large // per_example)))
    ci_output, ci_seconds = timed([sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q", "-p", "no:cacheprovider",
                                   "--conformance-profile", "ci"])
    ci_cases = sum(int(count) for _, count in SUITE_CASES.findall(ci_output))

    cli_rate, suite_rate = slope(cli_small, cli_large), slope(suite_small, suite_large)
    rows = [
        ("schemathesis CLI, loopback mock", cli_small, cli_large, cli_rate),
        ("suite generated tests, in-process mock", suite_small, suite_large, suite_rate),
    ]
    if args.markdown:
        print("| runner | small run | large run | cases/s (slope) |")
        print("| --- | --- | --- | --- |")
        for name, small, large, rate in rows:
            print(f"| {name} | {small.cases} cases in {small.seconds:.1f} s | {large.cases} cases in {large.seconds:.1f} s | {rate:.0f} |")
        print(f"\nRatio: **{suite_rate / cli_rate:.1f}x** the CLI's cases per second.  ")
        print(f"`pytest conformance`, `ci` profile: **{ci_seconds:.1f} s** wall, {ci_cases} generated cases plus the scenarios "
              f"({os.cpu_count()} cores).")
    else:
        for name, small, large, rate in rows:
            print(f"{name:42} {small.cases:6} cases {small.seconds:6.1f} s | {large.cases:6} cases {large.seconds:6.1f} s | {rate:7.0f} cases/s")
        print(f"ratio: suite / CLI = {suite_rate / cli_rate:.1f}x")
        print(f"pytest conformance (ci profile): {ci_seconds:.1f} s wall, {ci_cases} generated cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
