"""What the editor needs from the `pql` package: diagnostics with character offsets, the field
catalog of a union schema, and the function reference.

Offsets (not just line/column) let the browser underline the exact span in the textarea.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pql
from pql.functions import FUNCTIONS
from pql.schema import Schema
from segments.function_examples import EXAMPLES

PROFILE_UNION = "_xdm.context.profile"
EVENT_UNION = "_xdm.context.experienceevent"
EMPTY_DEFINITION = "Write a PQL definition, for example: homeAddress.countryCode = \"US\""


@dataclass(frozen=True)
class Diagnostic:
    """One problem, positioned: 1-based line/column (end exclusive) and offsets [start, end)."""

    severity: str  # "error" or "warning"
    message: str
    code: str
    line: int
    column: int
    end_column: int
    start: int
    end: int


@dataclass(frozen=True)
class FieldEntry:
    collection: str  # "profile" or "xEvent"
    path: str
    type: str

    @property
    def insert_text(self) -> str:
        # event fields are written inside a select/occurs over xEvent; the editor inserts the
        # path as the user would type it after the variable
        return self.path


def offset_of(text: str, line: int, column: int) -> int:
    """The 0-based character offset of 1-based (line, column) in ``text``, clamped."""
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    before = sum(len(part) + 1 for part in lines[: line - 1])
    return min(before + max(column - 1, 0), len(text))


def diagnose(text: str, schema: Schema | None, *,
             segments: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Every problem of ``text``: the syntax error if it does not parse, else the checker's
    errors and warnings against ``schema`` (none when the schema is unknown) and the
    sandbox's ``segments`` ({id: name}; inSegment ids are not checked without them)."""
    if not text.strip():
        return [Diagnostic("error", EMPTY_DEFINITION, "empty", 1, 1, 2, 0, 0)]
    try:
        node = pql.parse(text)
    except pql.PQLSyntaxError as error:
        start = offset_of(text, error.line, error.column)
        end = offset_of(text, error.line, error.end_column)
        return [Diagnostic("error", error.message, "syntax", error.line, error.column,
                           error.end_column, start, max(end, start))]
    if schema is None:
        return []
    found = []
    for problem in pql.check(node, schema, source=text, segments=segments):
        line, column = problem.line or 1, problem.column or 1
        end_column = problem.end_column or column + 1
        start, end = problem.span or (0, 0)
        found.append(Diagnostic(problem.severity, problem.message, problem.code, line, column,
                                end_column, start, end))
    return found


def schema_from_unions(profile: Mapping[str, Any] | None,
                       events: Mapping[str, Any] | None) -> Schema | None:
    """The checker's schema from the Schema Registry's union schemas (None when unknown)."""
    if not profile:
        return None
    return Schema.from_json_schema(profile, events or None)


def field_catalog(schema: Schema | None) -> list[FieldEntry]:
    """Every declared field path with its type, profile fields first, for completion."""
    if schema is None:
        return []
    entries = [FieldEntry("profile", path, str(kind))
               for path, kind in sorted(schema.profile.items()) if "*" not in path]
    entries += [FieldEntry("xEvent", path, str(kind))
                for path, kind in sorted(schema.event.items()) if "*" not in path]
    return entries


@dataclass(frozen=True)
class FunctionEntry:
    name: str
    kind: str
    signature: str
    returns: str
    summary: str
    example: str


def function_reference() -> list[FunctionEntry]:
    entries = []
    for name, fn in sorted(FUNCTIONS.items(), key=lambda item: item[0].lower()):
        signature = f"x.{name}(…)" if fn.kind == "method" else f"{name}(…)"
        entries.append(FunctionEntry(name, fn.kind, signature, fn.returns,
                                     f"{fn.summary} ({fn.arity_text()})", EXAMPLES.get(name, "")))
    return entries


@dataclass(frozen=True)
class PreviewRow:
    """One member of a preview page: its id and its identities (namespace, id), from either
    shape an AEP-compatible API answers with (see spec §3.2)."""

    id: str
    identities: list[dict[str, str]]
    attributes: dict[str, Any]

    @property
    def name(self) -> str:
        """The person's name when the API sent the profile's attributes (the built-in engine
        does; AEP's preview lists identities only)."""
        person = self.attributes.get("person") if isinstance(self.attributes, Mapping) else None
        name = person.get("name") if isinstance(person, Mapping) else None
        if isinstance(name, Mapping):
            return " ".join(str(name[key]) for key in ("firstName", "lastName")
                            if name.get(key)).strip()
        return ""


def preview_rows(results: list[Any]) -> list[PreviewRow]:
    rows = []
    for result in results:
        if not isinstance(result, Mapping):
            continue
        if "objectId" in result:  # the OpenAPI file's shape
            related = [_identity_from_href(item.get("_href", ""), item.get("objectId", ""))
                       for item in result.get("relatedObjects") or [] if isinstance(item, Mapping)]
            rows.append(PreviewRow(str(result["objectId"]), related, {}))
            continue
        for xid, body in result.items():  # the documented shape: keyed by the profile's XID
            body = body if isinstance(body, Mapping) else {}
            identities = [
                {"namespace": str((item.get("namespace") or {}).get("code", "")),
                 "id": str(item.get("id", ""))}
                for item in body.get("identities") or [] if isinstance(item, Mapping)
            ] or [_identity_from_href((link or {}).get("_href", ""), key)
                  for key, link in (body.get("endCustomerIds") or {}).items()]
            entity = body.get("entity")
            rows.append(PreviewRow(str(xid), identities,
                                   dict(entity) if isinstance(entity, Mapping) else {}))
    return rows


def _identity_from_href(href: str, fallback: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(href).query)
    entity_id = (query.get("entityId") or [fallback])[0]
    namespace = (query.get("entityIdNS") or [""])[0]
    return {"namespace": namespace, "id": entity_id}
