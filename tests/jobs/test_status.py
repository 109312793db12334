"""AEP's statuses in our words, per kind of job (spec/aep-api.md §3.1, §3.3, §4.2, §5.2)."""

from __future__ import annotations

import pytest

from jobs.kinds import kind_of
from jobs.models import JobKind, JobStatus

S = JobStatus


@pytest.mark.parametrize(("kind", "remote", "ours"), [
    (JobKind.SEGMENT, "NEW", S.QUEUED),
    (JobKind.SEGMENT, "QUEUED", S.QUEUED),
    (JobKind.SEGMENT, "PROCESSING", S.RUNNING),
    (JobKind.SEGMENT, "SUCCEEDED", S.SUCCEEDED),
    (JobKind.SEGMENT, "FAILED", S.FAILED),
    (JobKind.SEGMENT, "CANCELLING", S.CANCELLING),
    (JobKind.SEGMENT, "CANCELLED", S.CANCELLED),
    (JobKind.EXPORT, "NEW", S.QUEUED),
    (JobKind.EXPORT, "PROCESSING", S.RUNNING),
    (JobKind.EXPORT, "SUCCEEDED", S.SUCCEEDED),
    (JobKind.EXPORT, "FAILED", S.FAILED),
    (JobKind.EXPORT, "CANCELLED", S.CANCELLED),
    (JobKind.PREVIEW, "NEW", S.QUEUED),
    (JobKind.PREVIEW, "RUNNING", S.RUNNING),
    (JobKind.PREVIEW, "RESULT_READY", S.SUCCEEDED),
    (JobKind.PREVIEW, "FAILED", S.FAILED),
    (JobKind.PREVIEW, "KILLED", S.CANCELLED),
])
def test_aep_statuses_are_normalised_per_kind(kind: str, remote: str, ours: JobStatus) -> None:
    assert kind_of(kind).normalise(remote) == ours


def test_case_and_blanks_do_not_matter() -> None:
    assert kind_of(JobKind.SEGMENT).normalise(" processing ") == S.RUNNING


@pytest.mark.parametrize(("kind", "remote"), [
    (JobKind.SEGMENT, "RESULT_READY"),  # a preview's word, not a segment job's
    (JobKind.PREVIEW, "PROCESSING"),
    (JobKind.EXPORT, "EXPLODED"),
    (JobKind.SEGMENT, ""),
    (JobKind.SEGMENT, None),
])
def test_unknown_statuses_are_none_so_the_caller_keeps_its_own(kind: str,
                                                                remote: str | None) -> None:
    assert kind_of(kind).normalise(remote) is None
