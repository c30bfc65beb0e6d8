"""Optional API keys with scopes: `predict` for POST /predict, `read` for /predictions and /model, `feedback` for
POST /feedback, and `synthetic` to mark a request's `X-Modelship-Source` as anything but `live`.

The keys file has one key per line: `<key-id> <scope>[,<scope>] <secret>`, where the secret is the
key itself or `sha256:<hex digest of the key>`. Only digests are kept in memory and compared, in
constant time, against the digest of what the client sends (`Authorization: Bearer <key>` or
`X-API-Key: <key>`). Neither keys nor digests are ever logged.

A route declares the scope it needs, once, on the route: `dependencies=[require_scope("read")]`.
OpenAPI's `security` comes from that declaration (FastAPI documents the security schemes a route
depends on), and the pure-ASGI /predict reads its scopes from the same declaration
(`declared_scopes`). Both paths call `Authenticator.require`, the one check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, params
from fastapi.routing import iter_route_contexts
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.routing import BaseRoute

from service.errors import Forbidden, Unauthorized

SCOPES = frozenset({"predict", "read", "synthetic", "feedback"})


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scopes: frozenset[str]
    digest: bytes


class KeyFileError(ValueError):
    pass


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def load_keys(path: Path) -> list[ApiKey]:
    keys = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise KeyFileError(f"{path}:{number}: expected `<key-id> <scopes> <secret>`")
        key_id, scopes_text, secret = parts
        scopes = frozenset(scopes_text.split(","))
        if not scopes <= SCOPES:
            raise KeyFileError(f"{path}:{number}: unknown scope(s) {sorted(scopes - SCOPES)}; use {sorted(SCOPES)}")
        digest = bytes.fromhex(secret[7:]) if secret.startswith("sha256:") else _digest(secret)
        keys.append(ApiKey(key_id, scopes, digest))
    if not keys:
        raise KeyFileError(f"{path} holds no keys; remove MODELSHIP_API_KEYS_FILE to disable auth")
    return keys


class Authenticator:
    def __init__(self, keys: list[ApiKey] | None) -> None:
        self.keys = keys or []

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def require(self, headers: Mapping[str, str], *scopes: str) -> str | None:
        """Return the key id allowed every one of `scopes`; raise 401/403 otherwise. No-op when auth is off.

        `headers` maps lower-case header names to values (Starlette's Headers, or a plain dict)."""
        if not self.keys:
            return None
        presented = _presented_key(headers)
        if presented is None:
            raise Unauthorized("this route needs an API key: send `Authorization: Bearer <key>` or `X-API-Key`")
        digest = _digest(presented)
        match = None
        for key in self.keys:  # compare with every key, so timing does not reveal which one matched
            if hmac.compare_digest(digest, key.digest):
                match = key
        if match is None:
            raise Unauthorized("the API key is not valid")
        for scope in scopes:
            if scope not in match.scopes:
                raise Forbidden(f"the API key {match.key_id!r} lacks the {scope!r} scope")
        return match.key_id


def _presented_key(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return headers.get("x-api-key") or None


# The two ways to send a key, as OpenAPI security schemes. They only document: `Authenticator.require`
# reads the headers itself, so the FastAPI routes and the pure-ASGI /predict check keys alike.
_BEARER = HTTPBearer(scheme_name="bearer", auto_error=False)
_API_KEY = APIKeyHeader(name="X-API-Key", scheme_name="apiKey", auto_error=False)


async def _check_key(
    request: Request,
    wanted: SecurityScopes,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _api_key: Annotated[str | None, Depends(_API_KEY)],
) -> str | None:
    authenticator: Authenticator = request.app.state.modelship.auth
    return authenticator.require(request.headers, *wanted.scopes)


def require_scope(scope: str) -> params.Security:
    """The dependency a protected route declares: `dependencies=[require_scope("read")]`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {sorted(SCOPES)}")
    return params.Security(_check_key, scopes=[scope])


@dataclass(frozen=True)
class DeclaredRoute:
    """A FastAPI route as an ASGI fast path answering for it needs it: the route and its declared scopes."""

    route: Any  # what a fast path sets as scope["route"], where RequestContext reads the metrics label
    scopes: tuple[str, ...]


def declared_route(routes: Sequence[BaseRoute], method: str, path: str) -> DeclaredRoute:
    """The route `method path` and the scopes it declares with `require_scope`: what a fast path enforces.

    A LookupError at start-up when the routes no longer have it."""
    for route in iter_route_contexts(routes):
        if route.path == path and method in (route.methods or ()):
            return DeclaredRoute(route.original_route, scopes_of(route))
    raise LookupError(f"no route {method} {path}")


def declared_scopes(routes: Sequence[BaseRoute], method: str, path: str) -> tuple[str, ...]:
    """The scopes the route `method path` declares (`declared_route`)."""
    return declared_route(routes, method, path).scopes


def scopes_of(route: Any) -> tuple[str, ...]:
    """The scopes one route (an APIRoute, or the context of an included one) declares with `require_scope`."""
    dependencies: list[Any] = getattr(route, "dependencies", [])
    return tuple(scope for d in dependencies if _is_key_check(d) for scope in d.scopes)


def _is_key_check(dependency: Any) -> bool:
    return isinstance(dependency, params.Security) and dependency.dependency is _check_key
