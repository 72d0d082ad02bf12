"""Operational metrics as CloudWatch Embedded Metric Format lines (no API call, no latency).

Each count is one EMF JSON line on stdout; CloudWatch Logs turns it into a metric in the
``cmt-collect`` namespace with the single dimension ``service=cmt-collect``, which the alarms in
template.yaml watch. Locally the lines appear in the stack's output. Only a metric name and a
count: never a participant's answer or free text.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "cmt-collect"
SERVICE = "cmt-collect"


class EmfMetrics:
    def count(self, name: str, value: int = 1) -> None:
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ):
            pass
