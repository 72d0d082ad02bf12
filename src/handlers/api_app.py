"""`create_app`, the FastAPI application of the HTTP contract: built in `handlers.http`.

Kept as the import path of the Lambda entry point (`handlers.api`), the tests and the local
stack; the routers, dependencies and the app itself live in the `handlers.http` package.
"""

from handlers.http.app import create_app

__all__ = ["create_app"]
