"""The cold-start baseline: the least a FastAPI-on-Lambda function with DynamoDB must import.

One route, one boto3 DynamoDB client built at import (as the real handler builds its clients),
and a Mangum handler with lifespan off. `handlers.api` is compared against importing this.
"""

import boto3
from botocore.config import Config
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI(title="cold-start baseline")
dynamodb = boto3.session.Session().client(
    "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 8})
)


@app.get("/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


handler = Mangum(app, lifespan="off")
