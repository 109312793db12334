"""Estimates: the documented sample sizes, progressive refinement, and honest intervals."""

from __future__ import annotations

import pytest

import pql
from engine.estimate import BUCKETS, SamplePlan, estimate_progressively, sample_plan, scale
from engine.segments import segment_members
from tests.engine.conftest import DemoStore

pytestmark = pytest.mark.django_db

DEFINITIONS = [
    'homeAddress.countryCode = "US"',
    'select X from xEvent where X.eventType = "commerce.productListAdds"',
    'loyalty.points > 1000 and xEvent[eventType = "commerce.purchases"].count() >= 1',
]


@pytest.mark.parametrize(("total", "buckets"), [
    (999_999, BUCKETS),            # under 1M: the whole store
    (1_000_000, BUCKETS),          # 1M sample of 1M
    (4_000_000, 256),              # 1M of 4M: a quarter of the buckets
    (20_000_000, 52),              # 1M of 20M
    (40_000_000, 52),              # 5 % above 20M
    (0, BUCKETS),
])
def test_sample_sizes_follow_adobes_documentation(total: int, buckets: int) -> None:
    assert sample_plan(total).buckets == buckets


def test_standard_error_of_a_proportion_without_replacement() -> None:
    assert scale(50, 100, 1_000) == (500, 47)  # sqrt(.25/100 * 900/999) * 1000 = 47.5
    assert scale(0, 100, 1_000) == (0, 0)
    assert scale(30, 1_000, 1_000) == (30, 0)  # everything read: no sampling error


@pytest.mark.parametrize("text", DEFINITIONS)
def test_a_small_store_is_read_whole_and_the_estimate_is_exact(demo_store: DemoStore,
                                                               text: str) -> None:
    node = pql.parse(text)
    truth = len(segment_members(demo_store.con, node, now=demo_store.now).members)
    steps = list(estimate_progressively(demo_store.con, node, now=demo_store.now, steps=4))

    assert [s.done for s in steps] == [False, False, False, True]
    assert [s.state for s in steps][-1] == "RESULT_READY"
    reads = [s.profiles_read for s in steps]
    assert reads == sorted(reads) and reads[-1] == len(demo_store.profiles)
    final = steps[-1]
    assert (final.estimated_size, final.standard_error, final.low, final.high) == (
        truth, 0, truth, truth)
    assert final.profiles_matched == truth
    assert final.exact


@pytest.mark.parametrize("text", DEFINITIONS)
def test_a_sample_estimates_within_its_interval(demo_store: DemoStore, text: str) -> None:
    """Half the buckets, scaled: the truth lies within the 95 % interval (deterministic
    buckets, so this cannot flake), and the sample really is half the store."""
    node = pql.parse(text)
    truth = len(segment_members(demo_store.con, node, now=demo_store.now).members)
    total = len(demo_store.profiles)
    plan = SamplePlan(total, BUCKETS // 2)

    final = list(estimate_progressively(demo_store.con, node, now=demo_store.now,
                                        plan=plan))[-1]

    assert final.done
    assert 0.35 * total < final.profiles_read < 0.65 * total
    assert final.rows_to_read == final.profiles_read
    assert final.standard_error > 0
    assert final.low <= truth <= final.high, (final, truth)


def test_progressive_estimates_converge(demo_store: DemoStore) -> None:
    node = pql.parse(DEFINITIONS[0])
    steps = list(estimate_progressively(demo_store.con, node, now=demo_store.now, steps=8))
    errors = [step.standard_error for step in steps]
    assert errors[-1] == 0
    assert errors[0] > errors[-2] > 0  # the interval narrows as more profiles are read
    assert all(step.total_rows == len(demo_store.profiles) for step in steps)


def test_namespace_counts_come_with_the_steps(demo_store: DemoStore) -> None:
    node = pql.parse(DEFINITIONS[1])
    members = segment_members(demo_store.con, node, now=demo_store.now).members
    expected: dict[str, int] = {}
    for profile_id in members:
        for namespace in demo_store.profiles[profile_id].profile["identityMap"] or {}:
            expected[namespace] = expected.get(namespace, 0) + 1

    final = list(estimate_progressively(demo_store.con, node, now=demo_store.now,
                                        namespaces=True))[-1]

    assert dict(final.namespaces) == expected
    assert final.profiles_matched == len(members)
