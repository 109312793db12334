"""Domain errors shared by the apps' services."""

from __future__ import annotations

from django.core.exceptions import SuspiciousOperation


class RefusedError(Exception):
    """An action a service refused, with the message for the person who asked and the form
    field it belongs to, when there is one. Each app names its own subclass."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidCharacter(SuspiciousOperation):
    """A request field held a character no database column may hold (NUL). Django answers a
    SuspiciousOperation with 400 wherever it is raised; core.middleware.BadInputMiddleware
    answers it with the field's name."""

    def __init__(self, field: str) -> None:
        super().__init__(f"NUL character in the field {field!r}")
        self.field = field
