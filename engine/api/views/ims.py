"""IMS-compatible token endpoint — POST /ims/token/v3 (spec/aep-api.md §1.2)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from engine.api import errors, services
from engine.api.auth import api_view, check_rate


@api_view("POST", platform=False, refuse=errors.ims_bad_input)
def token(request: HttpRequest) -> JsonResponse:
    """Form-encoded client credentials (query parameters work too, as at IMS)."""
    params = {**request.GET.dict(), **request.POST.dict()}
    check_rate(params.get("client_id", ""), bucket="token")
    if params.get("grant_type") != "client_credentials":
        raise errors.ims_error("unsupported_grant_type", errors.IMS_GRANT_UNSUPPORTED)
    issued = services.token_issue(client_id=params.get("client_id", ""),
                                  client_secret=params.get("client_secret", ""))
    return JsonResponse({"access_token": issued.access_token, "token_type": "bearer",
                         "expires_in": issued.expires_in})
