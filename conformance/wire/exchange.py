"""One request and its response, told for a server developer: status line, headers, bodies (escaped) and a runnable reproduction."""
from __future__ import annotations

import shlex
from typing import Any

import httpx

from conformance.setup.redaction import REDACT

BODY_PREVIEW = 600
MOCK_HOST = "katapult-mock.invalid"
SERVED_MOCK_URL = "http://127.0.0.1:8080"
SKIPPED_HEADERS = frozenset({"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"})


def escaped(content: bytes) -> str:
    """Bytes as one line of text any terminal or grep reads: invalid UTF-8 and control characters (NUL, newlines) escaped."""
    text = content.decode("utf-8", "backslashreplace")
    return "".join(char if char.isprintable() or char == " " else char.encode("unicode_escape").decode("ascii") for char in text)


def printable(content: bytes) -> str:
    """Bytes as text a terminal shows safely: escaped, long bodies cut."""
    text = escaped(content)
    return text if len(text) <= BODY_PREVIEW else text[:BODY_PREVIEW] + f"... ({len(text)} characters)"


def curl_line(request: httpx.Request) -> str:
    """A copy-pasteable curl command for the request, credentials redacted (the in-process mock's URL becomes the served one)."""
    parts = ["curl", "-i", "-X", request.method]
    for name, value in request.headers.items():
        if name.lower() in SKIPPED_HEADERS:
            continue
        shown = "Bearer $KATAPULT_API_TOKEN" if name.lower() == "authorization" and value.lower().startswith("bearer ") else value
        parts += ["-H", f"{name}: {shown}"]
    typed = request.content and is_plain_text(request.content)
    if typed:
        parts += ["--data-binary", request.content.decode("utf-8")]
    elif request.content:
        parts += ["--data-binary", "@-"]
    url = str(request.url)
    if request.url.host == MOCK_HOST:
        url = url.replace(f"http://{MOCK_HOST}", SERVED_MOCK_URL, 1)
    parts.append(url)
    line = " ".join(shlex.quote(part) if "$KATAPULT_API_TOKEN" not in part else f'"{part}"' for part in parts)
    if request.content and not typed:
        # Bytes a shell cannot carry in a quoted argument (invalid UTF-8, NUL): printf writes them exactly, curl reads stdin.
        line = f"printf '{octal_escaped(request.content)}' | {line}"
    return REDACT(line)


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


def reproduce_lines(request: httpx.Request) -> list[str]:
    """The commands that rerun this request (the in-process mock's requests against the mock served on 127.0.0.1:8080)."""
    if request.url.host == MOCK_HOST:
        return ["katapult-conformance mock --port 8080 &   # the reference mock, served (add --mutant NAME for the run's mutant)",
                curl_line(request)]
    return [curl_line(request)]


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


def describe_exchange(response: httpx.Response) -> str:
    """What was sent and what came back, every credential replaced by [redacted]."""
    request = response.request
    lines = sent_lines(request)
    lines.append(f"Got: {response.http_version} {response.status_code} {response.reason_phrase}".rstrip())
    lines += [f"  {name}: {printable(value.encode())}" for name, value in response.headers.items() if name.lower() not in ("date", "content-length")]
    lines.append(f"  body: {printable(response.content) if response.content else '(none)'}")
    lines.append("Reproduce:")
    lines += [f"  {line}" for line in reproduce_lines(request)]
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
