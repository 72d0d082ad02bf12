"""The trial's forms: licensed item wording, FHIR Questionnaires, QuestionnaireResponses read.

Wording a trial is licensed to use is uploaded per instrument version
(``PUT /v1/trials/{trial_id}/instrument-texts/{instrument_id}``), checked by
`domain.forms.parse_instrument_texts`, stored as the upload body and served only within
that trial: in its Questionnaires (`domain.fhir.questionnaire` under the trial's canonical).
Without it an item reads "Item N".

The Questionnaires' canonical base is the deployment's setting ``CMT_FHIR_BASE``: stable,
because a QuestionnaireResponse names the Questionnaire it answers by that URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidSubmission, Problem, UnknownInstrument, UnknownInstrumentVersion
from domain.fhir import FhirSubmission, parse_questionnaire_response, questionnaire
from domain.forms import (
    InstrumentTexts,
    form_for,
    instrument_texts_to_dict,
    parse_instrument_texts,
)
from domain.instruments import CATALOGUE, Catalogue, Form, Instrument
from domain.trial import Trial
from services.clock import Clock, iso
from services.errors import NotFound, ValidationFailed
from services.ports import InstrumentTextStore

__all__ = ["QuestionnaireService", "StoredTexts"]


@dataclass(frozen=True, kw_only=True)
class StoredTexts:
    texts: InstrumentTexts
    form: Form  # the trial's form with the wording merged in
    updated_at: str
    created: bool


class QuestionnaireService:
    """Stores a trial's wording and issues its forms as FHIR Questionnaires.

    The wording read for a Questionnaire is kept for `cache_seconds` in the warm function
    (an upload on this function replaces it at once), as trial definitions are.
    """

    def __init__(
        self,
        texts: InstrumentTextStore,
        *,
        base: str,
        clock: Clock,
        cache_seconds: float = 30.0,
        catalogue: Catalogue = CATALOGUE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.texts = texts
        self.base = base
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.catalogue = catalogue
        self.monotonic = monotonic
        self._cache: dict[tuple[str, str, str], tuple[float, InstrumentTexts | None]] = {}
        self._lock = threading.Lock()

    def put_texts(
        self, trial: Trial, instrument_id: str, body: Mapping[str, Any], *, key_id: str
    ) -> StoredTexts:
        """Check and store a trial's wording of one instrument version (replacing any).

        Raises
        ------
        NotFound
            No instrument has this id.
        ValidationFailed
            Every problem of the upload, located under ``body``.
        """
        try:
            texts = parse_instrument_texts(
                body, instrument_id=instrument_id, catalogue=self.catalogue
            )
        except UnknownInstrument:
            raise NotFound(f"no instrument {instrument_id}") from None
        except InvalidSubmission as exc:
            raise ValidationFailed(
                [Problem(("body", *p.loc), p.msg, p.type) for p in exc.problems]
            ) from None
        updated_at = iso(self.clock())
        created = self.texts.put_texts(
            trial_id=trial.trial_id,
            instrument_id=texts.instrument_id,
            version=texts.instrument_version,
            texts=instrument_texts_to_dict(texts),
            updated_at=updated_at,
            key_id=key_id,
        )
        with self._lock:
            self._cache[(trial.trial_id, texts.instrument_id, texts.instrument_version)] = (
                self.monotonic(),
                texts,
            )
        instrument = self.catalogue.get(texts.instrument_id, texts.instrument_version)
        return StoredTexts(
            texts=texts, form=form_for(instrument, texts), updated_at=updated_at, created=created
        )

    def scheduled_instrument(self, trial: Trial, instrument_id: str) -> Instrument:
        """The current version of an instrument the trial schedules, else `NotFound`."""
        if instrument_id not in trial.protocol.schedule:
            raise NotFound(f"{trial.trial_id} schedules no instrument {instrument_id}")
        try:
            return self.catalogue.get(instrument_id)
        except (UnknownInstrument, UnknownInstrumentVersion):
            raise NotFound(f"no instrument {instrument_id}") from None

    def form(self, trial: Trial, instrument: Instrument) -> Form:
        """The instrument's form in this trial: with the trial's wording, if it has any."""
        return form_for(instrument, self._texts(trial.trial_id, instrument))

    def questionnaire(
        self, trial: Trial, instrument_id: str, *, timepoint: str | None
    ) -> dict[str, Any]:
        """The trial's FHIR R4 Questionnaire of a scheduled instrument.

        With `timepoint` the canonical names it, so a response needs no other; the timepoint
        must be one the protocol schedules the instrument at (else 422 on ``timepoint``).
        """
        instrument = self.scheduled_instrument(trial, instrument_id)
        scheduled = trial.protocol.schedule[instrument.id]
        if timepoint is not None and timepoint not in scheduled:
            raise ValidationFailed(
                [
                    Problem(
                        ("query", "timepoint"),
                        f"the protocol of {trial.trial_id} does not schedule {instrument.id} "
                        f"at {timepoint!r}; scheduled: {', '.join(scheduled)}",
                        "not_scheduled",
                    )
                ]
            )
        return questionnaire(
            self.form(trial, instrument),
            base=self.base,
            trial_id=trial.trial_id,
            timepoint=timepoint,
        )

    def read_response(
        self, trial: Trial, resource: object, *, require_subject: bool
    ) -> FhirSubmission:
        """A posted QuestionnaireResponse as a native submission, or `ValidationFailed`
        with every problem (in the response's own locations: `domain.fhir`)."""
        try:
            return parse_questionnaire_response(
                resource,
                base=self.base,
                trial_id=trial.trial_id,
                catalogue=self.catalogue,
                require_subject=require_subject,
            )
        except InvalidSubmission as exc:
            raise ValidationFailed(exc.problems) from None

    def _texts(self, trial_id: str, instrument: Instrument) -> InstrumentTexts | None:
        key = (trial_id, instrument.id, instrument.version)
        now = self.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        stored = self.texts.get_texts(
            trial_id=trial_id, instrument_id=instrument.id, version=instrument.version
        )
        texts = (
            parse_instrument_texts(stored, instrument_id=instrument.id, catalogue=self.catalogue)
            if stored is not None
            else None
        )
        with self._lock:
            self._cache[key] = (now, texts)
        return texts
