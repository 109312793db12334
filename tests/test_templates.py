"""Template source checks: Django's {# #} comments end on their line (a comment spread over
several lines is rendered as text on the page)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_one_line_comments_end_on_their_line() -> None:
    broken = [f"{path.relative_to(ROOT)}:{number}"
              for path in sorted((ROOT / "templates").rglob("*.html"))
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if line.count("{#") > line.count("#}")]
    assert broken == [], "use {% comment %} for comments over several lines"
