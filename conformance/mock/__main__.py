"""`python -m conformance.mock`: serve the reference mock over HTTP on 127.0.0.1."""
from __future__ import annotations

import argparse
import difflib
import errno
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from conformance.mock.faults import Faults, FrontEnd
from conformance.mock.mutants import MUTANTS, mock_class
from conformance.mock.server import MockServer
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.setup.command import INTERRUPTED_OR_UNREADABLE, OK, USAGE, CommandParser, fail

N = TypeVar("N", int, float)


def latency_range(text: str) -> tuple[float, float]:
    """`30-80` (or `50`) milliseconds as (min, max) seconds."""
    low, _, high = text.partition("-")
    try:
        bounds = (float(low) / 1000, float(high or low) / 1000)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN-MAX milliseconds, e.g. 30-80") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: MIN must be at most MAX, both at least 0")
    return bounds


def checked(text: str, convert: Callable[[str], N], what: str, ok: Callable[[N], bool], refusal: str) -> N:
    """`text` read by `convert`, else "is not `what`"; a value `ok` refuses gets `refusal` (formatted with `text` and `value`)."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(refusal.format(text=text, value=value))
    return value


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0 takes a free one)."""
    return checked(text, int, "a port number", lambda port: 0 <= port <= 65535, "{value} is not a port: use 1 to 65535, or 0 for a free one")


def at_least_one(text: str) -> int:
    """A whole number of requests, 1 or more."""
    return checked(text, int, "a whole number", lambda number: number >= 1, "{value} requests: a window must permit at least 1")


def positive_seconds(text: str) -> float:
    """A length of time in seconds, more than 0."""
    return checked(text, float, "a number of seconds", lambda seconds: 0 < seconds < math.inf,
                   "{text}: a window must last more than 0 seconds")


def unknown_mutant(name: str) -> str | None:
    """Why --mutant NAME (or `a,b`) names no mutant, with the nearest names and where the list is; None when every part is one."""
    for part in (part.strip() for part in name.split(",")):
        if part and part not in MUTANTS and part != "faithful":
            near = difflib.get_close_matches(part, MUTANTS, n=3)
            hint = f" (did you mean {', '.join(near[:-1]) + ' or ' if len(near) > 1 else ''}{near[-1]}?)" if near else ""
            return f"--mutant {part!r} is not a mutant{hint}; `katapult-conformance mock --list-mutants` lists them"
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, print the base URL as the first line, serve until interrupted."""
    parser = CommandParser("mock", "Serve the reference mock over HTTP on 127.0.0.1; the first line printed is its base URL.",
                           exits=(OK, INTERRUPTED_OR_UNREADABLE, USAGE),
                           says={OK: "served until interrupted (Ctrl-C), or --list-mutants listed them",
                                 INTERRUPTED_OR_UNREADABLE: "the --world file could not be read"})
    parser.add_argument("--port", type=port_number, default=8080, help="port to listen on; 0 takes a free one (default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--mutant", default=None, help="serve a broken variant instead; --list-mutants names them")
    parser.add_argument("--permitted", type=at_least_one, default=None, help="requests per token per window (default: the world's, 1000)")
    parser.add_argument("--window-seconds", type=positive_seconds, default=None, help="rate-limit window length (default: the world's, 60)")
    parser.add_argument("--latency", type=latency_range, default=(0.0, 0.0), metavar="MIN-MAX",
                        help="milliseconds added to each answer, e.g. 30-80, as over a real network (default 0)")
    parser.add_argument("--request-ids", choices=("uuid", "hex32"), default="uuid",
                        help="X-Request-Id format: uuid (production) or hex32 (the non-production deployment on record)")
    parser.add_argument("--body-generation", choices=("current", "legacy"), default="current",
                        help="200 body generation: current (with virtual_network, since late 2024) or legacy (without)")
    faults = parser.add_argument_group("a faulty network in front (the project's fault injector; shares between 0 and 1)")
    faults.add_argument("--drop-before", type=float, default=0.0, metavar="SHARE",
                        help="share of API requests dropped before the mock acts: the connection closes without an answer (default 0)")
    faults.add_argument("--drop-after", type=float, default=0.0, metavar="SHARE",
                        help="share of answers dropped after the mock acted: the connection closes without an answer (default 0)")
    faults.add_argument("--gateway-errors", type=float, default=0.0, metavar="SHARE",
                        help="share of API requests answered by a gateway's 502 HTML page instead of reaching the mock (default 0)")
    faults.add_argument("--seed", type=int, default=0, help="seed of the faults' random choices (default 0)")
    front = parser.add_argument_group("a real front end (correct HTTP the suite must accept)")
    front.add_argument("--connection-close", action="store_true", help="send Connection: close and close every connection after its answer")
    front.add_argument("--gzip", action="store_true", help="gzip-compress bodies when the client accepts gzip")
    front.add_argument("--chunked", action="store_true", help="send bodies chunked (Transfer-Encoding: chunked) instead of with Content-Length")
    front.add_argument("--charset", action="store_true", help="answer Content-Type: application/json; charset=utf-8")
    parser.add_argument("--list-mutants", action="store_true", help="list the mutants and exit")
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD, help="world data file (default: the shipped one)")
    args = parser.parse_args(argv)
    if args.list_mutants:
        for name, cls in sorted(MUTANTS.items()):
            print(f"{name:40} {cls.description}")
        return 0
    bad_mutant = unknown_mutant(args.mutant) if args.mutant else None
    if bad_mutant is not None:
        return fail("mock", bad_mutant, USAGE)
    try:
        world = load_world(args.world)
        if args.permitted is not None:
            world.permitted = args.permitted
        if args.window_seconds is not None:
            world.window_seconds = args.window_seconds
        mock = mock_class(args.mutant)(world, request_ids=args.request_ids, body_generation=args.body_generation)
    except (ValueError, OSError) as error:
        return fail("mock", str(error), INTERRUPTED_OR_UNREADABLE)
    try:
        network = Faults(args.drop_before, args.drop_after, args.gateway_errors, args.seed)
    except ValueError as error:
        return fail("mock", str(error).replace("--gateway ", "--gateway-errors "), USAGE)
    shape = FrontEnd(args.connection_close, args.gzip, args.chunked, args.charset)
    try:
        server = MockServer(mock, args.host, args.port, latency=args.latency, faults=network, front=shape)
    except OSError as error:
        fix = "choose another --port (--port 0 takes a free one)" if error.errno == errno.EADDRINUSE else "check --host and --port"
        return fail("mock", f"cannot listen on {args.host}:{args.port}: {error.strerror or error}; {fix}", USAGE)
    print(server.base_url, flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
