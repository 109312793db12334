"""Random PQL definitions over a schema, for holding the checker to the evaluator and the
compiler (tests/engine/test_check_agreement.py).

The definitions are well-formed (most parse) but deliberately often ill-typed: fields of every
type meet every operator, method and time window, inside events, selects, chains, list
methods and quantifiers. A seeded ``random.Random`` makes every run the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pql.schema import Schema

LITERALS = (
    "5", "0", "2.5", "-3", '"US"', '"5"', '"true"', '"2026-01-01"', '"2026-10-05T10:00:00Z"',
    "true", "false", "[1, 2]", '["US", "FR"]', "date(2026, 1, 1)", '"J%"', '""',
)  # fmt: skip
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
WINDOWS = (
    "<= 30 days before now", "< 7 days before today", "> 1 years before now", "this month",
    "last week", "today", "before now", "after date(2026, 1, 1)",
    "between date(2026, 1, 1) and date(2026, 6, 1)", "= 3 days before now",
    "on date(2026, 10, 5)", "< 5000 years before now",
)  # fmt: skip
TEXT_TESTS = (
    'startsWith("J")', 'startsWith("j", false)', 'contains("son")', 'endsWith("org")',
    'equals("US", "FR")', 'notEqualTo("x")', 'matches("^[A-Z]")', 'doesNotContain("a")',
    'matches("(")', 'startsWith(5)', 'contains("a", "b")',
)  # fmt: skip
LIST_METHODS = (
    "count()", "distinct()", "head()", 'includes("US")', "includes(5)",
    'intersects(["a", "b"])', 'subsetOf(["a"])', "supersetOf([1])", 'intersection(["a"])',
    'intersects("a")',
)  # fmt: skip
OTHER_METHODS = (
    "isNull()", "isNotNull()", "getYear()", "getMonth()", "getDayOfMonth()", "keys()",
    "values()", 'get("ECID")', 'get("Email")', 'regexGroup("([0-9]+)", 1)',
    "topN(priceTotal, 2)", "bottomN(quantity, 1)", "groupBy(eventType).keys()",
    'groupBy(eventType).map((K, G) => mapEntry(K, G.count())).get("commerce.purchases")',
    "map(priceTotal)", "filter(priceTotal > 5)", 'get("ECID").id', "keys().count()",
)  # fmt: skip
PROFILE_VALUES = (
    'identityMap.get("ECID").id', "identityMap.keys()", "identityMap.Email.id",
    "$1.homeAddress.countryCode", "xEvent.productListItems.priceTotal",
    "(let S = (sum X.commerce.order.priceTotal over X from xEvent) in S)",
)  # fmt: skip
ITEM_FIELDS = ("SKU", "priceTotal", "quantity", "name", "nosuch")
ITEM_TESTS = ('SKU = "SKU-1"', "priceTotal > 10", "quantity", "nosuch = 1", "SKU > 3")
NESTED_TESTS = (
    'SKU = "x"', '^.eventType = "commerce.purchases"', '^^.homeAddress.countryCode = "US"',
    "priceTotal > 10", "^^^.x = 1",
)  # fmt: skip
MISSPELT = ("nosuch.field", "homeAdress.countryCode", "A")


@dataclass(frozen=True)
class Context:
    """Where an expression is written: on the profile or an event (the implicit context), with
    the select variables in scope (name → "event" or "item")."""

    kind: str = "profile"
    variables: dict[str, str] = field(default_factory=dict)


PROFILE = Context()
EVENT = Context("event")


class Generator:
    def __init__(self, seed: int, schema: Schema) -> None:
        self.random = random.Random(seed)
        self.profile_paths = sorted(path for path in schema.profile if "*" not in path)
        self.event_paths = sorted(path for path in schema.event if "*" not in path)

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return self.random.choice(options)

    def definition(self) -> str:
        return self.boolean(PROFILE, self.random.randint(1, 4))

    def path(self, context: Context) -> str:
        chance = self.random.random
        if context.variables and chance() < 0.6:
            name, kind = self.random.choice(sorted(context.variables.items()))
            if kind == "item":
                return name if chance() < 0.3 else f"{name}.{self.pick(ITEM_FIELDS)}"
            paths = self.event_paths if kind == "event" else self.profile_paths
            return f"{name}.{self.pick(paths)}" if chance() < 0.9 else name
        if chance() < 0.05:
            return self.pick(MISSPELT)
        if context.kind == "event":
            return self.pick(self.event_paths)
        if chance() < 0.25:
            return "xEvent." + self.pick(self.event_paths)
        return self.pick(self.profile_paths)

    def value(self, context: Context, depth: int) -> str:
        roll = self.random.random()
        if depth <= 0 or roll < 0.45:
            return self.path(context) if self.random.random() < 0.7 else self.pick(LITERALS)
        inner = depth - 1
        if roll < 0.6:
            methods = LIST_METHODS + OTHER_METHODS
            return f"{self.value(context, inner)}.{self.pick(methods)}"
        if roll < 0.68:
            op = self.pick(["+", "-", "*", "/"])
            return f"({self.value(context, inner)} {op} {self.value(context, inner)})"
        if roll < 0.75:
            return self.pick(["currentYear()", "currentMonth()", "date(2026, 2, 30)",
                              "date(2026, 3, 1)"])
        if roll < 0.85:
            aggregate = self.pick(["sum", "average", "min", "max"])
            if context.kind != "profile":
                return f"productListItems.{aggregate}({self.pick(ITEM_FIELDS + ('',))})"
            source = self.pick(["xEvent", 'xEvent[eventType = "commerce.purchases"]'])
            return f"{source}.{aggregate}({self.pick([*self.event_paths, ''])})"
        if roll < 0.88 and context.kind == "profile":
            return self.pick(PROFILE_VALUES)
        if roll < 0.92 and context.kind == "profile":
            aggregate = self.pick(["sum", "average", "min", "max"])
            return f"({aggregate} X.{self.pick(self.event_paths)} over X from xEvent)"
        return (f"if({self.boolean(context, inner)}, {self.value(context, inner)}, "
                f"{self.value(context, inner)})")

    def boolean(self, context: Context, depth: int) -> str:  # noqa: C901 - one table of forms
        roll = self.random.random() * (0.5 if depth <= 0 else 1)
        inner = depth - 1
        if roll < 0.2:
            op = self.pick(COMPARISONS)
            return f"{self.value(context, inner)} {op} {self.value(context, inner)}"
        if roll < 0.27:
            return f"{self.value(context, inner)}.{self.pick(TEXT_TESTS)}"
        if roll < 0.32:
            lists = ['["US", "FR"]', "[1, 2, 3]", '"US"']
            op = self.pick(["in", "notIn"])
            return f"{self.value(context, inner)} {op} {self.pick(lists)}"
        if roll < 0.36:
            return f'{self.value(context, inner)} like "{self.pick(["J%", "%son", "_a%"])}"'
        if roll < 0.43:
            return f"{self.value(context, inner)} occurs {self.pick(WINDOWS)}"
        if roll < 0.47:
            return self.path(context)
        if roll < 0.5:
            return f"{self.value(context, inner)}.{self.pick(['isNull()', 'isNotNull()'])}"
        if roll < 0.58:
            op = self.pick(["and", "or"])
            return f"({self.boolean(context, inner)} {op} {self.boolean(context, inner)})"
        if roll < 0.62:
            return f"not({self.boolean(context, inner)})"
        if context.kind == "profile" and not context.variables:
            return self.profile_boolean(roll, inner)
        if context.kind == "event" and roll < 0.8:
            return f"productListItems.exists({self.pick(ITEM_TESTS)})"
        return f"{self.value(context, inner)} {self.pick(COMPARISONS)} {self.pick(LITERALS)}"

    def profile_boolean(self, roll: float, inner: int) -> str:
        """Conditions over the events, written where the profile is the context."""
        with_x = Context("profile", {"X": "event"})
        if roll < 0.72:
            return f"xEvent[{self.boolean(EVENT, inner)}]"
        if roll < 0.8:
            return f"select X from xEvent where {self.boolean(with_x, inner)}"
        if roll < 0.86:
            return self.chain(inner)
        if roll < 0.9:
            return f"xEvent.exists({self.boolean(EVENT, inner)})"
        if roll < 0.93:
            return f'inSegment("{self.pick(["seg-1", "nope"])}")'
        if roll < 0.95:
            quantifier = self.pick(["forall", "exists"])
            return f"({quantifier} X from xEvent: {self.boolean(with_x, inner)})"
        if roll < 0.97:
            return f"xEvent[productListItems[{self.pick(NESTED_TESTS)}]]"
        with_items = Context("profile", {"X": "event", "I": "item"})
        return ("select X from xEvent where X.productListItems, I from X.productListItems "
                f"where {self.boolean(with_items, inner)}")

    def chain(self, inner: int) -> str:
        steps = []
        labels = ["A", "B", "C"][: self.random.randint(1, 3)]
        for index, label in enumerate(labels):
            step = f"{label}: WHAT({self.boolean(EVENT, inner)})"
            if self.random.random() < 0.5:
                windows = list(WINDOWS)
                if index:  # timed from an earlier step, or meaninglessly from a later one
                    windows += [f"<= 7 days after {labels[index - 1]}", "before A", "after C"]
                step += f" WHEN({self.pick(windows)})"
            if self.random.random() < 0.2:
                step += f" COUNT({self.random.randint(0, 3)})"
            steps.append(step)
        return f"chain(xEvent, timestamp, [{', '.join(steps)}])"
