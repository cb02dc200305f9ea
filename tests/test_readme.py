"""The README's generated sections match what their generators produce now."""
from __future__ import annotations

from conformance.tools.docs import README, generated_sections, section


def test_generated_sections_are_current() -> None:
    """Scenarios and options in the README are regenerated, not written twice: run `python -m conformance.tools.docs`."""
    text = README.read_text(encoding="utf-8")
    for name, body in generated_sections().items():
        assert section(text, name) == body, f"README.md's {name} section is stale: run `python -m conformance.tools.docs`"
