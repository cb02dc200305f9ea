"""What the target showed of its generation of the wire: the 200 body generation, the X-Request-Id format, X-RateLimit-Permitted."""
from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import httpx

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
CURRENT, LEGACY = "current (with virtual_network, since late 2024)", "legacy (no virtual_network, before late 2024)"


def request_id_format(value: str | None) -> str:
    """The format of one X-Request-Id: uuid (production), hex32 (the non-production deployment on record), other, or absent."""
    if value is None:
        return "absent"
    if UUID.match(value):
        return "uuid"
    return "hex32" if HEX32.match(value) else "other"


class WireProfile:
    """Counts, over every response of the run, what the target showed of its deployment."""

    def __init__(self) -> None:
        self.request_ids: Counter[str] = Counter()
        self.generations: Counter[str] = Counter()
        self.permitted: Counter[str] = Counter()
        self.lock = threading.Lock()

    def observe(self, response: httpx.Response) -> None:
        """Note one response's request-id format, rate-limit allowance and (for an interface body) generation."""
        with self.lock:
            self.request_ids[request_id_format(response.headers.get("X-Request-Id"))] += 1
            permitted = response.headers.get("X-RateLimit-Permitted")
            if permitted is not None:
                self.permitted[permitted] += 1
            if response.status_code == 200:
                generation = body_generation(response)
                if generation is not None:
                    self.generations[generation] += 1

    def as_dict(self) -> dict[str, Any]:
        """For the report: each observation with its counts."""
        return {"body_generation": dict(self.generations), "request_id_format": dict(self.request_ids),
                "rate_limit_permitted": dict(self.permitted)}

    def describe(self) -> str:
        """One line for the terminal and the report header."""
        def shown(counter: Counter[str]) -> str:
            return ", ".join(f"{value} ({count})" for value, count in counter.most_common()) or "none seen"
        return (f"200 body generation: {shown(self.generations)}; X-Request-Id: {shown(self.request_ids)};"
                f" X-RateLimit-Permitted: {shown(self.permitted)}")


def body_generation(response: httpx.Response) -> str | None:
    """Which generation an interface body belongs to, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    interface = body.get("virtual_machine_network_interface") if isinstance(body, dict) else None
    if not isinstance(interface, dict):
        return None
    return CURRENT if "virtual_network" in interface else LEGACY
