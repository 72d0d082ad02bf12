"""Lambda entry point of the HTTP API (API Gateway HTTP API v2 or REST v1 events).

Clients and services are built once per container at cold start; lifespan is off because
Mangum would run it on every invocation.
"""

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from handlers.api_app import create_app
from handlers.settings import get_settings
from handlers.wiring import build

container = build(get_settings())
app = create_app(container)
# problem+json is text too: without it Mangum would base64-encode error bodies on REST v1
handler = Mangum(
    app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
)
