"""Lambda entry point of the HTTP API (API Gateway HTTP API v2 or REST v1 events).

Clients and services are built once per container at cold start; lifespan is off because
Mangum would run it on every invocation. `make_handler` wraps any container (a test's, with
its own clock) exactly as the deployed function wraps the one built from the environment.
"""

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from handlers.api_app import create_app
from handlers.settings import get_settings
from handlers.wiring import Container, build, build_adapters

# problem+json is text too: without it Mangum would base64-encode error bodies on REST v1
TEXT_MIME_TYPES = [*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]


def make_handler(container: Container) -> Mangum:
    """The Lambda handler serving the API of `container`."""
    return Mangum(create_app(container), lifespan="off", text_mime_types=TEXT_MIME_TYPES)


adapters = build_adapters(get_settings())
container = build(get_settings(), adapters=adapters)
handler = make_handler(container)
app = handler.app
