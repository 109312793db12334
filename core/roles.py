"""Roles are Django groups, checked in views (never only in templates).

A user's role is the most privileged of their groups; superusers are admins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse


class Role(models.TextChoices):
    MARKETER = "Marketer", "Marketer"
    TEAM_LEAD = "Team lead", "Team lead"
    ADMIN = "Admin", "Admin"


# Least to most privileged.
ROLE_ORDER = (Role.MARKETER, Role.TEAM_LEAD, Role.ADMIN)

# Who may do what; views name the capability, not the role list.
EVERYONE = frozenset(ROLE_ORDER)
LEADS = frozenset({Role.TEAM_LEAD, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

User = AbstractBaseUser | AnonymousUser


def user_role(user: Any) -> Role | None:
    """The user's most privileged role, or None for a user with no role."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = getattr(user, "_role_names_cache", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._role_names_cache = names
    for role in reversed(ROLE_ORDER):
        if role.value in names:
            return role
    return None


def has_role(user: Any, allowed: frozenset[Role]) -> bool:
    return user_role(user) in allowed


View = TypeVar("View", bound=Callable[..., HttpResponse])


def role_required(allowed: frozenset[Role]) -> Callable[[View], View]:
    """Refuse the view (403 page) unless the signed-in user holds one of `allowed`.

    Anonymous users never get here: LoginRequiredMiddleware sends them to the login page.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, allowed):
                raise PermissionDenied(NO_ROLE_MESSAGE)
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


NO_ROLE_MESSAGE = "Your role does not give access to this page."
