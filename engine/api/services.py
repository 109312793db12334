"""Every write of the REST API: API clients, tokens, segment definitions, merge policies."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

import pql
from engine.api import errors, inputs
from engine.api.auth import check_strings, token_digest
from engine.api.shapes import DEFAULT_EVALUATION_INFO
from engine.models import (
    CLASS_SCHEMA_NAMES,
    AccessToken,
    ApiClient,
    AttributeMerge,
    Dataset,
    ExpressionFormat,
    IdentityGraph,
    MergePolicy,
    SegmentDefinition,
    XdmClass,
    epoch_ms,
)
from engine.segments import referenced_segments, schema_from_trees
from engine.snapshot import default_merge_policy, union_tree
from pql import ast
from pql.schema import Problem, Schema

PROFILE_SCHEMA = CLASS_SCHEMA_NAMES[XdmClass.PROFILE]
EXPRESSION_VALUE = "expression.value"
EVALUATION_KINDS = ("batch", "continuous", "synchronous")


# --- clients and tokens --------------------------------------------------------------------

def api_client_create(*, name: str, org_id: str, sandboxes: list[str]) -> tuple[ApiClient, str]:
    """A new client and its secret; the secret is returned once and only its hash is kept."""
    secret = "p8e-" + secrets.token_urlsafe(32)
    client = ApiClient.objects.create(name=name, org_id=org_id, sandboxes=list(sandboxes),
                                      secret_hash=make_password(secret))
    return client, secret


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def token_issue(*, client_id: str, client_secret: str) -> IssuedToken:
    """An access token for valid client credentials, or an IMS ``invalid_client`` error."""
    client = ApiClient.objects.filter(client_id=client_id, active=True).first()
    if client is None:
        raise errors.ims_error("invalid_client", errors.IMS_CLIENT_ID_INVALID)
    if not check_password(client_secret, client.secret_hash):
        raise errors.ims_error("invalid_client", errors.IMS_CLIENT_SECRET_INVALID)
    seconds = settings.ENGINE_TOKEN_SECONDS
    token = secrets.token_urlsafe(48)
    now = timezone.now()
    AccessToken.objects.filter(client=client, expires_at__lte=now).delete()
    AccessToken.objects.create(digest=token_digest(token), client=client,
                               expires_at=now + timedelta(seconds=seconds))
    return IssuedToken(access_token=token, expires_in=seconds)


# --- segment definitions -------------------------------------------------------------------

@dataclass(frozen=True)
class Expression:
    format: str
    value: str  # as the client sent it
    text: str  # canonical pql/text
    node: ast.Node


def expression_read(expression: Any) -> Expression:
    """Parse ``{"type": "PQL", "format": ..., "value": ...}``; a 400 names the error's place.
    A pql/json tree nests at most MAX_PQL_JSON_DEPTH JSON levels, and no string of the
    expression (a field name, a literal, in either format) holds a NUL or an unpaired
    surrogate."""
    if not isinstance(expression, dict):
        raise errors.invalid(errors.FIELD_REQUIRED.format(field="expression"))
    kind = expression.get("type", "PQL")
    if kind != "PQL":
        raise errors.invalid(errors.EXPRESSION_TYPE_UNSUPPORTED.format(type=kind))
    fmt = expression.get("format")
    if fmt not in ExpressionFormat.values:
        raise errors.invalid(errors.EXPRESSION_FORMAT_UNSUPPORTED.format(format=fmt))
    value = expression.get("value")
    if not isinstance(value, str) or not value.strip():
        raise errors.invalid(errors.FIELD_REQUIRED.format(field="expression.value"))
    try:
        if fmt == ExpressionFormat.TEXT:
            node = pql.parse(value)
        else:
            try:
                tree = inputs.loads(value, inputs.MAX_PQL_JSON_DEPTH)
            except inputs.DepthError as error:
                raise errors.invalid(errors.JSON_TOO_DEEP.format(
                    place=errors.PLACE_FIELD.format(name=EXPRESSION_VALUE),
                    limit=error.limit)) from None
            except ValueError as error:
                raise pql.PQLJSONError(f"the value is not JSON ({error})") from None
            check_strings(tree, errors.invalid, prefix=EXPRESSION_VALUE)
            node = pql.from_json(tree)
    except pql.PQLSyntaxError as error:
        raise errors.invalid(errors.PQL_INVALID.format(error=error), line=error.line,
                             column=error.column, endColumn=error.end_column) from None
    except pql.PQLJSONError as error:
        raise errors.invalid(errors.PQL_INVALID.format(error=error), path=error.path) from None
    except pql.PQLError as error:
        raise errors.invalid(errors.PQL_INVALID.format(error=error)) from None
    # a "\u0000" escape in pql/text is a NUL too: the tree's strings are what gets evaluated
    check_strings(pql.to_json(node), errors.invalid, prefix=EXPRESSION_VALUE)
    return Expression(format=fmt, value=value, text=pql.to_text(node), node=node)


def sandbox_schema(sandbox: str) -> Schema:
    """The sandbox's union schema of profiles and events, from the source the Schema
    Registry's union endpoint serves (engine.snapshot.union_tree). A sandbox with no data has
    no fields, so every field is unknown."""
    return schema_from_trees(union_tree(sandbox, XdmClass.PROFILE),
                             union_tree(sandbox, XdmClass.EVENT))


def expression_check(expression: Expression, *, sandbox: str,
                     definition_id: str | None = None) -> None:
    """The one judge of a definition (pql.check, as the editor and Save call it): against the
    sandbox's union schema, with its segment definitions as the ids inSegment may name (their
    names, so that a name gets its id suggested) — but not ``definition_id``'s own: a
    definition cannot use itself. The first error is a 400 with its message and, for pql/text,
    its line and columns; warnings never refuse. A pql/json expression has no text the client
    wrote, so its error has no position."""
    others = SegmentDefinition.objects.in_sandbox(sandbox)
    if definition_id:
        others = others.exclude(id=definition_id)
    segments = {str(key): name for key, name in others.values_list("id", "name")}
    source = expression.value if expression.format == ExpressionFormat.TEXT else None
    problems = pql.check(expression.node, sandbox_schema(sandbox), source=source,
                         segments=segments)
    error = next((problem for problem in problems if problem.severity == "error"), None)
    if error is None:
        return
    if definition_id and _names_itself(error, source, definition_id):
        # its own id reads better as "itself" than as an unknown segment (as in the editor)
        error = replace(error, message=errors.DEFINITION_SELF_REFERENCE.format(id=definition_id))
    if source is None or error.line is None:
        raise errors.invalid(errors.PQL_INVALID.format(error=error.message))
    column = error.column or 1
    # as a syntax error reads (PQLSyntaxError's str), with the same fields
    raise errors.invalid(
        errors.PQL_INVALID.format(error=f"{error.message} (line {error.line}, column {column})"),
        line=error.line, column=column, endColumn=error.end_column or column + 1)


def _names_itself(problem: Problem, source: str | None, definition_id: str) -> bool:
    """Whether ``problem`` is an unknown-segment error about ``definition_id`` itself."""
    if problem.code != "unknown-segment":
        return False
    if source is not None and problem.span is not None:
        start, end = problem.span
        return source[start:end].strip("\"'") == definition_id
    return f'"{definition_id}"' in problem.message


def expression_convert(expression: Expression) -> dict[str, str]:
    """The expression in the other format (spec §2.8)."""
    if expression.format == ExpressionFormat.TEXT:
        value = json.dumps(pql.to_json(expression.node), separators=(",", ":"))
        return {"type": "PQL", "format": ExpressionFormat.JSON, "value": value}
    return {"type": "PQL", "format": ExpressionFormat.TEXT, "value": expression.text}


def _text(body: dict[str, Any], name: str, *, required: bool = False,
          max_length: int | None = None) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise errors.invalid(errors.FIELD_REQUIRED.format(field=name))
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise errors.invalid(errors.FIELD_INVALID.format(field=name, reason="a string is needed"))
    if max_length is not None and len(value) > max_length:
        raise errors.invalid(errors.FIELD_INVALID.format(
            field=name, reason=f"at most {max_length} characters"))
    return value


def schema_name_read(schema: Any) -> str:
    if schema is None:
        raise errors.invalid(errors.FIELD_REQUIRED.format(field="schema"))
    name = schema.get("name") or schema.get("id") if isinstance(schema, dict) else None
    if name not in (PROFILE_SCHEMA, "https://ns.adobe.com/xdm/context/profile"):
        raise errors.invalid(errors.FIELD_INVALID.format(
            field="schema", reason=f"segment definitions are on {PROFILE_SCHEMA}"))
    return PROFILE_SCHEMA


def evaluation_info_read(info: Any) -> dict[str, Any]:
    if info is None:
        return json.loads(json.dumps(DEFAULT_EVALUATION_INFO))
    if not isinstance(info, dict):
        raise errors.invalid(errors.FIELD_INVALID.format(field="evaluationInfo",
                                                         reason="an object is needed"))
    result = {}
    for kind in EVALUATION_KINDS:
        part = info.get(kind) or {}
        enabled = part.get("enabled", kind == "batch") if isinstance(part, dict) else None
        if not isinstance(enabled, bool):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field=f"evaluationInfo.{kind}.enabled", reason="true or false is needed"))
        result[kind] = {"enabled": enabled}
    return result


def merge_policy_id_read(value: Any, sandbox: str) -> str:
    if value in (None, ""):
        return str(default_merge_policy(sandbox).id)
    try:
        policy_id = uuid.UUID(str(value))
    except ValueError:
        policy_id = None
    if policy_id is None or not MergePolicy.objects.filter(sandbox=sandbox,
                                                           id=policy_id).exists():
        raise errors.invalid(errors.MERGE_POLICY_NOT_FOUND.format(id=value))
    return str(policy_id)


def _ttl_read(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.invalid(errors.FIELD_INVALID.format(
            field="ttlInDays", reason="a non-negative integer is needed"))
    return value


def definition_fields(body: dict[str, Any], *, sandbox: str,
                      definition_id: str | None = None) -> dict[str, Any]:
    """Model fields from a create/overwrite body; every field the body omits gets its default."""
    name = _text(body, "name", required=True,
                 max_length=SegmentDefinition._meta.get_field("name").max_length)
    expression = expression_read(body.get("expression"))
    expression_check(expression, sandbox=sandbox, definition_id=definition_id)
    return {
        "name": name,
        "description": _text(body, "description"),
        "schema_name": schema_name_read(body.get("schema")),
        "expression_type": "PQL",
        "expression_format": expression.format,
        "expression_value": expression.value,
        "pql_text": expression.text,
        "merge_policy_id": merge_policy_id_read(body.get("mergePolicyId"), sandbox),
        "evaluation_info": evaluation_info_read(body.get("evaluationInfo")),
        "ttl_in_days": _ttl_read(body.get("ttlInDays")),
        "payload_schema": _text(body, "payloadSchema", max_length=200),
    }


def conversion_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a conversion answer echoes (spec §2.8), read as a definition's are: of the
    documented types, or a 400 — nothing is stored, and nothing else is echoed."""
    fields: dict[str, Any] = {
        "name": _text(body, "name"),
        "description": _text(body, "description"),
        "schema": {"name": schema_name_read(body["schema"]) if "schema" in body
                   else PROFILE_SCHEMA},
    }
    if "payloadSchema" in body:
        fields["payloadSchema"] = _text(body, "payloadSchema")
    if "ttlInDays" in body:
        fields["ttlInDays"] = _ttl_read(body["ttlInDays"])
    if "mergePolicyId" in body:
        fields["mergePolicyId"] = _text(body, "mergePolicyId")
    if "evaluationInfo" in body:
        fields["evaluationInfo"] = evaluation_info_read(body["evaluationInfo"])
    return fields


def _name_taken(sandbox: str, name: str) -> errors.ApiError:
    return errors.ups_error(errors.UNPROCESSABLE, errors.ALREADY_EXISTS_TYPE,
                            errors.DEFINITION_EXISTS.format(name=name, sandbox=sandbox))


def definition_get(*, sandbox: str, definition_id: str) -> SegmentDefinition:
    try:
        key = uuid.UUID(definition_id)
    except ValueError:
        key = None
    definition = (SegmentDefinition.objects.in_sandbox(sandbox).filter(id=key).first()
                  if key else None)
    if definition is None:
        raise errors.not_found(errors.DEFINITION_NOT_FOUND.format(id=definition_id))
    return definition


@transaction.atomic
def definition_create(*, sandbox: str, org_id: str, body: dict[str, Any]) -> SegmentDefinition:
    fields = definition_fields(body, sandbox=sandbox)
    if SegmentDefinition.objects.in_sandbox(sandbox).filter(name=fields["name"]).exists():
        raise _name_taken(sandbox, fields["name"])
    now = epoch_ms()
    try:
        with transaction.atomic():
            return SegmentDefinition.objects.create(sandbox=sandbox, ims_org_id=org_id,
                                                    creation_time=now, update_time=now,
                                                    **fields)
    except IntegrityError:
        raise _name_taken(sandbox, fields["name"]) from None


@transaction.atomic
def definition_overwrite(*, definition: SegmentDefinition,
                         body: dict[str, Any]) -> SegmentDefinition:
    """PATCH is a whole-object overwrite (spec §2.6); id and creationTime stay."""
    fields = definition_fields(body, sandbox=definition.sandbox,
                               definition_id=str(definition.id))
    if (SegmentDefinition.objects.in_sandbox(definition.sandbox).filter(name=fields["name"])
            .exclude(id=definition.id).exists()):
        raise _name_taken(definition.sandbox, fields["name"])
    for name, value in fields.items():
        setattr(definition, name, value)
    definition.update_time = max(epoch_ms(), definition.update_time + 1)
    definition.save()
    return definition


def definition_dependents(definition: SegmentDefinition) -> list[SegmentDefinition]:
    """Other definitions of the sandbox whose expression calls inSegment with this id."""
    key = str(definition.id)
    candidates = (SegmentDefinition.objects.in_sandbox(definition.sandbox)
                  .exclude(id=definition.id).filter(pql_text__icontains=key))
    return [other for other in candidates
            if key in {ref.lower() for ref in referenced_segments(pql.parse(other.pql_text))}]


@transaction.atomic
def definition_delete(*, definition: SegmentDefinition) -> None:
    dependents = definition_dependents(definition)
    if dependents:
        names = ", ".join(f"{other.name!r} ({other.id})" for other in dependents)
        raise errors.ups_error(errors.BAD_REQUEST, errors.HAS_DEPENDENTS_TYPE,
                               errors.DEFINITION_REFERENCED.format(names=names))
    definition.delete()


# --- merge policies ------------------------------------------------------------------------

def merge_policy_get(*, sandbox: str, policy_id: str) -> MergePolicy:
    try:
        key = uuid.UUID(policy_id)
    except ValueError:
        key = None
    policy = MergePolicy.objects.filter(sandbox=sandbox, id=key).first() if key else None
    if policy is None:
        raise errors.not_found(errors.MERGE_POLICY_NOT_FOUND.format(id=policy_id))
    return policy


def _typed(body: dict[str, Any], field: str, choices: list[str], default: str) -> str:
    part = body.get(field)
    if part is None:
        return default
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in choices:
        raise errors.invalid(errors.FIELD_INVALID.format(
            field=f"{field}.type", reason="one of " + ", ".join(choices) + " is needed"))
    return kind


def _flag(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise errors.invalid(errors.FIELD_INVALID.format(field=field,
                                                         reason="true or false is needed"))
    return value


@transaction.atomic
def merge_policy_create(*, sandbox: str, body: dict[str, Any]) -> MergePolicy:
    """A merge policy from spec §9.1's POST body; a new default clears the previous one."""
    name = _text(body, "name", required=True,
                 max_length=MergePolicy._meta.get_field("name").max_length)
    schema_name_read(body.get("schema"))
    graph = _typed(body, "identityGraph", IdentityGraph.values, IdentityGraph.NONE)
    merge = _typed(body, "attributeMerge", AttributeMerge.values,
                   AttributeMerge.TIMESTAMP_ORDERED)
    order: list[str] = []
    if merge == AttributeMerge.DATASET_PRECEDENCE:
        order = body["attributeMerge"].get("order") or []
        if not (isinstance(order, list) and order and all(isinstance(i, str) for i in order)):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="attributeMerge.order", reason="a list of dataset ids is needed"))
        known = set(Dataset.objects.in_sandbox(sandbox).filter(id__in=order)
                    .values_list("id", flat=True))
        if missing := [i for i in order if i not in known]:
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="attributeMerge.order", reason="unknown datasets " + ", ".join(missing)))
    is_default = _flag(body, "default")
    on_edge = _flag(body, "isActiveOnEdge")
    if MergePolicy.objects.filter(sandbox=sandbox, name=name).exists():
        raise errors.invalid(errors.MERGE_POLICY_EXISTS.format(name=name, sandbox=sandbox))
    if on_edge and (other := MergePolicy.objects.filter(sandbox=sandbox,
                                                        is_active_on_edge=True).first()):
        raise errors.invalid(errors.MERGE_POLICY_EDGE_TAKEN.format(name=other.name))
    if is_default:
        MergePolicy.objects.filter(sandbox=sandbox, default=True).update(default=False)
    return MergePolicy.objects.create(sandbox=sandbox, name=name, identity_graph=graph,
                                      attribute_merge=merge, dataset_order=order,
                                      default=is_default, is_active_on_edge=on_edge)
