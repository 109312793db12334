"""Routes of the engine's REST API, under the same paths as AEP and IMS.

Every route answers with and without a trailing slash (``/?$``); anything else under an API
prefix is a JSON 404, never the dashboard's HTML page.
"""

from __future__ import annotations

from django.urls import include, re_path

from engine.api import urls_ingestion, urls_jobs, urls_preview
from engine.api.views import definitions, ims, merge_policies, misc, sandboxes, schemas

app_name = "engine_api"

ups = [
    re_path(r"^segment/definitions/?$", definitions.definitions, name="definitions"),
    re_path(r"^segment/definitions/bulk-get/?$", definitions.definitions_bulk_get,
            name="definitions-bulk-get"),
    re_path(r"^segment/definitions/(?P<definition_id>[^/]+)/?$", definitions.definition_detail,
            name="definition"),
    re_path(r"^segment/conversion/?$", definitions.conversion, name="conversion"),
    re_path(r"^config/mergePolicies/?$", merge_policies.merge_policies, name="merge-policies"),
    re_path(r"^config/mergePolicies/(?P<policy_id>[^/]+)/?$", merge_policies.merge_policy_detail,
            name="merge-policy"),
    *urls_preview.ups,
    *urls_jobs.ups,
]

schema_registry = [
    re_path(r"^tenant/unions/?$", schemas.unions, name="unions"),
    re_path(r"^tenant/schemas/(?P<schema_id>[\s\S]+?)/?$", schemas.union_schema, name="schema"),
]

sandbox_management = [
    re_path(r"^$", sandboxes.sandboxes, name="sandboxes-available"),
    re_path(r"^sandboxes/?$", sandboxes.sandboxes, name="sandboxes"),
    re_path(r"^sandboxes/(?P<name>[^/]+)/?$", sandboxes.sandbox_detail, name="sandbox"),
]

ims_routes = [
    re_path(r"^token/v3/?$", ims.token, name="token"),
]

urlpatterns = [
    re_path(r"^data/openapi\.json/?$", misc.openapi, name="openapi"),
    re_path(r"^data/core/ups/", include(ups)),
    re_path(r"^data/foundation/schemaregistry/", include(schema_registry)),
    re_path(r"^data/foundation/sandbox-management/?$", sandboxes.sandboxes,
            name="sandboxes-available-no-slash"),
    re_path(r"^data/foundation/sandbox-management/", include(sandbox_management)),
    re_path(r"^data/foundation/", include([*urls_preview.foundation, *urls_jobs.foundation,
                                           *urls_ingestion.foundation])),
    re_path(r"^ims/", include(ims_routes)),
    re_path(r"^(?:data|ims)(?:/[\s\S]*)?$", misc.route_not_found, name="not-found"),
]
