"""Local AWS resources built from ``template.yaml``, the one place their shape is declared.

The local stack (``make run``) and the integration tests create their moto tables, bucket and
queue from the deployment template's own resource properties, so there is no second copy of a
key schema, index or stream setting that could drift from what is deployed.

The template is read with cfn-lint's loader; the boto3 clients are passed in by the caller (the
composition root or a test), which decides which endpoint they talk to.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_TEMPLATE_PATH",
    "LocalNames",
    "create_local_resources",
    "load_template",
    "table_create_kwargs",
]

# src/local/template.py -> <repo>/template.yaml
DEFAULT_TEMPLATE_PATH = pathlib.Path(__file__).resolve().parents[2] / "template.yaml"


def load_template(path: pathlib.Path | None = None) -> dict[str, Any]:
    """Read a CloudFormation/SAM template with cfn-lint's loader (the one ``make lint`` uses).

    Short-form tags come back in their long form (``!Ref X`` as ``{"Ref": "X"}``,
    ``!GetAtt A.B`` as ``{"Fn::GetAtt": ["A", "B"]}``); the loader is a safe one and refuses
    duplicate keys. ``path`` defaults to the repository's ``template.yaml``.
    """
    # Imported here: cfn-lint takes about a second to import, paid once by the first caller.
    from cfnlint.decode import decode

    path = path or DEFAULT_TEMPLATE_PATH
    template, problems = decode(str(path))
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problem.message for problem in problems))
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path} is not a CloudFormation template")
    return template


_template_cache: dict[tuple[pathlib.Path, int], dict[str, Any]] = {}


def _default_template() -> Mapping[str, Any]:
    """The repository's template, parsed once per file version (callers only read it)."""
    key = (DEFAULT_TEMPLATE_PATH, DEFAULT_TEMPLATE_PATH.stat().st_mtime_ns)
    if key not in _template_cache:
        _template_cache.clear()
        _template_cache[key] = load_template(DEFAULT_TEMPLATE_PATH)
    return _template_cache[key]


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or str(key).startswith("Fn::")


def _properties(template: Mapping[str, Any], logical_id: str, resource_type: str) -> dict[str, Any]:
    try:
        resource = template["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"template has no resource {logical_id!r}") from None
    if resource.get("Type") != resource_type:
        raise ValueError(f"{logical_id} is a {resource.get('Type')}, not a {resource_type}")
    return copy.deepcopy(resource.get("Properties", {}))


def _literal(value: Any, where: str) -> Any:
    """Return ``value`` unchanged, refusing any intrinsic a local API call cannot resolve."""
    if _is_intrinsic(value):
        raise ValueError(f"{where} is an intrinsic function ({value!r}); it cannot be used locally")
    if isinstance(value, dict):
        return {key: _literal(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


def table_create_kwargs(
    template: Mapping[str, Any], logical_id: str, table_name: str
) -> dict[str, Any]:
    """The ``dynamodb.create_table`` keyword arguments for the template's table ``logical_id``.

    Copies the key schema, attribute definitions, billing mode, global secondary indexes and
    stream of the template's table; server-side encryption is requested with the service's
    default key (the template's ``KMSMasterKeyId`` refers to a stack resource). Everything else
    (point-in-time recovery, TTL, deletion policies) is not a ``CreateTable`` argument.
    """
    props = _properties(template, logical_id, "AWS::DynamoDB::Table")
    where = f"{logical_id}.Properties"
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": _literal(props["KeySchema"], f"{where}.KeySchema"),
        "AttributeDefinitions": _literal(
            props["AttributeDefinitions"], f"{where}.AttributeDefinitions"
        ),
        "BillingMode": _literal(props.get("BillingMode", "PROVISIONED"), f"{where}.BillingMode"),
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                name: _literal(value, f"{where}.GlobalSecondaryIndexes[{index}].{name}")
                for name, value in gsi.items()
                if name in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
            }
            for index, gsi in enumerate(props["GlobalSecondaryIndexes"])
        ]
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": _literal(
                props["StreamSpecification"]["StreamViewType"],
                f"{where}.StreamSpecification.StreamViewType",
            ),
        }
    sse = props.get("SSESpecification")
    if sse and sse.get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
        if "SSEType" in sse:
            kwargs["SSESpecification"]["SSEType"] = _literal(
                sse["SSEType"], f"{where}.SSESpecification.SSEType"
            )
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = _literal(
            props["ProvisionedThroughput"], f"{where}.ProvisionedThroughput"
        )
    return kwargs


@dataclass(frozen=True)
class LocalNames:
    """Physical names of the local resources (CloudFormation generates them on AWS)."""

    main_table: str = "cmt-main"
    submissions_table: str = "cmt-submissions"
    reports_bucket: str = "cmt-reports-local"
    dead_letter_queue: str = "cmt-score-dlq"
    jobs_queue: str = "cmt-jobs"
    jobs_dead_letter_queue: str = "cmt-jobs-dlq"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalNames:
        """Names from the same variables the functions read, defaults where unset."""
        defaults = cls()
        return cls(
            main_table=environ.get("CMT_TABLE_NAME") or defaults.main_table,
            submissions_table=environ.get("CMT_SUBMISSIONS_TABLE_NAME")
            or defaults.submissions_table,
            reports_bucket=environ.get("CMT_REPORTS_BUCKET") or defaults.reports_bucket,
            dead_letter_queue=environ.get("CMT_DLQ_NAME") or defaults.dead_letter_queue,
            jobs_queue=environ.get("CMT_JOBS_QUEUE") or defaults.jobs_queue,
            jobs_dead_letter_queue=environ.get("CMT_JOBS_DLQ_NAME")
            or defaults.jobs_dead_letter_queue,
        )


# (logical id in template.yaml, attribute of LocalNames holding its local name)
_TABLES = (("MainTable", "main_table"), ("SubmissionsTable", "submissions_table"))
_BUCKET = "ReportsBucket"
# (logical id, attribute of LocalNames): dead-letter queues before the queues that name them
_QUEUES = (
    ("ScoreDeadLetterQueue", "dead_letter_queue"),
    ("JobDeadLetterQueue", "jobs_dead_letter_queue"),
    ("JobQueue", "jobs_queue"),
)


def create_local_resources(
    *,
    dynamodb_client: Any,
    s3_client: Any,
    sqs_client: Any | None = None,
    names: LocalNames,
    template: Mapping[str, Any] | None = None,
) -> None:
    """Create the tables, the reports bucket and (given ``sqs_client``) the queues.

    Shapes come from ``template`` (default: the repository's ``template.yaml``). Idempotent:
    resources that already exist are left as they are.
    """
    template = _default_template() if template is None else template
    for logical_id, attribute in _TABLES:
        _ensure_table(dynamodb_client, template, logical_id, getattr(names, attribute))
    _ensure_bucket(s3_client, template, names.reports_bucket)
    if sqs_client is not None:
        arns: dict[str, str] = {}
        for logical_id, attribute in _QUEUES:
            arns[logical_id] = _ensure_queue(
                sqs_client, template, logical_id, getattr(names, attribute), arns
            )


def _ensure_table(client: Any, template: Mapping[str, Any], logical_id: str, name: str) -> None:
    try:
        client.describe_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        # ResourceInUse: created concurrently by another process, which is the same outcome.
        with contextlib.suppress(client.exceptions.ResourceInUseException):
            client.create_table(**table_create_kwargs(template, logical_id, name))
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = _properties(template, logical_id, "AWS::DynamoDB::Table").get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        attribute = _literal(ttl["AttributeName"], f"{logical_id}.TimeToLiveSpecification")
        current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True},
            )


def _ensure_bucket(client: Any, template: Mapping[str, Any], name: str) -> None:
    props = _properties(template, _BUCKET, "AWS::S3::Bucket")
    region = client.meta.region_name
    create: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**create)
    except (
        client.exceptions.BucketAlreadyOwnedByYou,
        client.exceptions.BucketAlreadyExists,
    ):
        return  # leave an existing bucket as it is
    if "OwnershipControls" in props:
        client.put_bucket_ownership_controls(
            Bucket=name,
            OwnershipControls=_literal(props["OwnershipControls"], f"{_BUCKET}.OwnershipControls"),
        )
    if "PublicAccessBlockConfiguration" in props:
        client.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration=_literal(
                props["PublicAccessBlockConfiguration"], f"{_BUCKET}.PublicAccessBlockConfiguration"
            ),
        )
    if "VersioningConfiguration" in props:
        client.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={
                "Status": _literal(
                    props["VersioningConfiguration"]["Status"], f"{_BUCKET}.VersioningConfiguration"
                )
            },
        )
    encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = []
        for rule in encryption:
            default = dict(rule.get("ServerSideEncryptionByDefault", {}))
            # The template's key is a stack resource; locally the service's default key is used.
            if _is_intrinsic(default.get("KMSMasterKeyID")):
                del default["KMSMasterKeyID"]
            api_rule: dict[str, Any] = {
                "ApplyServerSideEncryptionByDefault": _literal(
                    default, f"{_BUCKET}.BucketEncryption"
                )
            }
            if "BucketKeyEnabled" in rule:
                api_rule["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
            rules.append(api_rule)
        client.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
        )


def _ensure_queue(
    client: Any, template: Mapping[str, Any], logical_id: str, name: str, arns: Mapping[str, str]
) -> str:
    """Create the template's queue `logical_id` as `name`; returns its ARN. A redrive policy
    naming another queue of the template (``!GetAtt Q.Arn``) names that queue's local ARN."""
    props = _properties(template, logical_id, "AWS::SQS::Queue")
    attributes = {
        key: _sqs_attribute(_literal(value, f"{logical_id}.{key}"))
        for key, value in props.items()
        if key in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout")
    }
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        if not (isinstance(target, dict) and "Fn::GetAtt" in target):
            raise ValueError(f"{logical_id}.RedrivePolicy must name a queue of the template")
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": arns[target["Fn::GetAtt"][0]],
                "maxReceiveCount": int(
                    _literal(redrive["maxReceiveCount"], f"{logical_id}.RedrivePolicy")
                ),
            }
        )
    try:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
    except client.exceptions.QueueDoesNotExist:
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return str(
        client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def _sqs_attribute(value: Any) -> str:
    # SQS attributes are strings on the wire; booleans are spelled in lower case.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
