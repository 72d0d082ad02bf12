"""DynamoDB capacity units counted as AWS bills them, from the requests and the items.

moto does not return `ConsumedCapacity` reliably, so the units are computed here from item
sizes, by the rules AWS publishes [1]_ [2]_:

- an item's size is the sum of its attribute names' and values' sizes: a string its UTF-8
  bytes, a number 1 byte per two significant digits plus 1, a binary its bytes, a boolean or
  null 1 byte, a list or map 3 bytes plus its elements' sizes plus 1 byte per element (a map's
  keys count as names), a set the sum of its elements;
- a write (PutItem, UpdateItem, DeleteItem, each put or delete of a BatchWriteItem) costs one
  write unit per started KB of the larger of the item before and after it; a conditional
  write whose condition fails costs the same, at least 1; in a TransactWriteItems every
  operation costs twice that;
- each global secondary index the write touches costs write units of its own: the projected
  item (these indexes project everything) is written to the index when it gains or changes
  an entry there, and removed when it loses one (two writes when the index key changes);
- a GetItem costs one read unit per started 4 KB of the item (at least 1, found or not), a
  Query one per started 4 KB of the page's items together (at least 1), a BatchGetItem per
  item; eventually consistent reads (every index read) cost half, transactional ones double.

:class:`CapacityMeter` hooks a boto3 client's events: `before-parameter-build` keeps the call's
parameters, `before-call` reads the items a write will change, as they are before it, and
`after-call` reads them after it and sizes what a read returned. "Before" and "after" are read
from moto's own tables in this process (no call through the client, so nothing is counted
twice), which is why the meter needs moto in process (`mock_aws`).

References
----------
.. [1] Amazon DynamoDB Developer Guide, "DynamoDB item sizes and formats".
   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
.. [2] Amazon DynamoDB Developer Guide, "DynamoDB read and write operations" (capacity unit
   consumption for reads, writes, failed conditional writes, transactions and secondary
   indexes). https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CapacityMeter", "Units", "item_size", "read_units", "write_units"]

_KB = 1024


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "")
    if "e" in digits.lower():
        digits = digits.lower().split("e")[0]
    digits = digits.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one DynamoDB JSON value ({"S": ...}, {"M": {...}}, ...) without its name."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(inner) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"not a DynamoDB value type: {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item in DynamoDB JSON, as DynamoDB sizes it [1]_."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def write_units(size: int, *, transactional: bool = False) -> int:
    units = max(1, math.ceil(size / _KB))
    return 2 * units if transactional else units


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / (4 * _KB)))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


@dataclass
class Units:
    """Read and write units, by table (or index) and operation."""

    read: Counter[str] = field(default_factory=Counter)
    write: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def rcu(self) -> float:
        return float(sum(self.read.values()))

    @property
    def wcu(self) -> float:
        return float(sum(self.write.values()))

    def __add__(self, other: Units) -> Units:
        return Units(
            read=self.read + other.read,
            write=self.write + other.write,
            calls=self.calls + other.calls,
            requests=self.requests + other.requests,
        )


class CapacityMeter:
    """Counts the capacity units of every DynamoDB call made through one boto3 client."""

    _WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")

    def __init__(self, client: Any, *, keep_requests: bool = True) -> None:
        self.client = client
        self.keep_requests = keep_requests
        self.units = Units()
        self._id = f"cmt-capacity-{uuid.uuid4().hex}"
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._params, unique_id=self._id + "p")
        events.register("before-call.dynamodb.*", self._before, unique_id=self._id + "b")
        events.register("after-call.dynamodb.*", self._after, unique_id=self._id + "a")

    def close(self) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb.*", unique_id=self._id + "p")
        events.unregister("before-call.dynamodb.*", unique_id=self._id + "b")
        events.unregister("after-call.dynamodb.*", unique_id=self._id + "a")

    def take(self) -> Units:
        """The units since the last take (and start afresh)."""
        taken, self.units = self.units, Units()
        return taken

    # -- hooks -------------------------------------------------------------------------------
    def _params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cmt_params"] = params

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("cmt_params") or {}
        if model.name in self._WRITES:
            context["cmt_before"] = [
                (table, key, _stored(table, key)) for table, key, _ in _written(model.name, params)
            ]

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("cmt_params") or {}
        name = model.name
        self.units.calls[name] += 1
        if self.keep_requests:
            self.units.requests.append((name, params))
        failed = "Error" in parsed
        if name in self._WRITES:
            transactional = name == "TransactWriteItems"
            cancelled = failed and transactional
            for table, key, old in context.get("cmt_before", []):
                new = None if cancelled else _stored(table, key)
                size = max(item_size(old), item_size(new))
                self.units.write[table] += write_units(size, transactional=transactional)
                if not failed or cancelled:
                    for index, units in _index_writes(table, old, new):
                        self.units.write[f"{table}:{index}"] += units
            return
        if failed:
            return
        if name == "GetItem":
            consistent = bool(params.get("ConsistentRead"))
            size = item_size(parsed.get("Item"))
            self.units.read[params["TableName"]] += read_units(size, consistent=consistent)
        elif name == "Query":
            index = params.get("IndexName")
            consistent = bool(params.get("ConsistentRead")) and not index
            size = sum(item_size(i) for i in parsed.get("Items", []))
            where = params["TableName"] + (f":{index}" if index else "")
            self.units.read[where] += read_units(size, consistent=consistent)
        elif name == "BatchGetItem":
            for table, found in parsed.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                for i in found:
                    self.units.read[table] += read_units(item_size(i), consistent=consistent)
        elif name == "TransactGetItems":
            for entry in parsed.get("Responses", []):
                size = item_size(entry.get("Item"))
                self.units.read["transact"] += read_units(size, consistent=True, transactional=True)


def _written(name: str, params: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(table, key, kind) of every item a write request changes."""
    if name in ("PutItem", "UpdateItem", "DeleteItem"):
        table = params["TableName"]
        key = params.get("Key") or _key_of(table, params["Item"])
        yield table, key, name
    elif name == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    yield table, _key_of(table, request["PutRequest"]["Item"]), "Put"
                else:
                    yield table, request["DeleteRequest"]["Key"], "Delete"
    elif name == "TransactWriteItems":
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            table = body["TableName"]
            key = body.get("Key") or _key_of(table, body["Item"])
            yield table, key, kind


# -- moto's tables, read in process ---------------------------------------------------------
def _moto_table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if name in backend.tables:
                return backend.tables[name]
    raise LookupError(f"no moto table {name}")


def _key_of(table_name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    table = _moto_table(table_name)
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _stored(table_name: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = _moto_table(table_name)
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    found = table.get_item(hash_value, range_value)
    return found.to_json()["Attributes"] if found is not None else None


def _index_writes(
    table_name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> Iterator[tuple[str, int]]:
    """Write units per global secondary index (every index here projects ALL)."""
    table = _moto_table(table_name)
    for index in table.global_indexes:
        names = [k["AttributeName"] for k in index.schema]

        def entry(
            item: Mapping[str, Any] | None, names: list[str] = names
        ) -> tuple[Any, ...] | None:
            if not item or any(n not in item for n in names):
                return None
            return tuple(str(item[n]) for n in names)

        before, after = entry(old), entry(new)
        if before is None and after is None:
            continue
        if before is None:
            yield index.name, write_units(item_size(new))
        elif after is None:
            yield index.name, write_units(item_size(old))
        elif before != after:
            yield index.name, write_units(item_size(old)) + write_units(item_size(new))
        elif old != new:
            yield index.name, write_units(max(item_size(old), item_size(new)))
