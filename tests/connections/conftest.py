"""Connections tests: a connection factory and the secret every test hunts for in responses."""

from __future__ import annotations

from typing import Any

import pytest

SECRET = "p8e-TOPSECRET-value-9f3c1a7b2d"
ORG = "1BD6382559DF0C130A49422D@AdobeOrg"


@pytest.fixture
def make_connection(db: Any) -> Any:
    from connections.services import connection_create

    def make(name: str = "Acme production", *, actor: Any = None, **fields: Any) -> Any:
        values: dict[str, Any] = {
            "kind": "adobe", "base_url": "https://platform.adobe.io",
            "ims_url": "https://ims-na1.adobelogin.com", "org_id": ORG,
            "client_id": "0123456789abcdef0123456789abcdef", "client_secret": SECRET,
            "default_sandbox": "prod", **fields,
        }
        return connection_create(actor=actor, name=name, **values)

    return make
