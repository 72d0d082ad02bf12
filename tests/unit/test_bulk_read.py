"""The lean bulk read (adapters.bulk_read): the same values as boto3's, a fraction of the work.

`decode_item` is checked against boto3's own `TypeDeserializer` (the independent reference,
with the Decimal-to-int/float step `adapters.dynamodb.deserialize` applies), and a client with
`lean_queries` against a stock client reading the same moto table.
"""

from __future__ import annotations

import base64
import gc
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError
from moto import mock_aws

from adapters.bulk_read import decode_item, gc_paused, lean_queries
from adapters.dynamodb import DynamoTable, deserialize, serialize

REGION = "eu-west-2"

ITEMS: list[dict[str, Any]] = [
    {"pk": "T#t", "sk": "SC#P01#hads#week-1#1", "seq": 1, "score": 14.5, "none": None},
    {"pk": "T#t", "sk": "x", "big": 12345678901234567890, "neg": -3, "zero": 0},
    {"pk": "T#t", "sk": "y", "decimals": [Decimal("1.50"), Decimal("2.0"), Decimal("1E+3")]},
    {"pk": "T#t", "sk": "z", "tiny": Decimal("1E-9"), "third": 1 / 3, "flag": True, "no": False},
    {
        "pk": "T#t",
        "sk": "m",
        "subscales": {"anxiety": {"score": 7.0, "answered": 7, "reason": None, "band": "mild"}},
        "nested": [{"a": [1, "b", {"c": None}]}, [], {}],
    },
    {"pk": "T#t", "sk": "s", "done": {"hads#week-1", "diary#week-2"}, "ns": {1, 2.5}},
    {"pk": "T#t", "sk": "u", "text": 'é ü 日本 \\ " \n'},
]
# the adapters never store binary values, but a lean read must not misread one
BINARY = {
    "pk": {"S": "T#t"},
    "sk": {"S": "b"},
    "blob": {"B": b"\x00\xffbytes"},
    "blobs": {"BS": [b"a", b"b"]},
}


def wire(item: dict[str, Any]) -> dict[str, Any]:
    """The item in DynamoDB JSON as it travels (json.loads of the answer's text)."""
    return dict(json.loads(json.dumps(serialize(item))))


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: i["sk"])
def test_decode_item_gives_what_boto3s_deserializer_gives_for_parsed_and_raw_answers(
    item: dict[str, Any],
) -> None:
    parsed = serialize(item)  # botocore's parsed form
    # reference: boto3.dynamodb.types.TypeDeserializer, then the adapters' Decimal step
    expected = deserialize(parsed)
    assert decode_item(parsed) == expected
    assert decode_item(wire(item)) == expected
    for name, value in expected.items():  # the same types too: int stays int, float float
        assert type(decode_item(wire(item))[name]) is type(value), name


def test_binary_values_decode_as_boto3s_deserializer_decodes_them() -> None:
    expected = deserialize(BINARY)  # reference: TypeDeserializer, Binary values
    assert decode_item(BINARY) == expected
    raw = {
        **BINARY,
        "blob": {"B": base64.b64encode(b"\x00\xffbytes").decode()},
        "blobs": {"BS": [base64.b64encode(b).decode() for b in (b"a", b"b")]},
    }
    assert decode_item(raw) == expected


def test_an_unknown_attribute_type_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown DynamoDB type"):
        decode_item({"x": {"Q": "?"}})


@pytest.fixture
def clients() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        stock = boto3.client("dynamodb", region_name=REGION)
        lean = lean_queries(boto3.client("dynamodb", region_name=REGION))
        stock.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in ITEMS:
            stock.put_item(TableName="t", Item=serialize(item))
        stock.put_item(TableName="t", Item=BINARY)
        yield stock, lean


def test_a_lean_client_reads_every_page_as_a_stock_client_does(clients: tuple[Any, Any]) -> None:
    stock, lean = clients
    for limit in (None, 2, 3):  # one page, and several pages with LastEvaluatedKey
        kwargs = {"pk": "T#t", "limit": limit} if limit else {"pk": "T#t"}
        lean_items = DynamoTable(lean, "t").query_all(**kwargs)
        assert lean_items == DynamoTable(stock, "t").query_all(**kwargs)
        assert sorted(i["sk"] for i in lean_items) == sorted([*(i["sk"] for i in ITEMS), "b"])
    binary = DynamoTable(lean, "t").query_all(pk="T#t", prefix="b")
    assert binary[0]["blob"] == Binary(b"\x00\xffbytes")
    scanned = lean.scan(TableName="t")
    assert scanned["Count"] == len(ITEMS) + 1
    assert scanned["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_lean_clients_errors_are_botocores_as_ever(clients: tuple[Any, Any]) -> None:
    _, lean = clients
    with pytest.raises(ClientError) as raised:
        lean.query(
            TableName="no-such-table",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "x"}},
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # operations other than Query and Scan are parsed by botocore (binary values as bytes)
    got = lean.get_item(TableName="t", Key=serialize({"pk": "T#t", "sk": "b"}))
    assert got["Item"]["blob"] == {"B": b"\x00\xffbytes"}


def test_the_collector_is_paused_for_the_outermost_read_and_restored_after_it() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer read is still going
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_concurrent_reads_share_one_pause() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_read() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other_read)
    thread.start()
    inside.wait(5)
    with gc_paused():
        pass
    assert not gc.isenabled()  # the other thread's read has not ended
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_read_that_raises_still_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()
