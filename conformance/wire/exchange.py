"""One request and its response, told for a server developer: status line, headers, bodies (escaped) and a runnable reproduction."""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from conformance.setup.fixtures import Reference
from conformance.setup.redaction import PLACEHOLDER, REDACT
from conformance.setup.references import MADE_UP_TOKEN_PREFIX, NAMES
from conformance.wire.paths import UNALLOCATE_PATH

BODY_PREVIEW = 600
MOCK_HOST = "katapult-mock.invalid"
SERVED_MOCK_URL = "http://127.0.0.1:8080"
SKIPPED_HEADERS = frozenset({"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"})
# A request's extension naming the `katapult-conformance mock` options that serve the in-process mock it went to (its mutant, world).
SERVED_AS = "katapult_conformance_served_as"
# A request extension naming the HTTP version a recorded exchange used ("HTTP/2"), so its curl line asks for the same.
CURL_HTTP_VERSION = "katapult_conformance_http_version"
CURL_VERSION_FLAGS = {"HTTP/2": "--http2", "HTTP/3": "--http3", "HTTP/1.0": "--http1.0"}


def escaped(content: bytes) -> str:
    """Bytes as one line of text any terminal or grep reads: invalid UTF-8 and control characters (NUL, newlines) escaped."""
    text = content.decode("utf-8", "backslashreplace")
    return "".join(char if char.isprintable() or char == " " else char.encode("unicode_escape").decode("ascii") for char in text)


def printable(content: bytes) -> str:
    """Bytes as text a terminal shows safely: escaped, long bodies cut."""
    text = escaped(content)
    return text if len(text) <= BODY_PREVIEW else text[:BODY_PREVIEW] + f"... ({len(text)} characters)"


def curl_line(request: httpx.Request) -> str:
    """A copy-pasteable curl command sending what the request sent (the in-process mock's URL becomes the served one).

    A fixture credential is named by its variable (`"Authorization: Bearer ${KATAPULT_API_TOKEN}"`), never by value; the suite's
    own made-up token is shown as sent; any other credential (a recording's) as [redacted].
    """
    parts = ["curl", "-i", "-X", request.method]
    flag = CURL_VERSION_FLAGS.get(str(request.extensions.get(CURL_HTTP_VERSION, "")))
    if flag is not None:
        parts.insert(1, flag)
    for name, value in request.headers.items():
        if name.lower() in SKIPPED_HEADERS or name.startswith(":"):
            continue
        parts += ["-H", f"{name}: {unknown_credential_hidden(name, value)}"]
    typed = request.content and is_plain_text(request.content)
    if typed:
        parts += ["--data-binary", request.content.decode("utf-8")]
    elif request.content:
        parts += ["--data-binary", "@-"]
    parts.append(served_url(str(request.url)))
    line = " ".join(shell_word(part) for part in parts)
    if request.content and not typed:
        # Bytes a shell cannot carry in a quoted argument (invalid UTF-8, NUL): printf writes them exactly, curl reads stdin.
        line = f"printf '{octal_escaped(request.content)}' | {line}"
    return REDACT(line)


def served_url(url: str) -> str:
    """The URL, the in-process mock's host replaced by the served mock's."""
    return url.replace(f"http://{MOCK_HOST}", SERVED_MOCK_URL)


def unknown_credential_hidden(name: str, value: str) -> str:
    """An Authorization value whose credential is neither a fixture's (named by its variable) nor the suite's made-up token: [redacted]."""
    scheme, _, credential = value.partition(" ")
    if name.lower() != "authorization" or not credential or credential.startswith(MADE_UP_TOKEN_PREFIX):
        return value
    if any(not isinstance(piece, str) for piece in NAMES.parts(credential)):
        return value
    return f"{scheme} {PLACEHOLDER}"


def shell_word(text: str) -> str:
    """One shell word for the text: single-quoted, or double-quoted with each fixture secret as its ${VARIABLE}."""
    pieces = NAMES.parts(text)
    if all(isinstance(piece, str) for piece in pieces):
        return shlex.quote(text)
    quoted = "".join(piece.shell if isinstance(piece, Reference) else re.sub(r'([\\"$`])', r"\\\1", piece) for piece in pieces)
    return f'"{quoted}"'


def references_in(request: httpx.Request) -> list[Reference]:
    """The fixture secrets the request sends, each once, in order."""
    found: dict[str, Reference] = {}
    for value in request.headers.values():
        for piece in NAMES.parts(value):
            if isinstance(piece, Reference):
                found.setdefault(piece.variable, piece)
    return list(found.values())


def is_plain_text(content: bytes) -> bool:
    """Whether a body is UTF-8 with no control character but newline and tab, so a quoted shell argument carries it exactly."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in "\n\t " for char in text)


def octal_escaped(content: bytes) -> str:
    """The bytes as printf's format: printable ASCII as itself, everything else (and % \\ ') as a three-digit octal escape."""
    return "".join(chr(byte) if 32 <= byte < 127 and chr(byte) not in "%\\'" else f"\\{byte:03o}" for byte in content)


@dataclass(frozen=True)
class Change:
    """An allocation a reproduced request changes, as the test that sent it knows: what moves, the command that puts it back,
    and a request the test sent first to set the state up (the reproduction sends it first too)."""

    says: str
    put_back: str = ""
    first: httpx.Request | None = None


def reproduce_lines(request: httpx.Request, response: httpx.Response | None = None, change: Change | None = None) -> list[str]:
    """The commands that rerun this request: the served mock for the in-process one, the variables to set by hand, the curl; for a
    request that changes an allocation (`change`, or a 200 from allocate_ip) a line saying so, and last the line that puts it back."""
    lines = []
    if request.url.host == MOCK_HOST:
        served = request.extensions.get(SERVED_AS, ())
        lines.append(" ".join(["katapult-conformance mock --port 8080", *map(shlex.quote, served), "&"]) + "   # the run's mock, served")
    if change is None and response is not None and allocated(response):
        lookup = ip_lookup(request)
        change = Change(f"it allocates the IP {json.dumps(lookup) if lookup else 'it names'}", unallocate_line(request, lookup) if lookup else "")
    sent = [request] if change is None or change.first is None else [change.first, request]
    references = [reference for each in sent for reference in references_in(each)]
    references += NAMES.valid_references() if change is not None and change.put_back else []
    lines += list(dict.fromkeys(NAMES.note(reference) for reference in references if reference.inline))
    if change is not None:
        first = "the first curl sets the state up as the test did; " if change.first is not None else ""
        how = "the last line puts it back" if change.put_back else "put it back by hand"
        lines.append(f"# {change.says}, as it did in the test: {first}{how}")
    lines += [curl_line(each) for each in sent]
    if change is not None and change.put_back:
        lines.append(served_url(change.put_back))
    return lines


def allocated(response: httpx.Response) -> bool:
    """Whether the exchange is allocate_ip's 200: sent again, it allocates again."""
    return response.status_code == 200 and response.request.method == "POST" and response.request.url.path.endswith("/allocate_ip")


def ip_lookup(request: httpx.Request) -> dict[str, Any]:
    """The ip_address lookup an allocate_ip request names: its JSON body's, else its query string's ({} when it names none)."""
    try:
        body = json.loads(request.content) if request.content else None
    except ValueError:
        body = None
    lookup = body.get("ip_address") if isinstance(body, dict) else None
    if isinstance(lookup, dict) and lookup:
        return lookup
    return {key[len("ip_address["):-1]: value for key, value in request.url.params.items() if key.startswith("ip_address[") and key.endswith("]")}


def unallocate_line(request: httpx.Request, lookup: dict[str, Any]) -> str:
    """The curl that unallocates the IP of `lookup` on the request's target, as credentials.valid."""
    base = str(request.url.copy_with(query=None)).rsplit("/virtual_machine_network_interfaces/", 1)[0]
    return curl_post(base + UNALLOCATE_PATH, NAMES.valid_headers(), {"ip_address": lookup})


def curl_post(url: str, headers: Iterable[tuple[str, str]], body: object) -> str:
    """A curl sending a JSON body with headers already written for the shell (each secret a ${VARIABLE}, never a value)."""
    options = "".join(f' -H "{name}: {value}"' for name, value in headers)
    return f"curl -sS -X POST '{url}'{options} -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}"


def sent_lines(request: httpx.Request) -> list[str]:
    """What was sent: method, path and query, content type and body (not yet redacted)."""
    query = f"?{request.url.query.decode('ascii', 'backslashreplace')}" if request.url.query else ""
    lines = [f"Sent: {request.method} {request.url.path}{query}"]
    content_type = request.headers.get("content-type")
    if content_type:
        lines.append(f"  content-type: {content_type}")
    lines.append(f"  body: {printable(request.content) if request.content else '(none)'}")
    return lines


def describe_unanswered(request: httpx.Request, said: str) -> str:
    """What was sent, that no answer came and why, and the command that sends it again; credentials redacted."""
    lines = [*sent_lines(request), f"Got: no answer ({said})", "Reproduce:", *(f"  {line}" for line in reproduce_lines(request))]
    return REDACT("\n".join(lines))


def describe_exchange(response: httpx.Response, change: Change | None = None) -> str:
    """What was sent and what came back, every credential replaced by [redacted]; `change` is an allocation the request changed
    (a rejected request's side effect), for its reproduce lines to say and undo."""
    request = response.request
    lines = sent_lines(request)
    lines.append(f"Got: {response.http_version} {response.status_code} {response.reason_phrase}".rstrip())
    lines += [f"  {name}: {printable(value.encode())}" for name, value in response.headers.items() if name.lower() not in ("date", "content-length")]
    lines.append(f"  body: {printable(response.content) if response.content else '(none)'}")
    lines.append("Reproduce:")
    lines += [f"  {line}" for line in reproduce_lines(request, response, change)]
    return REDACT("\n".join(lines))


def error_code(response: httpx.Response) -> str | None:
    """`error.code` of an error body, or None if the body has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def error_detail(response: httpx.Response) -> dict[str, Any]:
    """`error.detail` of an error body ({} when absent)."""
    detail = response.json().get("error", {}).get("detail")
    return detail if isinstance(detail, dict) else {}


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
