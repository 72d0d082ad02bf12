"""FHIR R4 for the forms: a Questionnaire out, a QuestionnaireResponse in, refusals as
OperationOutcomes. Pure data transformation on JSON-ready dicts; no FHIR library.

Canonical URLs
--------------
Every Questionnaire has ``url`` and ``version``; a QuestionnaireResponse names the one it
answers in ``questionnaire`` as ``url|version`` (LHC-Forms fills that in from the
Questionnaire it rendered). `base` is the deployment's stable canonical base, an absolute
http(s) URL without a trailing slash (e.g. ``https://api.example.org/fhir``); changing it
orphans Questionnaires already handed out. The URL says what the Questionnaire was issued
for, the version is the instrument version::

    {base}/Questionnaire/{instrument}                                      the catalogue
    {base}/trials/{trial}/Questionnaire/{instrument}                       one trial
    {base}/trials/{trial}/timepoints/{timepoint}/Questionnaire/{instrument}  ... one timepoint

so ``https://api.example.org/fhir/trials/cmt-pilot/timepoints/week-1/Questionnaire/hads|1``
tells the server the instrument (hads), its version (1), the trial and the timepoint. A
trial's Questionnaire carries its licensed wording, so one with trial wording is only ever
issued under a trial URL.

Items
-----
``linkId`` is the item number (``"1"`` .. ``"N"``) for scored items, the field name for the
diary's free-text items (``"critical_situations"``, type ``text`` with ``maxLength``). Stems
are ``display`` items: ``"stem"`` for the instrument's probe, ``"stem-<linkId>"`` before an
item. Each scored item is ``type: choice`` with ``answerOption.valueCoding`` (``system`` =
`answer_system`, ``code`` = the score as a string, ``display`` = the label) and the
``ordinalValue`` extension on the answerOption carrying the score as ``valueDecimal``; the
``questionnaire-itemControl`` (radio-button) and ``questionnaire-choiceOrientation``
extensions lay it out. No item is ``required`` and none has ``enableWhen``: none of the
instruments makes an item conditional, and skipped items are scored by the missing-item rule.
All of these are in LHC-Forms' list of supported R4 features (lforms ``r4-support.md``).

Answers
-------
A scored item is answered with ``valueCoding`` (the code decides; a ``system`` other than
ours is refused, and an ``ordinalValue`` extension on the coding, as LHC-Forms exports it,
must agree with the code's score) or with ``valueInteger`` (the score itself). Anything
else is refused as not an integer. A text item is answered with ``valueString``.

Refusals
--------
`parse_questionnaire_response` raises `InvalidSubmission` whose problems use the native
submission's locations where the field has one (``("responses", "15")``, ``("notes",
"critical_thoughts")``) and the QuestionnaireResponse's own elements otherwise
(``("authored",)``, ``("item", 3)`` for the 4th item, by position). `operation_outcome`
turns those, and the problems of the submission service (``("body", "completed_at")`` ...),
into one OperationOutcome whose issues name the element by FHIRPath in ``expression``,
e.g. ``QuestionnaireResponse.item.where(linkId='15')``, and carry the native problem type
in ``details.coding`` (system `PROBLEM_TYPE_SYSTEM`) and its sentence in ``details.text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from domain.errors import InvalidSubmission, Problem, UnknownInstrument, UnknownInstrumentVersion
from domain.instruments import CATALOGUE, Catalogue, Form, FormItem, Instrument
from domain.validation import validate_notes, validate_responses

__all__ = [
    "CHOICE_ORIENTATION_URL",
    "ITEM_CONTROL_SYSTEM",
    "ITEM_CONTROL_URL",
    "ORDINAL_VALUE_URL",
    "PROBLEM_TYPE_SYSTEM",
    "FhirSubmission",
    "QuestionnaireCanonical",
    "answer_system",
    "fhir_expression",
    "operation_outcome",
    "operation_outcome_for_status",
    "parse_questionnaire_canonical",
    "parse_questionnaire_response",
    "questionnaire",
    "questionnaire_url",
]

ORDINAL_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ITEM_CONTROL_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
CHOICE_ORIENTATION_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-choiceOrientation"
PROBLEM_TYPE_SYSTEM = "urn:cmt-collect:problem-type"
"""Code system of ``OperationOutcome.issue.details``: the native problem types."""

STEM_LINK_ID = "stem"

# The identifiers of the HTTP contract (API.md) and of the catalogue, as URL segments.
_TRIAL_ID = r"[a-z0-9][a-z0-9-]{2,62}"
_TIMEPOINT = r"[a-z0-9][a-z0-9-]{0,31}"
_INSTRUMENT_ID = r"[a-z][a-z0-9_]{0,31}"
_VERSION = r"[A-Za-z0-9._-]{1,32}"
_PATH = re.compile(
    rf"(?:trials/(?P<trial>{_TRIAL_ID})/(?:timepoints/(?P<timepoint>{_TIMEPOINT})/)?)?"
    rf"Questionnaire/(?P<instrument>{_INSTRUMENT_ID})"
)
_BASE = re.compile(r"https?://[^\s|#?]*[^\s|#?/]")
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
# a FHIR dateTime down to the second, with its offset (FHIR allows less; we need both)
_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?", re.ASCII
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINK_ID_MAX = 64  # longer linkIds are none of ours; they are named by position


def _check_base(base: str) -> None:
    if _BASE.fullmatch(base) is None:
        raise ValueError(
            f"canonical base {base!r} must be an absolute http(s) URL without a trailing "
            "slash, '|', '#' or '?'"
        )


# -- canonical URLs ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QuestionnaireCanonical:
    """What a Questionnaire canonical names.

    Attributes
    ----------
    instrument_id : str
    instrument_version : str or None
        None when the canonical carries no ``|version`` (the current version is meant).
    trial_id : str or None
        The trial the Questionnaire was issued for; None for the catalogue's.
    timepoint : str or None
        The timepoint it was issued for, if any (always within a trial).
    """

    instrument_id: str
    instrument_version: str | None
    trial_id: str | None = None
    timepoint: str | None = None


def questionnaire_url(
    *,
    base: str,
    instrument_id: str,
    trial_id: str | None = None,
    timepoint: str | None = None,
) -> str:
    """The canonical URL (without ``|version``) of a Questionnaire; see the module docstring.

    Raises
    ------
    ValueError
        `base` is not a canonical base; an id does not fit the contract's pattern; a
        timepoint is given without a trial.
    """
    _check_base(base)
    if re.fullmatch(_INSTRUMENT_ID, instrument_id) is None:
        raise ValueError(f"instrument id {instrument_id!r} cannot be part of a canonical")
    if timepoint is not None and trial_id is None:
        raise ValueError("a Questionnaire is issued for a timepoint only within a trial")
    path = f"Questionnaire/{instrument_id}"
    if timepoint is not None:
        if re.fullmatch(_TIMEPOINT, timepoint) is None:
            raise ValueError(f"timepoint {timepoint!r} does not match {_TIMEPOINT}")
        path = f"timepoints/{timepoint}/{path}"
    if trial_id is not None:
        if re.fullmatch(_TRIAL_ID, trial_id) is None:
            raise ValueError(f"trial id {trial_id!r} does not match {_TRIAL_ID}")
        path = f"trials/{trial_id}/{path}"
    return f"{base}/{path}"


def parse_questionnaire_canonical(value: str, *, base: str) -> QuestionnaireCanonical | None:
    """What a ``questionnaire`` canonical (``url`` or ``url|version``) names, or None.

    None means the canonical is not one this deployment issues (another base, another
    path shape, a malformed version), whatever the instrument named in it.
    """
    _check_base(base)
    url, bar, version = value.partition("|")
    if bar and re.fullmatch(_VERSION, version) is None:
        return None
    prefix = base + "/"
    if not url.startswith(prefix):
        return None
    match = _PATH.fullmatch(url[len(prefix) :])
    if match is None:
        return None
    return QuestionnaireCanonical(
        instrument_id=match["instrument"],
        instrument_version=version if bar else None,
        trial_id=match["trial"],
        timepoint=match["timepoint"],
    )


def answer_system(*, base: str, instrument_id: str) -> str:
    """The code system of an instrument's answer codes: the scores, as decimal strings."""
    _check_base(base)
    return f"{base}/CodeSystem/{instrument_id}"


# -- Questionnaire -----------------------------------------------------------------------


def _choice_item(item: FormItem, *, system: str, orientation: str) -> dict[str, Any]:
    return {
        "linkId": item.link_id,
        "text": item.text,
        "type": "choice",
        "extension": [
            {
                "url": ITEM_CONTROL_URL,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": ITEM_CONTROL_SYSTEM,
                            "code": "radio-button",
                            "display": "Radio Button",
                        }
                    ]
                },
            },
            {"url": CHOICE_ORIENTATION_URL, "valueCode": orientation},
        ],
        "answerOption": [
            {
                "valueCoding": {"system": system, "code": option.code, "display": option.label},
                "extension": [{"url": ORDINAL_VALUE_URL, "valueDecimal": option.score}],
            }
            for option in item.options
        ],
    }


def questionnaire(
    form: Form,
    *,
    base: str,
    trial_id: str | None = None,
    timepoint: str | None = None,
) -> dict[str, Any]:
    """A form as a FHIR R4 Questionnaire (JSON-ready), renderable by LHC-Forms.

    Parameters
    ----------
    form : Form
        The catalogue form (`Instrument.form`) or a trial's (`domain.forms.form_for`).
    base : str
        The deployment's canonical base (see the module docstring).
    trial_id : str or None
        The trial the Questionnaire is issued for; required when `form` carries trial
        wording, so licensed text never goes out under the public canonical.
    timepoint : str or None
        The timepoint it is issued for; the canonical then carries it, so a response
        naming it needs no other timepoint.

    Returns
    -------
    dict
        ``resourceType`` Questionnaire with ``url``, ``version`` (the instrument version),
        ``name``, ``title``, ``status`` active, ``subjectType`` Patient, ``copyright`` when
        the wording has a notice, and ``item`` in display order (see the module docstring).

    Raises
    ------
    ValueError
        Trial wording without `trial_id`, or a `base`, `trial_id` or `timepoint` that
        cannot be part of a canonical.
    """
    if form.source == "trial" and trial_id is None:
        raise ValueError("a form with trial wording is issued only for its trial")
    url = questionnaire_url(
        base=base, instrument_id=form.instrument_id, trial_id=trial_id, timepoint=timepoint
    )
    system = answer_system(base=base, instrument_id=form.instrument_id)
    items: list[dict[str, Any]] = []
    if form.stem is not None:
        items.append({"linkId": STEM_LINK_ID, "text": form.stem, "type": "display"})
    for item in form.items:
        if item.stem is not None:
            items.append(
                {"linkId": f"{STEM_LINK_ID}-{item.link_id}", "text": item.stem, "type": "display"}
            )
        if item.type == "choice":
            items.append(_choice_item(item, system=system, orientation=form.choice_orientation))
        else:
            items.append(
                {
                    "linkId": item.link_id,
                    "text": item.text,
                    "type": "text",
                    "maxLength": item.max_length,
                }
            )
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "url": url,
        "version": form.instrument_version,
        "name": re.sub(r"[^A-Za-z0-9_]", "_", form.instrument_id.upper()),
        "title": form.title,
        "status": "active",
        "subjectType": ["Patient"],
    }
    if form.copyright is not None:
        resource["copyright"] = form.copyright
    resource["item"] = items
    return resource


# -- QuestionnaireResponse -----------------------------------------------------------------


def _no_responses() -> Mapping[str, int | None]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class FhirSubmission:
    """A QuestionnaireResponse read as a native submission.

    Attributes
    ----------
    instrument_id, instrument_version : str
        From the ``questionnaire`` canonical (the current version when it names none).
    trial_id : str or None
        The trial the answered Questionnaire was issued for (None: the catalogue's); when
        given it is the trial the response was posted to.
    timepoint : str or None
        The timepoint the Questionnaire was issued for, or None (the caller decides).
    participant_id : str or None
        ``subject.identifier.value``, or None when the response names no subject.
    completed_at : datetime
        ``authored``, timezone-aware.
    responses : mapping of str to int or None
        Every item ``"1"`` .. ``"N"`` with its score, None when skipped: the native
        submission's ``responses``; read-only.
    notes : mapping of str to str, or None
        The diary's free text by field, or None; read-only.
    questionnaire : str
        The canonical as the response gave it.
    """

    instrument_id: str
    instrument_version: str
    trial_id: str | None
    timepoint: str | None
    participant_id: str | None
    completed_at: datetime
    responses: Mapping[str, int | None] = field(default_factory=_no_responses, hash=False)
    # free text is never logged: keep it out of the repr
    notes: Mapping[str, str] | None = field(default=None, hash=False, repr=False)
    questionnaire: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "responses", MappingProxyType(dict(self.responses)))
        if self.notes is not None:
            object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _resolve_questionnaire(
    value: object,
    *,
    base: str,
    trial_id: str,
    catalogue: Catalogue,
    problems: list[Problem],
) -> tuple[Instrument | None, QuestionnaireCanonical | None]:
    loc: tuple[str | int, ...] = ("questionnaire",)
    if value is None:
        problems.append(
            Problem(
                loc, "questionnaire is required: the served Questionnaire's url|version", "missing"
            )
        )
        return None, None
    if not isinstance(value, str):
        problems.append(Problem(loc, "questionnaire must be a canonical string", "not_string"))
        return None, None
    canonical = parse_questionnaire_canonical(value, base=base)
    if canonical is None:
        problems.append(
            Problem(
                loc,
                f"questionnaire {_shown(value)} is not a Questionnaire served here "
                f"(expected {base}/.../Questionnaire/<instrument>|<version>)",
                "unknown_questionnaire",
            )
        )
        return None, None
    if canonical.trial_id is not None and canonical.trial_id != trial_id:
        problems.append(
            Problem(
                loc,
                f"the Questionnaire was issued for trial {canonical.trial_id}, not {trial_id}",
                "wrong_trial",
            )
        )
        return None, None
    try:
        instrument = catalogue.get(canonical.instrument_id, canonical.instrument_version)
    except UnknownInstrumentVersion as exc:
        problems.append(
            Problem(
                loc,
                f"{exc.instrument_id} has no version {exc.version!r}; current is "
                f"{catalogue.current_version(exc.instrument_id)}",
                "unknown_version",
            )
        )
        return None, None
    except UnknownInstrument as exc:
        problems.append(
            Problem(
                loc,
                f"unknown instrument {exc.instrument_id!r}; one of {', '.join(catalogue.ids())}",
                "unknown_instrument",
            )
        )
        return None, None
    return instrument, canonical


def _authored(value: object, problems: list[Problem]) -> datetime | None:
    loc: tuple[str | int, ...] = ("authored",)
    if value is None:
        problems.append(
            Problem(
                loc, "authored is required: when the form was completed, with offset", "missing"
            )
        )
        return None
    if not isinstance(value, str):
        problems.append(Problem(loc, "authored must be a dateTime string", "datetime_type"))
        return None
    match = _DATETIME.fullmatch(value)
    if match is not None and match[3] is None:
        problems.append(
            Problem(
                loc,
                f"authored {_shown(value)} has no UTC offset; give one, e.g. Z or +01:00",
                "timezone_aware",
            )
        )
        return None
    try:
        if match is None:
            raise ValueError(value)
        # Python takes at most microseconds; FHIR allows any number of decimals
        fraction = (match[2] or "")[:7]
        return datetime.fromisoformat(f"{match[1]}{fraction}{match[3]}")
    except ValueError:
        problems.append(
            Problem(
                loc,
                f"authored {_shown(value)} is not a date and time with offset, "
                "e.g. 2026-11-20T10:15:00Z",
                "datetime_parsing",
            )
        )
        return None


def _participant(value: object, *, required: bool, problems: list[Problem]) -> str | None:
    loc: tuple[str | int, ...] = ("subject", "identifier", "value")
    identifier: object = None
    if value is not None:
        if not isinstance(value, Mapping):
            problems.append(Problem(("subject",), "subject must be a Reference", "not_object"))
            return None
        identifier = value.get("identifier")
    if identifier is None:
        if required:
            problems.append(
                Problem(loc, "subject.identifier.value must name the participant", "missing")
            )
        return None
    if not isinstance(identifier, Mapping):
        problems.append(
            Problem(
                ("subject", "identifier"), "subject.identifier must be an Identifier", "not_object"
            )
        )
        return None
    code = identifier.get("value")
    if code is None and not required:
        return None
    if not isinstance(code, str) or _PARTICIPANT_ID.fullmatch(code) is None:
        problems.append(
            Problem(
                loc,
                "subject.identifier.value must be a pseudonymous participant code: 1-64 "
                "letters, digits, '_' or '-'",
                "missing" if code is None else "string_pattern_mismatch",
            )
        )
        return None
    return code


def _is_stem(link_id: str) -> bool:
    return link_id == STEM_LINK_ID or link_id.startswith(f"{STEM_LINK_ID}-")


def _ordinal(coding: Mapping[str, Any]) -> object:
    extensions = coding.get("extension")
    if not isinstance(extensions, list):
        return None
    for extension in extensions:
        if isinstance(extension, Mapping) and extension.get("url") == ORDINAL_VALUE_URL:
            return extension.get("valueDecimal")
    return None


class _Answers:
    """The answers of a QuestionnaireResponse's items, routed to responses and notes."""

    def __init__(self, instrument: Instrument | None, *, base: str) -> None:
        self.instrument = instrument
        self.system = (
            None if instrument is None else answer_system(base=base, instrument_id=instrument.id)
        )
        self.responses: dict[str, object] = {}
        self.notes: dict[str, object] = {}
        self.problems: list[Problem] = []
        # a known item answered in a form we refuse still counts as answered
        self.answered_invalidly = False

    def read(self, items: object) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            self.problems.append(Problem(("item",), "item must be an array", "not_array"))
            return
        seen: set[str] = set()
        for index, entry in enumerate(items):
            link_id = self._link_id(index, entry)
            if link_id is None:
                continue
            assert isinstance(entry, Mapping)
            if link_id in seen:
                self.problems.append(
                    Problem(
                        ("item", link_id), f"item {link_id} is answered twice", "duplicate_item"
                    )
                )
                continue
            seen.add(link_id)
            self._item(link_id, entry)

    def _link_id(self, index: int, entry: object) -> str | None:
        loc: tuple[str | int, ...] = ("item", index)
        if not isinstance(entry, Mapping):
            self.problems.append(Problem(loc, f"item[{index}] must be an object", "not_object"))
            return None
        link_id = entry.get("linkId")
        if not isinstance(link_id, str) or not link_id:
            self.problems.append(Problem(loc, f"item[{index}] has no linkId", "missing"))
            return None
        if len(link_id) > _LINK_ID_MAX or _CONTROL.search(link_id):
            self.problems.append(
                Problem(
                    loc, f"item[{index}] has an unknown linkId {_shown(link_id)}", "unknown_item"
                )
            )
            return None
        return link_id

    def _item(self, link_id: str, entry: Mapping[str, Any]) -> None:
        loc: tuple[str | int, ...] = ("item", link_id)
        if entry.get("item"):
            self.problems.append(
                Problem(loc, f"item {link_id} has nested items; this form has none", "nested_items")
            )
            return
        answers = entry.get("answer")
        if answers is None or answers == []:
            if not _is_stem(link_id):
                self._route(link_id, None, None)
            return
        if not isinstance(answers, list):
            self.problems.append(
                Problem(loc, f"item {link_id}: answer must be an array", "not_array")
            )
            self._mark_invalid(link_id)
            return
        if len(answers) > 1:
            self.problems.append(
                Problem(
                    loc,
                    f"item {link_id} has {len(answers)} answers; it takes one",
                    "too_many_answers",
                )
            )
            self._mark_invalid(link_id)
            return
        answer = answers[0]
        answer_loc: tuple[str | int, ...] = (*loc, "answer", 0)
        if not isinstance(answer, Mapping):
            self.problems.append(Problem(answer_loc, "an answer must be an object", "not_object"))
            self._mark_invalid(link_id)
            return
        if answer.get("item"):
            self.problems.append(
                Problem(loc, f"item {link_id} has nested items; this form has none", "nested_items")
            )
            self._mark_invalid(link_id)
            return
        keys = [k for k in answer if isinstance(k, str) and k.startswith("value")]
        if len(keys) != 1:
            what = "no value" if not keys else f"{len(keys)} values ({', '.join(keys)})"
            self.problems.append(
                Problem(
                    answer_loc,
                    f"the answer to item {link_id} has {what}; it takes one value[x]",
                    "no_value" if not keys else "too_many_values",
                )
            )
            self._mark_invalid(link_id)
            return
        self._route(link_id, keys[0], answer[keys[0]])

    def _known_choice(self, link_id: str) -> FormItem | None:
        if self.instrument is None:
            return None
        item = self.instrument.form.item(link_id)
        return item if item is not None and item.type == "choice" else None

    def _mark_invalid(self, link_id: str) -> None:
        if self._known_choice(link_id) is not None:
            self.answered_invalidly = True

    def _route(self, link_id: str, key: str | None, value: object) -> None:
        if self.instrument is None:
            return
        if link_id in self.instrument.free_text:
            if key is None or key == "valueString":
                self.notes[link_id] = value
            else:
                self.problems.append(
                    Problem(
                        ("notes", link_id),
                        f"{link_id} must be answered with valueString, not {key}",
                        "not_string",
                    )
                )
            return
        item = self._known_choice(link_id)
        if item is None or key is None or key == "valueInteger":
            # unknown linkIds go on to validate_responses, which names them unknown_item
            self.responses[link_id] = value
        elif key == "valueCoding":
            self._coding(item, value)
        else:
            self.problems.append(
                Problem(
                    ("responses", link_id),
                    f"item {link_id} must be answered with valueCoding or valueInteger, not {key}",
                    "not_integer",
                )
            )
            self.answered_invalidly = True

    def _coding(self, item: FormItem, coding: object) -> None:
        link_id = item.link_id
        loc: tuple[str | int, ...] = ("responses", link_id)
        if not isinstance(coding, Mapping):
            self.responses[link_id] = coding  # validate_responses: not an integer
            return
        system = coding.get("system")
        code = coding.get("code")
        refused = None
        if system is not None and system != self.system:
            refused = Problem(
                loc,
                f"item {link_id}: code system {_shown(system)} is not this instrument's "
                f"({self.system})",
                "unknown_system",
            )
        elif code is None:
            refused = Problem(loc, f"item {link_id}: valueCoding has no code", "missing")
        elif not isinstance(code, str):
            refused = Problem(
                loc, f"item {link_id}: valueCoding.code must be a string", "not_string"
            )
        if refused is not None:
            self.problems.append(refused)
            self.answered_invalidly = True
            return
        assert isinstance(code, str)
        option = item.option(code)
        if option is None:
            # an integer code is out of range, anything else not an integer: as natively
            self.responses[link_id] = int(code) if _INTEGER.fullmatch(code) else code
            return
        ordinal = _ordinal(coding)
        if ordinal is not None and (
            isinstance(ordinal, bool)
            or not isinstance(ordinal, int | float)
            or ordinal != option.score
        ):
            self.problems.append(
                Problem(
                    loc,
                    f"item {link_id}: ordinalValue {_shown(ordinal)} does not match code "
                    f"{code!r}, which scores {option.score}",
                    "score_mismatch",
                )
            )
            self.answered_invalidly = True
            return
        self.responses[link_id] = option.score


def parse_questionnaire_response(
    resource: object,
    *,
    base: str,
    trial_id: str,
    catalogue: Catalogue = CATALOGUE,
    require_subject: bool = False,
) -> FhirSubmission:
    """Read a FHIR R4 QuestionnaireResponse (parsed JSON) as a native submission.

    Parameters
    ----------
    resource : object
        The JSON-decoded body.
    base : str
        The deployment's canonical base, as given to `questionnaire`.
    trial_id : str
        The trial the response was posted to; a Questionnaire issued for another trial is
        refused.
    catalogue : Catalogue
        Where the instrument is looked up; the packaged catalogue by default.
    require_subject : bool
        Whether ``subject.identifier.value`` must name the participant (a key's route);
        with a participant token the caller knows the participant and may pass False.

    Returns
    -------
    FhirSubmission
        Instrument, version, trial and timepoint from the canonical; participant,
        completion time, responses (every item) and diary notes from the response.

    Raises
    ------
    InvalidSubmission
        With every problem found (see the module docstring for locations); render it with
        `operation_outcome`. Item values are checked by `validate_responses` and
        `validate_notes`, so their problems (``unknown_item``, ``not_integer``,
        ``out_of_range``, ``no_items_answered``, ``too_long`` ...) are the native route's.
        Further: ``wrong_resource_type``, ``not_completed`` (``status`` must be
        ``completed``), ``missing``, ``unknown_questionnaire``, ``wrong_trial``,
        ``unknown_instrument``, ``unknown_version``, ``datetime_parsing``,
        ``timezone_aware``, ``string_pattern_mismatch``, ``duplicate_item``,
        ``nested_items``, ``too_many_answers``, ``no_value``, ``too_many_values``,
        ``unknown_system``, ``score_mismatch``.

    Notes
    -----
    ``authored`` in the future is not refused here (that needs a clock): the submission
    service refuses it as it does ``completed_at``.
    """
    if not isinstance(resource, Mapping):
        raise InvalidSubmission(
            [Problem((), "the body must be a FHIR QuestionnaireResponse object", "not_object")]
        )
    if resource.get("resourceType") != "QuestionnaireResponse":
        raise InvalidSubmission(
            [
                Problem(
                    ("resourceType",),
                    f"expected a QuestionnaireResponse, got resourceType "
                    f"{_shown(resource.get('resourceType'))}",
                    "wrong_resource_type",
                )
            ]
        )
    problems: list[Problem] = []
    status = resource.get("status")
    if status != "completed":
        problems.append(
            Problem(
                ("status",),
                f"status must be 'completed', got {_shown(status)}",
                "missing" if status is None else "not_completed",
            )
        )
    instrument, canonical = _resolve_questionnaire(
        resource.get("questionnaire"),
        base=base,
        trial_id=trial_id,
        catalogue=catalogue,
        problems=problems,
    )
    completed_at = _authored(resource.get("authored"), problems)
    participant_id = _participant(
        resource.get("subject"), required=require_subject, problems=problems
    )
    answers = _Answers(instrument, base=base)
    answers.read(resource.get("item"))
    problems += answers.problems
    responses: dict[int, int | None] = {}
    notes: dict[str, str] | None = None
    if instrument is not None:
        try:
            responses = validate_responses(instrument, answers.responses)
        except InvalidSubmission as exc:
            problems += [
                p
                for p in exc.problems
                if not (p.type == "no_items_answered" and answers.answered_invalidly)
            ]
        try:
            notes = validate_notes(instrument, answers.notes or None)
        except InvalidSubmission as exc:
            problems += exc.problems
    if problems:
        raise InvalidSubmission(problems)
    assert instrument is not None
    assert canonical is not None
    assert completed_at is not None
    return FhirSubmission(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        trial_id=canonical.trial_id,
        timepoint=canonical.timepoint,
        participant_id=participant_id,
        completed_at=completed_at,
        responses={str(number): value for number, value in responses.items()},
        notes=notes,
        questionnaire=str(resource["questionnaire"]),
    )


# -- OperationOutcome ----------------------------------------------------------------------

# Native submission fields -> the QuestionnaireResponse element that carries them.
_NATIVE: dict[str, tuple[str, ...]] = {
    "completed_at": ("authored",),
    "participant_id": ("subject", "identifier", "value"),
    "instrument": ("questionnaire",),
    "instrument_version": ("questionnaire",),
    "timepoint": ("questionnaire",),
}
_RESPONSE_ELEMENTS = frozenset(
    {
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "basedOn",
        "partOf",
        "questionnaire",
        "status",
        "subject",
        "encounter",
        "authored",
        "author",
        "source",
        "item",
    }
)

# Problem type -> FHIR R4 issue-type code (http://hl7.org/fhir/R4/valueset-issue-type.html).
_ISSUE_CODE: dict[str, str] = {
    "not_object": "structure",
    "not_array": "structure",
    "wrong_resource_type": "structure",
    "unknown_item": "structure",
    "unknown_field": "structure",
    "duplicate_item": "structure",
    "nested_items": "structure",
    "too_many_answers": "structure",
    "too_many_values": "structure",
    "notes_not_allowed": "structure",
    "missing": "required",
    "no_value": "required",
    "no_items_answered": "required",
    "not_integer": "value",
    "not_string": "value",
    "out_of_range": "value",
    "not_completed": "value",
    "datetime_type": "value",
    "datetime_parsing": "value",
    "timezone_aware": "value",
    "string_pattern_mismatch": "value",
    "unknown_system": "code-invalid",
    "score_mismatch": "code-invalid",
    "too_long": "too-long",
    "unknown_questionnaire": "not-found",
    "unknown_instrument": "not-found",
    "unknown_version": "not-found",
    "wrong_trial": "business-rule",
    "not_scheduled": "business-rule",
    "not_enrolled": "business-rule",
    "withdrawn": "business-rule",
    "in_future": "business-rule",
    "nothing_to_supersede": "business-rule",
}

# HTTP status of a refusal without problems -> issue-type code.
_STATUS_CODE: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    500: "exception",
    503: "transient",
}


def _literal(text: str) -> str:
    """A FHIRPath string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m[0]):04x}", escaped) + "'"


def fhir_expression(loc: Sequence[str | int]) -> str | None:
    """The FHIRPath of the QuestionnaireResponse element a problem's `loc` names, or None.

    Native locations (optionally under ``"body"``) map to the element that carries the
    field: ``responses``/``notes`` items to ``item.where(linkId='...')``, ``completed_at``
    to ``authored``, ``participant_id`` to ``subject.identifier.value``, ``instrument``,
    ``instrument_version`` and ``timepoint`` to ``questionnaire``. Other locations are the
    response's own elements: a string after ``item`` is a linkId, an integer a position.
    None for the whole resource, ``resourceType`` and fields a QuestionnaireResponse does
    not have.
    """
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    if not parts:
        return None
    head = parts[0]
    if head in ("responses", "notes"):
        parts = ["item", *parts[1:]]
    elif isinstance(head, str) and head in _NATIVE:
        parts = [*_NATIVE[head], *parts[1:]]
    elif not (isinstance(head, str) and head in _RESPONSE_ELEMENTS):
        return None
    path = "QuestionnaireResponse"
    after_item = False
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif after_item:
            path += f".where(linkId={_literal(part)})"
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", part):
            path += f".{part}"
        else:
            return None
        after_item = part == "item"
    return path


def _issue(
    *, code: str, text: str, problem_type: str | None, expression: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = {"text": text}
    if problem_type is not None:
        details = {"coding": [{"system": PROBLEM_TYPE_SYSTEM, "code": problem_type}], "text": text}
    issue: dict[str, Any] = {"severity": "error", "code": code, "details": details}
    if expression is not None:
        issue["expression"] = [expression]
    return issue


def operation_outcome(problems: Iterable[Problem]) -> dict[str, Any]:
    """Refused problems as a FHIR R4 OperationOutcome (JSON-ready), one issue per problem.

    Each issue has ``severity`` error, an issue-type ``code`` chosen by the problem type,
    ``details`` with the problem type (system `PROBLEM_TYPE_SYSTEM`) and its sentence,
    and ``expression`` from `fhir_expression` where the problem names an element.

    Raises
    ------
    ValueError
        No problems: a refusal names at least one.
    """
    issues = [
        _issue(
            code=_ISSUE_CODE.get(p.type, "invalid"),
            text=p.msg,
            problem_type=p.type,
            expression=fhir_expression(p.loc),
        )
        for p in problems
    ]
    if not issues:
        raise ValueError("an OperationOutcome for a refusal needs at least one problem")
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome_for_status(status: int, message: str) -> dict[str, Any]:
    """A refusal that names no field (401, 403, 404, 409, 413, 429 ...) as an OperationOutcome.

    The issue code follows the HTTP status (``login``, ``forbidden``, ``not-found``,
    ``conflict``, ``too-costly``, ``throttled`` ...); `message` is its ``details.text``.
    """
    code = _STATUS_CODE.get(status, "exception" if status >= 500 else "processing")
    return {
        "resourceType": "OperationOutcome",
        "issue": [_issue(code=code, text=message, problem_type=None, expression=None)],
    }
