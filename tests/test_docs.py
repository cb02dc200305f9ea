"""The documentation: README.md is a front page, docs/ holds the rest; every generated table is current and every link and named path exists."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conformance.tools.docs import DOCS, GENERATED, MEASURED, README, ROOT, generated_sections, main, section, stale, write

FRONT_PAGE_BYTES = 16 * 1024
PAGES = [README, *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
# [text](target) outside code; images too. Targets with a scheme (https:, mailto:) are not files of the repository.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MARKER = re.compile(r"^<!-- ([\w-]+):begin -->$", re.MULTILINE)
# A path of this repository named in inline code, e.g. `conformance/cases/scenarios.py` or `tests/test_mutants.py::test_x`.
NAMED_PATH = re.compile(r"`((?:conformance|tests|docs|spec|fixtures|bench|\.ci)/[\w./-]*)(?:::[^`]*)?`")
# Ways to start the tools that no longer exist: only `katapult-conformance SUB` remains (and the docs generator).
REMOVED_COMMANDS = re.compile(r"python -m conformance\.(?!tools\.docs\b)[\w.]+|\bkatapult-mock\b|\bkatapult-conformance-(?:mutants|drift)\b")


def prose(text: str) -> str:
    """A Markdown text without its fenced code blocks."""
    return FENCE.sub("", text)


def hand_written(text: str) -> str:
    """A Markdown text without its generated and measured sections (their text comes from the code, and is checked as such)."""
    for name in (*GENERATED, *MEASURED):
        text = re.sub(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", "", text, flags=re.DOTALL)
    return text


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (a repeated heading gets -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text(encoding="utf-8")), re.MULTILINE):
        anchor, count = slug(heading), 1
        while anchor in found:
            anchor, count = f"{slug(heading)}-{count}", count + 1
        found.add(anchor)
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a page whose file, or heading in that file, does not exist (named relative to root)."""
    problems = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        name = f"{page.relative_to(root)}: {target}"
        if not linked.exists():
            problems.append(f"{name} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{name} (no such heading in {linked.relative_to(root)})")
    return problems


def test_readme_is_a_front_page() -> None:
    """README.md is at most 16 KB: what it is, first commands, staging, the CI job, where to read more; the rest is in docs/."""
    size = len(README.read_bytes())
    assert size <= FRONT_PAGE_BYTES, f"README.md is {size} bytes, over {FRONT_PAGE_BYTES}: move a section into docs/ and link it"
    headings = re.findall(r"^## (.+)$", prose(README.read_text(encoding="utf-8")), re.MULTILINE)
    assert headings == ["First commands", "Pointing it at staging", "In CI", "Where to read more"], headings


def test_generated_sections_are_current() -> None:
    """Scenarios, options and mutants in docs/ are regenerated, not written twice: run `python -m conformance.tools.docs`."""
    assert stale() == [], f"stale generated sections {stale()}: run `python -m conformance.tools.docs`"


def test_every_section_is_where_the_generator_writes_it() -> None:
    """Each generated or measured section's markers are in the one file the generator names, and no page has markers it does not know."""
    homes = {name: path for name, (path, *_) in {**GENERATED, **MEASURED}.items()}
    for page in PAGES:
        relative = str(page.relative_to(ROOT))
        for name in MARKER.findall(page.read_text(encoding="utf-8")):
            assert homes.get(name) == relative, f"{relative} has <!-- {name}:begin --> markers, but the generator writes {name} to {homes.get(name)}"
    for name, path in homes.items():
        assert section((ROOT / path).read_text(encoding="utf-8"), name) is not None, f"{path} lost its <!-- {name}:begin/end --> markers"


def test_the_mutants_table_is_the_catalogue() -> None:
    """docs/mutants.md lists every mutant of the catalogue, with what it breaks, not a measured table that goes stale."""
    from conformance.mock.mutants import MUTANTS

    table = generated_sections()["mutants"]
    assert table.splitlines()[0] == "| mutant | deviation | promises it breaks |"
    for name, cls in MUTANTS.items():
        assert f"| `{name}` |" in table and ", ".join(cls.breaks) in table


def test_the_docs_tool_rewrites_each_section_in_its_file(tmp_path: Path) -> None:
    """A stale section is named by `stale`, rewritten by `write` in the file that holds it, and the rest of the page is kept."""
    for path, *_ in GENERATED.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    path = GENERATED["options"][0]
    current = (tmp_path / path).read_text(encoding="utf-8")
    (tmp_path / path).write_text(current.replace("| `--target-url` |", "| `--old-target-url` |"), encoding="utf-8")
    assert stale(tmp_path) == [f"{path}: options"]
    assert write(generated_sections(), tmp_path) == [path]
    assert (tmp_path / path).read_text(encoding="utf-8") == current and stale(tmp_path) == []


def test_check_mode_exits_0_when_current(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m conformance.tools.docs --check` writes nothing and exits 0 on a current checkout."""
    assert main(["--check"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page: Path) -> None:
    """Each relative link of README.md and docs/*.md names a file that exists, and a heading of it when it has a #fragment."""
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_named_paths_and_commands_are_current(page: Path) -> None:
    """Paths of the repository named in the text exist (modules moved into folders); no command form that was removed is shown."""
    text = hand_written(page.read_text(encoding="utf-8"))
    missing = sorted({path for path in NAMED_PATH.findall(prose(text)) if not (ROOT / path).exists()})
    assert missing == [], f"{page.name} names paths that do not exist: {missing}"
    assert REMOVED_COMMANDS.findall(text) == [], "use `katapult-conformance SUB`"


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    """A missing file, a missing heading and a heading GitHub would slug otherwise are told apart."""
    assert slug("Judging recorded traffic: `replay`") == "judging-recorded-traffic-replay"
    assert slug("`drift`: the fragment against the published document") == "drift-the-fragment-against-the-published-document"
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Title\n## In CI\n", encoding="utf-8")
    page.write_text("[a](other.md#in-ci) [b](other.md#gone) [c](missing.md) [d](https://example.com/x) [e](#here)\n# Here\n", encoding="utf-8")
    found = [problem.split(": ", 1)[1] for problem in broken_links(page, tmp_path)]
    assert found == ["other.md#gone (no such heading in other.md)", "missing.md (no such file)"]
    assert REMOVED_COMMANDS.findall("python -m conformance.mock --port 0; katapult-mock; python -m conformance.tools.docs")
    assert len(REMOVED_COMMANDS.findall("python -m conformance.tools.docs --check")) == 0

