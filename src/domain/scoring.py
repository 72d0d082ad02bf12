"""Scoring validated responses into subscale scores.

Rules (``missing_item_rule`` in the catalogue):

- Reverse-keyed items are turned round once, ``value -> response_min + response_max -
  value``, before any subscale sees them (no item of the seven instruments is reverse
  keyed in version 1; the mechanism is there for later versions).
- With nothing missing the score is the plain sum.
- With at most ``max_missing`` items missing, the score is prorated: the mean of the
  answered items times the subscale's item count, unrounded, flagged ``prorated``.
- With more missing the score is None with reason ``"too_many_missing"``.
- The band (HADS only) is looked up after rounding the score half up, for banding only;
  see `Subscale.band_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.instruments import Instrument, Subscale

__all__ = ["TOO_MANY_MISSING", "ScoreSet", "SubscaleScore", "score_responses"]

TOO_MANY_MISSING = "too_many_missing"


@dataclass(frozen=True, kw_only=True)
class SubscaleScore:
    """The score of one subscale of one submission.

    Attributes
    ----------
    score : float or None
        Sum of the items (prorated when some are missing), or None with `reason`.
    answered, missing : int
        How many of the subscale's items were answered and skipped.
    prorated : bool
        True when a score was computed with items missing.
    reason : str or None
        ``"too_many_missing"`` when `score` is None.
    band : str or None
        The interpretive band, only for subscales with bands and a score.
    """

    subscale: str
    score: float | None
    answered: int
    missing: int
    prorated: bool
    reason: str | None
    band: str | None


@dataclass(frozen=True, kw_only=True)
class ScoreSet:
    """Every subscale score of one submission, in the instrument's subscale order."""

    instrument: str
    version: str
    subscales: tuple[SubscaleScore, ...]

    def get(self, subscale_id: str) -> SubscaleScore:
        """The score of this subscale; KeyError if the instrument has no such subscale."""
        for score in self.subscales:
            if score.subscale == subscale_id:
                return score
        raise KeyError(f"{self.instrument} has no subscale {subscale_id!r}")


def _keyed_values(
    instrument: Instrument, responses: Mapping[int, int | None]
) -> dict[int, int | None]:
    """Responses for every item with reverse keying applied exactly once."""
    unknown = set(responses) - set(instrument.item_numbers)
    if unknown:
        raise ValueError(f"{instrument.id} has no items {sorted(unknown)}; validate first")
    low, high = instrument.response_min, instrument.response_max
    reverse = set(instrument.reverse_items)
    keyed: dict[int, int | None] = {}
    for number in instrument.item_numbers:
        value = responses.get(number)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"item {number}: {value!r} is not a valid response; validate first"
                )
            if number in reverse:
                value = low + high - value
        keyed[number] = value
    return keyed


def _score_subscale(subscale: Subscale, keyed: Mapping[int, int | None]) -> SubscaleScore:
    answered = [v for v in (keyed[i] for i in subscale.items) if v is not None]
    missing = len(subscale.items) - len(answered)
    if missing > subscale.max_missing:
        return SubscaleScore(
            subscale=subscale.id,
            score=None,
            answered=len(answered),
            missing=missing,
            prorated=False,
            reason=TOO_MANY_MISSING,
            band=None,
        )
    total = sum(answered)
    # mean * count computed as total * count / answered: one rounding, so whole results
    # stay exact (6 / 4 * 7 and 6 * 7 / 4 agree here, but not for every input).
    score = float(total) if missing == 0 else total * len(subscale.items) / len(answered)
    return SubscaleScore(
        subscale=subscale.id,
        score=score,
        answered=len(answered),
        missing=missing,
        prorated=missing > 0,
        reason=None,
        band=subscale.band_for(score),
    )


def score_responses(instrument: Instrument, responses: Mapping[int, int | None]) -> ScoreSet:
    """Score validated responses by the instrument's subscales.

    Parameters
    ----------
    instrument : Instrument
        The instrument version the responses were given on.
    responses : mapping of int to int or None
        Item number to value, as returned by `validate_responses`; omitted items count as
        missing.

    Returns
    -------
    ScoreSet
        One `SubscaleScore` per subscale, in the instrument's order.

    Raises
    ------
    ValueError
        An item number or value that validation would have refused.

    Examples
    --------
    >>> from domain.instruments import CATALOGUE
    >>> hads = CATALOGUE.get("hads")
    >>> answers = {1: 2, 3: 1, 5: 3, 7: 0}  # three anxiety items missing
    >>> score_responses(hads, answers).get("anxiety").score  # 6 / 4 * 7
    10.5
    """
    keyed = _keyed_values(instrument, responses)
    return ScoreSet(
        instrument=instrument.id,
        version=instrument.version,
        subscales=tuple(_score_subscale(sub, keyed) for sub in instrument.subscales),
    )
