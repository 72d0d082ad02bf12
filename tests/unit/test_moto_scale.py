"""The scale benchmark's moto (benchmarks/moto_scale.py) answers as moto does.

Each query runs twice on the same items: on moto as it is, and on the same table adopted by
`moto_scale` (partitions compact and sorted, index lists, the fast Query and JSON answers);
every page's items must be the same, in the same order, over all pages.
"""

from __future__ import annotations

import pathlib
import random
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import moto_scale

QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "T#a"}}},
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "T#a"}, ":s": {"S": "SC#"}},
    },
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "T#a"}, ":s": {"S": "SC#S0001#"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":p": {"S": "T#a"},
            ":lo": {"S": "P#S0003"},
            ":hi": {"S": "SC#S0002"},
        },
        "Limit": 7,
    },
    {
        "KeyConditionExpression": "pk = :p AND sk > :s",
        "ExpressionAttributeValues": {":p": {"S": "T#a"}, ":s": {"S": "P#"}},
        "Limit": 25,
    },
    {
        "IndexName": "by_trial",
        "KeyConditionExpression": "trial_id = :t",
        "ExpressionAttributeValues": {":t": {"S": "a"}},
    },
    {
        "IndexName": "by_trial",
        "KeyConditionExpression": "trial_id = :t AND trial_received < :r",
        "ExpressionAttributeValues": {":t": {"S": "a"}, ":r": {"S": "2026-01-10"}},
        "Limit": 9,
        "ScanIndexForward": False,
    },
]


def _items() -> list[dict[str, Any]]:
    rng = random.Random(7)
    items = []
    for n in range(40):
        pid = f"S{n:04d}"
        items.append({"pk": {"S": "T#a"}, "sk": {"S": f"P#{pid}"}, "done": {"SS": ["x", "y"]}})
        for k in range(4):
            items.append(
                {
                    "pk": {"S": "T#a"},
                    "sk": {"S": f"SC#{pid}#hads#w{k}#000"},
                    "trial_id": {"S": "a"},
                    "trial_received": {"S": f"2026-01-{rng.randint(1, 28):02d}#{n}{k}"},
                    "subscales": {"M": {"anx": {"M": {"score": {"N": str(rng.random())}}}}},
                    "pad": {"S": "x" * rng.randint(0, 60_000)},
                }
            )
    return items


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-2")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("pk", "sk", "trial_id", "trial_received")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_trial",
                    "KeySchema": [
                        {"AttributeName": "trial_id", "KeyType": "HASH"},
                        {"AttributeName": "trial_received", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in _items():
            client.put_item(TableName="t", Item=item)
        yield client
        moto_scale.uninstall()


def _pages(client: Any, query: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages = []
    start = None
    while True:
        kwargs = {"TableName": "t", **query}
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = client.query(**kwargs)
        pages.append(response["Items"])
        start = response.get("LastEvaluatedKey")
        if not start:
            return pages


def _moto_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["eu-west-2"].tables["t"]


def _flat(pages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page]


def test_every_query_returns_the_same_items_in_the_same_order_as_moto(dynamodb: Any) -> None:
    expected = [_pages(dynamodb, q) for q in QUERIES]
    moto_scale.install()
    assert moto_scale.adopt(_moto_table())
    got = [_pages(dynamodb, q) for q in QUERIES]
    for query, want, have in zip(QUERIES, expected, got, strict=True):
        assert _flat(have) == _flat(want), query
        # pages are cut at the same items (moto may add an empty last page; see the module)
        assert [len(p) for p in have if p] == [len(p) for p in want if p], query
    assert sum(len(_flat(p)) for p in got) > 300


def test_compact_items_read_and_change_as_moto_items(dynamodb: Any) -> None:
    moto_scale.install()
    table = _moto_table()
    moto_scale.adopt(table)
    item = {"pk": {"S": "T#a"}, "sk": {"S": "AG#hads#w1"}, "n_anx": {"N": "3"}}
    moto_scale.put_compact(table, item)
    key = {"pk": {"S": "T#a"}, "sk": {"S": "AG#hads#w1"}}
    assert dynamodb.get_item(TableName="t", Key=key)["Item"] == item
    dynamodb.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="ADD n_anx :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert dynamodb.get_item(TableName="t", Key=key)["Item"]["n_anx"] == {"N": "4"}
    page = _pages(dynamodb, QUERIES[0])
    assert key["sk"] in [i["sk"] for i in _flat(page)]
    dynamodb.delete_item(TableName="t", Key=key)
    assert "Item" not in dynamodb.get_item(TableName="t", Key=key)


def test_the_json_answers_parse_to_what_moto_serialises(dynamodb: Any) -> None:
    key = {"pk": {"S": "T#a"}, "sk": {"S": "P#S0001"}}
    want = [
        dynamodb.get_item(TableName="t", Key=key),
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": [key]}}),
        dynamodb.query(TableName="t", **QUERIES[3]),
    ]
    moto_scale.install()
    got = [
        dynamodb.get_item(TableName="t", Key=key),
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": [key]}}),
        dynamodb.query(TableName="t", **QUERIES[3]),
    ]
    for w, g in zip(want, got, strict=True):
        w.pop("ResponseMetadata")
        g.pop("ResponseMetadata")
        # equal as parsed (moto's serialiser writes ConsumedCapacity's 1 as 1.0)
        assert g == w
