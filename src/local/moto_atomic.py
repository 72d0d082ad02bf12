"""Make moto's DynamoDB apply each request atomically, as DynamoDB does.

moto evaluates a ConditionExpression and then writes, without a lock, so two threads can both
pass `attribute_not_exists(pk)`. Real DynamoDB never lets that happen, and our exactly-once
guarantees rest on it. The embedded stack and the tests therefore serialise moto's DynamoDB
request handling (one lock around the emulator's dispatch; production code is untouched),
and roll back a cancelled transaction from a journal instead of a copy of the table (below).
"""

from __future__ import annotations

import copy
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
    make_transactions_journaled()
    _PATCHED = True


# -- transactions without a copy of the table ----------------------------------------------
#
# moto's TransactWriteItems deep-copies every table it touches before applying the writes, so
# that a cancelled transaction can be rolled back: 20 ms at 100 items, 1.4 s at 10,000, which
# would make the embedded stack unusable for the scoring function's per-batch transactions at
# any real size. Under the lock above nothing else runs during a transaction, so keeping a
# journal of the items it touches (their previous versions) and of the stream records it adds
# rolls back exactly as the full copy does, at a cost proportional to the transaction.


def _journaled_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`, its table copy replaced by a
    journal of the touched items (and stream records) for the rollback."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models.dynamo_type import DynamoType

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, previous item)
    streams: dict[str, tuple[Any, int]] = {}

    def remember(table_name: str, key: dict[str, Any], *, in_place: bool) -> None:
        table = self.get_table(table_name)
        shard = table.stream_shard
        if shard is not None and table_name not in streams:
            streams[table_name] = (shard, len(shard.items))
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = (
            DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
        )
        previous = table.get_item(hash_value, range_value)
        # a Put or Delete replaces the item object and leaves the old one as it was; only an
        # Update changes it in place, so only then is a copy needed
        if in_place and previous is not None:
            previous = copy.deepcopy(previous)
        journal.append((table, hash_value, range_value, previous))

    def roll_back() -> None:
        for table, hash_value, range_value, previous in reversed(journal):
            if range_value is None:
                if previous is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = previous
            elif previous is None:
                table.items.get(hash_value, {}).pop(range_value, None)
                if hash_value in table.items and not table.items[hash_value]:
                    del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = previous
        for shard, length in streams.values():
            del shard.items[length:]

    target_items: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, Any]] = []
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in target_items:
                raise MultipleTransactionsException()
            target_items.add(unique)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                remember(table_name, key, in_place=op_type == "Update")
            # the condition held just above, under the lock: it is not evaluated twice
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # noqa: BLE001 - moto reports every other failure per item
            errors.append((type(exc).__name__, str(exc), original_item))
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


_ORIGINAL_TRANSACT: Any = None


def make_transactions_journaled() -> None:
    """Replace moto's copy-the-table rollback of TransactWriteItems by a journal (idempotent)."""
    global _ORIGINAL_TRANSACT
    if _ORIGINAL_TRANSACT is not None:
        return
    from moto.dynamodb.models import DynamoDBBackend

    _ORIGINAL_TRANSACT = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _journaled_transact_write_items  # type: ignore[method-assign]
