"""One run per live target per machine: two runs at once would move each other's fixture IPs and share one rate limit."""
from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

try:
    import fcntl
except ImportError:  # Windows: no flock, no detection
    fcntl = None  # type: ignore[assignment]

LOCK_DIR_ENV = "KATAPULT_CONFORMANCE_LOCK_DIR"


class RunLockError(Exception):
    """Another run holds the target; the message names it and says what to do."""


def lock_path(target_url: str) -> Path:
    """The lock file of a target URL, in the temp directory (or $KATAPULT_CONFORMANCE_LOCK_DIR)."""
    digest = hashlib.sha256(target_url.rstrip("/").encode()).hexdigest()[:16]
    return Path(os.environ.get(LOCK_DIR_ENV) or tempfile.gettempdir()) / f"katapult-conformance-{digest}.lock"


@dataclass
class RunLock:
    """An exclusive flock on the target's lock file, held for the whole run (the kernel drops it if the run dies)."""

    path: Path
    handle: TextIO | None

    @classmethod
    def acquire(cls, target_url: str) -> RunLock:
        """Take the target's lock, or RunLockError naming the run that holds it."""
        path = lock_path(target_url)
        if fcntl is None:
            return cls(path, None)
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunLockError(
                f"another run against {target_url} is in progress ({holder}; lock {path}). Two runs at once move each other's"
                " fixture IPs and share one rate limit, so both would report nonsense: wait for it to finish, or give CI jobs one"
                " concurrency group"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
        handle.flush()
        return cls(path, handle)

    def release(self) -> None:
        """Let the next run in."""
        if self.handle is not None and fcntl is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
