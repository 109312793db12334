"""/healthz reports the database, the broker and the engine's data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def test_healthy_when_everything_answers(client: Client) -> None:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "engine_data_dir"}
    assert all(check["ok"] for check in body["checks"].values())


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_503_when_the_broker_is_down(client: Client) -> None:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert "cannot reach redis://" in body["checks"]["broker"]["detail"]
    assert "127.0.0.1:1/0" in body["checks"]["broker"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_503_when_the_engine_data_dir_is_not_a_directory(client: Client, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with override_settings(ENGINE_DATA_DIR=blocker / "engine"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["engine_data_dir"]["ok"] is False


def test_no_password_in_broker_detail(client: Client) -> None:
    with override_settings(CELERY_BROKER_URL="redis://:hunter2@127.0.0.1:1/0",
                           CELERY_BROKER_TRANSPORT_OPTIONS={}):
        body = client.get("/healthz").content.decode()
    assert "hunter2" not in body
