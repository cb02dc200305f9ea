"""Regenerate the generated sections of docs/ and the README (scenarios, options, mutants, the README's speed figures; with --with-bench, the
benchmark first), each in the file that holds it."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

from conformance.cases.scenarios import markdown_table
from conformance.mock.mutants import MUTANTS
from conformance.setup.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def options_table() -> str:
    """Every option of `run` with its environment variable and default."""
    lines = ["| option | env | default | what |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        default = "—" if option.default in (None, False) else f"`{option.default}`"
        lines.append(f"| `{option.flag}` | {f'`{option.env}`' if option.env else '—'} | {default} | {cell(option.help)} |")
    return "\n".join(lines)


def mutants_table() -> str:
    """The mutant catalogue: each mutant's name, the deviation it makes, and the promises that deviation breaks."""
    lines = ["| mutant | deviation | promises it breaks |", "| --- | --- | --- |"]
    for name, cls in MUTANTS.items():
        lines.append(f"| `{name}` | {cell(cls.description)} | {', '.join(cell(promise) for promise in cls.breaks)} |")
    lines.append("")
    lines.append(f"{len(MUTANTS)} mutants.")
    return "\n".join(lines)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def command_output(*command: str) -> str:
    """The stdout of a generator command run from the checkout."""
    return subprocess.run(list(command), capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()


def speed_summary() -> str:
    """The README's speed figures, taken from the bench's section of docs/speed.md, so the two never disagree."""
    bench = section((DOCS / "speed.md").read_text(encoding="utf-8"), "bench") or ""
    figures = {name: re.search(pattern, bench) for name, pattern in SPEED_FIGURES.items()}
    missing = [name for name, found in figures.items() if found is None]
    if missing:
        raise SystemExit(f"docs/speed.md's bench section lacks {', '.join(missing)}: run `python -m conformance.tools.docs --with-bench`")
    ratio, startup, live = (found.group(1) for found in figures.values() if found is not None)
    return textwrap.fill(
        f"Measured by `bench/bench.py` ([docs/speed.md](docs/speed.md)): the suite generates and judges cases at **{ratio}** the"
        f" schemathesis CLI's rate, whole process; `pytest --pyargs conformance --co -q` takes {startup}; a default live run"
        f" with a 200-a-minute token sends **{live} requests** (plus the preflight's).", width=118, break_on_hyphens=False)


# What speed_summary reads from the bench's lines (bench/bench.py's markdown()).
SPEED_FIGURES = {
    "the whole-process ratio": r"Whole process: \*\*([\d.]+x)\*\*",
    "the start-up": r"Start-up, `[^`]+`: \*\*([\d.]+ s)\*\*",
    "the live request count": r"Live, default run against `[^`]+`: \*\*(\d+) requests\*\*",
}
# Each generated section: the file under the checkout that holds it, and its generator. The tests check every one.
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "scenarios": ("docs/scenarios.md", markdown_table),
    "options": ("docs/options.md", options_table),
    "mutants": ("docs/mutants.md", mutants_table),
    "speed": ("README.md", speed_summary),
}
# Measured sections: written only when asked (minutes of measuring), never checked against a fresh run.
MEASURED: dict[str, tuple[str, tuple[str, ...]]] = {
    "bench": ("docs/speed.md", ("bench/bench.py", "--markdown")),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.DOTALL)


def section(text: str, name: str) -> str | None:
    """The body between <!-- name:begin --> and <!-- name:end -->, or None without the markers."""
    found = _pattern(name).search(text)
    return found.group(2).rstrip("\n") if found else None


def replace_section(text: str, name: str, body: str, where: str = "the file") -> str:
    """Put body between <!-- name:begin --> and <!-- name:end -->."""
    if section(text, name) is None:
        raise SystemExit(f"{where} has no <!-- {name}:begin --> / <!-- {name}:end --> markers")
    return _pattern(name).sub(lambda match: match.group(1) + (body + "\n" if body else "") + match.group(3), text)


def generated_sections() -> dict[str, str]:
    """Every generated section's body as its generator makes it now (cheap: the tests check them all)."""
    return {name: generate() for name, (_, generate) in GENERATED.items()}


def by_file(sections: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The sections grouped by the file that holds them: {relative path: {name: body}}."""
    files: dict[str, dict[str, str]] = {}
    for name, body in sections.items():
        path = GENERATED[name][0] if name in GENERATED else MEASURED[name][0]
        files.setdefault(path, {})[name] = body
    return files


def stale(root: Path = ROOT) -> list[str]:
    """`path: name` of each generated section under root that is missing or differs from what its generator makes now."""
    found = []
    for path, sections in by_file(generated_sections()).items():
        file = root / path
        text = file.read_text(encoding="utf-8") if file.is_file() else ""
        found += [f"{path}: {name}" for name, body in sections.items() if section(text, name) != body]
    return found


def write(sections: Mapping[str, str], root: Path = ROOT) -> list[str]:
    """Rewrite the given sections in the files under root that hold them; the files changed, as relative paths."""
    changed = []
    for path, bodies in by_file(sections).items():
        file = root / path
        before = file.read_text(encoding="utf-8")
        text = before
        for name, body in bodies.items():
            text = replace_section(text, name, body, path)
        if text != before:
            file.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Rewrite every generated section in place (0), or with --check only name the stale ones (1 if any)."""
    parser = argparse.ArgumentParser(prog="python -m conformance.tools.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale generated section")
    parser.add_argument("--with-bench", action="store_true", help="also run bench/bench.py (minutes) and write its figures into docs/speed.md")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for entry in found:
            print(f"stale: {entry} (run `python -m conformance.tools.docs`)")
        return 1 if found else 0
    changed = []
    if args.with_bench:
        # First, so that the sections drawn from the bench's figures (the README's) are made from the new ones.
        _, command = MEASURED["bench"]
        changed += write({"bench": command_output(sys.executable, *command)})
    changed += write(generated_sections())
    for path in dict.fromkeys(changed):
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
