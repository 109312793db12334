"""Domain errors shared by the apps' services."""

from __future__ import annotations


class RefusedError(Exception):
    """An action a service refused, with the message for the person who asked and the form
    field it belongs to, when there is one. Each app names its own subclass."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
