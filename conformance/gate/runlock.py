"""One run per live target per machine: two runs at once would move each other's fixture IPs and share one rate limit."""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

try:
    import fcntl
except ImportError:  # Windows: no flock, no detection
    fcntl = None  # type: ignore[assignment]

LOCK_DIR_ENV = "KATAPULT_CONFORMANCE_LOCK_DIR"
DEFAULT_PORTS = {"http": 80, "https": 443}
# A lock file can be unlinked by its holder between another run's open and flock; that run then holds a file nobody else
# sees and opens the path again. Twice in a row would take two releases inside one open-to-flock gap.
ATTEMPTS = 3


class RunLockError(Exception):
    """Another run holds the target; the message names it and says what to do."""


def _is_local(host: str) -> bool:
    """Whether every address the host resolves to is this machine's (loopback, or the unspecified 0.0.0.0 / ::)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return False
    local = [ipaddress.ip_address(str(address).split("%", 1)[0]) for address in addresses]
    return bool(local) and all(address.is_loopback or address.is_unspecified for address in local)


def target_key(target_url: str) -> str:
    """What names one target on this machine: host, port and base path, with the host as the server is reached.

    `localhost`, `127.0.0.1` and `[::1]` are one server, so every name for this machine is `loopback`; an IP literal is its
    address; any other name stays itself (lower-cased), since one address can serve several hosts by name (a shared ingress
    or load balancer), and keying those on the address would refuse a run against one staging because another runs.
    """
    parts = urlsplit(target_url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        host = "loopback" if literal.is_loopback or literal.is_unspecified else str(literal)
    elif host and _is_local(host):
        host = "loopback"
    return f"{host}:{port}{parts.path.rstrip('/')}"


def lock_path(target_url: str) -> Path:
    """The lock file of a target, in the temp directory (or $KATAPULT_CONFORMANCE_LOCK_DIR)."""
    digest = hashlib.sha256(target_key(target_url).encode()).hexdigest()[:16]
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
        for _ in range(ATTEMPTS):
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
            if _same_file(path, handle):
                break
            # The holder released and removed this file after we opened it: the lock is the file now at the path.
            handle.close()
        else:
            raise RunLockError(f"could not take the lock {path}: it was removed {ATTEMPTS} times while taken; run again")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
        handle.flush()
        return cls(path, handle)

    def release(self) -> None:
        """Let the next run in, and remove the lock file (while still holding it, so no run takes a file about to go)."""
        if self.handle is not None and fcntl is not None:
            if _same_file(self.path, self.handle):
                self.path.unlink(missing_ok=True)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def _same_file(path: Path, handle: TextIO) -> bool:
    """Whether the path still names the file this handle has open."""
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)
