from __future__ import annotations

from typing import Any

from django.db import models, transaction

from core.models import AuditEntry

# Keys whose values never reach the audit log, whatever the caller passes.
SECRET_KEYS = ("secret", "password", "token", "key")
MASK = "••••••"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: MASK if any(word in str(key).lower() for word in SECRET_KEYS) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


@transaction.atomic
def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record that `actor` (a user, or None for the system) did `action` to `obj`.

    `before` and `after` are JSON-able snapshots; values under secret-looking keys are masked.
    """
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_repr=user.get_username() if user else "system",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=_scrub(before),
        after=_scrub(after),
    )
