"""Reading recorded interactions: go-vcr cassettes (YAML), HAR 1.2, and the JSON formats of fixtures/recorded/."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.setup.yamlfile import YamlProblem, load_yaml
from conformance.wire.har import REQUEST_BYTES

Headers = list[tuple[str, str]]


class RecordingError(ValueError):
    """A file is not a recording this reader knows; the message names the file and what was expected."""


@dataclass(frozen=True)
class Recorded:
    """One recorded exchange: where it came from, what was sent and what came back."""

    source: str
    index: int
    method: str
    url: str
    request_headers: Headers
    request_body: bytes
    status: int
    headers: Headers
    body: bytes
    # False when the recorder kept no response body (a browser export without content.text): nothing to judge the body by.
    captured: bool = True
    # The HTTP version the exchange used, as recorded ("HTTP/2", "h2"...; empty when unknown).
    http_version: str = ""
    # The suite's own marks on an entry of its HAR record (`_test`, `_promises`, `_phase`...); empty for any other recording.
    marks: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The URL's path, without query."""
        return urlsplit(self.url).path or "/"

    @property
    def answered(self) -> bool:
        """Whether a response came back (an aborted or failed request is recorded with status 0)."""
        return self.status > 0

    @property
    def label(self) -> str:
        """How findings name the exchange: file#index METHOD path status."""
        return f"{self.source}#{self.index} {self.method} {self.path} {self.status if self.answered else '(no answer)'}"


def _headers(raw: Any) -> Headers:
    """Headers as name/value pairs, from a mapping (values a string or a list) or a HAR list of {name, value}."""
    if isinstance(raw, list):
        return [(str(item["name"]), str(item["value"])) for item in raw if isinstance(item, dict)]
    if not isinstance(raw, Mapping):
        return []
    pairs: Headers = []
    for name, value in raw.items():
        values: Iterable[Any] = value if isinstance(value, list) else [value]
        pairs += [(str(name), str(one)) for one in values]
    return pairs


def _bytes(body: Any) -> bytes:
    """A recorded body as bytes: text as is, a parsed JSON value re-serialised, nothing as empty."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _status(response: Mapping[str, Any]) -> int:
    """The status code: go-vcr's `code`, or the leading number of its `status` line."""
    code = response.get("code")
    if isinstance(code, int) and code:
        return code
    return int(str(response.get("status", "0")).split(" ", 1)[0])


def _vcr(source: str, interactions: list[Any]) -> list[Recorded]:
    """go-vcr interactions, and the JSON interaction lists shaped like them (body_raw / body_json)."""
    found = []
    for index, item in enumerate(interactions):
        request, response = item["request"], item["response"]
        body = response["body_raw"] if "body_raw" in response else response.get("body_json", response.get("body"))
        found.append(Recorded(source, index, str(request["method"]).upper(), str(request["url"]), _headers(request.get("headers")),
                              _bytes(request.get("body")), _status(response), _headers(response.get("headers")), _bytes(body)))
    return found


def _sample(source: str, items: list[Any]) -> list[Recorded]:
    """The flat sample format: method, path, base_url, request_body, status, headers, body."""
    found = []
    for index, item in enumerate(items):
        url = str(item.get("base_url", "")).rstrip("/") + str(item["path"])
        request_headers = [("Content-Type", "application/json")] if item.get("request_body") is not None else []
        found.append(Recorded(source, index, str(item["method"]).upper(), url, request_headers, _bytes(item.get("request_body")),
                              int(item["status"]), _headers(item.get("headers")), _bytes(item.get("body"))))
    return found


def _har_text(content: Mapping[str, Any]) -> bytes:
    text = content.get("text") or ""
    return base64.b64decode(text) if content.get("encoding") == "base64" else str(text).encode("utf-8")


def _har_sent(request: Mapping[str, Any]) -> bytes:
    """The request body: postData.text, or the exact bytes the suite's record keeps in REQUEST_BYTES where they are not UTF-8."""
    post = request.get("postData") or {}
    if post.get(REQUEST_BYTES):
        return base64.b64decode(str(post[REQUEST_BYTES]))
    return str(post.get("text") or "").encode("utf-8")


def _har_captured(response: Mapping[str, Any]) -> bool:
    """Whether the response body was kept: content.text is there, or the body was empty (size 0)."""
    content = response.get("content") or {}
    return "text" in content or content.get("size") == 0 or response.get("bodySize") == 0


def _har(source: str, entries: list[Any]) -> list[Recorded]:
    """HAR 1.2 entries (browser and proxy exports, and the suite's own record with its `_` marks)."""
    found = []
    for index, entry in enumerate(entries):
        request, response = entry["request"], entry["response"]
        status = int(response.get("status") or 0)
        marks = {key: value for key, value in entry.items() if isinstance(key, str) and key.startswith("_")}
        version = str(response.get("httpVersion") or request.get("httpVersion") or "")
        found.append(Recorded(source, index, str(request["method"]).upper(), str(request["url"]), _headers(request.get("headers")),
                              _har_sent(request), status, _headers(response.get("headers")), _har_text(response.get("content") or {}),
                              captured=status == 0 or _har_captured(response), http_version=version, marks=marks))
    return found


def parse(source: str, data: Any) -> list[Recorded]:
    """The interactions of one parsed file, whichever of the known formats it is."""
    if isinstance(data, dict) and isinstance(data.get("log"), dict) and isinstance(data["log"].get("entries"), list):
        return _har(source, data["log"]["entries"])
    if isinstance(data, dict) and isinstance(data.get("interactions"), list):
        return _vcr(source, data["interactions"])
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        if all("request" in item and "response" in item for item in data):
            return _vcr(source, data)
        if all("method" in item and "path" in item and "status" in item for item in data):
            return _sample(source, data)
    raise RecordingError(f"{source} is not a go-vcr cassette, a HAR file or a JSON list of recorded interactions")


def load_recordings(path: Path) -> list[Recorded]:
    """Read one recording file (YAML or JSON); every problem is a RecordingError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror}") from None
    if path.suffix.lower() in (".json", ".har"):
        try:
            data = json.loads(text)
        except ValueError:
            raise RecordingError(f"{path} is not valid JSON") from None
    else:
        try:
            data = load_yaml(text)
        except YamlProblem as problem:
            raise RecordingError(f"{path} {problem}") from None
    try:
        return parse(str(path), data)
    except RecordingError:
        raise
    except KeyError as error:
        raise RecordingError(f"{path} has an interaction without {error} where its format needs one") from None
    except (AttributeError, TypeError, ValueError) as error:
        # A value of the wrong type where the format has a mapping, a list or a number (YAML reads unquoted text as either).
        raise RecordingError(f"{path} has an interaction whose values are not of the types its format needs ({error})") from None
