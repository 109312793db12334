"""Alerts for team leads (issue 9): a job stuck past its deadline (TIMED_OUT) here; a failed
scheduled run from the schedules app, which calls alert_raise. An alert stays open — on the
Alerts page and in the banner — until someone acknowledges it; its owners may get an e-mail
through Django's e-mail backend (settings.EMAIL_BACKEND)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.services import audit_record
from jobs.models import Alert, AlertKind, Job

logger = logging.getLogger(__name__)

TIMED_OUT_TITLE = "“{label}” is stuck past its deadline"


def alert_raise(*, kind: str, key: str, title: str, message: str = "", job: Job | None = None,
                url: str = "", recipients: Sequence[str] = ()) -> Alert | None:
    """Open an alert once per `key` (None if it exists already) and e-mail `recipients` after
    the commit; a mail server that fails is logged, never the caller's problem."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(kind=kind, key=key[:200], job=job, title=title[:200],
                                         message=message, url=url[:300],
                                         emailed_to=", ".join(recipients))
    except IntegrityError:
        return None
    if recipients:
        body = f"{message}\n\nOpen it in Segment Studio: {url}".strip()

        def send() -> None:
            try:
                send_mail(f"[Segment Studio] {title}", body, None, list(recipients))
            except Exception:  # the alert is on the page whatever the mail server says
                logger.exception("alert %s: e-mail to %s failed", alert.pk, recipients)

        transaction.on_commit(send)
    return alert


def alert_acknowledge(*, alert: Alert, actor: Any) -> Alert:
    if alert.acknowledged_at is None:
        Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=actor)
        alert.refresh_from_db()
        audit_record(actor=actor, action="alert.acknowledge", obj=alert)
    return alert


def alerts_acknowledge_all(*, alerts: Any, actor: Any) -> int:
    count = 0
    for alert in alerts.open():
        alert_acknowledge(alert=alert, actor=actor)
        count += 1
    return count


def job_timed_out(job: Job) -> None:
    """A finish hook (registered in JobsConfig.ready) for TIMED_OUT jobs: an alert, once per
    job, e-mailed to whoever started it."""
    owner = job.created_by
    alert_raise(kind=AlertKind.TIMED_OUT, key=f"timed-out:{job.pk}", job=job,
                title=TIMED_OUT_TITLE.format(label=job.label or job),
                message=job.error_message,  # TIMED_OUT_MESSAGE, as its timeline says
                url=reverse("jobs:detail", args=[job.pk]),
                recipients=[owner.email] if owner and owner.email else [])
