"""Compare Katapult's published allocate_ip contract with the suite's spec fragment and flag drift."""
from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx

from conformance.setup.command import FAILED, INTERRUPTED_OR_UNREADABLE, OK, USAGE, CommandParser, fail
from conformance.setup.paths import data_path
from conformance.setup.yamlfile import load_yaml

SPEC = ("spec", "allocate_ip.yaml")
PUBLISHED = ("fixtures", "published-openapi.json")
SPEC_NAME = "/".join(SPEC)
FETCH_TIMEOUT = 10.0
MAX_DEPTH = 32
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

Key = tuple[str, str, str]
Check = Callable[[str | None, str | None], bool]


class Fact(NamedTuple):
    """One normalised contract fact: its value and the fact it hangs off, if any."""

    value: str
    parent: Key | None


Model = dict[Key, Fact]


class DriftInputError(Exception):
    """A document could not be read, fetched, parsed or understood; the message is one sentence."""


def _split(value: str | None) -> set[str]:
    """The set of names in a comma-separated fact value (absent means empty)."""
    return {part.strip() for part in value.split(",")} - {""} if value else set()


def _exactly(published: str | None, ours: str | None) -> Check:
    """Check that the published and our values are exactly these (None: absent)."""
    return lambda p, o: p == published and o == ours


def _one_of(published: str | None, ours: Sequence[str]) -> Check:
    """Check that the published value is this and ours is any of these."""
    return lambda p, o: p == published and o in ours


def _added(p: str | None, o: str | None) -> bool:
    """Check that only we state the fact."""
    return p is None and o is not None


def _tightened(p: str | None, o: str | None) -> bool:
    """Check that our set of names contains every published one, and more."""
    return _split(p) < _split(o)


@dataclass(frozen=True)
class KnownDifference:
    """A difference we made on purpose: which facts, which values, and why."""

    pattern: tuple[str, str, str]
    check: Check
    explanation: str

    def matches(self, key: Key, published: str | None, ours: str | None) -> bool:
        """Whether this row explains the difference at key."""
        return all(fnmatch.fnmatchcase(part, glob) for part, glob in zip(key, self.pattern, strict=True)) and (
            self.check(published, ours)
        )


NULL_31 = ("type: [..., 'null']", "oneOf: [..., {type: 'null'}]")

KNOWN: tuple[KnownDifference, ...] = (
    KnownDifference(
        ("response", "*", "envelope"),
        _exactly("bare", "wrapped"),
        'error envelope: wrapped in {{"error": ...}} on the wire (recordings)',
    ),
    KnownDifference(
        ("response", "*", "code *"),
        _exactly(None, "observed"),
        "undocumented error, observed on the wire (x-conformance-observed), not in the published document",
    ),
    KnownDifference(
        ("*", "*", "required"),
        _tightened,
        "required tightened to [{ours}] (published: [{published}]), the wire always carries them",
    ),
    KnownDifference(
        ("request", "", "body"),
        _exactly("optional", "required"),
        "request body marked required (the published schema already requires both lookups)",
    ),
    KnownDifference(
        ("*", "*", "pin"),
        _exactly("enum", "const"),
        "code pinned with const (published: a one-value enum)",
    ),
    KnownDifference(
        ("*", "*", "null"),
        _one_of("nullable: true", NULL_31),
        "OpenAPI 3.0 nullable: true written the 3.1 way ({ours})",
    ),
    KnownDifference(
        ("response", "*", "headers"),
        _tightened,
        "headers declared: {ours} (on every recorded response; the published document declares none)",
    ),
    KnownDifference(
        ("*", "*", "exclusive"),
        _added,
        "exclusivity oneOf: exactly one of {ours} (the published document says so in prose only)",
    ),
    KnownDifference(
        ("response", "500", ""),
        _exactly(None, "documented"),
        "500 unhandled_exception described (recorded on other endpoints, description null) so its shape is judged; every 500 still fails",
    ),
    KnownDifference(
        ("*", "*", "additionalProperties"),
        _exactly(None, "false"),
        "closed with additionalProperties: false (tightening)",
    ),
)


@dataclass(frozen=True)
class Difference:
    """One fact on which the two documents disagree, and how it is classified."""

    key: Key
    published: str | None
    ours: str | None
    known: KnownDifference | None

    @property
    def subject(self) -> str:
        """The fact named for a reader, e.g. 'response 404 code ip_address_not_found'."""
        return " ".join(part for part in self.key if part)

    @property
    def explanation(self) -> str:
        """Why the difference is known, or what changed."""
        if self.known is not None:
            return self.known.explanation.format(published=self.published or "", ours=self.ours or "")
        if self.ours is None:
            return f"published ({self.published}), not in {SPEC_NAME}"
        if self.published is None:
            return f"in {SPEC_NAME} ({self.ours}), not published"
        return f"published {self.published}, {SPEC_NAME} {self.ours}"

    def line(self) -> str:
        """The one-line report of this difference."""
        return f"{'known' if self.known else 'NEW':<6} {self.subject}: {self.explanation}"

    def as_json(self) -> dict[str, object]:
        """The difference as a JSON-ready object."""
        return {
            "kind": "known" if self.known else "new",
            "fact": list(self.key),
            "subject": self.subject,
            "published": self.published,
            "spec": self.ours,
            "explanation": self.explanation,
        }


def _dict(value: object) -> dict[str, object]:
    """The value if it is a JSON object, else an empty one."""
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    """The value if it is a JSON array, else an empty one."""
    return list(value) if isinstance(value, list) else []


def _names(values: object) -> str:
    """Sorted, comma-separated string items of a JSON array."""
    return ", ".join(sorted(str(v) for v in _list(values)))


class Document:
    """An OpenAPI document with $ref resolution."""

    def __init__(self, root: dict[str, object], source: str) -> None:
        """Wrap the parsed document read from source."""
        self.root = root
        self.source = source

    def resolve(self, node: object) -> dict[str, object]:
        """The node with any chain of local $refs followed."""
        current = _dict(node)
        for _ in range(MAX_DEPTH):
            ref = current.get("$ref")
            if not isinstance(ref, str):
                return current
            if not ref.startswith("#/"):
                raise DriftInputError(f"{self.source} uses the non-local $ref {ref}; pass a bundled document.")
            target: object = self.root
            for part in ref[2:].split("/"):
                target = _dict(target).get(part.replace("~1", "/").replace("~0", "~"))
                if target is None:
                    raise DriftInputError(f"{self.source} has the dangling $ref {ref}; pass a complete document.")
            current = _dict(target)
        raise DriftInputError(f"{self.source} has a $ref cycle; pass a well-formed document.")

    def schema(self, node: object) -> dict[str, object]:
        """The schema resolved, with single-entry allOf wrappers merged into their siblings."""
        schema = self.resolve(node)
        for _ in range(MAX_DEPTH):
            parts = _list(schema.get("allOf"))
            if len(parts) != 1:
                return schema
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            schema = {**self.resolve(parts[0]), **rest}
        return schema

    def operation(self, operation_id: str, path: str, method: str) -> tuple[str, str, dict[str, object]] | None:
        """The operation with this operationId, else the one at this path and method."""
        paths = _dict(self.root.get("paths"))
        for candidate_path, item in paths.items():
            for candidate_method, op in _dict(item).items():
                if candidate_method in HTTP_METHODS and _dict(op).get("operationId") == operation_id:
                    return candidate_path, candidate_method, _dict(op)
        op = _dict(_dict(paths.get(path)).get(method))
        return (path, method, op) if op else None


def _nullable(doc: Document, schema: dict[str, object]) -> tuple[dict[str, object], str | None]:
    """The schema without its null alternative, and how nullability was written (None: not nullable)."""
    if schema.get("nullable") is True:
        return {k: v for k, v in schema.items() if k != "nullable"}, "nullable: true"
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        kept = [t for t in types if t != "null"]
        return {**schema, "type": kept[0] if len(kept) == 1 else kept}, NULL_31[0]
    for keyword in ("oneOf", "anyOf"):
        options = [doc.schema(option) for option in _list(schema.get(keyword))]
        others = [option for option in options if option.get("type") != "null"]
        if options and len(others) == len(options) - 1 == 1:
            siblings = {k: v for k, v in schema.items() if k != keyword}
            return doc.schema({**others[0], **siblings}), NULL_31[1]
    return schema, None


def _type(doc: Document, schema: dict[str, object]) -> str:
    """The JSON type(s) a schema admits, normalised to one string."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        return "|".join(sorted(str(t) for t in declared))
    values = [schema["const"]] if "const" in schema else _list(schema.get("enum"))
    if values:
        names = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "NoneType": "null"}
        return "|".join(sorted({names.get(type(v).__name__, "object") for v in values}))
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    options = _list(schema.get("oneOf")) or _list(schema.get("anyOf"))
    if options and not all(set(_dict(o)) == {"required"} for o in options):
        return "|".join(sorted({_type(doc, doc.schema(o)) for o in options}))
    return "any"


def _exclusive(schema: dict[str, object]) -> str | None:
    """The alternatives of a oneOf that only says which one property is required, if that is what it is."""
    options = [_dict(o) for o in _list(schema.get("oneOf"))]
    if len(options) < 2 or not all(set(o) == {"required"} and len(_list(o["required"])) == 1 for o in options):
        return None
    return " | ".join(sorted(str(_list(o["required"])[0]) for o in options))


def _walk(
    doc: Document, node: object, area: str, subject: str, parent: Key | None, model: Model, depth: int = 0
) -> None:
    """Add the facts a schema states (type, nullability, pinning, required, closure, members) to model."""
    schema, null_syntax = _nullable(doc, doc.schema(node))
    kind = _type(doc, schema)
    type_key: Key = (area, subject, "type")
    model[type_key] = Fact(f"{kind}|null" if null_syntax and "null" not in kind else kind, parent)
    facts: dict[str, str | None] = {
        "null": null_syntax,
        "values": str(schema["const"]) if "const" in schema else _names(schema.get("enum")) or None,
        "pin": "const" if "const" in schema else "enum" if "enum" in schema else None,
        "required": _names(schema.get("required")) or None,
        "additionalProperties": "false" if schema.get("additionalProperties") is False else None,
        "exclusive": _exclusive(schema),
    }
    for aspect, value in facts.items():
        if value is not None:
            model[(area, subject, aspect)] = Fact(value, type_key)
    if depth >= MAX_DEPTH:
        return
    for name, member in _dict(schema.get("properties")).items():
        _walk(doc, member, area, f"{subject}.{name}" if subject else name, type_key, model, depth + 1)
    if "items" in schema:
        _walk(doc, schema["items"], area, f"{subject}[]", type_key, model, depth + 1)


def _error_shapes(doc: Document, node: object) -> Iterator[tuple[dict[str, object], dict[str, object], str]]:
    """Each alternative error body: (outer schema, inner {code, description, detail} schema, envelope)."""
    schema = doc.schema(node)
    options = _list(schema.get("oneOf")) or _list(schema.get("anyOf"))
    for option in options or [node]:
        outer = doc.schema(option)
        wrapper = doc.schema(_dict(outer.get("properties")).get("error"))
        if "code" in _dict(wrapper.get("properties")):
            yield outer, wrapper, "wrapped"
        else:
            yield outer, outer, "bare"


def _codes(doc: Document, inner: dict[str, object]) -> list[str]:
    """The error codes an inner error schema pins, from const or enum."""
    code = doc.schema(_dict(inner.get("properties")).get("code"))
    if "const" in code:
        return [str(code["const"])]
    return [str(v) for v in _list(code.get("enum"))] or ["(unspecified)"]


def _add_response(doc: Document, status: str, response: dict[str, object], model: Model) -> None:
    """Add the facts of one response: presence, headers, body or error codes, envelope, detail fields."""
    response_key: Key = ("response", status, "")
    model[response_key] = Fact("documented", None)
    headers = _dict(response.get("headers"))
    if headers:
        model[("response", status, "headers")] = Fact(", ".join(sorted(headers)), response_key)
    body = _dict(_dict(response.get("content")).get("application/json")).get("schema")
    if body is None:
        return
    if status.startswith("2"):
        _walk(doc, body, status, "", response_key, model)
        return
    envelopes: set[str] = set()
    for outer, inner, envelope in _error_shapes(doc, body):
        envelopes.add(envelope)
        observed = outer.get("x-conformance-observed") is True
        for code in _codes(doc, inner):
            code_key: Key = ("response", status, f"code {code}")
            model[code_key] = Fact("observed" if observed else "documented", response_key)
            members = _dict(inner.get("properties"))
            error = {**inner, "properties": {k: v for k, v in members.items() if k != "detail"}}
            _walk(doc, error, "error", code, code_key, model)
            if "detail" in members:
                _walk(doc, members["detail"], "detail", code, code_key, model)
    model[("response", status, "envelope")] = Fact(" + ".join(sorted(envelopes)), response_key)


def contract_model(doc: Document, operation_id: str, path: str, method: str) -> Model | None:
    """Reduce the operation's contract in doc to normalised facts (None: the operation is not there)."""
    found = doc.operation(operation_id, path, method)
    if found is None:
        return None
    found_path, found_method, op = found
    model: Model = {
        ("operation", "path", ""): Fact(found_path, None),
        ("operation", "method", ""): Fact(found_method, None),
        ("operation", "operationId", ""): Fact(str(op.get("operationId")), None),
    }
    for requirement in _list(op.get("security", doc.root.get("security"))):
        for scheme, scopes in _dict(requirement).items():
            model[("scope", scheme, "")] = Fact(_names(scopes), None)
    body = doc.resolve(op.get("requestBody"))
    if body:
        model[("request", "", "body")] = Fact("required" if body.get("required") is True else "optional", None)
        _walk(doc, _dict(_dict(body.get("content")).get("application/json")).get("schema"), "request", "", None, model)
    for status, response in _dict(op.get("responses")).items():
        _add_response(doc, str(status), doc.resolve(response), model)
    return model


AREAS_FIRST = ("operation", "scope", "request", "response")
AREAS_LAST = ("error", "detail")


def _reading_order(key: Key) -> tuple[int, Key]:
    """Sort key: operation, scopes, request, responses, success bodies, then error and detail facts."""
    area = key[0]
    if area in AREAS_FIRST:
        return AREAS_FIRST.index(area), key
    if area in AREAS_LAST:
        return len(AREAS_FIRST) + 1 + AREAS_LAST.index(area), key
    return len(AREAS_FIRST), key


def diff(published: Model, ours: Model, known: Sequence[KnownDifference] = KNOWN) -> list[Difference]:
    """Every fact on which the models disagree, classified, leaving out facts whose parent is itself one-sided."""

    def one_sided(key: Key | None) -> bool:
        return key is not None and (key in published) != (key in ours)

    differences = []
    for key in sorted(published.keys() | ours.keys(), key=_reading_order):
        p, o = published.get(key), ours.get(key)
        p_value, o_value = (p.value if p else None), (o.value if o else None)
        if p_value == o_value or one_sided((p or o or Fact("", None)).parent):
            continue
        row = next((row for row in known if row.matches(key, p_value, o_value)), None)
        differences.append(Difference(key, p_value, o_value, row))
    return differences


def _decode(text: str, source: str) -> object:
    """Decode JSON (a .json source), YAML (a .yaml/.yml source), or either (anything else)."""
    suffix = source.lower().rsplit(".", 1)[-1]
    if suffix == "json":
        return json.loads(text)
    if suffix not in ("yaml", "yml"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return load_yaml(text)


def _parse(text: str, source: str) -> Document:
    """Parse a JSON or YAML OpenAPI document."""
    try:
        root = _decode(text, source)
    except ValueError as error:  # a YamlProblem is one
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DriftInputError(
            f"{source} is not valid JSON or YAML ({reason}); pass an OpenAPI document in JSON or YAML."
        ) from None
    if not isinstance(root, dict) or not isinstance(root.get("paths"), dict):
        raise DriftInputError(
            f"{source} is not an OpenAPI document (no 'paths' object); pass Katapult's published OpenAPI document."
        )
    return Document(_dict(root), source)


def load(source: str) -> Document:
    """Read (or fetch, for an http(s) URL) and parse an OpenAPI document."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=FETCH_TIMEOUT, follow_redirects=True)
        except httpx.HTTPError as error:
            # httpx's text may run to several lines (a status error adds a documentation link): its first line is the reason.
            reason = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise DriftInputError(
                f"cannot fetch {source} ({reason}); check the URL and the network, or pass a local copy of the document."
            ) from None
        if response.is_error:
            raise DriftInputError(
                f"cannot fetch {source}: it answered {response.status_code} {response.reason_phrase}".rstrip()
                + "; check the URL, or pass a local copy of the document."
            )
        text = response.text
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise DriftInputError(
                f"cannot read {source} ({reason}); pass the path of a readable OpenAPI document or an http(s) URL."
            ) from None
    return _parse(text, source)


def _under_test(doc: Document) -> tuple[str, str, str]:
    """The (operationId, path, method) of our operation marked x-conformance-role: under-test."""
    for path, item in _dict(doc.root.get("paths")).items():
        for method, op in _dict(item).items():
            if method in HTTP_METHODS and _dict(op).get("x-conformance-role") == "under-test":
                return str(_dict(op).get("operationId")), path, method
    raise DriftInputError(
        f"{doc.source} has no operation marked x-conformance-role: under-test; mark the one to compare."
    )


def compare(published: Document, ours: Document) -> list[Difference]:
    """The classified differences between the published operation and ours."""
    operation_id, path, method = _under_test(ours)
    ours_model = contract_model(ours, operation_id, path, method)
    published_model = contract_model(published, operation_id, path, method)
    if ours_model is None or published_model is None:
        key: Key = ("operation", f"{method.upper()} {path}", "")
        return [Difference(key, None, operation_id, None)]
    return diff(published_model, ours_model)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the differences; exit 0 if all are known, 1 if any is new, 2 if a document is unusable."""
    parser = CommandParser("drift", __doc__.splitlines()[0] if __doc__ else None, exits=(OK, FAILED, INTERRUPTED_OR_UNREADABLE, USAGE),
                           says={OK: "every difference is known (explained)", FAILED: "a new difference from the published document"})
    parser.add_argument(
        "published",
        nargs="?",
        default=str(data_path(*PUBLISHED)),
        help="Katapult's published OpenAPI document (file or http(s) URL; default: the shipped copy)",
    )
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    args = parser.parse_args(argv)
    try:
        differences = compare(load(args.published), load(str(data_path(*SPEC))))
    except DriftInputError as error:
        return fail("drift", str(error), INTERRUPTED_OR_UNREADABLE)
    new = sum(1 for d in differences if d.known is None)
    if args.json:
        summary = {"known": len(differences) - new, "new": new}
        print(json.dumps({"differences": [d.as_json() for d in differences], **summary}, indent=2))
    else:
        for difference in differences:
            print(difference.line())
        print(f"{len(differences) - new} known, {new} new")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
