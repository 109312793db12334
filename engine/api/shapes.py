"""Our rows as AEP's JSON objects (field names and shapes of spec/aep-api.md)."""

from __future__ import annotations

import uuid
from typing import Any

from engine.models import (
    CLASS_SCHEMA_NAMES,
    DEFAULT_SANDBOX,
    AttributeMerge,
    MergePolicy,
    SegmentDefinition,
    XdmClass,
)

DEFINITIONS_PATH = "/data/core/ups/segment/definitions"
MERGE_POLICIES_PATH = "/data/core/ups/config/mergePolicies"
SANDBOX_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4d59-9a0b-5e2a7f7b9c10")
PROFILE_INSTANCE_ID = "ups"
DEFAULT_EVALUATION_INFO = {"batch": {"enabled": True}, "continuous": {"enabled": False},
                           "synchronous": {"enabled": False}}


def sandbox_json(name: str) -> dict[str, Any]:
    """The sandbox object echoed on UPS resources (§1.1); the id is stable per name."""
    return {"sandboxId": str(uuid.uuid5(SANDBOX_NAMESPACE, name)), "sandboxName": name,
            "type": "production" if name == DEFAULT_SANDBOX else "development",
            "default": name == DEFAULT_SANDBOX}


def definition_json(definition: SegmentDefinition) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(definition.id),
        "name": definition.name,
        "description": definition.description,
        "schema": {"name": definition.schema_name},
        "profileInstanceId": PROFILE_INSTANCE_ID,
        "imsOrgId": definition.ims_org_id,
        "sandbox": sandbox_json(definition.sandbox),
        "expression": {"type": definition.expression_type,
                       "format": definition.expression_format,
                       "value": definition.expression_value},
        "mergePolicyId": definition.merge_policy_id,
        "evaluationInfo": definition.evaluation_info or DEFAULT_EVALUATION_INFO,
        "dataGovernancePolicy": {"excludeOptOut": True},
        "creationTime": definition.creation_time,
        "updateEpoch": definition.update_time // 1000,
        "updateTime": definition.update_time,
    }
    if definition.payload_schema:
        body["payloadSchema"] = definition.payload_schema
    if definition.ttl_in_days is not None:
        body["ttlInDays"] = definition.ttl_in_days
    return body


def definition_location(definition: SegmentDefinition) -> str:
    return f"{DEFINITIONS_PATH}/{definition.id}"


def merge_policy_json(policy: MergePolicy, org_id: str) -> dict[str, Any]:
    attribute_merge: dict[str, Any] = {"type": policy.attribute_merge}
    if policy.attribute_merge == AttributeMerge.DATASET_PRECEDENCE:
        attribute_merge["order"] = list(policy.dataset_order)
    return {
        "id": str(policy.id),
        "name": policy.name,
        "imsOrgId": org_id,
        "sandbox": sandbox_json(policy.sandbox),
        "schema": {"name": CLASS_SCHEMA_NAMES[XdmClass.PROFILE]},
        "version": policy.version,
        "identityGraph": {"type": policy.identity_graph},
        "attributeMerge": attribute_merge,
        "isActiveOnEdge": policy.is_active_on_edge,
        "default": policy.default,
        "updateEpoch": int(policy.updated_at.timestamp()),
    }
