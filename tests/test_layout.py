"""The package's architecture: folders by concern, imports running one way (tools → gate → cases → contract → wire → setup), no circle."""
from __future__ import annotations

import ast
from pathlib import Path

import conformance

PACKAGE = Path(conformance.__file__).resolve().parent
# Highest first: a module may import its own folder and any folder below it, never one above.
LAYERS = ("tools", "gate", "cases", "contract", "wire", "setup")
# The mock is a stand-in server: it stands on the wire's paths and on setup; the gate builds it and the tools run its mutants.
MOCK_MAY_IMPORT = frozenset({"mock", "wire", "setup"})
MOCK_IMPORTED_BY = frozenset({"tools", "gate", "mock"})
# Modules the mock may import beyond its folders: the promise ids, a leaf of names importing nothing, so mutants name what they break.
MOCK_MAY_ALSO_IMPORT = frozenset({"conformance.contract.ids"})
# The one module that spells promise ids as strings, and the one that defines stash keys.
PROMISE_IDS = PACKAGE / "contract" / "ids.py"
STASH_KEYS = PACKAGE / "gate" / "keys.py"


def folder_of(module: str) -> str:
    """The concern a dotted module name belongs to: its first folder under conformance (or the module itself, e.g. test_scenarios)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    """conformance/gate/plugin.py -> conformance.gate.plugin."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The conformance modules a file imports, at any depth of the file (deferred imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("conformance"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("conformance"))
    return found


def graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports."""
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py") if "_data" not in path.parts}


def allowed(importer: str, imported: str) -> bool:
    """Whether a module of folder `importer` may import one of folder `imported`."""
    if not imported or imported == importer:
        return True
    if "mock" in (importer, imported):
        return imported in MOCK_MAY_IMPORT if importer == "mock" else importer in MOCK_IMPORTED_BY
    if importer in LAYERS and imported in LAYERS:
        return LAYERS.index(imported) > LAYERS.index(importer)
    return importer.startswith("test_")  # the suite's own test modules stand on top of everything


def test_the_package_has_a_folder_for_each_concern() -> None:
    """Each concern is a folder whose docstring says what lives there; no loose module but the suite's own tests."""
    for folder in (*LAYERS, "mock"):
        init = PACKAGE / folder / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"conformance/{folder}/ needs a docstring"
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py" and not p.name.startswith("test_"))
    assert loose == [], f"modules outside the folders: {loose}"


def test_imports_run_one_way() -> None:
    """A module imports its own folder or one below it, never one above: tools → gate → cases → contract → wire → setup."""
    wrong = [f"{module} imports {other}" for module, imported in graph().items() for other in sorted(imported)
             if not allowed(folder_of(module), folder_of(other))
             and not (folder_of(module) == "mock" and other in MOCK_MAY_ALSO_IMPORT)]
    assert wrong == []


def test_what_the_mock_may_also_import_is_a_leaf() -> None:
    """The promise ids the mock imports import nothing of the package, so the mock still stands on wire and setup only."""
    assert [imports_of(PACKAGE.parent / (module.replace(".", "/") + ".py")) for module in MOCK_MAY_ALSO_IMPORT] == [set()]


def test_the_layer_rule_refuses_what_it_should() -> None:
    """The rule itself: down is allowed, up and sideways into the mock from below are not."""
    assert allowed("gate", "contract") and allowed("tools", "mock") and allowed("mock", "wire") and allowed("test_scenarios", "gate")
    assert not allowed("wire", "contract") and not allowed("wire", "mock") and not allowed("mock", "contract") and not allowed("setup", "tools")


def test_no_import_circle() -> None:
    """No module reaches itself through the modules it imports."""
    edges = graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    assert sorted(module for module in edges if reaches(module, module, set())) == []


def promise_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant that is a promise id, wherever it stands (a call, a marker, a set expression, a tuple, a dict)."""
    from conformance.contract.promises import KNOWN

    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in KNOWN]


def test_no_promise_id_is_spelt_outside_the_catalogue() -> None:
    """The package names promises by the constants of conformance/contract/ids.py, so a misspelt one fails the type check."""
    spelt = [f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}" for path in sorted(PACKAGE.rglob("*.py"))
             if path != PROMISE_IDS and "_data" not in path.parts
             for line, value in promise_literals(ast.parse(path.read_text(encoding="utf-8")))]
    assert spelt == []


def test_the_promise_scan_sees_every_form() -> None:
    """A set expression, a marker, a tuple and a dict value are all seen; a message that only mentions a promise is not."""
    source = ('failed & {"response shape"}\n@pytest.mark.promise("cleanup")\ndef f(): pass\nW = ("200 shape",)\n'
              'I = {"none": "400 missing_api_token"}\nm = "a finding of response shape"\n')
    assert sorted(value for _, value in promise_literals(ast.parse(source))) == [
        "200 shape", "400 missing_api_token", "cleanup", "response shape"]


def stash_keys(tree: ast.AST) -> list[int]:
    """Lines that make a stash key: `pytest.StashKey[T]()` or `StashKey[T]()`."""
    def is_key(func: ast.expr) -> bool:
        target = func.value if isinstance(func, ast.Subscript) else func
        return (isinstance(target, ast.Attribute) and target.attr == "StashKey") or (isinstance(target, ast.Name) and target.id == "StashKey")
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and is_key(node.func)]


def test_every_stash_key_lives_in_keys() -> None:
    """The run's state is reached through keys defined in one place (conformance/gate/keys.py), never made elsewhere."""
    elsewhere = [f"{path.relative_to(PACKAGE.parent)}:{line}" for path in sorted(PACKAGE.rglob("*.py")) if path != STASH_KEYS
                 for line in stash_keys(ast.parse(path.read_text(encoding="utf-8")))]
    assert elsewhere == []
    assert stash_keys(ast.parse(STASH_KEYS.read_text(encoding="utf-8")))
    assert stash_keys(ast.parse('K = pytest.StashKey["X"]()\nJ = StashKey[int]()\n')) == [1, 2]


# Module-level objects the package changes after import, each for a reason; anything else a run sets lives in its RunContext.
DECLARED_STATE = {
    "conformance.mock.mutants.MUTANTS": "the mutant catalogue, filled by @mutant as its module is imported",
    "conformance.setup.redaction.REDACT": "the process's output filter (pytest's terminal and log file are wrapped with it); a run's"
                                          " secrets are added when the run is activated and put back with it",
    "conformance.contract.findings.ACTIVE": "the active run, for checks not given one: set by activate(), put back by what it returns",
    "conformance.wire.interrupts.INTERRUPTS": "the process's interrupts (signals reach a process, not a run); reset for each run",
    # Changed through its own method (use()), which the scan does not see: listed so the list is the whole truth.
    "conformance.setup.references.NAMES": "the variables reproduce lines name credentials by (the wire's describe_exchange reads them,"
                                          " below the run context); use() returns what puts them back",
}
MUTATORS = frozenset({"add", "append", "extend", "insert", "update", "clear", "pop", "popitem", "setdefault", "remove", "discard",
                      "intersection_update", "difference_update", "symmetric_difference_update", "sort", "reverse"})
CACHES = frozenset({"cache", "lru_cache", "functools.cache", "functools.lru_cache"})


def module_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top that could hold state: constants (UPPER), classes, and functions whose result is cached."""
    found: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        bound = [item for target in targets for item in (target.elts if isinstance(target, ast.Tuple) else [target])]
        found |= {name.id for name in bound if isinstance(name, ast.Name) and name.id[:1].isupper()}
        if isinstance(node, ast.ClassDef) or (isinstance(node, ast.FunctionDef)
                                              and any(ast.unparse(d).split("(")[0] in CACHES for d in node.decorator_list)):
            found.add(node.name)
    return found


def changed_names(tree: ast.AST) -> list[tuple[int, str]]:
    """What the code changes in place: `X.add(...)`, `X[k] = v`, `X.attr = v`, `cached().add(...)`, `global X` (X bare or as module.X)."""
    def root(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return expr.id
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            return None if expr.value.id in ("self", "cls") else expr.attr
        return root(expr.func) if isinstance(expr, ast.Call) else None

    found: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            found.append((node.lineno, root(node.func.value)))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            found += [(node.lineno, root(target.value)) for target in targets if isinstance(target, ast.Subscript | ast.Attribute)]
        elif isinstance(node, ast.Global):
            found += [(node.lineno, name) for name in node.names]
    return [(line, name) for line, name in found if name is not None]


def undeclared_state(sources: dict[str, ast.Module]) -> list[str]:
    """`path:line: module.NAME` for each module-level object changed in place that DECLARED_STATE does not list."""
    defined: dict[str, list[str]] = {}
    for module, tree in sources.items():
        for name in module_level_names(tree):
            defined.setdefault(name, []).append(f"{module}.{name}")
    return [f"{module}:{line}: {qualified}" for module, tree in sources.items() for line, name in changed_names(tree)
            for qualified in defined.get(name, ()) if qualified not in DECLARED_STATE]


def test_no_module_level_state_but_the_declared() -> None:
    """A run's state lives in its RunContext, passed or activated, never in a module global a later run would find changed."""
    sources = {module_name(path): ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py")) if "_data" not in path.parts}
    assert undeclared_state(sources) == []
    assert all(qualified.rsplit(".", 1)[0] in sources for qualified in DECLARED_STATE)


def test_the_state_scan_sees_every_form() -> None:
    """A set added to, a cached set, a class attribute set from elsewhere, a dict item set, a global rebound: each is seen."""
    defining = ast.parse("AUTHENTICATED = set()\nclass Scope:\n    current = None\n@cache\ndef answers():\n    return set()\n"
                         "TABLE = {}\nCOUNT = 0\nCONSTANT = {'a': 1}\n")
    changing = ast.parse("checks.AUTHENTICATED.update(x)\nScope.current = 1\nanswers().add(1)\nTABLE['k'] = 1\n"
                         "def f():\n    global COUNT\n    COUNT += 1\nself.table = {}\nlocal = CONSTANT['a']\n")
    assert sorted(line.split(": ")[1] for line in undeclared_state({"m": defining, "n": changing})) == [
        "m.AUTHENTICATED", "m.COUNT", "m.Scope", "m.TABLE", "m.answers"]
