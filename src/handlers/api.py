"""Lambda entry point of the HTTP API (API Gateway HTTP API v2 or REST v1 events).

Clients and services are built once per container at cold start; lifespan is off because
Mangum would run it on every invocation.
"""

from mangum import Mangum

from handlers.api_app import create_app
from handlers.settings import get_settings
from handlers.wiring import build

app = create_app(build(get_settings()))
handler = Mangum(app, lifespan="off")
