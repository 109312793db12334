from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def estimate_interval(metrics: dict[str, Any] | None) -> dict[str, int] | None:
    """The 95 % interval of an estimate: estimatedSize ± 1.96 standard errors, floored at the
    matches already seen (AEP reports the standard error, not the bounds)."""
    if not metrics or metrics.get("estimatedSize") is None or metrics.get("standardError") is None:
        return None
    size = float(metrics["estimatedSize"])
    margin = 1.96 * float(metrics["standardError"])
    low = max(size - margin, float(metrics.get("profilesMatchedSoFar") or 0), 0.0)
    return {"low": round(low), "high": round(size + margin), "margin": round(margin)}


@register.simple_tag
def estimate_exact(job: Any) -> bool:
    """A finished estimate that read every profile of the store is an exact count."""
    if not job.is_finished:
        return False
    from segments.services import estimate_of

    estimate = estimate_of(job)
    return bool(estimate and estimate["exact"])
