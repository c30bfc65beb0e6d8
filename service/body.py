"""Request bodies: the media type, the size limit, and JSON that refuses what orjson would accept silently."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from service.errors import BodyTooLarge, InvalidInput, MalformedJSON, UnsupportedMediaType, detail, header_detail


def json_media(media: str) -> bool:
    """application/json or any +json type: what /predict and KServe v1 accept."""
    return media == "application/json" or media.endswith("+json")


def check_media(headers: Mapping[str, str], accepted: Callable[[str], bool]) -> None:
    """A 415 naming Content-Type unless the protocol accepts the request's media type."""
    content_type = headers.get("content-type", "")
    if not accepted(content_type.split(";", 1)[0].strip().lower()):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            [header_detail("Content-Type", "must be application/json")],
        )


async def read_body(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed `limit`."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} (MODELSHIP_MAX_BODY_BYTES)")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes (MODELSHIP_MAX_BODY_BYTES)")
        parts.append(chunk)
    return b"".join(parts)


def parse(body: bytes) -> Any:
    if not body:
        raise MalformedJSON("the body is empty; send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN, Infinity and integers beyond 64 bits. The standard parser accepts
        # them, so validation can name the field instead of pointing at a byte offset.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
    if _may_repeat_a_key(body, payload):
        _reject_duplicate_keys(body)
    return payload


def _may_repeat_a_key(body: bytes, payload: Any) -> bool:
    """False when no object of `body` can repeat a key; True sends it through the exact check.

    orjson keeps the last of repeated keys silently. Every key is followed by a colon, so when orjson's
    own re-encoding of `payload` holds as many colons as `body`, no key was lost. Without a backslash
    in the body, every string re-encodes to the same bytes and so holds the same colons, and that
    comparison is exact; it runs in C, where counting keys value by value in Python cost a tenth of a
    batch request. With a backslash (an escape can spell a colon), or a payload orjson cannot encode
    (integers beyond 64 bits, nesting past its depth limit), keys are counted one by one.
    """
    colons = body.count(b":")
    if not colons:
        return False
    if b"\\" not in body:
        with contextlib.suppress(orjson.JSONEncodeError):
            return colons > orjson.dumps(payload).count(b":")
    return colons > _count_keys(payload)


def _count_keys(value: Any) -> int:
    # Iterative: orjson accepts nesting up to 1024 levels, deeper than Python's recursion limit.
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _reject_duplicate_keys(body: bytes) -> None:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(
                    f"the field {key!r} appears more than once in one object",
                    [detail(["body", key], "duplicate key")],
                )
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=hook)
    except InvalidInput:
        raise
    except RecursionError:
        # Valid JSON that orjson took, but too deep for the standard parser the duplicate check needs.
        raise MalformedJSON("the body nests too deeply to check; an instance needs 2 levels") from None
    except ValueError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
