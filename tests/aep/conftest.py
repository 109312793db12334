"""aep tests: a fake AEP (IMS + API) on httpx.MockTransport with a fake clock, and the built-in
engine in-process through httpx.WSGITransport, reusing the engine API tests' fixtures.

Nothing here sleeps: retry policies get a FakeTime whose sleep() only moves its clock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from aep import AEPClient, Credentials, RetryPolicy, clear_schema_cache, clear_token_cache
from tests.engine.api.conftest import api_settings, make_api  # noqa: F401  (fixtures)
from tests.engine.conftest import engine_dir  # noqa: F401  (autouse: a fresh ENGINE_DATA_DIR)

BASE = "https://platform.adobe.io"
IMS = "https://ims-na1.adobelogin.com"
ORG = "1BD6382559DF0C130A49422D@AdobeOrg"
SECRET = "p8e-S3CRET-never-log-me-4f9a"
CREDS = Credentials(ims_url=IMS, client_id="0123456789abcdef0123456789abcdef",
                    client_secret=SECRET, org_id=ORG)


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    clear_schema_cache()
    clear_token_cache()
    yield
    clear_schema_cache()
    clear_token_cache()


@dataclass
class FakeTime:
    """A monotonic clock that sleep() advances: retries cost no wall time."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def policy(self, **options: Any) -> RetryPolicy:
        options.setdefault("random", lambda: 1.0)  # the jitter's ceiling: deterministic waits
        return RetryPolicy(sleep=self.sleep, clock=self.clock, **options)


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeAEP:
    """IMS plus a scripted API. API requests take the next step of ``script`` (a response, an
    exception to raise, or a function of the request); when it is empty, ``default``."""

    expires_in: float = 86399
    ims_script: list[Step] = field(default_factory=list)
    script: list[Step] = field(default_factory=list)
    default: Callable[[httpx.Request], httpx.Response] | None = None
    issued: list[str] = field(default_factory=list)
    ims_requests: list[httpx.Request] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            self.ims_requests.append(request)
            if self.ims_script:
                return self._play(self.ims_script.pop(0), request)
            token = f"tok-{len(self.issued) + 1}-eyJhbGciOiJSUzI1NiJ9.secret-part"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "bearer",
                                             "expires_in": self.expires_in})
        self.requests.append(request)
        if self.script:
            return self._play(self.script.pop(0), request)
        if self.default is not None:
            return self.default(request)
        return httpx.Response(200, json={})

    @staticmethod
    def _play(step: Step, request: httpx.Request) -> httpx.Response:
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake() -> FakeAEP:
    return FakeAEP()


@pytest.fixture
def make_client(fake: FakeAEP, fake_time: FakeTime) -> Callable[..., AEPClient]:
    def make(sandbox: str = "prod", **policy: Any) -> AEPClient:
        return AEPClient(BASE, CREDS, sandbox, transport=fake.transport(),
                         retry=fake_time.policy(**policy))

    return make


@pytest.fixture
def aep_client(make_client: Callable[..., AEPClient]) -> AEPClient:
    """An AEPClient on the fake AEP (named so as not to hide pytest-django's ``client``)."""
    return make_client()


def ups_error(status: int, kind: str, message: str) -> dict[str, Any]:
    """spec §8.1 shape 3, the modern UPS error body."""
    return {"requestId": "YrgXiqvCobA9neOmrzCP7kQLi4yIizoP",
            "errors": {str(status): [{"code": status, "message": message}]},
            "type": f"https://ns.adobe.com/aep/errors/{kind}", "title": message,
            "status": status}


def reply(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", **headers})


# --------------------------------------------------------------------------- the built-in engine


class InTestTransaction:
    """The WSGI application, minus Django's closing of the database connection when a request
    starts and ends — as Django's test Client does. The engine answers inside the test's
    transaction; closing the connection would end it (with a file-based SQLite test database,
    e.g. whenever tests/jobs/test_worker.py is collected)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from django.core.signals import request_started
        from django.db import close_old_connections

        request_started.disconnect(close_old_connections)
        try:
            return _ClosingWithoutDatabase(self.app(environ, start_response))
        finally:
            request_started.connect(close_old_connections)


class _ClosingWithoutDatabase:
    def __init__(self, result: Any) -> None:
        self.result = result

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.result)

    def close(self) -> None:
        from django.core.signals import request_finished
        from django.db import close_old_connections

        request_finished.disconnect(close_old_connections)
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            request_finished.connect(close_old_connections)


class CountingTransport(httpx.BaseTransport):
    """WSGITransport to the engine, counting the requests per path."""

    def __init__(self) -> None:
        from config.wsgi import application

        self.inner = httpx.WSGITransport(app=InTestTransaction(application))
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return self.inner.handle_request(request)


@dataclass
class Engine:
    client: AEPClient
    transport: CountingTransport
    client_id: str
    secret: str


@pytest.fixture
def engine(make_api: Any, tmp_path: Path) -> Engine:  # noqa: F811
    """An AEPClient talking to the engine in this process, over a small store (6 people)."""
    from tests.engine.api.store import build_store

    build_store(tmp_path / "input")
    row = make_api()
    transport = CountingTransport()
    creds = Credentials(ims_url="http://testserver", client_id=row.client_id,
                        client_secret=row.secret, org_id=row.org)
    client = AEPClient("http://testserver", creds, "prod", transport=transport,
                       retry=FakeTime().policy(max_attempts=2))
    return Engine(client, transport, row.client_id, row.secret)


@pytest.fixture
def engine_tasks(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """``with engine_tasks(): client.create_...()`` runs the Celery tasks the engine enqueues
    after its commit, eagerly in this process, as a worker of the engine queue would."""
    from config.celery import app

    @contextlib.contextmanager
    def run() -> Iterator[None]:
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield
        finally:
            app.conf.task_always_eager = eager

    return run
