"""The HTTP API: `create_app` (app.py), one router module per resource, the dependencies.

A new route goes into the router of its resource (or a new module listed in `app.ROUTERS`),
its models into `handlers.schemas`; see README, "The HTTP API in code".
"""
