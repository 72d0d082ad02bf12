"""moto at the scale of a national trial: sorted partitions, compact items, index lists.

moto 5.2.5 keeps every item as an `Item` of `DynamoType`s (about 5.7 KB of Python objects per
item of this system: 17 GB for a trial of 50,000 participants), and its Query lists every item
of the table, sorts the partition's and walks to the page's start key, for every page: one page
of a trial's aggregates at 50,000 participants takes seconds, a full read of its scores hours.
Neither says anything about the code above it, and DynamoDB does neither.

For the scale benchmark only (the tests and the local stack run moto unchanged), `install`
changes three things in moto's DynamoDB backend:

- each partition of a table with a string sort key becomes a `CompactPartition`: the items
  seeded with `put_compact` are kept as zlib-compressed DynamoDB JSON (about 0.4 KB) and
  rebuilt into moto `Item`s when moto reads them; the sort keys are kept in a sorted list;
- each global secondary index has, per index partition, a sorted list of the index keys of
  the items that have them (a sparse index lists only those);
- `DynamoDBBackend.query` on such a table, with a key condition on a string sort key (`=`,
  `<`, `<=`, `>`, `>=`, `BETWEEN`, `begins_with`) and no filter, bisects to the range and the
  page's start key and reads only the page's items, in the order moto sorts them (an index by
  its keys, then the table's). Pages end where moto ends them: at `Limit` items, or before
  the item that would take the page past 1 MB of moto's item sizes. Anything else goes to
  moto's own query;
- the JSON answers of DynamoDB's item operations are written by `json.dumps` of the result
  moto built, not by moto 5.2.5's generic response serialiser, which walks botocore's output
  shape for every attribute value (about 3 ms per score item of a Query page, the whole cost
  of moto's Query here). The bytes parse to the same document (the unit test compares them).

One difference, where moto is not DynamoDB: moto also ends a page (with a LastEvaluatedKey)
when an item *outside* the key condition would take the page past 1 MB, or when the limit is
reached and any item of the partition follows; this looks only at the items inside the key
condition, as DynamoDB does. The items over all pages are the same (tests/unit/
test_moto_scale.py compares the two on the same table).
"""

from __future__ import annotations

import bisect
import copy
import json
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["CompactPartition", "adopt", "install", "put_blob", "put_compact", "settle", "uninstall"]

_ORIGINAL: dict[str, Any] = {}
_SYMBOLS = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
_FAST = {"BEGINS_WITH", "BETWEEN", "EQ", "LT", "LE", "GT", "GE"}


def _item(hash_key: Any, range_key: Any, attrs: Mapping[str, Any]) -> Any:
    """A moto `Item` from DynamoDB JSON, without moto's size check per attribute (which
    sums the whole item again for every attribute it sets)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    item = Item.__new__(Item)
    item.hash_key = hash_key
    item.range_key = range_key
    item.attrs = LimitedSizeDict({k: DynamoType(v) for k, v in attrs.items()})
    return item


def _index_key(attrs: Mapping[str, Any], name: str) -> str | None:
    """A string key attribute from DynamoDB JSON or from an Item's DynamoTypes."""
    value = attrs.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("S")
    return value.value if value.type == "S" else None


class _Indexes:
    """Per global secondary index of one table: index hash -> sorted (range, hash, sort)."""

    def __init__(self, table: Any) -> None:
        self.specs: list[tuple[str, str, str]] = []
        for index in table.global_indexes:
            schema = {k["KeyType"]: k["AttributeName"] for k in index.schema}
            if "RANGE" in schema:
                self.specs.append((index.name, schema["HASH"], schema["RANGE"]))
        self.lists: dict[str, dict[str, list[tuple[str, str, str]]]] = {
            name: defaultdict(list) for name, _, _ in self.specs
        }

    def entries(self, attrs: Mapping[str, Any], hash_value: str, range_value: str) -> Iterator[Any]:
        for name, hash_attr, range_attr in self.specs:
            index_hash = _index_key(attrs, hash_attr)
            index_range = _index_key(attrs, range_attr)
            if index_hash is not None and index_range is not None:
                yield name, index_hash, (index_range, hash_value, range_value)

    def add(self, attrs: Mapping[str, Any], hash_value: str, range_value: str) -> None:
        for name, index_hash, entry in self.entries(attrs, hash_value, range_value):
            bisect.insort(self.lists[name][index_hash], entry)

    def remove(self, attrs: Mapping[str, Any], hash_value: str, range_value: str) -> None:
        for name, index_hash, entry in self.entries(attrs, hash_value, range_value):
            entries = self.lists[name][index_hash]
            at = bisect.bisect_left(entries, entry)
            if at < len(entries) and entries[at] == entry:
                del entries[at]


class CompactPartition(MutableMapping):  # type: ignore[type-arg]
    """One partition (sort key -> Item) of a table with a string sort key."""

    def __init__(self, table: Any, hash_key: Any) -> None:
        self.table = table
        self.hash_key = hash_key
        self.hash_value: str = hash_key.value
        self.data: dict[str, Any] = {}  # sort key -> Item, or compressed DynamoDB JSON
        self.sizes: dict[str, int] = {}  # sort key -> DynamoDB size of a compressed item
        self.keys_sorted: list[str] = []

    # what moto asks of a partition
    def __getitem__(self, key: Any) -> Any:
        value = self.data[key.value]
        if isinstance(value, bytes):
            # moto may change an item it got in place (UpdateItem): keep the Item from now on
            value = self.data[key.value] = self._rebuild(key.value, value)
            self.sizes.pop(key.value, None)
        return value

    def __setitem__(self, key: Any, item: Any) -> None:
        old = self.data.get(key.value)
        if old is None:
            bisect.insort(self.keys_sorted, key.value)
        else:
            self._indexes.remove(self._attrs(old), self.hash_value, key.value)
        self.data[key.value] = item
        self.sizes.pop(key.value, None)
        self._indexes.add(item.attrs, self.hash_value, key.value)

    def __delitem__(self, key: Any) -> None:
        old = self.data.pop(key.value)
        self.sizes.pop(key.value, None)
        self._forget(key.value, old)

    def pop(self, key: Any, *default: Any) -> Any:
        if key.value not in self.data:
            if default:
                return default[0]
            raise KeyError(key)
        item = self[key]
        del self[key]
        return item

    def __contains__(self, key: object) -> bool:
        return getattr(key, "value", None) in self.data

    def __iter__(self) -> Iterator[Any]:
        from moto.dynamodb.models.dynamo_type import DynamoType

        return (DynamoType({"S": k}) for k in list(self.data))

    def __len__(self) -> int:
        return len(self.data)

    def values(self) -> Any:  # type: ignore[override]
        return [self.peek(k) for k in list(self.data)]

    def items(self) -> Any:  # type: ignore[override]
        from moto.dynamodb.models.dynamo_type import DynamoType

        return [(DynamoType({"S": k}), self.peek(k)) for k in list(self.data)]

    def __deepcopy__(self, memo: dict[int, Any]) -> CompactPartition:
        twin = CompactPartition(self.table, self.hash_key)
        twin.data = {
            k: v if isinstance(v, bytes) else copy.deepcopy(v, memo) for k, v in self.data.items()
        }
        twin.keys_sorted = list(self.keys_sorted)
        twin.sizes = dict(self.sizes)
        return twin

    # the benchmark's own
    @property
    def _indexes(self) -> _Indexes:
        return self.table._cmt_indexes  # type: ignore[no-any-return]

    def _attrs(self, value: Any) -> Mapping[str, Any]:
        return json.loads(zlib.decompress(value)) if isinstance(value, bytes) else value.attrs

    def _rebuild(self, range_value: str, blob: bytes) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        return _item(
            self.hash_key, DynamoType({"S": range_value}), json.loads(zlib.decompress(blob))
        )

    def _forget(self, range_value: str, old: Any) -> None:
        at = bisect.bisect_left(self.keys_sorted, range_value)
        if at < len(self.keys_sorted) and self.keys_sorted[at] == range_value:
            del self.keys_sorted[at]
        self._indexes.remove(self._attrs(old), self.hash_value, range_value)

    def peek(self, range_value: str) -> Any:
        """The item, rebuilt afresh when it is compact (nothing kept)."""
        return self.peek_fresh(range_value)[0]

    def raw(self, range_value: str) -> tuple[str, int]:
        """(the item as DynamoDB JSON text, its DynamoDB size), without building an Item."""
        from capacity import item_size
        from moto.dynamodb.models.utilities import dynamo_to_dict

        value = self.data[range_value]
        if isinstance(value, bytes):
            return zlib.decompress(value).decode(), self.sizes[range_value]
        attrs = dynamo_to_dict(value.attrs)
        return json.dumps(attrs), item_size(attrs)

    def peek_fresh(self, range_value: str) -> tuple[Any, bool]:
        """(the item, whether it was rebuilt afresh: no one else holds it)."""
        value = self.data[range_value]
        if isinstance(value, bytes):
            return self._rebuild(range_value, value), True
        return value, False

    def put_compact(self, range_value: str, attrs: Mapping[str, Any]) -> None:
        old = self.data.get(range_value)
        if old is None:
            bisect.insort(self.keys_sorted, range_value)
        else:
            self._indexes.remove(self._attrs(old), self.hash_value, range_value)
        from capacity import item_size

        self.data[range_value] = zlib.compress(json.dumps(attrs, separators=(",", ":")).encode(), 1)
        self.sizes[range_value] = item_size(attrs)
        self._indexes.add(attrs, self.hash_value, range_value)


def adopt(table: Any) -> bool:
    """Make a moto table's partitions compact and sorted (once); False if it cannot be."""
    if getattr(table, "_cmt_indexes", None) is not None:
        return True
    if table.range_key_attr is None or table.range_key_type != "S":
        return False
    if table.hash_key_type != "S":
        return False
    table._cmt_indexes = _Indexes(table)
    old = table.items

    class Partitions(defaultdict):  # type: ignore[type-arg]
        def __missing__(self, hash_key: Any) -> CompactPartition:
            partition = self[hash_key] = CompactPartition(table, hash_key)
            return partition

    table.items = Partitions()
    for hash_key, partition in old.items():
        for range_key, item in partition.items():
            table.items[hash_key][range_key] = item
    return True


def put_compact(table: Any, attrs: Mapping[str, Any]) -> None:
    """Store one item (DynamoDB JSON) in an adopted table, as BatchWriteItem would."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_key = DynamoType(attrs[table.hash_key_attr])
    table.items[hash_key].put_compact(attrs[table.range_key_attr]["S"], attrs)


def put_blob(
    table: Any, hash_value: str, range_value: str, blob: bytes, size: int, entries: list[Any]
) -> None:
    """Store one item already compressed (`CompactPartition` format) with its index entries."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    partition = table.items[DynamoType({"S": hash_value})]
    if range_value in partition.data:
        raise ValueError(f"{hash_value} / {range_value} is seeded already")
    # appended now and sorted once by `settle` (an insort is a move of the whole list)
    partition.keys_sorted.append(range_value)
    partition.data[range_value] = blob
    partition.sizes[range_value] = size
    dirty = table.__dict__.setdefault("_cmt_dirty", set())
    dirty.add(("partition", hash_value))
    for name, index_hash, entry in entries:
        table._cmt_indexes.lists[name][index_hash].append(entry)
        dirty.add((name, index_hash))


def settle(table: Any) -> None:
    """Sort what `put_blob` appended (call before the table is read)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    for kind, key in table.__dict__.pop("_cmt_dirty", set()):
        if kind == "partition":
            table.items[DynamoType({"S": key})].keys_sorted.sort()
        else:
            table._cmt_indexes.lists[kind][key].sort()


def _bounds(
    keys: list[Any], comparison: str | None, values: list[str], pick: Any
) -> tuple[int, int]:
    """The half-open range of the sorted `keys` (compared by `pick`) meeting the condition."""
    if comparison is None:
        return 0, len(keys)

    def left(value: str) -> int:
        return bisect.bisect_left(keys, value, key=pick)

    def right(value: str) -> int:
        return bisect.bisect_right(keys, value, key=pick)

    if comparison == "BEGINS_WITH":
        prefix = values[0]
        lo = left(prefix)
        if prefix and ord(prefix[-1]) < 0x10FFFF:
            # the keys with the prefix end before its successor (code-point order is
            # UTF-8 byte order, DynamoDB's): a bisection, not a walk over the range
            return lo, left(prefix[:-1] + chr(ord(prefix[-1]) + 1))
        hi = lo
        while hi < len(keys) and pick(keys[hi]).startswith(prefix):
            hi += 1
        return lo, hi
    if comparison == "BETWEEN":
        return left(values[0]), right(values[1])
    if comparison == "EQ":
        return left(values[0]), right(values[0])
    if comparison == "LT":
        return 0, left(values[0])
    if comparison == "LE":
        return 0, right(values[0])
    if comparison == "GT":
        return right(values[0]), len(keys)
    return left(values[0]), len(keys)  # GE


class _RawJson(str):
    """An item's DynamoDB JSON text, spliced into the answer as it is (see `_execute_result`)."""


class _RawItem:
    """What moto's Query handler asks of a result: its `attrs`."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: _RawJson) -> None:
        self.attrs = attrs


def _fast_query(
    self: Any,
    table_name: str,
    hash_key_dict: dict[str, Any] | None,
    range_comparison: str | None,
    range_value_dicts: list[dict[str, Any]],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,  # noqa: FBT001 (moto's signature)
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,  # noqa: FBT001, FBT002 (moto's signature)
    expr_names: dict[str, str] | None = None,
    expr_values: dict[str, dict[str, str]] | None = None,
    filter_expression: str | None = None,
    hash_key_conditions: list[Any] | None = None,
    range_key_conditions: list[Any] | None = None,
    **filter_kwargs: Any,
) -> Any:
    """moto 5.2.5's `DynamoDBBackend.query`, answered from the sorted lists where it can be."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    table = self.get_table(table_name)
    comparison = None if range_comparison is None else range_comparison.upper()
    comparison = _SYMBOLS.get(comparison or "", comparison)
    indexes: _Indexes | None = getattr(table, "_cmt_indexes", None)
    spec = None
    if index_name and indexes is not None:
        spec = next((s for s in indexes.specs if s[0] == index_name), None)
    usable = (
        indexes is not None
        and (not index_name or spec is not None)
        and not filter_expression
        and not filter_kwargs
        and hash_key_dict is not None
        and set(hash_key_dict) == {"S"}
        and comparison in (None, *_FAST)
        and all(set(v) == {"S"} for v in range_value_dicts)
        and len(range_key_conditions or []) <= 1
        and len(hash_key_conditions or []) <= 1
    )
    if not usable or projection_expressions:
        # anything else (a projection is never asked by this system): moto's own query
        return _ORIGINAL["query"](
            self,
            table_name,
            hash_key_dict,
            range_comparison,
            range_value_dicts,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            expr_names,
            expr_values,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )
    assert hash_key_dict is not None
    assert indexes is not None
    values = [v["S"] for v in range_value_dicts]
    hash_attr, range_attr = table.hash_key_attr, table.range_key_attr
    if spec is None:
        partition = table.items.get(DynamoType(hash_key_dict))
        if partition is None:
            return [], 0, None
        keys: list[Any] = partition.keys_sorted
        pick: Any = None

        def fetch(entry: Any) -> tuple[str, int]:
            return partition.raw(entry)  # type: ignore[no-any-return]

        def key_of(entry: Any) -> dict[str, Any]:
            return {hash_attr: {"S": partition.hash_value}, range_attr: {"S": entry}}

        def start_of(key: Mapping[str, Any]) -> Any:
            return key[range_attr]["S"]

    else:
        keys = indexes.lists[spec[0]].get(hash_key_dict["S"], [])
        index_hash = hash_key_dict["S"]

        def pick(entry: Any) -> Any:
            return entry[0]

        def fetch(entry: Any) -> tuple[str, int]:
            return table.items[DynamoType({"S": entry[1]})].raw(entry[2])  # type: ignore[no-any-return]

        def key_of(entry: Any) -> dict[str, Any]:
            return {
                hash_attr: {"S": entry[1]},
                range_attr: {"S": entry[2]},
                spec[1]: {"S": index_hash},
                spec[2]: {"S": entry[0]},
            }

        def start_of(key: Mapping[str, Any]) -> Any:
            return (key[spec[2]]["S"], key[hash_attr]["S"], key[range_attr]["S"])

    lo, hi = _bounds(keys, comparison, values, pick or (lambda k: k))
    forward = scan_index_forward is not False
    if exclusive_start_key:
        start = start_of(exclusive_start_key)
        if forward:
            lo = max(lo, bisect.bisect_right(keys, start))
        else:
            hi = min(hi, bisect.bisect_left(keys, start))
    order = range(lo, hi) if forward else range(hi - 1, lo - 1, -1)
    results: list[Any] = []
    size = 0
    last_evaluated_key = None
    previous = None
    for position in order:
        text, item_size = fetch(keys[position])
        if len(results) == limit or size + item_size > RESULT_SIZE_LIMIT:
            last_evaluated_key = key_of(previous)
            break
        results.append(_RawItem(_RawJson(text)))
        size += item_size
        previous = keys[position]
    return results, len(results), last_evaluated_key


#: the operations whose results are plain DynamoDB JSON (no timestamps or renamed members)
JSON_OPERATIONS = frozenset(
    {
        "GetItem",
        "Query",
        "BatchGetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)


def _execute_result(self: Any, context: Any) -> Any:
    if (
        context.service_model.service_name == "dynamodb"
        and context.operation_model.name in JSON_OPERATIONS
        and isinstance(self.result, dict)
    ):
        result = self.result
        items = result.get("Items")
        if items and isinstance(items[0], _RawJson):
            rest = json.dumps({k: v for k, v in result.items() if k != "Items"})
            body = '{"Items":[' + ",".join(items) + "]," + rest[1:]
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(result)
    return _ORIGINAL["execute_result"](self, context)


def install() -> None:
    """Patch moto's `DynamoDBBackend.query` and its DynamoDB item answers (idempotent);
    tables are adopted with `adopt`."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend

    if "query" not in _ORIGINAL:
        _ORIGINAL["query"] = DynamoDBBackend.query
        DynamoDBBackend.query = _fast_query  # type: ignore[method-assign]
        _ORIGINAL["execute_result"] = ActionResult.execute_result
        ActionResult.execute_result = _execute_result  # type: ignore[method-assign]


def uninstall() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend

    if "query" in _ORIGINAL:
        DynamoDBBackend.query = _ORIGINAL.pop("query")  # type: ignore[method-assign]
        ActionResult.execute_result = _ORIGINAL.pop("execute_result")  # type: ignore[method-assign]
