"""Every write of the connections app, the API client a connection makes, its test, and the
navigation's connection/sandbox switcher.

Secrets: a connection's client secret is written only through `set_client_secret` (encrypted)
and leaves this module only inside `aep.Credentials` (kept out of its repr). Audit snapshots
carry `SECRET_MASK` in its place, never the value.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from aep import (
    AEPAuthError,
    AEPClient,
    AEPConnectionError,
    AEPError,
    AEPNotFoundError,
    Credentials,
    RetryPolicy,
    TokenManager,
)
from aep.client import EXPERIENCE_EVENT, PROFILE
from aep.errors import error_details
from connections.models import Connection, ConnectionKind
from core.errors import RefusedError
from core.services import audit_record

logger = logging.getLogger(__name__)

SECRET_MASK = "••••••"
# Fields an admin edits (the secret is handled apart: write-only, never echoed).
EDITABLE_FIELDS = ("name", "kind", "base_url", "ims_url", "org_id", "client_id", "scopes",
                   "default_sandbox")

ADOBE_BASE_URL = "https://platform.adobe.io"
ADOBE_IMS_URL = "https://ims-na1.adobelogin.com"

# Session keys of the switcher's choice.
SESSION_CONNECTION = "connection_id"
SESSION_SANDBOX = "sandbox"

# A test must answer while the admin waits: few retries, short timeouts.
TEST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0, total_budget=10.0)
TEST_TIMEOUT = 10.0
TEST_DEFINITIONS = 5

# --- what a test says (tests assert these texts) --------------------------------------------
STEP_TOKEN = "Fetch an access token"
STEP_SANDBOXES = "List sandboxes"
STEP_SANDBOX = "Find the default sandbox"
STEP_DEFINITIONS = "List segment definitions"

TOKEN_OK = "IMS issued an access token."
SANDBOXES_OK = "{count} sandbox{plural}: {names}."
SANDBOX_OK = "Sandbox {sandbox} exists."
DEFINITIONS_OK = "Read {count} segment definition{plural} in {sandbox}{more}."
TEST_OK = "Connected: token, {count} sandbox{plural}, definitions in {sandbox}."
TEST_OK_UNLISTED = ("Connected: token and definitions in {sandbox}; the sandboxes could not be "
                    "listed, so the switcher offers only {sandbox}.")
SANDBOXES_UNLISTED = ("Could not list the sandboxes ({detail}): these credentials may not view "
                      "sandboxes. The default sandbox is checked by reading it instead.")
SANDBOX_READ = "Sandbox {sandbox} answered (checked by reading its definitions)."
SKIPPED = "Not run: an earlier step failed."

BAD_SECRET = ("Bad secret: IMS refused the client secret for client id {client_id}. "
              "Copy the secret again from the Developer Console project and save it here.")
BAD_CLIENT_ID = ("Bad client id: IMS does not know client id {client_id}. "
                 "Copy the client id (API key) from the Developer Console project.")
CREDENTIALS_REFUSED = ("Credentials refused: IMS answered {detail}. "
                       "Check the client id, secret and scopes.")
WRONG_ORG = ("Wrong org: the API refused org {org_id} for these credentials ({detail}). "
             "Use the IMS org id of the Developer Console project (it ends in @AdobeOrg).")
ACCESS_REFUSED = ("Access refused: the API answered {detail}. Check that the project's "
                  "technical account has a product profile with access to this sandbox.")
UNREACHABLE = ("Unreachable host: could not connect to {host}. Check the URL, and that the "
               "server runs and is reachable from the Segment Studio server.")
MISSING_SANDBOX = ("Missing sandbox: {sandbox} is not among the sandboxes these credentials "
                   "can use ({available}). Choose one of them as the default sandbox.")
MISSING_SANDBOX_API = ("Missing sandbox: the API refused sandbox {sandbox} ({detail}). "
                       "Choose a sandbox these credentials can use as the default sandbox.")
NO_SECRET = "No client secret stored: edit the connection and enter its client secret."
API_ERROR = "The API answered {detail}."
UNEXPECTED = "The test failed unexpectedly ({error}); see the server log."

SWITCH_INVALID = "That connection or sandbox is not available; pick one from the list."
DEFAULT_UNTESTED = ("Test {name} first: only a connection whose last test passed can be the "
                    "default everyone starts in.")
DEFAULT_DISABLED = "{name} is disabled: enable it before making it the default."

# Gateway codes meaning "this token's org is not the one in x-gw-ims-org-id" (spec §1.1).
ORG_ERROR_CODES = {"403025", "403027", "UPAPI-113740-403"}
SANDBOX_ERROR_CODES = {"UPAPI-113752-403"}


# --- snapshots for the audit log ------------------------------------------------------------

def connection_snapshot(connection: Connection) -> dict[str, Any]:
    """The audited state of a connection: its settings, and whether a secret is stored."""
    data: dict[str, Any] = {name: getattr(connection, name) for name in EDITABLE_FIELDS}
    data["is_enabled"] = connection.is_enabled
    data["client_secret"] = SECRET_MASK if connection.has_secret else ""
    return data


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any],
                                                                   dict[str, Any]]:
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


# --- writes ---------------------------------------------------------------------------------

def default_urls(kind: str) -> tuple[str, str]:
    """(base URL, IMS URL) a new connection of `kind` starts with."""
    if kind == ConnectionKind.BUILTIN:
        return settings.BUILTIN_ENGINE_URL, settings.BUILTIN_ENGINE_URL
    return ADOBE_BASE_URL, ADOBE_IMS_URL


@transaction.atomic
def connection_create(*, actor: Any, name: str, kind: str, base_url: str = "",
                      ims_url: str = "", org_id: str, client_id: str, client_secret: str,
                      scopes: str = "", default_sandbox: str = "prod",
                      sandboxes: list[str] | None = None, is_enabled: bool = True) -> Connection:
    base_default, ims_default = default_urls(kind)
    connection = Connection(
        name=name, kind=kind, base_url=base_url or base_default, ims_url=ims_url or ims_default,
        org_id=org_id, client_id=client_id, default_sandbox=default_sandbox,
        sandboxes=list(sandboxes or []), is_enabled=is_enabled,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if scopes:
        connection.scopes = scopes
    connection.set_client_secret(client_secret)
    connection.save()
    audit_record(actor=actor, action="connection.create", obj=connection,
                 after=connection_snapshot(connection))
    return connection


@transaction.atomic
def connection_update(*, actor: Any, connection: Connection, client_secret: str = "",
                      **fields: Any) -> Connection:
    """Change the given fields; an empty `client_secret` keeps the stored one."""
    unknown = set(fields) - set(EDITABLE_FIELDS) - {"sandboxes"}
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    before = connection_snapshot(connection)
    for name, value in fields.items():
        setattr(connection, name, value)
    secret_replaced = bool(client_secret)
    if secret_replaced:
        connection.set_client_secret(client_secret)
    settings_changed = secret_replaced or any(
        before[name] != getattr(connection, name) for name in EDITABLE_FIELDS if name != "name")
    if settings_changed and connection.last_tested_at is not None:
        # what the last test said no longer describes these settings: "test again"
        connection.last_test_ok = None
    connection.save()
    old, new = _changes(before, connection_snapshot(connection))
    if secret_replaced:
        old["client_secret"], new["client_secret"] = before["client_secret"], SECRET_MASK
    if old or new:
        audit_record(actor=actor, action="connection.update", obj=connection, before=old,
                     after=new)
    return connection


class ConnectionRefused(RefusedError):
    """An admin's change that cannot be made, with what to do."""


@transaction.atomic
def connection_make_default(*, actor: Any, connection: Connection) -> Connection:
    """The connection everyone works in until they choose another: enabled, and tested."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if not connection.is_enabled:
        raise ConnectionRefused(DEFAULT_DISABLED.format(name=connection.name))
    if connection.last_test_ok is not True:
        raise ConnectionRefused(DEFAULT_UNTESTED.format(name=connection.name))
    if connection.is_default:
        return connection
    before = Connection.objects.filter(is_default=True).first()
    Connection.objects.filter(is_default=True).update(is_default=False)
    connection.is_default = True
    connection.save(update_fields=["is_default", "updated_at"])
    audit_record(actor=actor, action="connection.default", obj=connection,
                 before={"default": before.name if before else None},
                 after={"default": connection.name})
    return connection


@transaction.atomic
def connection_set_enabled(*, actor: Any, connection: Connection, enabled: bool) -> Connection:
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if connection.is_enabled != enabled:
        connection.is_enabled = enabled
        if not enabled:
            connection.is_default = False  # the fallback (the oldest enabled) takes over
        connection.save(update_fields=["is_enabled", "is_default", "updated_at"])
        audit_record(actor=actor, action="connection.enable" if enabled else "connection.disable",
                     obj=connection, before={"is_enabled": not enabled},
                     after={"is_enabled": enabled})
    return connection


def connection_disable(*, actor: Any, connection: Connection) -> Connection:
    return connection_set_enabled(actor=actor, connection=connection, enabled=False)


def connection_enable(*, actor: Any, connection: Connection) -> Connection:
    return connection_set_enabled(actor=actor, connection=connection, enabled=True)


# --- the API client -------------------------------------------------------------------------

def connection_credentials(connection: Connection) -> Credentials:
    return Credentials(ims_url=connection.ims_url, client_id=connection.client_id,
                       client_secret=connection.client_secret(), org_id=connection.org_id,
                       scopes=connection.scopes)


def connection_client(connection: Connection, *, sandbox: str | None = None,
                      transport: httpx.BaseTransport | None = None) -> AEPClient:
    """An `aep.AEPClient` for `connection` in `sandbox` (default: the connection's default).

    Without a transport the IMS token is shared by every client of this credential in the
    process, so short-lived clients (one per Celery task) do not each ask IMS for a token.
    """
    return AEPClient(base_url=connection.base_url, credentials=connection_credentials(connection),
                     sandbox=sandbox or connection.default_sandbox, transport=transport)


# --- what the dashboard's forms read from a connection ------------------------------------------

MERGE_POLICY_SECONDS = 300


def connection_union_schemas(connection: Connection, sandbox: str,
                             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The profile and experience-event union schemas of the sandbox (the aep client caches
    them). Raises AEPError when the profile's cannot be read; a missing event union is None."""
    with connection_client(connection, sandbox=sandbox) as client:
        profile = client.union_schema(PROFILE)
        try:
            events: dict[str, Any] | None = client.union_schema(EXPERIENCE_EVENT)
        except AEPError:
            events = None
    return profile, events


def connection_merge_policy_choices(connection: Connection, sandbox: str,
                                    ) -> list[tuple[str, str]]:
    """(id, label) of the sandbox's merge policies for a select, cached for a few minutes;
    empty when the API does not answer (the form then offers the default policy only)."""
    key = f"connections:merge-policies:{connection.pk}:{sandbox}"
    found: list[tuple[str, str]] | None = cache.get(key)
    if found is None:
        try:
            with connection_client(connection, sandbox=sandbox) as client:
                found = [(policy.id, policy.name + (" (default)" if policy.is_default else ""))
                         for policy in client.merge_policies()]
        except AEPError:
            found = []
        cache.set(key, found, MERGE_POLICY_SECONDS)
    return found


# --- test connection ------------------------------------------------------------------------

class Failure(models.TextChoices):
    """What a failed test names, so the page (and tests) can tell the cases apart."""

    NO_SECRET = "no_secret", "No secret"
    BAD_SECRET = "bad_secret", "Bad secret"
    BAD_CLIENT_ID = "bad_client_id", "Bad client id"
    CREDENTIALS = "credentials", "Credentials refused"
    WRONG_ORG = "wrong_org", "Wrong org"
    ACCESS = "access", "Access refused"
    UNREACHABLE = "unreachable", "Unreachable host"
    MISSING_SANDBOX = "missing_sandbox", "Missing sandbox"
    API = "api", "API error"
    UNEXPECTED = "unexpected", "Unexpected error"


@dataclass
class Step:
    name: str
    ok: bool | None = None  # None: not run, or could not tell (then `warning`)
    detail: str = ""
    warning: bool = False


@dataclass
class ConnectionTestResult:
    ok: bool
    message: str
    steps: list[Step] = field(default_factory=list)
    sandboxes: list[str] = field(default_factory=list)
    failure: Failure | None = None


class _Failed(Exception):
    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


def _plural(count: int, suffix: str = "es") -> str:
    return "" if count == 1 else suffix


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$")


def _detail(error: AEPError) -> str:
    """'403 403025' — the status and the API's error code, never its message: what a test
    shows is our own diagnosis (the messages above), not a remote body, whoever answered."""
    code, _ = error_details(error.body) if error.body is not None else (None, "")
    code = str(code or error.code or "")
    parts = [str(error.status)] if error.status else []
    if code and _CODE.match(code):
        parts.append(code)
    return " ".join(parts) or "no answer"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _ims_failure(error: AEPError, connection: Connection) -> _Failed:
    if isinstance(error, AEPConnectionError):
        return _Failed(Failure.UNREACHABLE, UNREACHABLE.format(host=_host(connection.ims_url)))
    if isinstance(error, AEPAuthError):
        body = error.body if isinstance(error.body, dict) else {}
        description = str(body.get("error_description", "")).lower()
        if "client_secret" in description:
            return _Failed(Failure.BAD_SECRET,
                           BAD_SECRET.format(client_id=connection.client_id))
        if "client_id" in description:
            return _Failed(Failure.BAD_CLIENT_ID,
                           BAD_CLIENT_ID.format(client_id=connection.client_id))
        return _Failed(Failure.CREDENTIALS, CREDENTIALS_REFUSED.format(detail=_detail(error)))
    return _Failed(Failure.API, API_ERROR.format(detail=_detail(error)))


def _api_failure(error: AEPError, connection: Connection, *, in_sandbox: bool) -> _Failed:
    """What an API answer means; `in_sandbox`: the call reads the default sandbox's data, so
    a refusal naming the sandbox (or a 404) means the sandbox is missing."""
    if isinstance(error, AEPConnectionError):
        return _Failed(Failure.UNREACHABLE, UNREACHABLE.format(host=_host(connection.base_url)))
    code = error.code or ""
    text = error.message.lower()
    sandbox, detail = connection.default_sandbox, _detail(error)
    if error.status in (401, 403) or isinstance(error, AEPAuthError):
        if code in ORG_ERROR_CODES or "profile is not valid" in text or " org" in text:
            return _Failed(Failure.WRONG_ORG,
                           WRONG_ORG.format(org_id=connection.org_id, detail=detail))
        if in_sandbox and (code in SANDBOX_ERROR_CODES or "sandbox" in text):
            return _Failed(Failure.MISSING_SANDBOX,
                           MISSING_SANDBOX_API.format(sandbox=sandbox, detail=detail))
        return _Failed(Failure.ACCESS, ACCESS_REFUSED.format(detail=detail))
    if in_sandbox and isinstance(error, AEPNotFoundError):
        return _Failed(Failure.MISSING_SANDBOX,
                       MISSING_SANDBOX_API.format(sandbox=sandbox, detail=detail))
    return _Failed(Failure.API, API_ERROR.format(detail=detail))


def _run_test(connection: Connection, transport: httpx.BaseTransport | None
              ) -> ConnectionTestResult:
    steps = [Step(STEP_TOKEN), Step(STEP_SANDBOXES), Step(STEP_SANDBOX),
             Step(STEP_DEFINITIONS)]
    token_step, list_step, sandbox_step, definitions_step = steps
    result = ConnectionTestResult(ok=False, message="", steps=steps)
    sandbox = connection.default_sandbox
    current = token_step
    if not connection.has_secret:
        return _fail(result, current, _Failed(Failure.NO_SECRET, NO_SECRET))
    credentials = connection_credentials(connection)
    tokens = TokenManager(credentials, transport=transport, timeout=TEST_TIMEOUT,
                          retry=TEST_RETRY)
    client = AEPClient(base_url=connection.base_url, credentials=credentials,
                       sandbox=sandbox, transport=transport, timeout=TEST_TIMEOUT,
                       retry=TEST_RETRY, token_manager=tokens)
    try:
        try:
            tokens.token()
        except AEPError as error:
            raise _ims_failure(error, connection) from None
        token_step.ok, token_step.detail = True, TOKEN_OK

        current = list_step
        names: list[str] | None
        try:
            names = [item.name for item in client.sandboxes()]
        except AEPError as error:
            failed = _api_failure(error, connection, in_sandbox=False)
            if failed.failure != Failure.ACCESS and not isinstance(error, AEPNotFoundError):
                raise failed from None
            # Listing sandboxes needs a permission of its own (or an API that has the
            # endpoint); reading the default sandbox below still tells whether it is usable.
            names = None
            list_step.warning = True
            list_step.detail = SANDBOXES_UNLISTED.format(detail=_detail(error))
        else:
            result.sandboxes = names
            list_step.ok = True
            list_step.detail = SANDBOXES_OK.format(count=len(names),
                                                   plural=_plural(len(names)),
                                                   names=", ".join(names) or "none")

        current = sandbox_step
        if names is not None:
            if sandbox not in names:
                raise _Failed(Failure.MISSING_SANDBOX, MISSING_SANDBOX.format(
                    sandbox=sandbox, available=", ".join(names) or "none"))
            sandbox_step.ok, sandbox_step.detail = True, SANDBOX_OK.format(sandbox=sandbox)

        current = definitions_step
        try:
            page = client.definitions_page(start=0, limit=TEST_DEFINITIONS)
        except AEPError as error:
            failed = _api_failure(error, connection, in_sandbox=True)
            if names is None and failed.failure == Failure.MISSING_SANDBOX:
                current = sandbox_step
            raise failed from None
        if names is None:
            sandbox_step.ok, sandbox_step.detail = True, SANDBOX_READ.format(sandbox=sandbox)
        count = len(page.items)
        total = page.total_count
        more = f" (of {total:,})" if isinstance(total, int) and total > count else ""
        definitions_step.ok = True
        definitions_step.detail = DEFINITIONS_OK.format(count=count, plural=_plural(count, "s"),
                                                        sandbox=sandbox, more=more)
    except _Failed as failed:
        return _fail(result, current, failed)
    finally:
        client.close()
        tokens.close()
    result.ok = True
    if names is None:
        result.message = TEST_OK_UNLISTED.format(sandbox=sandbox)
    else:
        result.message = TEST_OK.format(count=len(names), plural=_plural(len(names)),
                                        sandbox=sandbox)
    return result


def _fail(result: ConnectionTestResult, step: Step, failed: _Failed) -> ConnectionTestResult:
    step.ok, step.detail = False, failed.message
    for later in result.steps[result.steps.index(step) + 1:]:
        later.ok, later.detail = None, SKIPPED
    result.ok, result.failure, result.message = False, failed.failure, failed.message
    return result


def connection_test(*, connection: Connection, transport: httpx.BaseTransport | None = None,
                    actor: Any = None) -> ConnectionTestResult:
    """Fetch a token, list the sandboxes (remembered for the switcher), check the default
    sandbox, read the first definitions; store the outcome on the connection."""
    try:
        result = _run_test(connection, transport)
    except Exception as error:  # a test reports; it never turns into a 500 page
        logger.exception("connection test of %r failed unexpectedly", connection)
        message = UNEXPECTED.format(error=type(error).__name__)
        result = ConnectionTestResult(ok=False, message=message,
                                      steps=[Step(STEP_TOKEN, False, message)],
                                      failure=Failure.UNEXPECTED)
    _store_test(connection=connection, result=result, actor=actor)
    return result


@transaction.atomic
def _store_test(*, connection: Connection, result: ConnectionTestResult, actor: Any) -> None:
    fields: dict[str, Any] = {
        "last_tested_at": timezone.now(), "last_test_ok": result.ok,
        "last_test_message": result.message[:500],
        "last_test_steps": [asdict(step) for step in result.steps],
    }
    if result.sandboxes:
        fields["sandboxes"] = result.sandboxes
    Connection.objects.filter(pk=connection.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(connection, name, value)
    audit_record(actor=actor, action="connection.test", obj=connection,
                 after={"ok": result.ok, "message": result.message,
                        **({"sandboxes": result.sandboxes} if result.sandboxes else {})})


# --- the switcher ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SwitcherChoice:
    connection: Connection
    sandboxes: list[str]


def switcher_choices() -> list[SwitcherChoice]:
    """Enabled connections × their known sandboxes, from our database only."""
    return [SwitcherChoice(connection, connection.known_sandboxes)
            for connection in Connection.objects.enabled()]


def connection_default() -> Connection | None:
    """Where people work until they choose: the connection an admin made the default, else
    the oldest enabled one — so creating a connection never moves anybody."""
    enabled = Connection.objects.enabled()
    return (enabled.filter(is_default=True).first()
            or enabled.order_by("created_at", "pk").first())


def current_connection(request: HttpRequest) -> tuple[Connection | None, str]:
    """The switcher's choice for this session, else the default connection (see
    connection_default) and its default sandbox; (None, "") when no connection is enabled."""
    cached = getattr(request, "_current_connection", None)
    if cached is not None:
        return cached
    session = getattr(request, "session", {})
    enabled = Connection.objects.enabled()
    chosen_id = session.get(SESSION_CONNECTION)
    connection = enabled.filter(pk=chosen_id).first() if chosen_id else None
    sandbox = session.get(SESSION_SANDBOX, "") if connection else ""
    if connection is None:
        connection = connection_default()
    if connection is None:
        answer: tuple[Connection | None, str] = (None, "")
    else:
        if sandbox not in connection.known_sandboxes:
            sandbox = connection.default_sandbox
        answer = (connection, sandbox)
    request._current_connection = answer  # type: ignore[attr-defined]
    return answer


class SwitchError(ValueError):
    pass


def connection_choose(*, request: HttpRequest, connection_id: Any, sandbox: str
                      ) -> tuple[Connection, str]:
    """Remember the switcher's choice in the session, if it is one the switcher offers."""
    try:
        pk = int(connection_id)
    except (TypeError, ValueError):
        raise SwitchError(SWITCH_INVALID) from None
    connection = Connection.objects.enabled().filter(pk=pk).first()
    if connection is None or sandbox not in connection.known_sandboxes:
        raise SwitchError(SWITCH_INVALID)
    request.session[SESSION_CONNECTION] = connection.pk
    request.session[SESSION_SANDBOX] = sandbox
    request._current_connection = (connection, sandbox)  # type: ignore[attr-defined]
    return connection, sandbox
