"""The differential test: every example program, compiled to DuckDB SQL and run on the fixture
tables, selects exactly the profiles the reference evaluator selects at the same ``now``.

Programs: all of tests/pql/eval/*.cases, and the syntax cases of tests/pql/cases/*.txt that
evaluate cleanly on every fixture profile. Where ``compile_segment`` is not exact, the SQL's
candidates must contain every member, and evaluating on the candidates gives the members.
``python tests/pql/test_sql_differential.py`` prints which cases fall back and why.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sqlfixture import FIXTURES, Fixture, eval_fixture  # noqa: E402
from test_eval_cases import CASES as EVAL_CASES  # noqa: E402
from test_syntax_cases import TEXT_CASES  # noqa: E402

from pql.ast import Node  # noqa: E402
from pql.errors import PQLError  # noqa: E402
from pql.evaluator import evaluate  # noqa: E402
from pql.parser import parse  # noqa: E402
from pql.sql import Compiled, compile_segment  # noqa: E402

NOW = datetime.fromisoformat(FIXTURES["now"].replace("Z", "+00:00"))

# Groups of §6 the issue asks to compile exactly, by the .cases file that exercises them.
EXACT_GROUPS = ("comparison", "strings", "nulls", "time", "chain", "maps", "arrays", "select")


# More programs for the differential test alone (no expected members): the corners of the
# compiler that the example programs do not reach. One per line; indented lines continue.
EXTRA = """
person.orders.groupBy(storeId).get("s9").isNull()
person.orders.groupBy(storeId).get("zz").isNull()
person.orders.groupBy(storeId).count() = 1
person.orders.groupBy(price).get(50).count() = 2
person.orders.groupBy(price).get("50").isNull()
person.orders.groupBy(storeId).map((K, G) => mapEntry(K, G.sum(price))).get("s1") > 50
person.orders.groupBy(storeId).map((K, G) => mapEntry(K, G.count())).get("s1") = 0
"s2" in person.orders.groupBy(storeId).keys()
person.orders.groupBy(storeId).keys() = ["s1", "s2"]
xEvent.groupBy(eventType).get("download").count() >= 3
xEvent.groupBy(eventType).get("nothing").isNull()
xEvent.groupBy(eventType).get("download").isNull()
xEvent.groupBy(eventType).count() >= 3
xEvent.groupBy(eventType).keys().count() = 1
"flight" in xEvent.groupBy(eventType).keys()
xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.count())).get("homePageView") = 0
not(xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.count())).get("homePageView") > 3)
xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.sum(commerce.order.priceTotal)))
  .get("commerce.purchases") >= 0
xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G[timestamp occurs today].count()))
  .get("homePageView") > 1
xEvent.eventType.distinct().count() >= 3
xEvent.device.model.distinct().count() = 0
xEvent.commerce.order.priceTotal.max() > 100
xEvent.commerce.order.priceTotal.sum() > 100
xEvent.commerce.order.priceTotal.average() < 50
xEvent.commerce.order.priceTotal.min() = 20
xEvent.timestamp.getYear() = 2025
xEvent.eventType.startsWith("commerce")
xEvent.eventType.isNull()
xEvent.device.isNotNull()
xEvent.productListItems.SKU = "PS"
"CASE" in xEvent.productListItems.SKU
xEvent.count() = 0
xEvent.count() < 4
xEvent[eventType = "download"].count() != 4
xEvent.sum(commerce.order.priceTotal) > 500
xEvent.average(commerce.order.priceTotal) < 100
(average X.commerce.order.priceTotal over X from xEvent) < 100
(min X.commerce.order.priceTotal over X from xEvent where X.commerce.order) = 0
xEvent[timestamp occurs this month].count() = xEvent.count()
xEvent[eventType = "download"].count() > person.birthMonth
person.orders.count() < xEvent.count()
let N = xEvent.count() in N > 3 and N < 7
forall O from person.orders: O.price > 20
forall E from xEvent: E.timestamp occurs this year
exists O from person.orders: O.storeId = "s1", E from xEvent: E.eventType = "flight"
xEvent[^.homeAddress.countryISO = "US" and eventType = "download"]
xEvent[eventType = ^.person.gender]
xEvent[productListItems[SKU = "PS" or ^^.person.gender = "female"]].count() = 1
chain(xEvent, timestamp, [A: WHAT(eventType = "download") WHEN(this month),
  B: WHAT(eventType = "download") COUNT(2)])
chain(xEvent, timestamp, [A: WHAT(^.homeAddress.countryISO = "US")])
chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView") WHEN(today) COUNT(2),
  B: WHAT(eventType = "web.pageView")])
chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView") COUNT(0)])
chain(xEvent, timestamp, [A: WHAT(eventType = "download") COUNT(0),
  B: WHAT(eventType = "download") COUNT(2)])
not(chain(xEvent, timestamp, [A: WHAT(eventType = "download"),
  B: WHAT(eventType = "download") WHERE(contentType = "video")]))
person.name.firstName.equals("alice", "CAROL", false)
person.name.firstName.contains("")
person.name.lastName.doesNotContain("x")
person.favoriteColors.contains("re")
person.favoriteColors like "r%"
person.orders.storeId.distinct() = ["s1", "s2"]
person.favoriteColors.head() = person.favoriteColors.distinct().head()
person.orders.topN(price, 2).sum(price) = 170
person.orders.bottomN(price, 0).count() = 0
person.orders[price > 40].storeId = "s2"
person.orders.exists(price > ^.loyalty.points)
person.orders.filter(price > 20).isNull()
person.orders[price > 1000].isNull()
identityMap.get("ECID").primary = true
identityMap.ECID.id = "ecid-1"
identityMap.values().count() >= 1
segmentMembership.ups.get("seg-gold").status = "realized"
identityMap.get("ECID").id.count() = 2
_repo.modifyDate occurs between date(2019, 4, 1) and now
product.saleDate occurs on today
product.saleDate occurs < 1 day from now
person.birthDate occurs from date(2000, 1, 1)
person.birthDate occurs on person.birthDate
person.birthDate occurs after person.birthDate
select A from xEvent, B from xEvent where B.timestamp occurs on A.timestamp and A._id != B._id
select A from xEvent, B from xEvent where B.timestamp occurs = 1 day after A.timestamp
select A from xEvent, B from xEvent where B.timestamp occurs != 1 day before A.timestamp
select A from xEvent, B from xEvent where B.timestamp occurs between A.timestamp and A.timestamp
select A from xEvent, B from xEvent where B.timestamp occurs > 1 month after A.timestamp
select A from xEvent, B from xEvent where B.timestamp occurs >= 1 year before A.timestamp
person.birthYear / person.birthMonth > 300
person.birthYear % -7 = -3
-person.birthYear % 7 = 1
if(xEvent.count() > 3, "many", "few") = "many"
if(person.gender = "female", person.birthYear, 0) > 1990
currentYear() - person.birthYear in [26, 41]
person.birthYear in [1985, "2001"]
person.name.firstName in [1, "Alice"]
loyalty.points = "1200"
xEvent._experience.analytics.endUser.firstWeb.webPageDetails.isHomePage = true
person.favoriteColors.intersection(person.favoriteColors).count() = 2
person.eatenFoods.subsetOf(["pizza", "sushi", "tacos"])
person.favoriteCities.supersetOf([])
xEvent[productListItems.exists(priceTotal > 500)]
xEvent[productListItems[SKU = "PS"].count() = 1]
xEvent.productListItems.priceTotal.sum() > 0
xEvent.productListItems.priceTotal.sum() > 600
xEvent.productListItems.priceTotal.max() = 999
xEvent.productListItems.priceTotal.average() < 600
xEvent.productListItems.SKU.distinct().count() >= 2
xEvent.productListItems.SKU.count() = 2
xEvent.productListItems.distinct().count() = 2
xEvent[eventType = "commerce.purchases"].productListItems.SKU.count() = 2
(sum X from person.orders.price) > 100
(max O.price over O from person.orders where O.storeId = "s1") = 75
xEvent[timestamp occurs < 2 months before now].count() >= 2
xEvent[timestamp occurs >= 1 decade before now]
xEvent.timestamp occurs next week
xEvent.tag matches "^(week|today)"
select X from xEvent where X.tag.regexGroup("(\\\\w+)Start", 1) = "week"
person.name.firstName.regexGroup("^(\\\\w)", 1) = "A"
(select X from xEvent where X.eventType = "download").count() = 4
(select O from person.orders where O.price > 20).count() = 2
select I from xEvent.productListItems where I.SKU = "PS"
(select A from xEvent where A.eventType = "flight", B from xEvent).count() = 1
(select A from xEvent where A.eventType = "flight", B from xEvent).isNull()
select I from xEvent.productListItems where I.SKU = "PS"
person.orders.map((O) => O.price * 2).max() = 240
person.orders.map((O) => O.storeId = "s1").count() = 3
person.orders[storeId = ^.homeAddress.city].count() = 0
select D from xEvent.device where D.model = "iPhone", E from xEvent where E.device = D
exists D from xEvent.device: D.model = "Pixel"
forall O from person.orders: O.price > 20 and O.storeId != "s9"
select C from person.favoriteCities
(select C from person.favoriteCities).isNull()
(select C from person.favoriteCities where C = "Paris").isNull()
(select C from person.favoriteCities where C = "Paris").count() = 0
select N from person.name where N.firstName = "Alice"
(Profile, Events) => (select E from Events where E.eventType = "flight")
  and Profile.person.gender = "male"
"""


@dataclass(frozen=True)
class Program:
    id: str
    text: str
    now: datetime


@cache
def fixture() -> Fixture:
    return eval_fixture()


def programs() -> list[Program]:
    out = [Program(f"eval/{case.where.split('.')[0]}/{case.name}", case.text, case.now)
           for case in EVAL_CASES]  # fmt: skip
    for case in TEXT_CASES:
        out.append(Program(f"syntax/{case.id}", case.fields["text"], NOW))
    texts: list[str] = []
    for line in EXTRA.strip().splitlines():
        if line.startswith(" "):
            texts[-1] += "\n" + line.strip()
        else:
            texts.append(line)
    out += [Program(f"extra/{number}", text, NOW) for number, text in enumerate(texts)]
    return out


PROGRAMS = programs()


def reference_members(node: Node, now: datetime, among: set[str] | None = None) -> set[str]:
    entries = fixture().entries
    return {
        pid
        for pid, entry in entries.items()
        if (among is None or pid in among)
        and evaluate(node, entry["profile"], entry["events"], now=now)
    }


def run(compiled: Compiled) -> set[str]:
    rows = fixture().con.execute(compiled.sql).fetchall()
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)), "the SELECT returned a profile twice"
    return set(ids)


def check(program: Program) -> Compiled | None:
    """Compare SQL and evaluator; None when the evaluator itself cannot run the program."""
    try:
        node = parse(program.text)
        expected = reference_members(node, program.now)
    except PQLError:
        return None
    compiled = compile_segment(node, now=program.now, schema=fixture().schema)
    found = run(compiled)
    if compiled.exact:
        assert (sorted(found - expected), sorted(expected - found)) == ([], []), compiled.sql
    else:
        assert expected <= found, f"the candidates miss members\n{compiled.sql}"
        assert reference_members(node, program.now, among=found) == expected
    return compiled


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.id for p in PROGRAMS])
def test_sql_selects_the_same_profiles_as_the_evaluator(program: Program) -> None:
    check(program)


def coverage() -> tuple[Counter[str], dict[str, tuple[str, ...]]]:
    counts: Counter[str] = Counter()
    fallbacks: dict[str, tuple[str, ...]] = {}
    for program in PROGRAMS:
        compiled = check(program)
        group = program.id.split("/")[0]
        if compiled is None:
            counts[f"{group} skipped (evaluator error)"] += 1
        elif compiled.exact:
            counts[f"{group} exact"] += 1
        else:
            counts[f"{group} fallback"] += 1
            fallbacks[program.id] = compiled.fallbacks
    return counts, fallbacks


def test_the_issue_groups_compile_exactly() -> None:
    _, fallbacks = coverage()
    assert not any("internal error" in why for reasons in fallbacks.values() for why in reasons)
    missing = {
        name: why for name, why in fallbacks.items()
        if name.startswith("eval/") and name.split("/")[1] in EXACT_GROUPS
    }  # fmt: skip
    # Every example program of the issue's groups compiles exactly now.
    allowed: set[str] = set()
    unexpected = {
        name: why for name, why in missing.items()
        if not any(word in reason for reason in why for word in allowed)
    }  # fmt: skip
    assert unexpected == {}


if __name__ == "__main__":
    counts, fallbacks = coverage()
    for key in sorted(counts):
        print(f"{key}: {counts[key]}")
    for name, why in sorted(fallbacks.items()):
        print(f"  {name}: {', '.join(why)}")
