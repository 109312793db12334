"""The checks behind /healthz: database, broker, the engine's data directory."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from kombu import Connection

from config.broker import waiting_messages


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means "not healthy"
        return Check("database", False, f"{type(error).__name__}: {error}")
    return Check("database", True, connection.vendor)


def check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith("sqlite:"):  # the embedded broker of `make run` (config/broker.py)
        try:
            waiting = waiting_messages(url, timeout=2)
        except sqlite3.Error as error:
            return Check("broker", False, f"embedded SQLite broker: {error}")
        return Check("broker", True, f"embedded SQLite broker, {waiting} messages waiting")
    broker = Connection(url, transport_options=options, connect_timeout=2)
    try:
        broker.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:  # kombu raises the transport's own errors
        return Check("broker", False, f"{type(error).__name__}: cannot reach {broker.as_uri()}")
    finally:
        broker.release()
    return Check("broker", True, broker.as_uri())


def check_engine_data_dir() -> Check:
    folder = Path(settings.ENGINE_DATA_DIR)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return Check("engine_data_dir", False, f"cannot create {folder}: {error.strerror}")
    if not os.access(folder, os.W_OK):
        return Check("engine_data_dir", False, f"{folder} is not writable")
    return Check("engine_data_dir", True, str(folder))


def run_checks() -> list[Check]:
    return [check_database(), check_broker(), check_engine_data_dir()]
