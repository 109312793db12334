"""Throughput of the reference evaluator (pql.evaluator.evaluate).

Generates N profiles with events (seeded, so runs are comparable), then for a few typical
definitions measures profile evaluations per second and prints them next to a named baseline:
a hand-written Python function that computes the same answer directly on the dicts. The ratio
says how much the clarity of the reference semantics costs; the SQL compiler, not this
evaluator, is what runs segments over a whole store.

    python bench/bench_pql_eval.py [--profiles 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pql.evaluator import evaluate  # noqa: E402
from pql.parser import parse  # noqa: E402
from pql.values import parse_timestamp  # noqa: E402

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
COUNTRIES = ["US", "CA", "MX", "DE", "GB", None]
EVENT_TYPES = ["web.pageView", "commerce.purchases", "addToCart", "homePageView"]

Profile = tuple[dict[str, Any], list[dict[str, Any]]]


def make_profiles(count: int, seed: int = 7) -> list[Profile]:
    rng = random.Random(seed)
    out: list[Profile] = []
    for index in range(count):
        country = rng.choice(COUNTRIES)
        profile: dict[str, Any] = {
            "_id": f"p{index}",
            "person": {"birthYear": rng.randint(1940, 2010), "gender": rng.choice(["f", "m"])},
            "workEmail": {"address": f"user{index}@{rng.choice(['a.edu', 'b.com', 'c.org'])}"},
        }
        if country is not None:
            profile["homeAddress"] = {"countryISO": country}
        events = []
        for number in range(rng.randint(0, 20)):
            stamp = NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
            event: dict[str, Any] = {
                "_id": f"p{index}-e{number}",
                "timestamp": stamp.isoformat().replace("+00:00", "Z"),
                "eventType": rng.choice(EVENT_TYPES),
            }
            if event["eventType"] == "commerce.purchases":
                event["commerce"] = {"order": {"priceTotal": rng.randint(5, 500)}}
            events.append(event)
        out.append((profile, events))
    return out


def _country_baseline(profile: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    return (profile.get("homeAddress") or {}).get("countryISO") == "US"


def _profile_baseline(profile: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    home = (profile.get("homeAddress") or {}).get("countryISO")
    year = (profile.get("person") or {}).get("birthYear")
    email = (profile.get("workEmail") or {}).get("address")
    return (
        (home in ("US", "CA"))
        and year is not None
        and year >= 1980
        and (email is not None and email.endswith(".edu"))
    )


def _recent_purchase_baseline(profile: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    start = NOW - timedelta(days=7)
    for event in events:
        if event.get("eventType") != "commerce.purchases":
            continue
        moment = parse_timestamp(event.get("timestamp"))
        if moment is not None and start < moment < NOW:
            return True
    return False


def _spend_baseline(profile: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    total = 0
    for event in events:
        price = ((event.get("commerce") or {}).get("order") or {}).get("priceTotal")
        if price is not None:
            total += price
    return total > 1000


def _chain_baseline(profile: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    stamped: list[tuple[datetime, Any]] = []
    for event in events:
        moment = parse_timestamp(event.get("timestamp"))
        if moment is not None:
            stamped.append((moment, event.get("eventType")))
    stamped.sort(key=lambda pair: pair[0])
    seen_cart: datetime | None = None
    for moment, kind in stamped:
        if kind == "addToCart" and seen_cart is None:
            seen_cart = moment
        elif kind == "commerce.purchases" and seen_cart is not None and moment > seen_cart:
            return True
    return False


DEFINITIONS: list[tuple[str, str, Callable[[dict[str, Any], list[dict[str, Any]]], bool]]] = [
    ("profile: one comparison", 'homeAddress.countryISO = "US"', _country_baseline),
    (
        "profile: three conditions",
        'homeAddress.countryISO in ["US", "CA"] and person.birthYear >= 1980 '
        'and workEmail.address.endsWith(".edu")',
        _profile_baseline,
    ),
    (
        "events: purchase in 7 days",
        'select X from xEvent where X.eventType = "commerce.purchases" '
        "and X.timestamp occurs < 7 days before now",
        _recent_purchase_baseline,
    ),
    (
        "events: total spend",
        "(sum X.commerce.order.priceTotal over X from xEvent) > 1000",
        _spend_baseline,
    ),
    (
        "events: chain cart → purchase",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart"), '
        'B: WHAT(eventType = "commerce.purchases")])',
        _chain_baseline,
    ),
]


def best_rate(run: Callable[[], int], count: int, repeat: int) -> tuple[float, int]:
    best = float("inf")
    matched = 0
    for _ in range(repeat):
        start = time.perf_counter()
        matched = run()
        best = min(best, time.perf_counter() - start)
    return count / best, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    profiles = make_profiles(args.profiles)
    events_total = sum(len(events) for _, events in profiles)
    print(f"{len(profiles)} profiles, {events_total} events, now = {NOW.isoformat()}")
    print("baseline: a hand-written Python function computing the same answer on the dicts")
    print(f"{'definition':34} {'evaluate/s':>12} {'baseline/s':>12} {'ratio':>7}  members")
    for label, text, baseline in DEFINITIONS:
        node = parse(text)

        def run_pql(node: Any = node) -> int:
            return sum(evaluate(node, p, e, now=NOW) for p, e in profiles)

        def run_baseline(baseline: Any = baseline) -> int:
            return sum(baseline(p, e) for p, e in profiles)

        pql_rate, pql_members = best_rate(run_pql, len(profiles), args.repeat)
        base_rate, base_members = best_rate(run_baseline, len(profiles), args.repeat)
        if pql_members != base_members:
            raise SystemExit(f"{label}: evaluate found {pql_members}, baseline {base_members}")
        ratio = base_rate / pql_rate
        print(f"{label:34} {pql_rate:12,.0f} {base_rate:12,.0f} {ratio:6.1f}x  {pql_members}")


if __name__ == "__main__":
    main()
