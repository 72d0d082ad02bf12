"""The local (moto) resources are built from template.yaml and behave like the deployed ones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.template import LocalNames, create_local_resources, load_template, table_create_kwargs

REGION = "eu-west-2"
NAMES = LocalNames()


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def clients(moto_aws: None) -> dict[str, Any]:
    return {
        "dynamodb_client": boto3.client("dynamodb"),
        "s3_client": boto3.client("s3"),
        "sqs_client": boto3.client("sqs"),
    }


@pytest.fixture
def created(clients: dict[str, Any]) -> dict[str, Any]:
    create_local_resources(**clients, names=NAMES)
    return clients


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item["AttributeName"])


@pytest.mark.parametrize(
    ("logical_id", "table_name"),
    [("MainTable", NAMES.main_table), ("SubmissionsTable", NAMES.submissions_table)],
)
def test_tables_get_the_key_schema_and_billing_mode_of_the_template(
    created: dict[str, Any], template: dict[str, Any], logical_id: str, table_name: str
) -> None:
    props = template["Resources"][logical_id]["Properties"]
    table = created["dynamodb_client"].describe_table(TableName=table_name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == props["KeySchema"]
    assert by_name(table["AttributeDefinitions"]) == by_name(props["AttributeDefinitions"])
    assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["SSEDescription"]["SSEType"] == props["SSESpecification"]["SSEType"]


def test_submissions_table_has_the_by_trial_index_and_a_new_image_stream(
    created: dict[str, Any], template: dict[str, Any]
) -> None:
    props = template["Resources"]["SubmissionsTable"]["Properties"]
    table = created["dynamodb_client"].describe_table(TableName=NAMES.submissions_table)["Table"]
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        index["IndexName"]: (index["KeySchema"], index["Projection"])
        for index in props["GlobalSecondaryIndexes"]
    }
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"].startswith(
        f"arn:aws:dynamodb:{REGION}:123456789012:table/{NAMES.submissions_table}/stream/"
    )


def test_main_table_expires_items_by_the_templates_ttl_attribute_and_has_no_stream(
    created: dict[str, Any], template: dict[str, Any]
) -> None:
    ttl = template["Resources"]["MainTable"]["Properties"]["TimeToLiveSpecification"]
    dynamodb = created["dynamodb_client"]
    description = dynamodb.describe_time_to_live(TableName=NAMES.main_table)[
        "TimeToLiveDescription"
    ]
    assert description == {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl["AttributeName"]}
    assert "StreamSpecification" not in dynamodb.describe_table(TableName=NAMES.main_table)["Table"]
    submissions_ttl = dynamodb.describe_time_to_live(TableName=NAMES.submissions_table)
    assert submissions_ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"


def test_reports_bucket_is_versioned_private_encrypted_and_owner_enforced(
    created: dict[str, Any], template: dict[str, Any]
) -> None:
    props = template["Resources"]["ReportsBucket"]["Properties"]
    s3 = created["s3_client"]
    bucket = NAMES.reports_bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert (
        s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        == props["PublicAccessBlockConfiguration"]
    )
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert (
        s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        == props["OwnershipControls"]
    )
    first = s3.put_object(Bucket=bucket, Key="reports/cmt-pilot/pre-post/latest.json", Body=b"{}")
    second = s3.put_object(Bucket=bucket, Key="reports/cmt-pilot/pre-post/latest.json", Body=b"[]")
    assert first["VersionId"] != second["VersionId"]


def test_dead_letter_queue_keeps_messages_fourteen_days_encrypted(created: dict[str, Any]) -> None:
    sqs = created["sqs_client"]
    url = sqs.get_queue_url(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_creating_the_local_resources_twice_changes_nothing(created: dict[str, Any]) -> None:
    dynamodb, s3 = created["dynamodb_client"], created["s3_client"]
    dynamodb.put_item(
        TableName=NAMES.main_table, Item={"pk": {"S": "TRIALS"}, "sk": {"S": "T#cmt-pilot"}}
    )
    s3.put_object(Bucket=NAMES.reports_bucket, Key="reports/keep.json", Body=b"{}")

    create_local_resources(**created, names=NAMES)

    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(
        [NAMES.main_table, NAMES.submissions_table]
    )
    item = dynamodb.get_item(
        TableName=NAMES.main_table, Key={"pk": {"S": "TRIALS"}, "sk": {"S": "T#cmt-pilot"}}
    )
    assert "Item" in item
    assert (
        s3.get_object(Bucket=NAMES.reports_bucket, Key="reports/keep.json")["Body"].read() == b"{}"
    )
    assert len(created["sqs_client"].list_queues()["QueueUrls"]) == 3


def test_the_job_queue_parks_a_message_in_its_dead_letter_queue_after_five_receives(
    created: dict[str, Any], template: dict[str, Any]
) -> None:
    sqs = created["sqs_client"]
    url = sqs.get_queue_url(QueueName=NAMES.jobs_queue)["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=NAMES.jobs_dead_letter_queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    props = template["Resources"]["JobQueue"]["Properties"]
    assert attributes["VisibilityTimeout"] == str(props["VisibilityTimeout"])
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"],
    }
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    for _ in range(props["RedrivePolicy"]["maxReceiveCount"]):
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    (parked,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert parked["Body"] == "{}"


def test_without_an_sqs_client_no_queue_is_created(clients: dict[str, Any]) -> None:
    create_local_resources(
        dynamodb_client=clients["dynamodb_client"], s3_client=clients["s3_client"], names=NAMES
    )
    assert "QueueUrls" not in clients["sqs_client"].list_queues()


def test_a_put_submission_is_read_back_as_an_insert_from_the_real_streams_api(
    created: dict[str, Any],
) -> None:
    dynamodb = created["dynamodb_client"]
    streams = boto3.client("dynamodbstreams")
    item = {
        "pk": {"S": "T#cmt-pilot#P#P01"},
        "sk": {"S": "S#hads#week-1#000"},
        "submission_id": {"S": "01JD0000000000000000000000"},
        "trial_id": {"S": "cmt-pilot"},
        "trial_received": {"S": "2026-11-20T10:16:02Z#01JD0000000000000000000000"},
        "entity": {"S": "submission"},
    }
    dynamodb.put_item(TableName=NAMES.submissions_table, Item=item)

    stream_arn = dynamodb.describe_table(TableName=NAMES.submissions_table)["Table"][
        "LatestStreamArn"
    ]
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (record,) = streams.get_records(ShardIterator=iterator)["Records"]

    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert record["dynamodb"]["Keys"] == {"pk": item["pk"], "sk": item["sk"]}
    assert record["dynamodb"]["NewImage"] == item


def test_table_kwargs_come_from_the_template_without_unresolvable_intrinsics(
    template: dict[str, Any],
) -> None:
    kwargs = table_create_kwargs(template, "SubmissionsTable", "t")
    assert kwargs["TableName"] == "t"
    assert kwargs["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert kwargs["SSESpecification"] == {"Enabled": True, "SSEType": "KMS"}
    assert set(kwargs) == {
        "TableName",
        "KeySchema",
        "AttributeDefinitions",
        "BillingMode",
        "GlobalSecondaryIndexes",
        "StreamSpecification",
        "SSESpecification",
    }


def test_local_names_come_from_the_functions_environment_variables() -> None:
    names = LocalNames.from_env(
        {
            "CMT_TABLE_NAME": "main",
            "CMT_SUBMISSIONS_TABLE_NAME": "subs",
            "CMT_REPORTS_BUCKET": "reports",
            "CMT_DLQ_NAME": "dlq",
            "CMT_JOBS_QUEUE": "jobs",
            "CMT_JOBS_DLQ_NAME": "jobs-dlq",
        }
    )
    assert names == LocalNames(
        main_table="main",
        submissions_table="subs",
        reports_bucket="reports",
        dead_letter_queue="dlq",
        jobs_queue="jobs",
        jobs_dead_letter_queue="jobs-dlq",
    )
    assert LocalNames.from_env({}) == LocalNames()


def test_short_tags_load_as_their_long_form(tmp_path: Any) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      Ref: !Ref B\n"
        "      Att: !GetAtt B.Endpoint.Address\n"
        "      Sub: !Sub ['${x}', {x: !Select [0, !Split [',', !ImportValue y]]}]\n"
        "      If: !If [C, !Base64 z, !GetAZs '']\n"
        "      Cond: !And [!Condition C, !Or [!Not [!Equals [a, b]]]]\n"
        "      Map: !FindInMap [M, k, v]\n"
        "      Join: !Join ['', [a]]\n",
        encoding="utf-8",
    )
    props = load_template(path)["Resources"]["A"]["Properties"]
    assert props == {
        "Ref": {"Ref": "B"},
        "Att": {"Fn::GetAtt": ["B", "Endpoint.Address"]},
        "Sub": {
            "Fn::Sub": [
                "${x}",
                {"x": {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "y"}]}]}},
            ]
        },
        "If": {"Fn::If": ["C", {"Fn::Base64": "z"}, {"Fn::GetAZs": ""}]},
        "Cond": {
            "Fn::And": [{"Condition": "C"}, {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}]}]
        },
        "Map": {"Fn::FindInMap": ["M", "k", "v"]},
        "Join": {"Fn::Join": ["", ["a"]]},
    }


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("Resources:\n  A:\n    Type: X\n  A:\n    Type: Y\n", "Duplicate found 'A'"),
        ("Resources: [1,\n", "did not find expected node content"),
        ("Outputs: {}\n", "is not a CloudFormation template"),
    ],
    ids=["duplicate key", "broken yaml", "no resources"],
)
def test_a_template_with_duplicate_keys_broken_yaml_or_no_resources_is_refused(
    tmp_path: Any, text: str, complaint: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(complaint)):
        load_template(path)


def test_intrinsics_that_cannot_be_resolved_locally_are_refused(tmp_path: Any) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  T:\n"
        "    Type: AWS::DynamoDB::Table\n"
        "    Properties:\n"
        "      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n"
        "      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n"
        "      BillingMode: !If [Cheap, PAY_PER_REQUEST, PROVISIONED]\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"T\.Properties\.BillingMode is an intrinsic function"):
        table_create_kwargs(load_template(path), "T", "t")
