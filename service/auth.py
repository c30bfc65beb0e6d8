"""Optional API keys with scopes: `predict` for POST /predict, `read` for /predictions and /model.

The keys file has one key per line: `<key-id> <scope>[,<scope>] <secret>`, where the secret is the
key itself or `sha256:<hex digest of the key>`. Only digests are kept in memory and compared, in
constant time, against the digest of what the client sends (`Authorization: Bearer <key>` or
`X-API-Key: <key>`). Neither keys nor digests are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from service.errors import Forbidden, Unauthorized

SCOPES = frozenset({"predict", "read"})


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

    def require(self, headers: Mapping[str, str], scope: str) -> str | None:
        """Return the key id allowed for `scope`; raise 401/403 otherwise. No-op when auth is off.

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
        if scope not in match.scopes:
            raise Forbidden(f"the API key {match.key_id!r} lacks the {scope!r} scope")
        return match.key_id


def _presented_key(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return headers.get("x-api-key") or None
