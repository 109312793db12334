"""Properties of evaluate over generated data: it answers a bool or raises a PQLError, never a
raw Python exception; explain agrees with it; trees from pql/json evaluate the same."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_eval_cases import CASES, PROFILES

import pql
from pql import PQLError, evaluate, explain

TEXTS = sorted({case.text for case in CASES})
NODES = [pql.parse(text) for text in TEXTS]
NOW = CASES[0].now

# Field names the example programs use, so generated profiles hit them.
NAMES = sorted(
    {
        "homeAddress", "countryISO", "stateProvinceISO", "city", "country", "countryCode",
        "workAddress", "workEmail", "address", "person", "name", "firstName", "lastName",
        "birthYear", "birthMonth", "birthDay", "birthDate", "favoriteColors", "favoriteCities",
        "visitedCities", "orders", "price", "storeId", "identityMap", "ECID", "id",
        "segmentMembership", "ups", "status", "_repo", "modifyDate", "lastModifiedDate",
        "loyalty", "points", "product", "inventory", "timestamp", "eventType", "commerce",
        "order", "priceTotal", "currencyCode", "purchaseId", "metrics", "abandons", "value",
        "productListItems", "SKU", "tag", "_id", "device", "model", "externalSegmentMapProperty",
        "stringProperty",
    }
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["US", "CA", "", "2026-03-15T10:00:00Z", "2024-02-29", "x", "red", "s1"]),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=4),
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(NAMES), values, max_size=6)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(profile=documents, events=st.lists(documents, max_size=3))
def test_evaluate_answers_a_bool_or_raises_a_pql_error(
    profile: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    for node in NODES:
        try:
            result = evaluate(node, profile, events, now=NOW)
        except PQLError:
            continue
        assert isinstance(result, bool)


def test_explain_agrees_with_evaluate_on_every_case_and_profile() -> None:
    for case in CASES:
        node = pql.parse(case.text)
        for entry in PROFILES.values():
            expected = evaluate(node, entry["profile"], entry["events"], now=case.now)
            got = explain(node, entry["profile"], entry["events"], now=case.now).verdict
            assert got is expected, (case.name, entry["id"])


def test_trees_from_pql_json_select_the_same_members() -> None:
    for case in CASES:
        node = pql.from_json(pql.to_json(pql.parse(case.text)))
        members = {
            pid
            for pid, entry in PROFILES.items()
            if evaluate(node, entry["profile"], entry["events"], now=case.now)
        }
        assert members == case.members, case.name
