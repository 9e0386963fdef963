"""Opaque NextToken paging with AWS's InvalidNextToken on tampered or foreign tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

from sandbox.awsproto import AwsError

T = TypeVar("T")


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def encode_token(offset: int, scope: str, **extra: object) -> str:
    raw = json.dumps({"o": offset, "s": _fingerprint(scope), **extra}, sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str | None, scope: str, code: str = "InvalidNextToken") -> dict:
    """Return the token payload ({"o": offset, ...}); `scope` must match the request that produced it."""
    if not token:
        return {"o": 0}
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["s"] != _fingerprint(scope) or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError("scope")
        return data
    except Exception as exc:
        raise AwsError(code, "The specified token isn't valid.") from exc


def page(items: Sequence[T], max_results: int, token: str | None, scope: str) -> tuple[list[T], str | None]:
    """Slice `items` for one page; the next token is None on the last page."""
    start = decode_token(token, scope)["o"]
    chunk = list(items[start : start + max_results])
    end = start + len(chunk)
    return chunk, (encode_token(end, scope) if end < len(items) else None)
