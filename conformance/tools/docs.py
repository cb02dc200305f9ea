"""Regenerate the README's generated sections (scenarios, options; with flags, the mutation score and benchmark)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from conformance.cases.scenarios import markdown_table
from conformance.setup.settings import OPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def options_table() -> str:
    """Every option with its environment variable and default."""
    lines = ["| option | env | default | what |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        default = "—" if option.default in (None, False) else f"`{option.default}`"
        lines.append(f"| `{option.flag}` | {f'`{option.env}`' if option.env else '—'} | {default} | {option.help} |")
    return "\n".join(lines)


def command_output(*command: str) -> str:
    """The stdout of a generator command run from the checkout."""
    return subprocess.run(list(command), capture_output=True, text=True, check=True, cwd=README.parent).stdout.strip()


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.DOTALL)


def section(text: str, name: str) -> str | None:
    """The body between <!-- name:begin --> and <!-- name:end -->, or None without the markers."""
    found = _pattern(name).search(text)
    return found.group(2).rstrip("\n") if found else None


def replace_section(text: str, name: str, body: str) -> str:
    """Put body between <!-- name:begin --> and <!-- name:end -->."""
    if section(text, name) is None:
        raise SystemExit(f"README.md has no <!-- {name}:begin --> / <!-- {name}:end --> markers")
    return _pattern(name).sub(lambda match: match.group(1) + body + "\n" + match.group(3), text)


def generated_sections() -> dict[str, str]:
    """The sections that are cheap to generate (checked by the tests)."""
    return {"scenarios": markdown_table(), "options": options_table()}


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md's generated sections in place."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--with-score", action="store_true", help="also run the mutant matrix and insert its score table")
    parser.add_argument("--with-bench", action="store_true", help="also run bench/bench.py and insert its figures")
    args = parser.parse_args(argv)
    sections = generated_sections()
    if args.with_score:
        sections["mutants"] = command_output(sys.executable, "-m", "conformance.tools.mutation", "--markdown")
    if args.with_bench:
        sections["bench"] = command_output(sys.executable, "bench/bench.py", "--markdown")
    text = README.read_text(encoding="utf-8")
    for name, body in sections.items():
        text = replace_section(text, name, body)
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
