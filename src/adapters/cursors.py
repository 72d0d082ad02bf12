"""Opaque page cursors for every paged listing (the adapters own every key format).

A cursor is the last key of the page it ends, base64url-encoded JSON, bound to one listing
(its partition key). Cursors come back from clients, so decoding trusts nothing: any value
that is not a cursor this listing issued, within the query's bounds, is refused as the
domain's `BadCursor` (a 422 naming the ``cursor`` parameter), never passed to the table.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from domain.errors import BadCursor

__all__ = ["MAX_CURSOR_CHARS", "decode_cursor", "encode_cursor"]

MAX_CURSOR_CHARS = 2000
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def encode_cursor(last_key: Mapping[str, str]) -> str:
    text = json.dumps(dict(last_key), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str,
    *,
    pk: str,
    sk_prefix: str = "",
    sk_range: tuple[str, str] | None = None,
    pk_name: str = "pk",
    sk_name: str = "sk",
) -> dict[str, str]:
    """The table key a cursor stands for, if it belongs to the listing of `pk`.

    Raises
    ------
    BadCursor
        Anything else: not base64url JSON, not a flat object of the two key strings,
        another listing's key, or a sort key outside `sk_prefix` / `sk_range`.
    """
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise BadCursor("cursor of the wrong length")
    if _BASE64URL.fullmatch(cursor) is None:
        raise BadCursor("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor.rstrip("=") + "=" * (-len(cursor.rstrip("=")) % 4))
        # a flat object is all a cursor can be: refuse nesting before the parser recurses
        if raw.count(b"{") != 1 or b"[" in raw:
            raise BadCursor("not a cursor")
        key = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCursor("not a cursor") from exc
    if (
        not isinstance(key, dict)
        or set(key) != {pk_name, sk_name}
        or not all(isinstance(v, str) for v in key.values())
    ):
        raise BadCursor("not a cursor")
    sk = key[sk_name]
    if key[pk_name] != pk or not sk.startswith(sk_prefix):
        raise BadCursor("a cursor of another listing")
    if not sk.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in sk):
        raise BadCursor("not a cursor")
    if sk_range is not None and not sk_range[0] <= sk <= sk_range[1]:
        raise BadCursor("a cursor outside the requested range")
    return {pk_name: pk, sk_name: sk}
