"""Why is this profile in or out: the value of every sub-expression, condition by condition.

``explain(node, profile, events, *, now)`` evaluates ``node`` with ``pql.evaluator`` and records
the value of each sub-expression evaluated for the profile itself: every condition (with a
verdict, shown as a tick or a cross) and every operand. Inside a per-item evaluation (the
``where`` of a select, a filter's predicate, a chain step) the items are not listed one by one;
the enclosing node reports the result (e.g. the matching events).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pql import ast
from pql.evaluator import Evaluator, MapEntry, StepResult
from pql.printer import to_text
from pql.values import parse_timestamp, truthy

__all__ = ["Explanation", "explain"]

TICK = "✓"
CROSS = "✗"
OPERAND = "·"

# Nodes whose list value is the items that matched.
_SELECTIONS = (ast.Select, ast.Filter)
# Nodes whose value is a condition even when it is not a boolean (a select in boolean position
# is "true iff non-empty").
_CONNECTIVES = (ast.And, ast.Or, ast.Not)


@dataclass(frozen=True)
class Explanation:
    """One sub-expression and its value for the profile.

    ``text`` is the canonical PQL text (``pql.to_text``), ``value`` the raw value, ``shown``
    the value as words, ``verdict`` true/false for a condition and None for a plain operand,
    ``span`` the node's character offsets in the parsed text (None for trees built by hand).
    """

    text: str
    value: Any
    shown: str
    verdict: bool | None
    children: tuple[Explanation, ...]
    span: tuple[int, int] | None = None

    def walk(self) -> list[Explanation]:
        """This explanation and all below it, depth first: the flat list for a table."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def conditions(self) -> list[Explanation]:
        """Only the entries with a verdict."""
        return [entry for entry in self.walk() if entry.verdict is not None]

    def render(self, indent: int = 0) -> str:
        """Plain text, one line per entry: ``✓ condition``, ``✗ condition``, ``· operand = v``."""
        pad = "  " * indent
        if self.verdict is None:
            line = f"{pad}{OPERAND} {self.text} = {self.shown}"
        else:
            mark = TICK if self.verdict else CROSS
            line = f"{pad}{mark} {self.text}"
            if not isinstance(self.value, bool):
                line += f"  ({self.shown})"
        return "\n".join([line, *(child.render(indent + 1) for child in self.children)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the UI."""
        return {
            "text": self.text,
            "value": self.shown,
            "verdict": self.verdict,
            "span": list(self.span) if self.span else None,
            "children": [child.to_dict() for child in self.children],
        }


def explain(
    node: ast.Node,
    profile: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    memberships: Mapping[str, str] | None = None,
) -> Explanation:
    """The evaluation of ``node`` for one profile, as a tree of ``Explanation``s whose root's
    verdict is ``evaluate(...)``'s answer. ``and``/``or`` are not short-circuited, so every
    condition shows its own verdict."""
    evaluator = Evaluator(profile, events, now=now, memberships=memberships)
    root: list[Any] = []
    evaluator.frames = [root]
    evaluator.value(node, evaluator.root_scope())
    (record,) = root
    return _build(record, parent=None, is_root=True)


def _build(
    record: tuple[Any, Any, list[Any]], parent: ast.Node | None, is_root: bool
) -> Explanation:
    node, value, children = record
    built = tuple(
        _build(child, node, is_root=False) for child in children if not _hidden(child[0], node)
    )
    return Explanation(
        text=to_text(node),
        value=value,
        shown=_matches(value) if isinstance(node, _SELECTIONS) else show(value),
        verdict=_verdict(node, value, parent, is_root),
        children=built,
        span=node.span,
    )


def _hidden(child: ast.Node, parent: ast.Node) -> bool:
    # A literal reads the same in its parent's text; a path is one operand
    # (homeAddress.countryISO does not list homeAddress separately).
    if isinstance(child, ast.Literal):
        return True
    return isinstance(parent, ast.Field) and isinstance(child, ast.Field | ast.Param | ast.Var)


def _verdict(node: ast.Node, value: Any, parent: ast.Node | None, is_root: bool) -> bool | None:
    if isinstance(value, bool | StepResult):
        return bool(value)
    if is_root or isinstance(parent, _CONNECTIVES):
        return truthy(value)  # §1: a value in boolean position
    return None


def _step_text(result: StepResult) -> str:
    """``3 of 5 events needed``, ``matched 2026-03-15T10:00:00Z`` …; a step timed from an
    earlier one says from which time (``timed from A at …``), and a step whose later time
    was the one that worked says so (``… used``)."""
    return _step_matches_text(result) + _step_times_text(result)


def _step_matches_text(result: StepResult) -> str:
    count = len(result.matched)
    since = f" after {show(result.after)}" if result.after is not None else ""
    if result.needed > 1:
        return f"{count} matching event{'' if count == 1 else 's'}{since}, {result.needed} needed"
    if not count:
        return f"no matching event{since}"
    return f"first match at {show(result.matched[0])}" + (f" ({count} in all)" if count > 1 else "")


def _step_times_text(result: StepResult) -> str:
    text = ""
    if result.at is not None and result.at != result.matched[result.needed - 1]:
        text += f", the one at {show(result.at)} used"
    if result.anchors:
        text += ", timed from " + " and ".join(
            f"{label} at {show(moment)}" for label, moment in result.anchors
        )
        if not result.satisfied and result.tries > 1:
            others = result.tries - 1
            names = " and ".join(label for label, _ in result.anchors)
            text += f" ({others} other time{'' if others == 1 else 's'} of {names} tried too)"
    return text


def _matches(value: Any, limit: int = 3) -> str:
    """``2 matches (2026-03-10T10:00:00Z, 2026-03-14T15:00:00Z)`` for matching events."""
    if not isinstance(value, list):
        return show(value)
    if not value:
        return "no match"
    text = f"{len(value)} match" + ("" if len(value) == 1 else "es")
    times = [parse_timestamp(item.get("timestamp")) for item in value if isinstance(item, dict)]
    shown = [show(moment) for moment in times[:limit] if moment is not None]
    if shown and len(shown) == min(len(value), limit):
        text += " (" + ", ".join(shown) + (", …" if len(value) > limit else "") + ")"
    return text


def show(value: Any, limit: int = 5) -> str:
    """A value as a marketer reads it."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, StepResult):
        return _step_text(value)
    if isinstance(value, MapEntry):
        return f"{show(value.key)}: {show(value.value)}"
    if isinstance(value, list):
        if not value:
            return "an empty list"
        if len(value) <= limit and not any(isinstance(item, list | dict) for item in value):
            return "[" + ", ".join(show(item) for item in value) + "]"
        noun = "item" if len(value) == 1 else "items"
        return f"a list of {len(value)} {noun}"
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        keys = ", ".join(str(key) for key in list(value)[:limit])
        more = ", …" if len(value) > limit else ""
        return f"an object with {keys}{more}"
    return str(value)
