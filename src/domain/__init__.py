"""The pure core of cmt-collect: instruments, validation, scoring and statistics.

Nothing here imports boto3, FastAPI, scipy or numpy, reads the environment or does I/O
(the catalogue is package data read once at import). The public names are re-exported
here; the modules behind them are ``errors``, ``instruments`` (the catalogue, each
instrument also as a `Form`), ``forms`` (trial-supplied wording),
``validation``, ``scoring`` and ``statistics``.
"""

from domain.errors import (
    DomainError,
    InvalidSubmission,
    Problem,
    UnknownInstrument,
    UnknownInstrumentVersion,
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

__all__ = [
    "CATALOGUE",
    "TOO_MANY_MISSING",
    "Band",
    "Catalogue",
    "ChoiceOrientation",
    "Descriptives",
    "Direction",
    "DomainError",
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
    "ReliableChange",
    "ScoreSet",
    "Subscale",
    "SubscaleScore",
    "UnknownInstrument",
    "UnknownInstrumentVersion",
    "WilcoxonResult",
    "check_form",
    "describe",
    "form_for",
    "form_to_dict",
    "hodges_lehmann",
    "instrument_texts_to_dict",
    "instrument_to_dict",
    "load_catalogue",
    "paired_change",
    "parse_instrument_texts",
    "reliable_change",
    "reliable_change_counts",
    "score_responses",
    "validate_notes",
    "validate_responses",
    "wilcoxon_signed_rank",
]
