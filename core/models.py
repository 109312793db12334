from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def filtered(
        self,
        *,
        actor: str = "",
        action: str = "",
        object_type: str = "",
        date_from: date | None = None,
        date_to: date | None = None,
    ) -> AuditEntryQuerySet:
        entries = self
        if actor:
            entries = entries.filter(actor_repr__icontains=actor)
        if action:
            entries = entries.filter(action=action)
        if object_type:
            entries = entries.filter(object_type=object_type)
        if date_from:
            entries = entries.filter(created_at__date__gte=date_from)
        if date_to:
            entries = entries.filter(created_at__date__lte=date_to)
        return entries


class AuditEntry(models.Model):
    """One thing somebody did: who, what, to which object, and the state before and after."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="audit_entries",
    )
    # Kept as text too, so the entry still says who it was after the user is deleted.
    actor_repr = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_repr or 'system'} {self.action} {self.object_repr}".strip()
