"""How fast PQL text parses: parses per second of typical ~200-character definitions, one core.

Run: ``python bench/bench_pql_parse.py``. The target is 5,000 parses/s; the figure is also
shown against a baseline that needs no parser at all — ``json.loads`` of the same definitions'
pql/json, i.e. what reading the already-parsed tree costs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pql  # noqa: E402

TARGET_PER_SECOND = 5_000

# Realistic definitions of about 200 characters (spec/pql.md §6 and §7 shapes).
DEFINITIONS = [
    'homeAddress.countryISO = "US" and homeAddress.stateProvinceISO in ["CA", "OR", "WA"] and '
    'person.birthYear >= 1980 and workEmail.address like "%.edu" and person.gender = "female"',
    'homeAddress.countryISO = "US" and (select Order1 from xEvent where Order1.commerce.order, '
    "Order2 from xEvent where Order2.commerce.order and Order2.timestamp occurs < 2 weeks after "
    "Order1.timestamp)",
    'workAddress.country.equals("US", false) and CHAIN(xEvent, timestamp, [C0: '
    'WHAT(eventType.equals("directMarketing.emailClicked", false)) WHEN(today), C1: '
    'WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])',
    'xEvent[(timestamp occurs < 7 days before now) and eventType="transaction" and category = '
    '"sporting goods"].sum(commerce.order.priceTotal) > 100 and person.birthYear < 2000',
    "let S = (sum X.commerce.order.priceTotal over X from xEvent where "
    'X.commerce.order.currencyCode = "USD") in (S > 100 and S < 1000) and '
    'inSegment("e3be6d7f-1727-401f-a41e-c296b45f607a")',
]


def rate(function, arguments: list, seconds: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    """Calls per second of ``function`` over ``arguments``, best of three runs."""
    best = 0.0
    for _ in range(3):
        calls = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for argument in arguments:
                function(argument)
            calls += len(arguments)
        best = max(best, calls / elapsed)
    return best


def main() -> None:
    sizes = [len(text) for text in DEFINITIONS]
    serialized = [json.dumps(pql.to_json(pql.parse(text))) for text in DEFINITIONS]
    parses = rate(pql.parse, DEFINITIONS)
    loads = rate(json.loads, serialized)
    round_trips = rate(lambda text: pql.to_text(pql.parse(text)), DEFINITIONS)
    print(f"definitions: {len(DEFINITIONS)}, {min(sizes)}–{max(sizes)} characters")
    print(f"pql.parse:                {parses:10,.0f} /s  "
          f"({parses / TARGET_PER_SECOND:.1f}× the target of {TARGET_PER_SECOND:,}/s)")  # fmt: skip
    print(f"json.loads of pql/json:   {loads:10,.0f} /s  "
          f"(parse is {parses / loads:.2f}× the speed of json.loads)")  # fmt: skip
    print(f"parse + to_text:          {round_trips:10,.0f} /s")
    if parses < TARGET_PER_SECOND:
        sys.exit(1)


if __name__ == "__main__":
    main()
