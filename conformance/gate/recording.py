"""`--record PATH`: the run's HAR record, wired to every target the run makes, each exchange marked with what it served.

Registered only when the option is given. The run's first process (the only one, or the xdist controller) starts the
file; xdist workers add their entries to it, so one file holds every process's requests: the preflights, the tests,
their cleanup and the end-of-run checks.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from conformance.gate.keys import CONFIG_KEY, RECORDER_KEY

if TYPE_CHECKING:
    import httpx

    from conformance.wire.har import HarRecorder
    from conformance.wire.transport import Target


def start_recording(config: pytest.Config) -> None:
    """Open the record (afresh in the run's first process) and follow each test's phases; a file that cannot be written is a usage error."""
    from conformance.wire.har import HarRecorder

    path = config.stash[CONFIG_KEY].record
    if path is None or RECORDER_KEY in config.stash:
        return
    # An xdist worker (as gate.xdist tells one; not imported here, which imports this module): it adds to the controller's file.
    worker = getattr(config, "workerinput", None)
    try:
        recorder = HarRecorder(path, fresh=worker is None)
    except OSError as error:
        raise pytest.UsageError(f"katapult-conformance: cannot write --record {path} ({error.strerror or error}); choose a writable path") from None
    if worker is not None:
        recorder.marks["_worker"] = str(worker.get("workerid", "gw?"))
    config.stash[RECORDER_KEY] = recorder
    config.add_cleanup(recorder.close)
    config.pluginmanager.register(PhaseMarks(recorder), "katapult-conformance-recording")


def attach(config: pytest.Config, target: Target) -> None:
    """Record every exchange of this target, and every request of it that got no answer (nothing when not recording)."""
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        target.observers.append(recorder.observe)
        target.unanswered.append(recorder.observe_unanswered)


def marked(config: pytest.Config, **marks: Any) -> contextlib.AbstractContextManager[None]:
    """Mark the exchanges made inside the block (test, promises, phase; None drops a mark); nothing when not recording."""
    recorder = config.stash.get(RECORDER_KEY, None)
    return recorder.marked(**marks) if recorder is not None else contextlib.nullcontext()


def marking(config: pytest.Config, hook: Callable[[httpx.Response], None], **marks: Any) -> Callable[[httpx.Response], None]:
    """The hook, its exchanges marked (the 429 burst the pacer makes inside another test's request serves the 429's test)."""
    if RECORDER_KEY not in config.stash:
        return hook

    def marked_hook(response: httpx.Response) -> None:
        with marked(config, **marks):
            hook(response)

    return marked_hook


class PhaseMarks:
    """Marks each exchange with the test whose setup, call or teardown made it, and the promises it served."""

    def __init__(self, recorder: HarRecorder) -> None:
        self.recorder = recorder

    @contextlib.contextmanager
    def phase(self, item: pytest.Item, phase: str) -> Iterator[None]:
        from conformance.contract.promises import CLEANUP, declared_promises

        # A teardown puts the target back as it was: its requests serve cleanup, whatever the test was for.
        promises = [CLEANUP.id] if phase == "teardown" else list(declared_promises(item))
        with self.recorder.marked(test=item.nodeid, promises=promises, phase=phase):
            yield

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        with self.phase(item, "setup"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        with self.phase(item, "call"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
        with self.phase(item, "teardown"):
            return (yield)
