"""A second cold-start reference: an app of the contract's shape that does nothing.

As many routes as `handlers.api` serves (`ROUTES`), half of them GETs with paging query
parameters and half POSTs with a body, each with a validated trial-id path parameter, the
bearer guard as a dependency and a response model; as many pydantic models as
`handlers.schemas` defines (`MODELS`, built on first use as ours are); one DynamoDB client
and a Mangum handler, as in `minimal_app`. No settings, services, domain or logging.

What FastAPI and pydantic spend on a contract of this size is a floor under any
implementation of it on this stack; `handlers.api` over this app is what our own code costs.
A test keeps the two counts equal to the real app's.
"""

from typing import Annotated, Any

import boto3
from botocore.config import Config
from fastapi import Depends, FastAPI, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from mangum import Mangum
from pydantic import BaseModel, ConfigDict

ROUTES = 35
MODELS = 80

app = FastAPI(title="cold-start reference: the contract's shape")
dynamodb = boto3.session.Session().client(
    "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 8})
)
bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
TrialId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")]


async def guard(credentials: Credentials) -> str:
    return credentials.credentials if credentials else ""


Caller = Annotated[str, Depends(guard)]


def _model(n: int) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "__annotations__": {
            "name": str,
            "count": int,
            "items": list[str],
            "by_key": dict[str, int] | None,
            "value": float | None,
        },
        "by_key": None,
        "value": None,
        "model_config": ConfigDict(defer_build=True, extra="forbid"),
    }
    return type(f"Model{n}", (BaseModel,), fields)


models = [_model(n) for n in range(MODELS)]


def _route(n: int) -> None:
    answer = models[(2 * n + 1) % MODELS]
    if n % 2:
        body_model = models[(2 * n) % MODELS]

        async def post(trial_id: TrialId, body: body_model, caller: Caller) -> None:
            return None

        app.post(f"/v1/things-{n}/{{trial_id}}", response_model=answer, name=f"post_{n}")(post)
    else:

        async def get(
            trial_id: TrialId, caller: Caller, limit: int = 50, cursor: str | None = None
        ) -> None:
            return None

        app.get(f"/v1/things-{n}/{{trial_id}}", response_model=answer, name=f"get_{n}")(get)


for _n in range(ROUTES):
    _route(_n)

handler = Mangum(app, lifespan="off")
