"""API keys are declared on the route: OpenAPI's `security` and the enforced 401/403 agree, route by route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import declared_scopes, require_scope
from service.settings import Settings

KEYS = "reader read s3cret-read\nwriter predict s3cret-predict\nlabeller feedback s3cret-feedback\n"
KEY_WITH = {"read": "s3cret-read", "predict": "s3cret-predict", "feedback": "s3cret-feedback"}
KEY_WITHOUT = {"read": "s3cret-predict", "predict": "s3cret-read", "feedback": "s3cret-read"}
SKIPPED = {"HEAD", "OPTIONS"}  # Starlette adds HEAD to every GET; it answers as the GET does


def serve(pg_url: str, artifact: Path, folder: Path, keys: bool, fast: bool) -> TestClient:
    (folder / "keys").write_text(KEYS)
    settings = Settings(model_dir=artifact, database_url=pg_url, data_dir=folder, spool_dir=folder / "spool",
                        access_log=False, api_keys_file=folder / "keys" if keys else None)  # fmt: skip
    app = create_app(settings, fast_paths=fast)  # without fast paths, the FastAPI routes answer /predict, v1, v2
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(params=["fast-path", "fastapi-route"])
def keyed(request: pytest.FixtureRequest, pg_url: str, house_artifact: Path, tmp_path: Path) -> Iterator[TestClient]:
    with serve(pg_url, house_artifact, tmp_path, keys=True, fast=request.param == "fast-path") as client:
        yield client


@pytest.fixture
def open_client(pg_url: str, house_artifact: Path, tmp_path: Path) -> Iterator[TestClient]:
    with serve(pg_url, house_artifact, tmp_path, keys=False, fast=True) as client:
        yield client


def operations(client: TestClient) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(method, path, url, the operation in OpenAPI or None) for every route the app serves; the url has the
    path's parameters filled in."""
    spec = client.get("/openapi.json").json()
    manifest = client.get("/model", headers={"x-api-key": KEY_WITH["read"]}).json()
    found = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        assert route.path is not None
        url = route.path.format(name=manifest["name"], version=manifest["version"])
        for method in sorted(set(route.methods or ()) - SKIPPED):
            documented = isinstance(route.original_route, APIRoute) and route.include_in_schema
            operation = spec["paths"][route.path][method.lower()] if documented else None
            found.append((method, route.path, url, operation))
    documented_count = sum(len(ops) for ops in spec["paths"].values())
    assert documented_count == sum(op is not None for *_, op in found) >= 14, "a route OpenAPI lacks, or vice versa"
    return found


def call(client: TestClient, method: str, url: str, key: str | None = None) -> Any:
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    return client.request(method, url, content=b"{}" if method == "POST" else None, headers=headers)


def required_scopes(operation: dict[str, Any] | None) -> set[str]:
    """The scopes OpenAPI says a route needs: each security requirement's list, which must agree."""
    requirements = (operation or {}).get("security", [])
    scopes = {frozenset(scopes) for requirement in requirements for scopes in requirement.values()}
    assert len(scopes) <= 1, f"the schemes of one route ask for different scopes: {requirements}"
    return set(next(iter(scopes), ()))


# The routes that must stay protected; a new protected route is checked without being added here.
PROTECTED = {"POST /predict", "POST /feedback", "GET /predictions", "GET /model", "GET /v2/models/{name}",
             "GET /v2/models/{name}/versions/{version}", "POST /v2/models/{name}/infer",
             "POST /v2/models/{name}/versions/{version}/infer"}  # fmt: skip


def test_openapi_security_is_what_every_route_enforces(keyed: TestClient) -> None:
    secured = set()
    for method, path, url, operation in operations(keyed):
        scopes = required_scopes(operation)
        anonymous = call(keyed, method, url)
        if not scopes:
            assert anonymous.status_code not in (401, 403), (method, url, anonymous.text)
            continue
        secured.add(f"{method} {path}")
        (scope,) = scopes
        assert anonymous.status_code == 401, (method, url, anonymous.text)
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="modelship"'
        assert call(keyed, method, url, "not-a-key").status_code == 401, (method, url)
        lacking = call(keyed, method, url, KEY_WITHOUT[scope])
        assert lacking.status_code == 403 and f"lacks the {scope!r} scope" in lacking.text, (method, url, lacking.text)
        allowed = call(keyed, method, url, KEY_WITH[scope])
        assert allowed.status_code not in (401, 403), (method, url, allowed.text)
        assert operation is not None and {"401", "403"} <= set(operation["responses"]), (method, url)
    assert PROTECTED <= secured, PROTECTED - secured


def test_the_security_schemes_are_the_two_headers_a_key_may_come_in(keyed: TestClient) -> None:
    spec = keyed.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    assert spec["paths"]["/predictions"]["get"]["security"] == [{"bearer": ["read"]}, {"apiKey": ["read"]}]
    by_header = keyed.get("/predictions", headers={"x-api-key": KEY_WITH["read"]})
    assert by_header.status_code == 200


def test_without_keys_no_route_claims_or_enforces_one(open_client: TestClient) -> None:
    spec = open_client.get("/openapi.json").json()
    assert "securitySchemes" not in spec["components"]
    for method, _, url, operation in operations(open_client):
        assert operation is None or "security" not in operation, (method, url)
        assert call(open_client, method, url).status_code not in (401, 403), (method, url)


def test_error_bodies_keep_each_protocols_shape(keyed: TestClient) -> None:
    """A 401 from the declared check is the service's error body, and on v2 routes the spec's."""
    needs_key = "this route needs an API key: send `Authorization: Bearer <key>` or `X-API-Key`"
    assert json.loads(keyed.get("/model").content) == {"error": "unauthorized", "message": needs_key, "details": []}
    assert json.loads(keyed.get("/v2/models/anything").content) == {"error": needs_key}
    lacking = keyed.post("/v2/models/anything/infer", headers={"x-api-key": KEY_WITH["read"]})
    assert lacking.status_code == 403 and lacking.json() == {"error": "the API key 'reader' lacks the 'predict' scope"}
    # the key is checked before the model name: an unknown model is a 404 only to a caller with the scope
    assert keyed.post("/v2/models/anything/infer", headers={"x-api-key": KEY_WITH["predict"]}).status_code == 404


def test_a_new_route_declares_its_scope_in_one_place() -> None:
    router = APIRouter()

    @router.get("/secret", dependencies=[require_scope("read")])
    async def secret() -> None: ...

    @router.get("/public")
    async def public() -> None: ...

    app = FastAPI()
    app.include_router(router, prefix="/x")
    assert declared_scopes(app.routes, "GET", "/x/secret") == ("read",)
    assert declared_scopes(app.routes, "GET", "/x/public") == ()
    assert app.openapi()["paths"]["/x/secret"]["get"]["security"] == [{"bearer": ["read"]}, {"apiKey": ["read"]}]
    with pytest.raises(LookupError, match="no route POST /x/secret"):
        declared_scopes(app.routes, "POST", "/x/secret")
    with pytest.raises(ValueError, match="unknown scope 'admin'"):
        require_scope("admin")
