"""The instrument catalogue: public, without a key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from domain.errors import UnknownInstrument, UnknownInstrumentVersion
from domain.instruments import CATALOGUE, instrument_to_dict
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from services.errors import NotFound

router = APIRouter(tags=["instruments"], route_class=UnicodeCheckedRoute)


@router.get("/v1/instruments", response_model=schemas.InstrumentCatalogue)
def list_instruments() -> dict[str, object]:
    """The instrument catalogue (current versions)."""
    return {"instruments": [instrument_to_dict(i) for i in CATALOGUE.instruments()]}


@router.get(
    "/v1/instruments/{instrument_id}",
    response_model=schemas.InstrumentOut,
    responses=problems(404, 422, described={404: "no such instrument, or not in that version"}),
)
def get_instrument(
    instrument_id: Annotated[str, Path(max_length=32)],
    version: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, object]:
    """One instrument definition (current version unless `version` is given)."""
    try:
        return instrument_to_dict(CATALOGUE.get(instrument_id, version))
    except (UnknownInstrument, UnknownInstrumentVersion):
        raise NotFound(
            f"no instrument {instrument_id}" + (f" version {version}" if version else "")
        ) from None
