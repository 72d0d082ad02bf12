"""The pure core of cmt-collect: instruments, validation, scoring and statistics.

Nothing here imports boto3, FastAPI, scipy or numpy, reads the environment or does I/O
(the catalogue is package data read once at import). The public names are re-exported
here; the modules behind them are ``errors``, ``instruments`` (the catalogue, each
instrument also as a `Form`), ``forms`` (trial-supplied wording), ``fhir`` (FHIR R4
Questionnaire, QuestionnaireResponse and OperationOutcome as JSON-ready dicts),
``validation``, ``scoring`` and ``statistics``.

A name is imported from its module when it is first asked for (PEP 562), so importing one
module of the domain (the API imports ``domain.trial``, say) does not load the others: each
function's cold start pays only for the modules it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.errors import (
        DomainError,
        InvalidSubmission,
        Problem,
        UnknownInstrument,
        UnknownInstrumentVersion,
    )
    from domain.fhir import (
        FhirSubmission,
        QuestionnaireCanonical,
        answer_system,
        fhir_expression,
        operation_outcome,
        operation_outcome_for_status,
        parse_questionnaire_canonical,
        parse_questionnaire_response,
        questionnaire,
        questionnaire_url,
    )
    from domain.forms import (
        InstrumentTexts,
        ItemTexts,
        form_for,
        instrument_texts_to_dict,
        parse_instrument_texts,
    )
    from domain.instruments import (
        CATALOGUE,
        Band,
        Catalogue,
        ChoiceOrientation,
        Form,
        FormItem,
        FormSource,
        Improvement,
        Instrument,
        Option,
        Subscale,
        check_form,
        form_to_dict,
        instrument_to_dict,
        load_catalogue,
    )
    from domain.scoring import TOO_MANY_MISSING, ScoreSet, SubscaleScore, score_responses
    from domain.statistics import (
        Descriptives,
        Direction,
        Pair,
        PairedChange,
        ReliableChange,
        WilcoxonResult,
        describe,
        hodges_lehmann,
        paired_change,
        reliable_change,
        reliable_change_counts,
        wilcoxon_signed_rank,
    )
    from domain.validation import validate_notes, validate_responses

#: the modules behind the names below, in the order `__getattr__` looks in them
_MODULES = ("errors", "instruments", "scoring", "validation", "forms", "fhir", "statistics")

__all__ = [
    "CATALOGUE",
    "TOO_MANY_MISSING",
    "Band",
    "Catalogue",
    "ChoiceOrientation",
    "Descriptives",
    "Direction",
    "DomainError",
    "FhirSubmission",
    "Form",
    "FormItem",
    "FormSource",
    "Improvement",
    "Instrument",
    "InstrumentTexts",
    "InvalidSubmission",
    "ItemTexts",
    "Option",
    "Pair",
    "PairedChange",
    "Problem",
    "QuestionnaireCanonical",
    "ReliableChange",
    "ScoreSet",
    "Subscale",
    "SubscaleScore",
    "UnknownInstrument",
    "UnknownInstrumentVersion",
    "WilcoxonResult",
    "answer_system",
    "check_form",
    "describe",
    "fhir_expression",
    "form_for",
    "form_to_dict",
    "hodges_lehmann",
    "instrument_texts_to_dict",
    "instrument_to_dict",
    "load_catalogue",
    "operation_outcome",
    "operation_outcome_for_status",
    "paired_change",
    "parse_instrument_texts",
    "parse_questionnaire_canonical",
    "parse_questionnaire_response",
    "questionnaire",
    "questionnaire_url",
    "reliable_change",
    "reliable_change_counts",
    "score_responses",
    "validate_notes",
    "validate_responses",
    "wilcoxon_signed_rank",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, and keep it here."""
    if name in __all__:
        for home in _MODULES:
            module = importlib.import_module(f"domain.{home}")
            if name in getattr(module, "__all__", ()) or hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module 'domain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
