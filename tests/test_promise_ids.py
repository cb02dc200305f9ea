"""Every promise id the code names is in the catalogue: a misspelt one fails at once, never charges a finding to nowhere."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import conformance
from conformance.contract.checks import ConformanceFailure
from conformance.contract.promises import KNOWN, UnknownPromise, promise_id

PACKAGE = Path(conformance.__file__).resolve().parent
# Calls whose first arguments are promise ids, wherever they are made from.
TAKES_IDS = frozenset({"require", "reach", "promise_id", "promise"})


def named_ids(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals the code uses as promise ids: `promise=` arguments, `.promise = ...`, and the calls in TAKES_IDS."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            literals = [arg for arg in node.args if isinstance(arg, ast.Constant)] if name in TAKES_IDS else []
            literals += [kw.value for kw in node.keywords if kw.arg == "promise" and isinstance(kw.value, ast.Constant)]
            found += [(literal.lineno, literal.value) for literal in literals if isinstance(literal.value, str)]
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
              and any(isinstance(target, ast.Attribute) and target.attr == "promise" for target in node.targets)):
            found.append((node.lineno, node.value.value))
    return found


def test_every_promise_id_in_the_code_is_in_the_catalogue() -> None:
    """Scans the package: each id written as a literal is one the catalogue has."""
    unknown = [f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}" for path in sorted(PACKAGE.rglob("*.py"))
               for line, name in named_ids(ast.parse(path.read_text(encoding="utf-8"))) if name not in KNOWN]
    assert unknown == []


def test_the_scan_finds_a_misspelt_id() -> None:
    """The scan itself sees the forms the code uses."""
    source = 'ConformanceFailure("t", "r", "d", promise="200 semantix")\nrequire("no side efects")\nfailure.promise = "cleanupp"\n'
    assert sorted(name for _, name in named_ids(ast.parse(source))) == ["200 semantix", "cleanupp", "no side efects"]


def test_a_misspelt_id_fails_where_it_is_written() -> None:
    """A failure charged to an unknown promise is an internal error at once, naming the id and the catalogue."""
    with pytest.raises(UnknownPromise, match="unknown promise '200 semantix'"):
        ConformanceFailure("200 returns another interface", "vmnet_b", "vmnet_a", promise="200 semantix")
    assert promise_id("200 semantics") == "200 semantics"


def test_the_names_and_the_catalogue_are_one_to_one() -> None:
    """Each name of conformance.contract.ids is one promise of the catalogue, in its order, and the other way round."""
    from conformance.contract import ids
    from conformance.contract.promises import PROMISES, REPLAY_ONLY

    assert [promise.id for promise in (*PROMISES, *REPLAY_ONLY)] == list(ids.ALL)
    named = {value for name, value in vars(ids).items() if name.isupper() and name != "ALL"}
    assert named == set(ids.ALL) and len(ids.ALL) == len(named)


def test_wire_promises_are_the_catalogue_s_checked_promises() -> None:
    """The promises every generated test exists for are derived from the catalogue, the response shape first (the default charge)."""
    from conformance.contract.ids import RESPONSE_SHAPE
    from conformance.contract.promises import PROMISES
    from conformance.test_generated import WIRE_PROMISES

    assert WIRE_PROMISES[0] == RESPONSE_SHAPE and sorted(WIRE_PROMISES) == sorted(p.id for p in PROMISES if p.by_checks)
