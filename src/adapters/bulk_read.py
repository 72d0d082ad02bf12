"""The lean read path for bulk Queries (exports, reports): cheap to parse, cheap to collect.

A trial's export reads every participant, score and submission item of the trial, tens of
thousands of items at a few thousand participants. Measured on the embedded stack
(``benchmarks/bulk_read.py``, issue 11), three costs dominate that read, none of them DynamoDB's:

- botocore's response parser walks every attribute value against the service model, several
  times the cost of `json.loads` of the same page. A DynamoDB Query answer is JSON whose
  structure *is* the parsed output (only binary values differ: base64 text instead of bytes),
  so `lean_queries` registers a handler on botocore's public ``before-parse`` event that
  decodes a successful Query or Scan body with `json.loads` and hands botocore an empty body
  to parse. Errors (status >= 300) go through botocore's parser untouched, so retries,
  throttling and condition failures behave as before.
- boto3's `TypeDeserializer` makes a `Decimal` of every number, which `DynamoTable` then
  turned into an int or float: `decode_item` goes from DynamoDB JSON to those same values in
  one pass (the same values as `adapters.dynamodb.deserialize`; a unit test holds them equal).
- the cyclic garbage collector is triggered again and again by the allocations of the read
  and each time scans the growing heap of items already read, which are all alive and none
  of them cyclic: `gc_paused` switches it off for the read and back on after it (the items
  are freed by reference counting as ever). It nests, and is safe across threads: the
  collector is back on once the last paused read has ended.
"""

from __future__ import annotations

import base64
import gc
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary

__all__ = ["LEAN_OPERATIONS", "decode_item", "decode_value", "gc_paused", "lean_queries"]

#: the operations whose successful answers are decoded by `json.loads` alone
LEAN_OPERATIONS = ("Query", "Scan")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        value = Decimal(text)
        return int(value) if value == value.to_integral_value() else float(value)


def decode_value(value: Mapping[str, Any]) -> Any:
    """One DynamoDB JSON attribute value as `adapters.dynamodb.deserialize` gives it."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "M":
        return {k: decode_value(v) for k, v in raw.items()}
    if kind == "L":
        return [decode_value(v) for v in raw]
    if kind == "BOOL":
        return raw
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_number(n) for n in raw}
    if kind == "B":
        return _binary(raw)
    if kind == "BS":
        return {_binary(b) for b in raw}
    raise TypeError(f"unknown DynamoDB type {kind}")


def _binary(raw: str | bytes) -> Binary:
    return Binary(base64.b64decode(raw) if isinstance(raw, str) else raw)


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB JSON item (raw or botocore-parsed) as plain Python values."""
    return {k: decode_value(v) for k, v in item.items()}


def _parse_with_json(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict.get("status_code", 500) >= 300:
        return
    body = response_dict.get("body")
    if not body:
        return
    customized_response_dict.update(json.loads(body))
    response_dict["body"] = b"{}"


def lean_queries(client: Any) -> Any:
    """Have `client` (a boto3 DynamoDB client) decode Query and Scan answers with `json.loads`."""
    for operation in LEAN_OPERATIONS:
        client.meta.events.register(
            f"before-parse.dynamodb.{operation}",
            _parse_with_json,
            unique_id=f"cmt-lean-{operation}",
        )
    return client


_paused = 0
_paused_lock = threading.Lock()
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (nested and concurrent blocks share
    one pause; it comes back on, if it was on, when the last of them ends)."""
    global _paused, _was_enabled
    with _paused_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
