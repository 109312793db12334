"""A segment job that finishes starts the export planned after it (or gives the plan up): a
finish hook (jobs.kinds), which ExportsConfig.ready registers; the jobs app knows nothing of
exports."""

from __future__ import annotations

from jobs.models import Job


def start_planned_export(job: Job) -> None:
    """Idempotent: the plan is claimed once (exports.services.export_plan_advance)."""
    from exports.services import export_plan_advance

    export_plan_advance(parent=job)
