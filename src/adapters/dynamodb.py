"""A thin typed layer over the low-level DynamoDB client.

Converts between Python values and DynamoDB JSON (Decimal only here, at the edge) and turns
`ConditionalCheckFailedException` into `ConditionFailed`, carrying the existing item when the
call asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from adapters.bulk_read import decode_item, gc_paused


class TransactionCancelled(Exception):
    """A transaction that changed nothing; `reasons` has one code per operation, in order.

    Codes are DynamoDB's: ``ConditionalCheckFailed``, ``TransactionConflict`` (another
    transaction held an item: retry), ``ValidationError``...; None where the operation was
    not the cause. It never leaves the adapters.
    """

    def __init__(self, reasons: list[str | None]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


class ConditionFailed(Exception):
    """A conditional write found the item in another state; it never leaves the adapters.

    `existing` carries the item found, when the call asked for it (ALL_OLD).
    """

    def __init__(self, existing: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.existing = existing


__all__ = ["ConditionFailed", "DynamoTable", "deserialize", "serialize", "to_decimal"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_decimal(value: float | int) -> Decimal:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("DynamoDB cannot store non-finite numbers")
    # repr keeps the float exactly round-trippable (17 significant digits at most)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _python_to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, int | float):
        return to_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): _python_to_dynamo(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return {_python_to_dynamo(v) for v in value}
    if isinstance(value, list | tuple):
        return [_python_to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__}")


def _dynamo_to_python(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _dynamo_to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dynamo_to_python(v) for v in value]
    if isinstance(value, set):
        return {_dynamo_to_python(v) for v in value}
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_python_to_dynamo(v)) for k, v in item.items()}


def deserialize(image: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _dynamo_to_python(_deserializer.deserialize(v)) for k, v in image.items()}


def serialize_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_python_to_dynamo(v)) for k, v in values.items()}


def _is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoTable:
    """One table, reached through an injected boto3 DynamoDB client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: Mapping[str, str], *, consistent: bool = True) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.name, Key=serialize(key), ConsistentRead=consistent
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_existing: bool = False,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
            if return_existing:
                kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if values:
            kwargs["ExpressionAttributeValues"] = serialize_values(values)
        try:
            self.client.put_item(**kwargs)
        except ClientError as exc:
            if _is_condition_failure(exc):
                old = exc.response.get("Item")
                raise ConditionFailed(deserialize(old) if old else None) from None
            raise

    def update(
        self,
        key: Mapping[str, str],
        *,
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_new: bool = False,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """Update one item; with `return_new` (`return_old`) the item after (before) it."""
        if return_new and return_old:
            raise ValueError("an update returns the item after it or before it, not both")
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize(key),
            "UpdateExpression": update,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if values:
            kwargs["ExpressionAttributeValues"] = serialize_values(values)
        if return_new or return_old:
            kwargs["ReturnValues"] = "ALL_NEW" if return_new else "ALL_OLD"
        try:
            response = self.client.update_item(**kwargs)
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ConditionFailed(None) from None
            raise
        attributes = response.get("Attributes")
        return deserialize(attributes) if attributes else None

    def delete(
        self,
        key: Mapping[str, str],
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """Delete one item; with `return_old` the item as it was (None if there was none)."""
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize(key)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = serialize_values(values)
        if return_old:
            kwargs["ReturnValues"] = "ALL_OLD"
        try:
            response = self.client.delete_item(**kwargs)
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ConditionFailed(None) from None
            raise
        attributes = response.get("Attributes")
        return deserialize(attributes) if attributes else None

    def query_page(
        self,
        *,
        pk: str,
        prefix: str | None = None,
        between: tuple[str, str] | None = None,
        index: str | None = None,
        pk_name: str = "pk",
        sk_name: str = "sk",
        forward: bool = True,
        limit: int | None = None,
        start_key: Mapping[str, Any] | None = None,
        consistent: bool = False,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk}
        condition = "#pk = :pk"
        if prefix is not None:
            names["#sk"] = sk_name
            values[":prefix"] = prefix
            condition += " AND begins_with(#sk, :prefix)"
        elif between is not None:
            names["#sk"] = sk_name
            values[":lo"], values[":hi"] = between
            condition += " AND #sk BETWEEN :lo AND :hi"
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize_values(values),
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        elif consistent:
            kwargs["ConsistentRead"] = True
        if limit:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        response = self.client.query(**kwargs)
        items = [decode_item(i) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return items, (decode_item(last) if last else None)

    def count(self, *, pk: str, prefix: str, at_most: int) -> int:
        """How many items of `pk` start with `prefix`, counted up to `at_most` only.

        Query with Select=COUNT and Limit: DynamoDB reads (and bills) only the items it
        counts, so a bound keeps the cost of asking "is this trial large?" bounded too.
        """
        counted = 0
        start: dict[str, Any] | None = None
        while counted < at_most:
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
                "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                "ExpressionAttributeValues": serialize_values({":pk": pk, ":prefix": prefix}),
                "Select": "COUNT",
                "Limit": at_most - counted,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self.client.query(**kwargs)
            counted += int(response.get("Count", 0))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return min(counted, at_most)

    def query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every page of a Query (a bulk read: the garbage collector is paused meanwhile)."""
        items: list[dict[str, Any]] = []
        with gc_paused():
            for page in self.query_pages(**kwargs):
                items.extend(page)
        return items

    def query_pages(self, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a Query, one at a time (a bulk read that holds one page only; the
        garbage collector is paused while each page is read and decoded)."""
        start: dict[str, Any] | None = None
        while True:
            with gc_paused():
                page, start = self.query_page(start_key=start, **kwargs)
            yield page
            if not start:
                return

    # -- several items at once -----------------------------------------------------------
    def op(
        self,
        kind: str,
        *,
        key: Mapping[str, Any] | None = None,
        item: Mapping[str, Any] | None = None,
        update: str | None = None,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One TransactWriteItems operation ("Put", "Update", "Delete", "ConditionCheck")."""
        body: dict[str, Any] = {"TableName": self.name}
        if item is not None:
            body["Item"] = serialize(item)
        if key is not None:
            body["Key"] = serialize(key)
        if update:
            body["UpdateExpression"] = update
        if condition:
            body["ConditionExpression"] = condition
        if names:
            body["ExpressionAttributeNames"] = dict(names)
        if values:
            body["ExpressionAttributeValues"] = serialize_values(values)
        return {kind: body}

    def transact(self, operations: Sequence[Mapping[str, Any]]) -> None:
        """All or nothing (at most 100 operations, each on another item).

        Raises `TransactionCancelled` with one reason code per operation (None where that
        operation was not the cause) when any condition failed or another transaction
        conflicted.
        """
        try:
            self.client.transact_write_items(TransactItems=list(operations))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                codes = [r.get("Code") for r in reasons]
                raise TransactionCancelled(
                    [None if code in (None, "None") else str(code) for code in codes]
                ) from None
            raise

    def batch_put(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Unconditional puts, 25 to a call (for items whose key makes a put idempotent)."""
        for start in range(0, len(items), 25):
            pending: list[dict[str, Any]] = [
                {"PutRequest": {"Item": serialize(item)}} for item in items[start : start + 25]
            ]
            for attempt in range(8):
                response = self.client.batch_write_item(RequestItems={self.name: pending})
                pending = list(response.get("UnprocessedItems", {}).get(self.name, []))
                if not pending:
                    break
                time.sleep(min(1.0, 0.02 * 2**attempt))
            if pending:
                raise RuntimeError(f"{len(pending)} items left unprocessed by BatchWriteItem")

    def batch_get(
        self, keys: Sequence[Mapping[str, str]], *, consistent: bool = True
    ) -> list[dict[str, Any]]:
        """The items that exist among `keys` (100 to a call), in no particular order."""
        found: list[dict[str, Any]] = []
        unique = list({tuple(sorted(k.items())): k for k in keys}.values())
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [serialize(k) for k in unique[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=request)
                found += [deserialize(i) for i in response.get("Responses", {}).get(self.name, [])]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.02 * 2**attempt))
            if request:
                raise RuntimeError("keys left unprocessed by BatchGetItem")
        return found
