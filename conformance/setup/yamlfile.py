"""Reading the YAML files users write: a mistake is one line naming the line and key; each value's YAML type is described for messages."""
from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

Key = Sequence[str | int]


def dotted(path: Key) -> str:
    """A key path as the docs write it: `ip_addresses.allocatable[0].id`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class YamlProblem(ValueError):
    """A YAML file that cannot be read; the message (without the file's name) says where, what, and the fix."""


class NotADate(ConstructorError):
    """An unquoted value that YAML takes for a date, and that is none (2026-13-01)."""


def _timestamp(loader: SafeConstructor, node: yaml.ScalarNode) -> Any:
    # PyYAML builds `2026-13-01` into a date and lets datetime's ValueError escape, with no line: a YAML error at the value's mark instead.
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as error:
        raise NotADate(None, None, f"{node.value} is not a date ({error})", node.start_mark) from None


def _loader() -> Any:
    # libyaml's safe loader when PyYAML has it (a tenth of the pure-Python one's time), else that one: the same documents either way.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("Loader", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
    return loader


LOADER = _loader()


def load_yaml(text: str, key_name: Callable[[Key], str] = dotted) -> Any:
    """The document in `text`; YamlProblem saying the line (and the key, for a value that cannot be built) and the fix."""
    try:
        return yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as error:
        raise YamlProblem(describe(error, text, key_name)) from None


def describe(error: yaml.YAMLError, text: str, key_name: Callable[[Key], str] = dotted) -> str:
    """`is not valid YAML at line N: …; fix …`, or `line N, KEY: VALUE is not a date …; quote it …` for a value."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return "is not valid YAML; fix the syntax"
    line = mark.line + 1
    problem = getattr(error, "problem", None)
    if isinstance(error, NotADate):
        path = key_at(text, mark.index)
        where = f"line {line}" + (f", {key_name(path)}" if path else "")
        return f"{where}: {problem}; quote it if it is meant as text, or write a real date like 2027-03-31"
    lines = text.splitlines()
    source = lines[mark.line] if mark.line < len(lines) else ""
    indent = source[: len(source) - len(source.lstrip(" \t"))]
    if "\t" in indent or text[mark.index: mark.index + 1] == "\t":
        return f"is not valid YAML at line {line}: it is indented with a tab, and YAML indents with spaces only; replace the tabs with spaces"
    return f"is not valid YAML at line {line}" + (f": {problem}" if problem else "") + "; fix the syntax"


def key_at(text: str, index: int) -> list[str | int]:
    """The key path of the value that starts at `index` of the document (empty when none does)."""
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError:
        return []

    def find(node: yaml.Node, path: list[str | int]) -> list[str | int] | None:
        if node.start_mark.index == index and isinstance(node, yaml.ScalarNode):
            return path
        children: list[tuple[str | int, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            children = [(str(key.value), value) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(enumerate(node.value))
        for part, child in children:
            found = find(child, [*path, part])
            if found is not None:
                return found
        return None

    return (find(root, []) or []) if root is not None else []


def spelled(value: Any) -> str:
    """A scalar as YAML writes it: `true`, `2026-12-01`, `42`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def kind(value: Any, shown: bool = True) -> str:
    """What YAML made of a value, for a message: `a date (2026-12-01)`, `a number (42)`, `a list`; without the value when not shown (a secret)."""
    if value is None:
        return "nothing (null)"
    names = ((bool, "a boolean"), (datetime.datetime, "a timestamp"), (datetime.date, "a date"), (int, "a number"), (float, "a number"),
             (str, "a string"), (list, "a list"), (dict, "a mapping"))
    name = next((name for cls, name in names if isinstance(value, cls)), type(value).__name__)
    if not shown or isinstance(value, list | dict):
        return name
    return f"{name} ({value!r})" if isinstance(value, str) else f"{name} ({spelled(value)})"


def wrong_type(key: str, expected: str, value: Any, *, text: bool = False, shown: bool = True) -> str:
    """`KEY must be EXPECTED, got KIND`; where text is expected and YAML read an unquoted scalar as something else, `quote it`."""
    scalar = isinstance(value, bool | int | float | datetime.date)
    quote = (f"; quote it ('{spelled(value)}') to make it text" if shown else "; quote it to make it text") if text and scalar else ""
    return f"{key} must be {expected}, got {kind(value, shown)}{quote}"
