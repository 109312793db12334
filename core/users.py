"""Users and roles: admins add people with a role, change roles, deactivate and reactivate
them, and send them a link to set their password. Every change is audited.

A role is a Django group (core/roles.py). Nobody types a password for somebody else: a new
user gets an unusable password and a one-time link (Django's default token generator, served
by PasswordResetConfirmView), shown to the admin and e-mailed when the user has an address.
A link is never stored, logged or audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.timesince import timeuntil

from core.roles import ROLE_ORDER, Role
from core.services import audit_record

# What the page says after a change; {name} is the person's name.
CREATED = "{name} can now set a password with the link below."
ROLE_CHANGED = "{name} is now {role}."
DEACTIVATED = ("{name} is deactivated: they were signed out everywhere and cannot sign in "
               "until an admin reactivates them.")
ACTIVATED = "{name} is active again and can sign in with their password."
RESET_CREATED = "A new link to set a password for {name} is below."
LINK_EMAILED = "The link was e-mailed to {email}."
LINK_NOT_EMAILED = "{name} has no e-mail address: send them the link yourself."
LINK_EMAIL_FAILED = ("The e-mail to {email} could not be sent ({error}): send them the link "
                     "yourself.")
LINK_ONCE = ("The link works once and expires in {lifetime}. It is shown only now: copy it "
             "before you leave this page.")

# Refusals, each saying why.
CANNOT_DEACTIVATE_SELF = ("You cannot deactivate yourself: you would be signed out at once. "
                          "Ask another admin.")
LAST_ADMIN = ("{name} is the last active admin: make someone else an admin first, or nobody "
              "could manage users and connections.")
SUPERUSER_ROLE = ("{name} is a superuser, so an admin whatever their role here; their role "
                  "cannot be changed on this page.")
ALREADY_ACTIVE = "{name} is already active."
ALREADY_INACTIVE = "{name} is already deactivated."
INACTIVE_NO_RESET = ("{name} is deactivated: reactivate them before sending a link to set a "
                     "password.")

INVITE_SUBJECT = "Set your Segment Studio password"
INVITE_BODY = """Hello {name},

{actor} gave you a Segment Studio account as {role}. Your username is {username}.

Set your password here (the link works once, for {lifetime}):
{link}

If you did not expect this e-mail, ignore it.
"""
RESET_SUBJECT = "Set a new Segment Studio password"
RESET_BODY = """Hello {name},

{actor} sent you a link to set a new Segment Studio password. Your username is {username}.

Set your password here (the link works once, for {lifetime}):
{link}

Your current password keeps working until you set a new one. If you did not expect this
e-mail, ignore it.
"""

NO_ROLE = "No role"
# "is now a team lead", "as an admin"
WITH_ARTICLE = {Role.MARKETER: "a marketer", Role.TEAM_LEAD: "a team lead", Role.ADMIN: "an admin"}


class UserRefused(Exception):
    """A change the rules do not allow; the message says why, to the admin who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PasswordLink:
    """A one-time link to set a password, and whether it went out by e-mail."""

    url: str
    emailed_to: str
    email_error: str

    @property
    def emailed(self) -> bool:
        return bool(self.emailed_to) and not self.email_error


def display_name(user: Any) -> str:
    return str(user.get_full_name() or user.get_username())


def held_role(user: Any) -> Role | None:
    """The role a user holds, active or not (core.roles.user_role is None for the inactive).

    Reads `user.groups.all()`, so a list that prefetches the groups costs no query per row.
    """
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    for role in reversed(ROLE_ORDER):
        if role.value in names:
            return role
    return None


def link_lifetime() -> str:
    """How long a link works, in words ("3 days"), from PASSWORD_RESET_TIMEOUT."""
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT), now)


def user_search(*, query: str = "", role: str = "") -> QuerySet[AbstractUser]:
    """Users whose name, username or e-mail contains `query`, optionally of one role; active
    first, then by name. Groups are prefetched for held_role()."""
    users = get_user_model().objects.prefetch_related("groups")
    for word in query.split():
        users = users.filter(Q(username__icontains=word) | Q(first_name__icontains=word)
                             | Q(last_name__icontains=word) | Q(email__icontains=word))
    if role == Role.ADMIN:
        users = users.filter(Q(is_superuser=True) | Q(groups__name=role))
    elif role in Role.values:
        higher = ROLE_ORDER[ROLE_ORDER.index(Role(role)) + 1:]
        users = (users.filter(groups__name=role, is_superuser=False)
                 .exclude(groups__name__in=[r.value for r in higher]))
    elif role == "none":
        users = users.filter(is_superuser=False).exclude(groups__name__in=Role.values)
    return users.distinct().order_by("-is_active", "first_name", "last_name", "username")


def _snapshot(user: Any) -> dict[str, Any]:
    role = held_role(user)
    return {"username": user.get_username(), "first_name": user.first_name,
            "last_name": user.last_name, "email": user.email,
            "role": role.value if role else None, "is_active": user.is_active}


def _active_admins_except(user: Any) -> bool:
    """Whether an active admin other than `user` remains. Called inside the transaction that
    removes one, after the Admin group's row is locked, so two admins removing each other at
    once cannot both succeed."""
    others = get_user_model().objects.filter(is_active=True).exclude(pk=user.pk)
    return others.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN)).exists()


def _lock_admins() -> None:
    # Every change that can remove an admin takes this lock first (PostgreSQL; SQLite's
    # IMMEDIATE transactions already write one at a time).
    Group.objects.select_for_update().get_or_create(name=Role.ADMIN.value)


def _set_role_groups(user: Any, role: Role) -> None:
    user.groups.remove(*Group.objects.filter(name__in=Role.values).exclude(name=role.value))
    user.groups.add(Group.objects.get_or_create(name=role.value)[0])


def _password_link(user: Any, base_url: str) -> str:
    path = reverse("password_reset_confirm", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user)})
    return base_url.rstrip("/") + path


def _email_link(*, user: Any, actor: Any, link: str, subject: str, body: str) -> PasswordLink:
    if not user.email:
        return PasswordLink(url=link, emailed_to="", email_error="")
    role = held_role(user)
    text = body.format(name=display_name(user), actor=display_name(actor) if actor else "An admin",
                       role=WITH_ARTICLE[role] if role else "a user with no role",
                       username=user.get_username(), lifetime=link_lifetime(), link=link)
    try:
        send_mail(subject, text, None, [user.email])
    except OSError as error:  # smtplib's errors are OSErrors; the link is shown all the same
        return PasswordLink(url=link, emailed_to=user.email,
                            email_error=type(error).__name__)
    return PasswordLink(url=link, emailed_to=user.email, email_error="")


@transaction.atomic
def user_create(*, actor: Any, username: str, first_name: str, last_name: str, email: str,
                role: Role, base_url: str) -> tuple[AbstractUser, PasswordLink]:
    """A new active user with `role` and no usable password, and the link that sets one,
    e-mailed when they have an address. (Sent inside the transaction so that the audit row
    says whether it went; the console or an SMTP relay answers quickly, and a failure to send
    keeps the user: the admin is shown the link to pass on.)"""
    user = get_user_model()(username=username, first_name=first_name, last_name=last_name,
                            email=email)
    user.set_unusable_password()
    user.save()
    _set_role_groups(user, role)
    link = _password_link(user, base_url)
    sent = _email_link(user=user, actor=actor, link=link, subject=INVITE_SUBJECT,
                       body=INVITE_BODY)
    audit_record(actor=actor, action="user.create", obj=user, before=None,
                 after={**_snapshot(user), "link_emailed_to": sent.emailed_to or None})
    return user, sent


def _last_admin(user: Any) -> bool:
    """Whether `user` is an active admin and no other active admin remains."""
    return user.is_active and held_role(user) == Role.ADMIN and not _active_admins_except(user)


def user_role_refusal(*, user: Any) -> str:
    """Why `user`'s role cannot move away from what it is, or "" when it can."""
    if user.is_superuser:
        return SUPERUSER_ROLE.format(name=display_name(user))
    if _last_admin(user):
        return LAST_ADMIN.format(name=display_name(user))
    return ""


def user_deactivate_refusal(*, actor: Any, user: Any) -> str:
    """Why `actor` may not deactivate `user`, or "" when they may."""
    if actor is not None and actor.pk == user.pk:
        return CANNOT_DEACTIVATE_SELF
    if not user.is_active:
        return ALREADY_INACTIVE.format(name=display_name(user))
    if _last_admin(user):
        return LAST_ADMIN.format(name=display_name(user))
    return ""


@transaction.atomic
def user_set_role(*, actor: Any, user: Any, role: Role) -> Any:
    before = held_role(user)
    if before == role and not user.is_superuser:
        return user
    _lock_admins()
    refusal = user_role_refusal(user=user)
    if refusal:
        raise UserRefused(refusal)
    _set_role_groups(user, role)
    user._role_names_cache = None  # core.roles.user_role caches the groups on the instance
    audit_record(actor=actor, action="user.role", obj=user,
                 before={"role": before.value if before else None}, after={"role": role.value})
    return user


def _end_sessions(user: Any) -> int:
    """Delete the user's sessions, so that reactivating them later does not revive one.

    (Until then Django's ModelBackend already refuses an inactive user's session.) Only the
    database-backed engines can be searched; with others the backend's refusal is all.
    """
    if settings.SESSION_ENGINE not in ("django.contrib.sessions.backends.db",
                                       "django.contrib.sessions.backends.cached_db"):
        return 0
    from django.contrib.sessions.models import Session

    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            store(session.session_key).delete()
            ended += 1
    return ended


@transaction.atomic
def user_deactivate(*, actor: Any, user: Any) -> Any:
    _lock_admins()
    refusal = user_deactivate_refusal(actor=actor, user=user)
    if refusal:
        raise UserRefused(refusal)
    user.is_active = False
    user.save(update_fields=["is_active"])
    ended = _end_sessions(user)
    audit_record(actor=actor, action="user.deactivate", obj=user,
                 before={"is_active": True}, after={"is_active": False, "sessions_ended": ended})
    return user


@transaction.atomic
def user_activate(*, actor: Any, user: Any) -> Any:
    if user.is_active:
        raise UserRefused(ALREADY_ACTIVE.format(name=display_name(user)))
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(actor=actor, action="user.activate", obj=user,
                 before={"is_active": False}, after={"is_active": True})
    return user


@transaction.atomic
def user_send_password_reset(*, actor: Any, user: Any, base_url: str) -> PasswordLink:
    """A new link to set a password (their current password works until then)."""
    if not user.is_active:
        raise UserRefused(INACTIVE_NO_RESET.format(name=display_name(user)))
    link = _password_link(user, base_url)
    sent = _email_link(user=user, actor=actor, link=link, subject=RESET_SUBJECT,
                       body=RESET_BODY)
    audit_record(actor=actor, action="user.password_reset", obj=user,
                 after={"link_emailed_to": sent.emailed_to or None,
                        "email_failed": bool(sent.email_error)})
    return sent


def user_password_set(*, user: Any) -> None:
    """Audit that a user set their password through a link (the password is not recorded)."""
    audit_record(actor=user, action="user.password_set", obj=user)
