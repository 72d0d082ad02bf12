"""Capacity units as AWS bills them (benchmarks/capacity.py), from item sizes."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

from capacity import CapacityMeter, item_size, read_units, write_units


def test_an_item_is_sized_as_an_independent_sizer_sizes_it() -> None:
    # mikaelvesavuori/ddbitemsizer README: `itemSizer.get({...})` of this item logs
    # "The size of this input is 141 bytes."
    item = {
        "itemType": {"S": "SLOT"},
        "id": {"S": "abc1231"},
        "hostName": {"S": "Harry Mason"},
        "timeSlot": {"S": "February 23, 1999"},
        "slotStatus": {"S": "OPEN"},
        "createdAt": {"S": "February 1, 1999"},
        "updatedAt": {"S": "February 1, 1999"},
        "expiresAt": {"N": "2099"},
    }
    assert item_size(item) == 141


def test_maps_lists_and_numbers_follow_the_published_rules() -> None:
    # AWS, "DynamoDB item sizes and formats": a List or Map is name + elements + 3 bytes, and
    # 1 byte per element; a number is 1 byte per two significant digits + 1 (zeros trimmed)
    item = {"m": {"M": {"ab": {"N": "12.500"}, "c": {"L": [{"BOOL": True}, {"NULL": True}]}}}}
    number = 2 + (2 + 1)  # "ab" + "125" -> 2 bytes + 1
    inner_list = 1 + (3 + (1 + 1) + (1 + 1))  # "c" + list of two 1-byte values
    assert item_size(item) == 1 + 3 + (number + 1) + (inner_list + 1)


def test_units_round_up_per_kilobyte_written_and_four_read() -> None:
    # AWS DynamoDB pricing, provisioned capacity: "a standard write request of a 3 KB item
    # would require three WCUs ... a transactional write request of a 3 KB item would require
    # six WCUs"; "a strongly consistent read of an 8 KB item would require two RCUs, an
    # eventually consistent read of an 8 KB item would require one RCU, and a transactional
    # read of an 8 KB item would require four RCUs"
    assert write_units(3 * 1024) == 3
    assert write_units(3 * 1024, transactional=True) == 6
    assert write_units(3 * 1024 + 1) == 4
    assert write_units(0) == 1
    assert read_units(8 * 1024, consistent=True) == 2
    assert read_units(8 * 1024, consistent=False) == 1
    assert read_units(8 * 1024, consistent=True, transactional=True) == 4
    assert read_units(0, consistent=True) == 1


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-2")
        dynamodb.create_table(
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
        yield dynamodb


def _item(sk: str, pad: int) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": sk}, "pad": {"S": "x" * pad}}


def test_the_meter_counts_writes_by_the_larger_of_the_item_before_and_after(client: Any) -> None:
    meter = CapacityMeter(client)
    client.put_item(TableName="t", Item=_item("a", 1500))  # 1 + 1 + 1 + 1 + 3 + 1500 bytes
    assert meter.take().write["t"] == 2
    client.put_item(TableName="t", Item=_item("a", 10))  # replaces a 2 KB item
    assert meter.take().write["t"] == 2
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName="t", Item=_item("a", 10), ConditionExpression="attribute_not_exists(pk)"
        )
    assert meter.take().write["t"] == 1
    client.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": _item("b", 10)}}])
    assert meter.take().write["t"] == 2
    meter.close()


def test_the_meter_counts_reads_per_four_kilobytes_and_halves_eventual_ones(client: Any) -> None:
    for n in range(3):
        client.put_item(TableName="t", Item=_item(f"k{n}", 3000))
    meter = CapacityMeter(client)
    client.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "k0"}}, ConsistentRead=True)
    assert meter.take().read["t"] == 1
    client.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "none"}})
    assert meter.take().read["t"] == 0.5
    client.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )
    # three items of about 3 KB: one page of 9 KB, eventually consistent
    assert meter.take().read["t"] == 1.5
    meter.close()
