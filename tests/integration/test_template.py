"""template.yaml lints, translates, grants least privilege and deploys what the code needs.

The SAM template is checked twice: as written (cfn-lint) and as AWS would run it, after the SAM
transform (aws-sam-translator, offline). Storage resources of the translated template are then
created by moto's CloudFormation.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.template import DEFAULT_TEMPLATE_PATH, load_template

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
EVENTS = REPO / "events"
REGION = "eu-west-2"
ACCOUNT_ID = "123456789012"
MAIL_SENDER = "alerts@example.org"

FUNCTIONS = {
    "ApiFunction": "handlers.api.handler",
    "ScoreStreamFunction": "handlers.score_stream.handler",
    "PrePostReportFunction": "handlers.prepost_report.handler",
    "WeeklySummaryFunction": "handlers.weekly_summary.handler",
    "ExportJobFunction": "handlers.export_job.handler",
}
COMMON_VARIABLES = {
    "CMT_STAGE",
    "CMT_TABLE_NAME",
    "CMT_SUBMISSIONS_TABLE_NAME",
    "CMT_REPORTS_BUCKET",
    "CMT_MAIL_SENDER",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_LOG_LEVEL",
}

# Managed policies SAM attaches by itself. They are AWS-maintained and are the only grants on
# Resource "*" that the functions get:
#  - AWSLambdaBasicExecutionRole: logs:CreateLogGroup/CreateLogStream/PutLogEvents (every function).
#  - AWSXrayWriteOnlyAccess: xray:PutTraceSegments etc., which AWS only supports on "*"
#    (Tracing: Active).
#  - AWSLambdaDynamoDBExecutionRole: stream read for the event source mapping of a DynamoDB
#    event; SAM adds it to the function with the stream event and offers no way to opt out (the
#    same actions are also granted explicitly on the stream ARN in the template).
#  - AWSLambdaSQSQueueExecutionRole: the same for the job function's SQS event (receive, delete,
#    queue attributes), also granted explicitly on the job queue's ARN.
BASE_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
EXTRA_MANAGED_POLICIES = {
    "ScoreStreamFunction": {"arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"},
    "ExportJobFunction": {"arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"},
}
# Inline statements may name "*" only for actions that AWS cannot scope to a resource. None of
# the template's own statements needs this today; list action -> reason here if one ever does.
ACTIONS_ALLOWED_ON_ANY_RESOURCE: dict[str, str] = {}
# Resource patterns that contain "*" on purpose: objects under the reports/ prefix of our own
# bucket (object keys are only known at run time).
WILDCARD_RESOURCES_ALLOWED = {
    "${ReportsBucket.Arn}/reports/*",
    "${ReportsBucket.Arn}/exports/*",
}


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template)


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation that the SAM transform produces, computed offline.

    `sam package` replaces the local CodeUri by an S3 location before the transform runs; the
    same is done here. The managed-policy map is only consulted for policies named by their
    short name, which the template does not use, so an empty map keeps this offline.
    """
    sam = copy.deepcopy(template)
    sam["Globals"]["Function"]["CodeUri"] = "s3://cmt-artifacts/cmt-collect.zip"
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=REGION),
    )
    return translator.translate(
        sam,
        parameter_values={"MailSender": MAIL_SENDER},
        get_managed_policy_map=lambda: {},
    )


def resources_of_type(cfn: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in cfn["Resources"].items()
        if resource["Type"] == resource_type
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resolve_for_test(value: Any, template: dict[str, Any]) -> str:
    """Replace an intrinsic with a realistic dummy string (what CloudFormation would put there)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or len(value) != 1:
        raise AssertionError(f"unexpected environment value {value!r}")
    ((function, argument),) = value.items()
    if function == "Ref":
        return _ref_value(argument, template)
    if function == "Fn::Sub" and isinstance(argument, str):
        return re.sub(
            r"\$\{([^}!]+)\}",
            lambda match: _ref_value(match.group(1).split(".")[0], template),
            argument,
        )
    if function == "Fn::GetAtt":
        return f"arn:aws:test:{REGION}:{ACCOUNT_ID}:{argument[0].lower()}"
    raise AssertionError(f"no test value for {value!r}")


def _ref_value(name: str, template: dict[str, Any]) -> str:
    pseudo = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "cmt-collect-test",
    }
    if name in pseudo:
        return pseudo[name]
    if name == "MailSender":
        return MAIL_SENDER
    parameter = template.get("Parameters", {}).get(name)
    if parameter is not None:
        return str(parameter["Default"])
    # a resource: tables, buckets and APIs are referenced by their physical name / id
    return f"cmt-test-{name.lower()}"


def policy_statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])


def resource_strings(resource: Any) -> Iterator[str]:
    """Every literal or Fn::Sub pattern naming a resource in a policy statement."""
    for item in as_list(resource):
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict) and "Fn::Sub" in item:
            sub = item["Fn::Sub"]
            yield sub if isinstance(sub, str) else sub[0]
        elif isinstance(item, dict) and ("Fn::GetAtt" in item or "Ref" in item):
            continue  # a whole resource: cannot be a wildcard
        else:
            raise AssertionError(f"unexpected Resource element {item!r}")


def handler_module_path(handler: str) -> tuple[str, str, list[Path]]:
    module, _, function = handler.rpartition(".")
    relative = Path(*module.split("."))
    return module, function, [SRC / relative.with_suffix(".py"), SRC / relative / "__init__.py"]


# --------------------------------------------------------------------------------------------
# the template as written
# --------------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing_for_the_template_not_even_informational() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [
            str(cfn_lint),
            "--format",
            "parseable",
            "--include-checks",
            "I",
            "--",
            str(DEFAULT_TEMPLATE_PATH),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.stdout == "", result.stdout
    assert result.returncode == 0, result.stderr


def test_every_function_handler_names_a_module_under_src_handlers(template: dict[str, Any]) -> None:
    functions = {
        logical_id: resource["Properties"]["Handler"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions == FUNCTIONS
    for logical_id, handler in functions.items():
        module, function, candidates = handler_module_path(handler)
        assert module.startswith("handlers."), logical_id
        assert function.isidentifier(), logical_id
        assert any(path.is_file() for path in candidates), f"{logical_id}: no {candidates[0]}"


def test_lambda_requirements_pin_the_runtime_closure_and_nothing_of_the_extras() -> None:
    # src/requirements.txt is generated from uv.lock (`make lock`; `make lint` checks it is in
    # step): the runtime dependencies as pyproject pins them, their own dependencies, no extra.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = (SRC / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = {
        _normalised(name): version
        for name, _, version in (
            line.split(";")[0].strip().partition("==")
            for line in lines
            if line.strip() and not line.startswith(("#", " "))
        )
    }
    assert all(pins.values()), "every requirement is pinned exactly"
    runtime = {
        _normalised(name): version
        for name, _, version in (pin.partition("==") for pin in project["dependencies"])
    }
    assert {name: pins.get(name) for name in runtime} == runtime
    extras = {
        _normalised(re.split(r"[\[=]", requirement)[0])
        for requirements in project["optional-dependencies"].values()
        for requirement in requirements
    }
    assert not extras & set(pins), "a local or dev dependency would be deployed"
    assert {"moto", "uvicorn", "cfn-lint", "pytest", "flask"} <= extras


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_tables_keep_data_encrypted_recoverable_and_retained(template: dict[str, Any]) -> None:
    for logical_id in ("MainTable", "SubmissionsTable"):
        table = template["Resources"][logical_id]
        props = table["Properties"]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Ref": "DataKey"},
        }
    assert template["Resources"]["DataKey"]["Properties"]["EnableKeyRotation"] is True


def test_reports_bucket_is_private_versioned_encrypted_and_tls_only(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["ReportsBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (statement,) = template["Resources"]["ReportsBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --------------------------------------------------------------------------------------------
# the template as AWS runs it (after the SAM transform)
# --------------------------------------------------------------------------------------------


def test_translated_template_lints_clean_so_it_has_no_circular_dependency(
    translated: dict[str, Any],
) -> None:
    # cfn-lint checks the SAM template against SAM schemas without running the transform, so a
    # reference cycle that only appears after it (E3004) is caught here.
    from cfnlint.api import ManualArgs, lint

    config = ManualArgs(regions=[REGION], ignore_checks=_cfn_lint_ignored())
    matches = lint(json.dumps(translated), config=config)
    assert [str(match) for match in matches] == []


def _cfn_lint_ignored() -> list[str]:
    """The checks `.cfnlintrc.yaml` turns off (the runtime lifecycle's, which read the date)."""
    import yaml

    ignored = yaml.safe_load((REPO / ".cfnlintrc.yaml").read_text(encoding="utf-8"))
    return list(ignored["ignore_checks"])


#: the day the template's runtime was last checked against AWS's lifecycle (docs/OPERATIONS.md)
RUNTIME_REVIEWED = dt.date(2026, 12, 1)


def test_the_runtime_has_a_year_of_support_left_at_its_review_date() -> None:
    """cfn-lint's lifecycle table at a fixed date, since its own rules read today's date."""
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    assert _cfn_lint_ignored() == ["E2531", "E2533", "W2531"]  # only the lifecycle rules
    runtime = load_template()["Globals"]["Function"]["Runtime"]
    lifecycle = load_resource(AdditionalSpecs, "LmbdRuntimeLifecycle.json")
    assert "python3.8" in lifecycle  # the table is cfn-lint's real one, not an empty lookup
    dates = lifecycle.get(runtime)
    if dates is not None:  # a runtime the table does not list has no end date announced
        deprecated = dt.date.fromisoformat(dates["deprecated"])
        assert deprecated - RUNTIME_REVIEWED >= dt.timedelta(days=365), (runtime, dates)


def test_score_stream_retries_bisects_reports_partial_failures_and_parks_the_rest(
    translated: dict[str, Any],
) -> None:
    (mapping,) = [
        m
        for m in resources_of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "ScoreStreamFunction"}
    ]
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["SubmissionsTable", "StreamArn"]}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BatchSize"] == 100
    assert props["MaximumBatchingWindowInSeconds"] == 1
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["MaximumRetryAttempts"] == 5
    assert props["MaximumRecordAgeInSeconds"] == 86400
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ScoreDeadLetterQueue", "Arn"]}}
    }
    role = translated["Resources"]["ScoreStreamFunctionRole"]
    assert any(
        "sqs:SendMessage" in as_list(statement["Action"])
        and statement["Resource"] == {"Fn::GetAtt": ["ScoreDeadLetterQueue", "Arn"]}
        for statement in policy_statements(role)
    )


def test_the_job_function_takes_the_job_queue_one_at_a_time_and_parks_what_fails(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    (mapping,) = [
        m
        for m in resources_of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "ExportJobFunction"}
    ]
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["JobQueue", "Arn"]}
    assert props["BatchSize"] == 1
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    function = template["Resources"]["ExportJobFunction"]["Properties"]
    queue = template["Resources"]["JobQueue"]["Properties"]
    # AWS's advice for SQS event sources: a visibility timeout of six times the function's
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert function["Timeout"] == 900
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    watched = {
        (a["Properties"]["MetricName"], str(a["Properties"]["Dimensions"][0]["Value"]))
        for a in alarms.values()
    }
    assert (
        "ApproximateNumberOfMessagesVisible",
        str({"Fn::GetAtt": ["JobDeadLetterQueue", "QueueName"]}),
    ) in watched
    assert ("Errors", str({"Ref": "ExportJobFunction"})) in watched
    assert ("JobsFailed", "cmt-collect") in watched
    # the API queues jobs (SendMessage on this queue only) and tells the function's name to
    # nobody: it never invokes the job function itself
    api = translated["Resources"]["ApiFunctionRole"]
    sends = [s for s in policy_statements(api) if "sqs:SendMessage" in as_list(s["Action"])]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": ["JobQueue", "Arn"]}]
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CMT_JOBS_QUEUE"] == {"Ref": "JobQueue"}


def test_the_job_function_writes_only_job_items_the_audit_trail_and_its_prefixes(
    translated: dict[str, Any],
) -> None:
    role = translated["Resources"]["ExportJobFunctionRole"]
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    leading = {}
    for statement in policy_statements(role):
        actions = set(as_list(statement["Action"]))
        if actions & writes:
            condition = statement["Condition"]["ForAllValues:StringLike"]
            leading[frozenset(actions & writes)] = condition["dynamodb:LeadingKeys"]
        if any(a.startswith("s3:") and a != "s3:ListBucketVersions" for a in actions):
            prefixes = set(resource_strings(statement["Resource"]))
            assert prefixes <= WILDCARD_RESOURCES_ALLOWED, prefixes
            if "s3:DeleteObjectVersion" in actions:
                # its own export files; report versions naming a participant erased from a
                # trial too large to republish within the API's request
                assert prefixes <= {
                    "${ReportsBucket.Arn}/exports/*",
                    "${ReportsBucket.Arn}/reports/*",
                }
    assert leading == {
        frozenset({"dynamodb:UpdateItem"}): ["JOBS#*"],
        frozenset({"dynamodb:PutItem"}): ["AUDIT#*"],
    }


def test_reports_and_summaries_run_on_their_cron_schedules(translated: dict[str, Any]) -> None:
    schedules = {
        rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]: rule["Properties"][
            "ScheduleExpression"
        ]
        for rule in resources_of_type(translated, "AWS::Events::Rule").values()
    }
    assert schedules == {
        "PrePostReportFunction": "cron(0 2 * * ? *)",
        "WeeklySummaryFunction": "cron(0 8 ? * MON *)",
    }


def test_http_api_sends_every_path_to_the_api_function_with_throttling_and_access_logs(
    translated: dict[str, Any],
) -> None:
    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    throttled = {
        ("/v1/trials/{trial_id}/submissions", "post"),
        ("/v1/trials/{trial_id}/export.csv", "get"),
        ("/v1/trials/{trial_id}/reports/pre-post", "post"),
        ("/v1/access/exchange", "post"),  # no key: the ceiling on guessing codes
    }
    assert set(body["paths"]) == {"/", "/{proxy+}"} | {path for path, _ in throttled}
    for name, path in body["paths"].items():
        for method, operation in path.items():
            integration = operation["x-amazon-apigateway-integration"]
            assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"]
            assert integration["payloadFormatVersion"] == "2.0"
            if name in ("/", "/{proxy+}"):
                assert method == "x-amazon-apigateway-any-method"
            else:
                assert (name, method) in throttled
    (stage,) = resources_of_type(translated, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRate"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurst"},
    }
    # the routes of their own are throttled apart, so one cannot starve the others
    route_settings = stage["Properties"]["RouteSettings"]
    assert set(route_settings) == {f"{m.upper()} {p}" for p, m in throttled}
    assert route_settings["POST /v1/trials/{trial_id}/submissions"]["ThrottlingRateLimit"] == {
        "Ref": "SubmissionThrottleRate"
    }
    assert route_settings["POST /v1/access/exchange"] == {
        "ThrottlingRateLimit": {"Ref": "ExchangeThrottleRate"},
        "ThrottlingBurstLimit": {"Ref": "ExchangeThrottleBurst"},
    }
    (api,) = [
        r
        for r in resources_of_type(translated, "AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == "handlers.api.handler"
    ]
    assert api["Properties"]["Timeout"] < 30  # the function, not the gateway, ends a request
    assert api["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    assert stage["Properties"]["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]
    }


def test_every_function_logs_to_its_own_log_group_with_retention(
    translated: dict[str, Any],
) -> None:
    for logical_id in FUNCTIONS:
        props = translated["Resources"][logical_id]["Properties"]
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = translated["Resources"][log_group_id]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.12"


def test_no_role_grants_anything_on_any_resource(translated: dict[str, Any]) -> None:
    roles = resources_of_type(translated, "AWS::IAM::Role")
    assert set(roles) == {f"{logical_id}Role" for logical_id in FUNCTIONS}
    for role_id, role in roles.items():
        function = role_id.removesuffix("Role")
        managed = set(role["Properties"].get("ManagedPolicyArns", []))
        assert managed <= BASE_MANAGED_POLICIES | EXTRA_MANAGED_POLICIES.get(function, set()), (
            role_id
        )
        for statement in policy_statements(role):
            assert statement["Effect"] == "Allow", role_id
            assert "NotAction" not in statement, role_id
            assert "NotResource" not in statement, role_id
            actions = as_list(statement["Action"])
            assert not any(action.endswith("*") for action in actions), (role_id, actions)
            for resource in resource_strings(statement["Resource"]):
                if resource == "*":
                    assert set(actions) <= set(ACTIONS_ALLOWED_ON_ANY_RESOURCE), (role_id, actions)
                elif "*" in resource:
                    assert resource in WILDCARD_RESOURCES_ALLOWED, (role_id, resource)


def test_every_key_grant_works_only_through_dynamodb_or_s3(translated: dict[str, Any]) -> None:
    for role_id, role in resources_of_type(translated, "AWS::IAM::Role").items():
        for statement in policy_statements(role):
            if any(a.startswith("kms:") for a in as_list(statement["Action"])):
                via = statement["Condition"]["StringEquals"]["kms:ViaService"]
                services = {v["Fn::Sub"].split(".")[0] for v in via}
                assert services <= {"dynamodb", "s3"}, (role_id, via)


def test_no_role_may_call_a_dynamodb_action_the_code_never_calls(
    translated: dict[str, Any],
) -> None:
    """Least privilege: every DynamoDB action granted is one some adapter really calls."""
    source = (
        "\n".join(path.read_text() for path in (REPO / "src" / "adapters").glob("*.py"))
        + (REPO / "src" / "local" / "pump.py").read_text()
    )
    called = {
        "".join(part.title() for part in name.split("_"))
        for name in re.findall(r"\.(\w+_item|query|scan|batch_\w+|transact_\w+)\(", source)
    }
    stream_reads = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}
    for role_id, role in resources_of_type(translated, "AWS::IAM::Role").items():
        for statement in policy_statements(role):
            for action in as_list(statement["Action"]):
                if action.startswith("dynamodb:") and action[9:] not in stream_reads:
                    assert action[9:] in called, (role_id, action)


def test_only_the_mail_sending_functions_may_send_mail_and_only_as_the_sender(
    translated: dict[str, Any],
) -> None:
    for logical_id in FUNCTIONS:
        role = translated["Resources"][f"{logical_id}Role"]
        ses = [
            s
            for s in policy_statements(role)
            if any(a.startswith("ses:") for a in as_list(s["Action"]))
        ]
        if logical_id in ("ScoreStreamFunction", "WeeklySummaryFunction"):
            (statement,) = ses
            patterns = list(resource_strings(statement["Resource"]))
            assert all(
                pattern.split(":identity/")[1] in ("${MailSender}", "${Domain}")
                for pattern in patterns
            )
        else:
            assert ses == [], logical_id


def test_every_function_gets_the_shared_settings_and_the_api_url_where_it_can(
    translated: dict[str, Any],
) -> None:
    for logical_id in FUNCTIONS:
        variables = translated["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        assert set(variables) >= COMMON_VARIABLES, logical_id
        # The API function cannot reference the HttpApi that integrates it (circular
        # dependency); it takes its base URL from the request instead.
        assert ("CMT_API_BASE_URL" in variables) is (logical_id != "ApiFunction"), logical_id


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_imports_with_only_the_environment_the_template_sets(
    logical_id: str, template: dict[str, Any], translated: dict[str, Any]
) -> None:
    props = translated["Resources"][logical_id]["Properties"]
    module, function, _ = handler_module_path(props["Handler"])
    environment = {
        name: resolve_for_test(value, template)
        for name, value in props["Environment"]["Variables"].items()
    }
    environment.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PYTHONPATH=str(SRC),
    )
    code = (
        "import importlib\n"
        f"m = importlib.import_module({module!r})\n"
        f"assert callable(getattr(m, {function!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]


# --------------------------------------------------------------------------------------------
# moto's CloudFormation creates the storage resources of the translated template
# --------------------------------------------------------------------------------------------

# moto 5.2 has no CloudFormation support for AWS::S3::BucketPolicy, AWS::SNS::TopicPolicy and
# AWS::SNS::Subscription, and the alarms, roles, functions and API need code and an API
# Gateway; those are checked on the translated template above instead.
MOTO_STACK_TYPES = {
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
}


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def test_moto_cloudformation_creates_the_tables_bucket_queue_and_keys_of_the_template(
    moto_aws: None, template: dict[str, Any], translated: dict[str, Any]
) -> None:
    resources = {
        logical_id: resource
        for logical_id, resource in translated["Resources"].items()
        if resource["Type"] in MOTO_STACK_TYPES
    }
    stack = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": translated["Parameters"],
        "Conditions": translated.get("Conditions", {}),
        "Resources": resources,
        "Outputs": {k: v for k, v in translated["Outputs"].items() if k != "ApiUrl"},
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="cmt-collect-test",
        TemplateBody=json.dumps(stack),
        Parameters=[{"ParameterKey": "MailSender", "ParameterValue": MAIL_SENDER}],
    )
    (described,) = cloudformation.describe_stacks(StackName="cmt-collect-test")["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName="cmt-collect-test")[
            "StackResourceSummaries"
        ]
    }

    dynamodb = boto3.client("dynamodb")
    for logical_id, output in (
        ("MainTable", "MainTableName"),
        ("SubmissionsTable", "SubmissionsTableName"),
    ):
        props = template["Resources"][logical_id]["Properties"]
        table = dynamodb.describe_table(TableName=outputs[output])["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(
            props["AttributeDefinitions"], key=str
        )
    submissions = dynamodb.describe_table(TableName=outputs["SubmissionsTableName"])["Table"]
    assert submissions["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_IMAGE",
    }
    (index,) = submissions["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_trial"
    assert index["Projection"] == {"ProjectionType": "ALL"}

    # (moto's CloudFormation stores KeyPolicy unserialised, so DescribeKey on a stack-created
    # key fails in moto; the key's ARN is built from its physical id instead.)
    kms = boto3.client("kms")
    data_key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{physical['DataKey']}"
    assert kms.get_key_rotation_status(KeyId=physical["DataKey"])["KeyRotationEnabled"] is True

    s3 = boto3.client("s3")
    (rule,) = s3.get_bucket_encryption(Bucket=outputs["ReportsBucketName"])[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": data_key_arn,
    }

    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs["ScoreDeadLetterQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert attributes["SqsManagedSseEnabled"] == "true"

    logs = boto3.client("logs")
    groups = {
        g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]
    }
    assert groups == {
        "/aws/apigateway/cmt-collect-test-http-api": 365,
        "/aws/lambda/cmt-collect-test-api": 365,
        "/aws/lambda/cmt-collect-test-score-stream": 365,
        "/aws/lambda/cmt-collect-test-prepost-report": 365,
        "/aws/lambda/cmt-collect-test-weekly-summary": 365,
        "/aws/lambda/cmt-collect-test-export-job": 365,
    }


# --------------------------------------------------------------------------------------------
# the sample events match the template
# --------------------------------------------------------------------------------------------


def test_every_http_api_sample_event_arrives_on_a_route_the_template_declares(
    translated: dict[str, Any],
) -> None:
    declared = {
        f"ANY {path}" for path in translated["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
    }
    samples = sorted(EVENTS.glob("api_*.json"))
    assert len(samples) >= 11
    for sample in samples:
        event = json.loads(sample.read_text(encoding="utf-8"))
        if event.get("version") != "2.0":
            continue  # the REST (payload 1.0) sample
        assert event["routeKey"] in declared, sample.name
        assert event["requestContext"]["http"]["path"] == event["rawPath"], sample.name
        assert all(name == name.lower() for name in event["headers"]), sample.name
        if "body" in event:
            json.loads(event["body"])


def test_stream_sample_event_carries_the_submissions_tables_keys(template: dict[str, Any]) -> None:
    props = template["Resources"]["SubmissionsTable"]["Properties"]
    key_names = {k["AttributeName"] for k in props["KeySchema"]}
    indexed = {d["AttributeName"] for d in props["AttributeDefinitions"]}
    event = json.loads((EVENTS / "score_stream.json").read_text(encoding="utf-8"))
    assert [r["eventName"] for r in event["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    for record in event["Records"]:
        assert (
            record["dynamodb"]["StreamViewType"] == props["StreamSpecification"]["StreamViewType"]
        )
        assert set(record["dynamodb"]["Keys"]) == key_names
        if record["eventName"] != "REMOVE":
            assert set(record["dynamodb"]["NewImage"]) >= indexed


def test_the_templates_software_version_is_the_packages(template: dict[str, Any]) -> None:
    from handlers.settings import SOFTWARE_VERSION, software_version

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert template["Parameters"]["SoftwareVersion"]["Default"] == declared
    assert declared == SOFTWARE_VERSION  # read from the installed package's metadata
    assert software_version({"CMT_SOFTWARE_VERSION": "9.9.9"}) == declared  # metadata first
