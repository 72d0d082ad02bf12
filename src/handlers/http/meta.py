"""GET /v1/health: liveness, without a key."""

from __future__ import annotations

from fastapi import APIRouter

from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute

router = APIRouter(tags=["meta"], route_class=UnicodeCheckedRoute)


@router.get("/v1/health", response_model=schemas.Health)
def get_health() -> schemas.Health:
    """Liveness: no authentication."""
    return schemas.Health(status="ok")
