"""The embedded stack's TransactWriteItems (local.moto_atomic): all or nothing, as DynamoDB.

moto's own implementation copies every touched table before applying a transaction, which
is too slow for the stream's per-batch transactions at any size; ours keeps a journal of the
touched items. A cancelled transaction must leave items and stream records exactly as they
were, and a committed one must apply every write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.moto_atomic import make_dynamodb_atomic

make_dynamodb_atomic()


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
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        yield client


def items(client: Any) -> list[Any]:
    return sorted(client.scan(TableName="t")["Items"], key=lambda i: i["sk"]["S"])


def stream_records(client: Any) -> int:
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name="eu-west-2")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return len(streams.get_records(ShardIterator=iterator)["Records"])


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": sk}}


def seed(client: Any) -> None:
    client.put_item(TableName="t", Item={**key("a"), "n": {"N": "1"}, "s": {"SS": ["x"]}})
    client.put_item(TableName="t", Item={**key("b"), "n": {"N": "2"}})
    client.put_item(TableName="t", Item={**key("e"), "n": {"N": "5"}})


def operations(*, fail: bool) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": "t", "Item": {**key("c"), "n": {"N": "3"}}}},
        {
            "Update": {
                "TableName": "t",
                "Key": key("a"),
                "UpdateExpression": "ADD n :one, s :y",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":y": {"SS": ["y"]}},
            }
        },
        {"Delete": {"TableName": "t", "Key": key("b")}},
        {
            "Put": {
                "TableName": "t",
                "Item": {**key("e" if fail else "d"), "n": {"N": "4"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def test_a_cancelled_transaction_leaves_every_item_and_stream_record_as_it_was(
    dynamodb: Any,
) -> None:
    seed(dynamodb)
    before, records = items(dynamodb), stream_records(dynamodb)
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=operations(fail=True))
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    codes = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "None", "ConditionalCheckFailed"]
    assert items(dynamodb) == before
    assert stream_records(dynamodb) == records


def test_a_committed_transaction_applies_every_write(dynamodb: Any) -> None:
    seed(dynamodb)
    dynamodb.transact_write_items(TransactItems=operations(fail=False))
    after = {i["sk"]["S"]: i for i in items(dynamodb)}
    assert set(after) == {"a", "c", "d", "e"}
    assert after["a"]["n"] == {"N": "2"}
    assert set(after["a"]["s"]["SS"]) == {"x", "y"}


def test_two_operations_on_one_item_are_refused_whole(dynamodb: Any) -> None:
    seed(dynamodb)
    before = items(dynamodb)
    twice = [
        {"Put": {"TableName": "t", "Item": {**key("c"), "n": {"N": "3"}}}},
        {"Delete": {"TableName": "t", "Key": key("c")}},
    ]
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=twice)
    assert items(dynamodb) == before
