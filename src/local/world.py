"""The one builder of a world on moto: resources from template.yaml, adapters, services, pump.

The tests (moto in-process, `mock_aws`), the benchmarks and the local stack (moto's server)
all build the same world here, against whatever endpoint boto3 is pointed at: the stack's
tables, bucket and queue from the deployment template, the sender verified in SES, the real
adapters and services of `handlers.wiring`, and a stream pump delivering the submissions
table's stream to the real stream handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from handlers.job_batch import make_handler as make_job_handler
from handlers.settings import Settings
from handlers.stream_batch import make_handler
from handlers.wiring import Adapters, Container, build, build_adapters
from local.job_runner import JobRunner
from local.pump import StreamPump
from local.template import LocalNames, create_local_resources
from services.clock import Clock, utc_now

__all__ = ["SERVICES", "World", "aws_clients", "create_resources", "create_world"]

#: The AWS services a world uses (the pump reads the stream, the queue takes failures).
SERVICES = ("dynamodb", "dynamodbstreams", "s3", "sqs", "ses")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class World:
    clients: dict[str, Any]
    names: LocalNames
    settings: Settings
    adapters: Adapters
    container: Container
    pump: StreamPump
    jobs: JobRunner

    @property
    def dead_letter_queue_url(self) -> str:
        return str(
            self.clients["sqs"].get_queue_url(QueueName=self.names.dead_letter_queue)["QueueUrl"]
        )


def aws_clients(session: boto3.session.Session) -> dict[str, Any]:
    return {name: session.client(name) for name in SERVICES}


def create_resources(clients: dict[str, Any], *, names: LocalNames, sender: str) -> None:
    """The template's tables, bucket and queue, and the sender as a verified SES identity."""
    create_local_resources(
        dynamodb_client=clients["dynamodb"],
        s3_client=clients["s3"],
        sqs_client=clients["sqs"],
        names=names,
    )
    clients["ses"].verify_email_identity(EmailAddress=sender)


def create_world(
    *,
    names: LocalNames,
    settings: Settings,
    clock: Clock = utc_now,
    session: boto3.session.Session | None = None,
    handler: Handler | None = None,
) -> World:
    """Create the resources and build everything on them.

    `handler` is what the pump delivers batches to: by default the stream handler around the
    world's own scoring service (the local stack passes the deployed module's handler). The
    job runner hands the job queue to the job handler around the world's own job service.
    """
    session = session or boto3.session.Session(region_name=settings.region)
    if settings.jobs_queue is None:
        settings = dataclasses.replace(settings, jobs_queue=names.jobs_queue)
    clients = aws_clients(session)
    create_resources(clients, names=names, sender=settings.mail_sender)
    adapters = build_adapters(settings, session=session)
    container = build(settings, clock=clock, adapters=adapters)
    queue_url = clients["sqs"].get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    pump = StreamPump(
        streams_client=clients["dynamodbstreams"],
        dynamodb_client=clients["dynamodb"],
        table_name=names.submissions_table,
        handler=handler or make_handler(container.scoring),
        sqs_client=clients["sqs"],
        dead_letter_queue_url=queue_url,
        region=settings.region or session.region_name,
    )
    jobs = JobRunner(
        sqs_client=clients["sqs"],
        queue_url=clients["sqs"].get_queue_url(QueueName=names.jobs_queue)["QueueUrl"],
        handler=make_job_handler(container.jobs),
        region=settings.region or session.region_name,
    )
    return World(
        clients=clients,
        names=names,
        settings=settings,
        adapters=adapters,
        container=container,
        pump=pump,
        jobs=jobs,
    )
