"""Make moto's DynamoDB apply each request atomically, as DynamoDB does.

moto evaluates a ConditionExpression and then writes, without a lock, so two threads can both
pass `attribute_not_exists(pk)`. Real DynamoDB never lets that happen, and our exactly-once
guarantees rest on it. The embedded stack and the tests therefore serialise moto's DynamoDB
request handling (one lock around the emulator's dispatch; production code is untouched).
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = False


def make_dynamodb_atomic() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _PATCHED = True
