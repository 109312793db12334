"""AEP's error bodies (spec/aep-api.md §1.1, §8.1), one builder per shape, and the messages.

Shapes:
- gateway errors, before the service: ``{"error_code": "401013", "message": "..."}``;
- problem details: ``{"type", "status", "title", "detail"}`` (missing Content-Type, Schema
  Registry);
- UPS service errors: ``{"requestId", "errors": {"<status>": [{"code", "message"}]}, "type",
  "title", "status"}``;
- IMS token errors: ``{"error": "invalid_client", "error_description": "..."}``.

Where Adobe documents a code it is used; codes marked "ours" are not documented anywhere and
were picked in Adobe's pattern.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.http import JsonResponse

OK = 200
MULTI_STATUS = 207
BAD_REQUEST = 400
UNAUTHORIZED = 401
FORBIDDEN = 403
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
NOT_ACCEPTABLE = 406
LENGTH_REQUIRED = 411
PAYLOAD_TOO_LARGE = 413
UNPROCESSABLE = 422
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500

ERROR_TYPE_BASE = "https://ns.adobe.com/aep/errors/"

# Gateway (spec §1.1).
TOKEN_MISSING = ("403010", "Oauth token is missing.")
TOKEN_INVALID = ("401013", "Oauth token is not valid")
API_KEY_MISSING = ("403000", "Api Key is required")
API_KEY_INVALID = ("403003", "Api Key is invalid")
ORG_MISSING = ("400003", "Missing header")
ORG_INVALID = ("403025", "Profile is not valid")
SANDBOX_MISSING = ("400003", "Missing header")  # as for the org header
TOO_MANY = ("429050", "Too many requests")  # Adobe I/O gateway throttling
# ours, in the gateway's shape: a client at its cap of running previews or jobs
# (engine/api/caps.py); {count} running, {limit} the cap, {seconds} the Retry-After
CLIENT_PREVIEWS_BUSY = ("429051", "Too many previews running: this API client has {count}, the "
                        "most it may run at once is {limit}. Retry after {seconds} seconds, or "
                        "once one has finished.")
CLIENT_JOBS_BUSY = ("429052", "Too many segment and export jobs running: this API client has "
                    "{count}, the most it may run at once is {limit}. Retry after {seconds} "
                    "seconds, or once one has finished.")
BODY_TOO_LARGE = ("413000", "Request body is too large")  # ours
LENGTH_MISSING = ("411000", "Content-Length is required: send the file with its length")  # ours
FILE_TOO_LARGE = ("413000",  # ours
                  "The file is larger than the {limit} bytes a batch file may have")
BAD_CHARACTER_CODE = "400010"  # ours: a character no text may hold, refused at the gateway

# UPS error types (spec §8.1.3).
NOT_FOUND_TYPE = "UPAPI-113430-404"
VALIDATION_TYPE = "UPAPI-113434-400"
HAS_DEPENDENTS_TYPE = "UPAPI-113631-403"  # returned with status 400
FORBIDDEN_TYPE = "UPAPI-113752-403"  # ABAC permission denied: the sandbox is not the client's
ALREADY_EXISTS_TYPE = "UPAPI-113422-422"  # ours
BODY_INVALID_TYPE = "UPLIB-101206-500"  # returned with status 400
SERVER_ERROR_TYPE = "UPAPI-113500-500"  # ours
OVER_BUDGET_TYPE = "UPAPI-113437-422"  # ours: past the evaluator's budget (engine.segments)

# Messages (tests assert them).
SANDBOX_NOT_ALLOWED = "The sandbox {sandbox} is not available to this API client."
SANDBOX_NOT_FOUND = "The sandbox {sandbox} is not found or not available to this API client."
SANDBOX_NAME_INVALID = ("The sandbox name {sandbox} is not valid: "
                        "use lower-case letters, digits and '-'.")
CONTENT_TYPE_INVALID = "A valid content-type must be specified"
# Text no database or file may hold, and nesting no parser should follow (engine/api/inputs.py).
# {place} is one of the PLACE_* below; {character} one of the CHARACTER_* below.
CHARACTER_INVALID = "The {place} contains {character}, which is not allowed."
CHARACTER_NUL = "a NUL character (\\u0000)"
CHARACTER_SURROGATE = "an unpaired surrogate (half of a UTF-16 pair)"
JSON_TOO_DEEP = "The {place} nests JSON deeper than {limit} levels."
PLACE_PATH = "path"
PLACE_QUERY = "query parameter {name}"
PLACE_HEADER = "header {name}"
PLACE_FORM = "form field {name}"
PLACE_FIELD = "field {name}"
PLACE_BODY = "request body"
FORM_INVALID = "The request body is not valid form data: {reason}."
BODY_NOT_JSON = "The request body is not valid JSON: {reason}."
BODY_NOT_OBJECT = "The request body must be a JSON object."
FIELD_REQUIRED = "The field {field} is required."
FIELD_INVALID = "The field {field} is not valid: {reason}."
DEFINITION_NOT_FOUND = ("The segment definition {id} is not found. "
                        "Use a valid entity and try again.")
DEFINITION_EXISTS = "A segment definition named {name!r} already exists in sandbox {sandbox}."
DEFINITION_REFERENCED = ("The segment definition cannot be deleted: it is used with inSegment "
                         "by {names}.")
EXPRESSION_TYPE_UNSUPPORTED = "Only expressions of type PQL are supported, not {type}."
EXPRESSION_FORMAT_UNSUPPORTED = "The expression format must be pql/text or pql/json, not {format}."
PQL_INVALID = "The PQL expression is not valid: {error}"
DEFINITION_SELF_REFERENCE = ('A segment definition cannot use itself: inSegment("{id}") names '
                             "this definition. Use another definition's id.")
MERGE_POLICY_NOT_FOUND = ("The merge policy {id} is not found. "
                          "Use a valid entity and try again.")
MERGE_POLICY_EXISTS = "A merge policy named {name!r} already exists in sandbox {sandbox}."
MERGE_POLICY_EDGE_TAKEN = "Only one merge policy may be active on edge; {name!r} already is."
BULK_IDS_INVALID = "The number of requested IDs is invalid. Cannot be 0 or exceed 100."
SORT_INVALID = ("The sort {sort!r} is not valid: "
                "use field:asc or field:desc with field one of {fields}.")
NUMBER_INVALID = "The parameter {name} must be an integer from 0 to {maximum}."
SCHEMA_NOT_FOUND = "The schema {id} is not found."
ACCEPT_INVALID = ("The Accept header {accept!r} is not supported: use "
                  "application/vnd.adobe.xed-full+json;version=1.")
ROUTE_NOT_FOUND = "No resource at {path}."
METHOD_INVALID = "The method {method} is not allowed here; use {allowed}."
INTERNAL_ERROR = "An internal error occurred."

# IMS (spec §1.2).
IMS_CLIENT_ID_INVALID = "invalid client_id parameter"
IMS_CLIENT_SECRET_INVALID = "invalid client_secret parameter"
IMS_GRANT_UNSUPPORTED = "grant_type must be client_credentials"


class ApiError(Exception):
    """Raised anywhere under a view; the API decorator answers with ``body`` and ``status``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body, status=self.status, safe=False)
        for name, value in self.headers.items():
            response[name] = value
        return response


def request_id() -> str:
    return secrets.token_urlsafe(24)


def gateway_error(status: int, code_message: tuple[str, str]) -> ApiError:
    code, message = code_message
    return ApiError(status, {"error_code": code, "message": message})


def problem_error(status: int, title: str, detail: str) -> ApiError:
    return ApiError(status, {"type": "/placeholder/type/uri", "status": status, "title": title,
                             "detail": detail})


def ups_error(status: int, error_type: str, message: str, **extra: Any) -> ApiError:
    """A UPS service error; ``extra`` goes into the error item (e.g. line and column)."""
    return ApiError(status, {
        "requestId": request_id(),
        "errors": {str(status): [{"code": error_type, "message": message, **extra}]},
        "type": ERROR_TYPE_BASE + error_type,
        "title": message,
        "status": status,
    })


def ims_error(error: str, description: str, status: int = BAD_REQUEST) -> ApiError:
    return ApiError(status, {"error": error, "error_description": description})


def bad_input(message: str) -> ApiError:
    """The gateway's refusal of a request it cannot pass on (a NUL in a header or parameter)."""
    return gateway_error(BAD_REQUEST, (BAD_CHARACTER_CODE, message))


def ims_bad_input(message: str) -> ApiError:
    """IMS's refusal of a malformed token request (RFC 6749 §5.2: invalid_request)."""
    return ims_error("invalid_request", message)


def body_invalid(message: str) -> ApiError:
    """A request body that cannot be read (the shape of AEP's answer to malformed JSON)."""
    return ups_error(BAD_REQUEST, BODY_INVALID_TYPE, message)


def not_found(message: str) -> ApiError:
    return ups_error(NOT_FOUND, NOT_FOUND_TYPE, message)


def invalid(message: str, **extra: Any) -> ApiError:
    return ups_error(BAD_REQUEST, VALIDATION_TYPE, message, **extra)
