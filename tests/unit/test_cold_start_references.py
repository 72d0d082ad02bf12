"""The cold-start reference of the contract's shape stays the size of the real API."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pydantic
from fastapi.routing import APIRoute

import handlers.schemas
from handlers.http.app import ROUTERS

SHAPE_APP = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "contract_shape_app.py"


def _constant(name: str) -> int:
    """A module-level constant of the reference app, read without importing it (no AWS)."""
    for node in ast.parse(SHAPE_APP.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            name
        ]:
            assert isinstance(node.value, ast.Constant)
            return int(node.value.value)
    raise AssertionError(f"{name} not found in {SHAPE_APP.name}")


def test_the_reference_has_as_many_routes_as_the_api() -> None:
    routes = [r for module in ROUTERS for r in module.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 20  # the real count, not an empty listing
    assert _constant("ROUTES") == len(routes)


def test_the_reference_has_as_many_models_as_the_api() -> None:
    models = [
        value
        for value in vars(handlers.schemas).values()
        if inspect.isclass(value)
        and issubclass(value, pydantic.BaseModel)
        and value.__module__ == handlers.schemas.__name__
    ]
    assert len(models) > 40
    assert _constant("MODELS") == len(models)
