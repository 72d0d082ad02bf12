"""Lambda entry point of the HTTP API (API Gateway HTTP API v2 or REST v1 events).

Clients and services are built once per container at cold start; lifespan is off because
Mangum would run it on every invocation.
"""

from mangum import Mangum

from handlers.api_app import create_app
from handlers.settings import get_settings
from handlers.wiring import build

app = create_app(build(get_settings()))
# problem+json is text: without this Mangum would base64-encode error bodies on REST v1
handler = Mangum(
    app,
    lifespan="off",
    text_mime_types=["application/json", "application/problem+json", "text/", "image/svg+xml"],
)
