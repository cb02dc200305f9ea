"""The suite on pytest-xdist: workers ship what they did to the controller, which reports, logs and verifies once.

- In process, every worker has its own embedded mock, so tests spread freely over the workers.
- On a live target every test of the suite goes to one worker (one scheduling group, whatever --dist says):
  the fixture IPs and the token's rate-limit window are one, so no two workers ever use them at once, and the
  live rate and the request budget are that worker's, not multiplied by the number of workers.
- Each worker writes its own part of `--request-log`; the controller joins the parts into the one file.
- The controller writes the summary, the report and the baseline from every worker's outcomes, counts and ledger,
  and on a live target reads every touched IP back once more after all workers are done.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.gate.keys import (
    CONFIG_KEY,
    FINDINGS_KEY,
    FIXTURES_KEY,
    LOCK_KEY,
    MERGED_KEY,
    PREFLIGHT_KEY,
    RECORD_KEY,
    SESSION_KEY,
    SHARED_PREFLIGHT_KEY,
    STOPPED_KEY,
)
from conformance.gate.merged import Merged
from conformance.setup.command import USAGE
from conformance.setup.fixtures import IPRef
from conformance.setup.settings import Setting, SuiteConfig

if TYPE_CHECKING:
    # Loaded with the plugin by every pytest run: the session, the ledger and the run lock are imported where used.
    from conformance.contract.findings import FindingLog
    from conformance.gate.preflight import Preflight
    from conformance.gate.putback import Drift
    from conformance.gate.session import ConformanceSession, RunRecord

OUTPUT_KEY = "katapult_conformance"
# Where the controller writes its preflight's result for the workers: one preflight per run, whatever -n says.
PREFLIGHT_INPUT = "katapult_conformance_shared_preflight"
# A worker that ran the preflight but no test of the suite ships its preflight's count alone (a worker takes the controller's
# preflight result instead of running one, so none does unless the controller ran none).
PREFLIGHT_OUTPUT_KEY = "katapult_conformance_preflight"
TARGET_GROUP = "katapult-target"
SUITE_NODE = re.compile(r"(^|/)conformance/test_\w+\.py::")


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker (its environment variable leaks into child processes, so not that)."""
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """Whether this process hands the tests out to xdist workers."""
    return config.pluginmanager.has_plugin("dsession")


def worker_id(config: pytest.Config) -> str:
    """gw0, gw1, ..."""
    return str(getattr(config, "workerinput", {}).get("workerid", "gw?"))


def part_path(log: Path, worker: str) -> Path:
    """Where a worker writes its part of the request log."""
    return log.with_name(f".{log.name}.{worker}.part")


def with_setting(suite: SuiteConfig, **values: Any) -> SuiteConfig:
    """The same settings with some values replaced (their source kept)."""
    settings = dict(suite.settings)
    for name, value in values.items():
        settings[name] = dataclasses.replace(settings[name], value=value) if name in settings else Setting(value, "xdist")
    return SuiteConfig(settings)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Workers log to their part and leave reports to the controller; live runs share one worker and hold the target's lock."""
    suite = config.stash.get(CONFIG_KEY, None)
    if suite is None:
        return
    if is_worker(config):
        log = suite.request_log
        config.stash[CONFIG_KEY] = with_setting(
            suite, request_log=part_path(Path(log), worker_id(config)) if log is not None else None, report=(), write_baseline=None
        )
        return
    if suite.is_live:
        if config.getoption("dist", "no") == "each":
            raise pytest.UsageError("katapult-conformance: --dist each would run every test once per worker against the live target; use -n N alone")
        if not config.option.collectonly:
            from conformance.gate.runlock import RunLock, RunLockError

            try:
                config.stash[LOCK_KEY] = RunLock.acquire(str(suite.target_url))
            except RunLockError as error:
                raise pytest.UsageError(f"katapult-conformance: {error}") from None
            config.add_cleanup(config.stash[LOCK_KEY].release)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Each worker of a live run is told where the controller's preflight result will be (written before any test is handed out)."""
    config = node.config
    suite = config.stash.get(CONFIG_KEY, None)
    if suite is None or not suite.is_live or config.option.collectonly:
        return
    shared = config.stash.get(SHARED_PREFLIGHT_KEY, None)
    if shared is None:
        shared = config.stash[SHARED_PREFLIGHT_KEY] = Path(tempfile.mkdtemp(prefix="katapult-conformance-")) / "preflight.json"
        config.add_cleanup(lambda: shutil.rmtree(shared.parent, ignore_errors=True))
    node.workerinput[PREFLIGHT_INPUT] = str(shared)


# The Preflight fields keyed by fixture IP.
HOLDER_FIELDS = ("holders", "foreign_holders")


def share_preflight(config: pytest.Config, found: Preflight) -> None:
    """On the controller: write what its preflight found for the workers (they run none of their own)."""
    shared = config.stash.get(SHARED_PREFLIGHT_KEY, None)
    if shared is None:
        return
    data = {item.name: getattr(found, item.name) for item in dataclasses.fields(found)}
    # JSON has no IPRef keys nor Doubt objects: holders as [id, address, holder] rows, doubts as their fields.
    for name in HOLDER_FIELDS:
        data[name] = [[ip.id, ip.address, holder] for ip, holder in getattr(found, name).items()]
    data["doubts"] = [dataclasses.asdict(doubt) for doubt in found.doubts]
    shared.write_text(json.dumps(data), encoding="utf-8")


def shared_preflight(config: pytest.Config) -> Preflight | None:
    """On a worker: the controller's preflight result, when it ran one."""
    from conformance.gate.preflight import Doubt, Preflight

    path = getattr(config, "workerinput", {}).get(PREFLIGHT_INPUT)
    if path is None or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in HOLDER_FIELDS:
        data[name] = {IPRef(ip_id, address): holder for ip_id, address, holder in data[name]}
    data["doubts"] = [Doubt(**doubt) for doubt in data["doubts"]]
    return Preflight(**data)


def grouped_scheduler(config: pytest.Config, log: Any, group_of: Callable[[str], str | None]) -> Any:
    """xdist's scope scheduler with our own groups: each group's tests go to one worker, in order; other tests spread one by one.

    (pytest 9.2 ignores the node-id suffix xdist's own loadgroup relies on, so xdist_group marks no longer group.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return GroupedScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """On a live target, every test of the suite goes to one worker: no two workers use the fixture IPs or the rate limit at once."""
    suite = config.stash.get(CONFIG_KEY, None)
    if suite is None or not suite.is_live:
        return None
    return grouped_scheduler(config, log, lambda nodeid: TARGET_GROUP if SUITE_NODE.search(nodeid) else None)


def shipped(session: ConformanceSession, log: Path | None, findings: FindingLog | None, stopped: str | None = None) -> dict[str, Any]:
    """What a worker did, as plain data for execnet."""
    return {
        "stopped": stopped,
        "network": session.target.health.as_dict(),
        "shared_token": list(session.target.pacer.shared),
        "live": session.target.is_live,
        "sent": session.target.sent,
        "preflight": session.preflight_requests,
        "throttled": session.target.throttled,
        "statuses": {str(status): count for status, count in session.target.statuses.items()},
        "generated": {name: {str(status): count for status, count in statuses.items()} for name, statuses in session.generated.items()},
        "started": [[ip.id, ip.address, holder] for ip, holder in session.ledger.started.items()],
        "drifts": [[drift.ip.id, drift.ip.address, drift.started, drift.now, drift.fix, drift.put_back] for drift in session.drifts],
        "request_log": str(log) if log is not None else None,
        "findings": [finding.as_dict() for finding in findings.findings.values()] if findings is not None else [],
        "reached": dict(findings.reached) if findings is not None else {},
        "wire": {name: dict(counter) for name, counter in
                 (("request_ids", session.wire.request_ids), ("generations", session.wire.generations), ("permitted", session.wire.permitted))},
    }




@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller takes in a finished worker's data."""
    output = getattr(node, "workeroutput", {})
    data, preflight = output.get(OUTPUT_KEY), output.get(PREFLIGHT_OUTPUT_KEY)
    if data is None and preflight is None:
        return
    merged = node.config.stash.setdefault(MERGED_KEY, Merged())
    if data is not None:
        merged.add(str(node.gateway.id), data)
    if preflight is not None:
        merged.add_preflight(int(preflight))


def join_request_log(log: Path, parts: dict[str, Path]) -> None:
    """The one request log: every worker's part, in worker order (gw0, gw1, ...); the parts are removed."""
    with log.open("w", encoding="utf-8") as joined:
        for worker in sorted(parts, key=lambda name: (len(name), name)):
            part = parts[worker]
            if part.exists():
                joined.write(part.read_text(encoding="utf-8"))
                part.unlink()


def verify_live(session: pytest.Session, merged: Merged) -> list[Drift]:
    """After every worker is done: read every IP any worker touched (counted apart in the report: no -n 0 run sends these)."""
    from conformance.contract.promises import CLEANUP
    from conformance.gate.ledger import AllocationLedger
    from conformance.gate.putback import Drift
    from conformance.gate.recording import attach, marked
    from conformance.gate.session import make_target
    from conformance.wire.har import END_OF_RUN
    from conformance.wire.transport import TargetError

    config = session.config
    target = make_target(config.stash[CONFIG_KEY])
    attach(config, target)
    try:
        ledger = AllocationLedger(target, config.stash[FIXTURES_KEY].credential("valid"))
        ledger.started = dict(merged.started)
        with marked(config, phase=END_OF_RUN, promises=[CLEANUP.id]):
            return ledger.verify()
    except TargetError as error:
        return [Drift(ip, started, f"unknown ({error})") for ip, started in merged.started.items()]
    finally:
        merged.end_of_run += target.sent
        target.close()


def controller_record(merged: Merged) -> RunRecord:
    """What every worker did, for the summary, the report and the generated-cases section."""
    from conformance.gate.session import RunRecord

    return RunRecord(merged.live, merged.sent, merged.statuses, merged.throttled, merged.preflight, bool(merged.started),
                     list(merged.drifts), merged.generated, merged.wire, merged.preflights, merged.end_of_run,
                     network=merged.network, shared_token=merged.shared_token)


def finish_on_controller(session: pytest.Session) -> None:
    """Join the request log, verify a live target once more, and give the reporter the merged session."""
    config = session.config
    merged = config.stash.get(MERGED_KEY, None)
    suite = config.stash.get(CONFIG_KEY, None)
    if merged is None or suite is None:
        return
    if suite.request_log is not None:
        join_request_log(Path(suite.request_log), merged.parts)
    found = config.stash.get(PREFLIGHT_KEY, None)
    if found is not None:
        # The one preflight of the run is the controller's: the workers took its result and sent none of their own.
        merged.add_preflight(found.requests)
    record = controller_record(merged)
    if merged.stopped is not None:
        # The worker's target stopped answering: the run's exit status is 4 here too, and the reporter says why.
        config.stash[STOPPED_KEY] = merged.stopped
        session.exitstatus = USAGE
    if merged.live and merged.started and merged.stopped is None:
        known = {str(drift.ip.id) for drift in merged.drifts}
        late = [drift for drift in verify_live(session, merged) if str(drift.ip.id) not in known]
        if late:
            record.drifts += late
            merged.problems.append(
                "katapult-conformance left the target changed; these IPs are not back in their starting state:\n"
                + "\n".join(f"  {drift}" for drift in late)
                + "\nUnallocate them by hand (POST /ip_addresses/ip_address/unallocate) before the next run."
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    record.end_of_run = merged.end_of_run
    config.stash[RECORD_KEY] = record
    log = config.stash.get(FINDINGS_KEY, None)
    if log is not None:
        log.merge(merged.findings, dict(merged.reached))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker ships its session's data (xdist sends it after this hook); the controller merges it before the reporter (trylast) reports."""
    config = session.config
    conformance = config.stash.get(SESSION_KEY, None)
    if is_worker(config) and conformance is not None:
        log = config.stash[CONFIG_KEY].request_log
        findings = config.stash.get(FINDINGS_KEY, None)
        config.workeroutput[OUTPUT_KEY] = shipped(conformance, Path(log) if log is not None else None, findings,  # type: ignore[attr-defined]
                                                  config.stash.get(STOPPED_KEY, None))
    elif is_worker(config) and PREFLIGHT_KEY in config.stash:
        config.workeroutput[PREFLIGHT_OUTPUT_KEY] = config.stash[PREFLIGHT_KEY].requests  # type: ignore[attr-defined]
    elif is_controller(config):
        finish_on_controller(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the controller's own reading of the live target found."""
    merged = terminalreporter.config.stash.get(MERGED_KEY, None)
    for problem in merged.problems if merged is not None else []:
        terminalreporter.write_line(problem, red=True, bold=True)
