"""Lambda entry point for the submissions table's DynamoDB stream (see stream_batch)."""

from handlers.settings import get_settings
from handlers.stream_batch import make_handler
from handlers.wiring import build

handler = make_handler(build(get_settings()).scoring)
