"""Participant access (API.md v1.1): one-time enrolment codes, exchanged for participant tokens.

A browser can keep no secret, so a participant's front end holds a token of their own,
scoped to them, instead of a submitter key.

Codes
-----
A coordinator asks for a code per participant (`AccessService.issue_code`). It is 12
symbols of Crockford's base32 (``0-9 A-Z`` without ``I L O U``): 60 random bits, shown as
``XXXX-XXXX-XXXX``, short enough to read out, type or put in a QR code. Typing is forgiven:
case, spaces and hyphens are ignored and ``O``, ``I``, ``L`` read as ``0``, ``1``, ``1``. A
code is valid for `CODE_LIFETIME` (14 days), works once, and a new code for the same
participant replaces an unused one. Only the SHA-256 of its normalised form is stored.

Guessing
--------
`POST /v1/access/exchange` needs no key, so it is throttled (`handlers.http.access`): per
source address and per function instance here, and by API Gateway for the route as a
whole. A wrong code, whether mistyped, never issued, used, replaced or expired, is one
answer (401), so a guess learns nothing. At the route's default ceiling (5 exchanges a
second for the whole deployment) a guesser gets about 6 million tries in a code's 14 days
against 2^60 codes: about one chance in 10^11 per live code.

Tokens
------
``cmtp_<trial and participant, base64url>.<256 random bits, base64url>``. The token names
its participant, so checking it is one read of the participant item (which holds the hashes
of their tokens: `adapters.access_store`), cached in the warm function for at most 5 s, as
keys are. A token acts for its participant in its trial only, and is rate limited like a key.
It ends when the participant ends it (``DELETE /v1/me/token``), when a coordinator revokes
the participant's tokens, when the participant is withdrawn or erased, and at its expiry:
`TOKEN_MARGIN` (28 days) after the participant's last scheduled window closes, and never
sooner than `TOKEN_MIN_LIFETIME` (14 days) after the exchange. With the default protocol a
token taken at enrolment lasts 225 days (the follow-up window closes on day 197). A revoked,
withdrawn or expired token is refused on every warm function within 5 seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.schedule import effective_timing
from domain.trial import AccessCode, Participant, ParticipantToken, Trial
from services.auth import MAX_KEY_CACHE_SECONDS, Principal
from services.clock import Clock, iso
from services.errors import NotAuthenticated, NotFound
from services.ports import AccessStore

__all__ = [
    "CODE_LIFETIME",
    "MAX_TOKENS_PER_PARTICIPANT",
    "TOKEN_MARGIN",
    "TOKEN_MIN_LIFETIME",
    "TOKEN_PREFIX",
    "AccessService",
    "IssuedCode",
    "IssuedToken",
    "TokenHolder",
    "normalise_code",
    "token_expiry",
]

CODE_LIFETIME = timedelta(days=14)
TOKEN_PREFIX = "cmtp_"  # noqa: S105 (a prefix, not a secret)
TOKEN_MARGIN = timedelta(days=28)
TOKEN_MIN_LIFETIME = timedelta(days=14)
#: Tokens one participant may hold at once (devices); an exchange beyond it ends the oldest.
MAX_TOKENS_PER_PARTICIPANT = 10
_CACHED_TOKENS = 10_000

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_SYMBOLS = 12  # 12 x 5 = 60 random bits
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CODE = re.compile(f"[{_CROCKFORD}]{{{_CODE_SYMBOLS}}}")
_TRIAL_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
WRONG_CODE = (
    "this code opens nothing: it may be mistyped, already used, replaced by a newer one or "
    "expired; ask the trial team for a new code"
)


@dataclass(frozen=True, kw_only=True)
class IssuedCode:
    code: str  # shown once
    trial_id: str
    participant_id: str
    expires_at: str


@dataclass(frozen=True, kw_only=True)
class IssuedToken:
    participant_token: str  # shown once
    token_id: str
    trial_id: str
    participant_id: str
    expires_at: str


@dataclass(frozen=True, kw_only=True)
class TokenHolder:
    """An accepted participant token: the caller, and their participant record as read
    (at most the token cache's 5 s old)."""

    principal: Principal
    participant: Participant
    token_hash: str


def normalise_code(text: str) -> str | None:
    """A code as typed, in its one stored form (12 symbols), or None if it cannot be one.

    >>> normalise_code(" k7qd-93xm 2fra ")
    'K7QD93XM2FRA'
    >>> normalise_code("O1IL-0000-0000")
    '011100000000'
    >>> normalise_code("K7QD-93XM") is None
    True
    """
    symbols = re.sub(r"[\s-]", "", text).upper().translate(_TYPO)
    return symbols if _CODE.fullmatch(symbols) else None


def _hash(kind: str, secret: str) -> str:
    return hashlib.sha256(f"{kind}\0{secret}".encode()).hexdigest()


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def token_expiry(trial: Trial, *, enrolled_at: datetime, now: datetime) -> datetime:
    """When a token taken `now` ends: 28 days after the participant's last window closes,
    and no sooner than 14 days from now (see the module docstring)."""
    protocol = trial.protocol
    timing = effective_timing(timepoints=protocol.scheduled_timepoints(), overrides=protocol.timing)
    last_close = max((t.window(enrolled_at)[1] for t in timing.values()), default=now)
    return max(now + TOKEN_MIN_LIFETIME, last_close + TOKEN_MARGIN)


def _token_ids(token: str) -> tuple[str, str] | None:
    """The trial and participant a token names, if it has a token's form at all."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    ids, dot, secret = token[len(TOKEN_PREFIX) :].partition(".")
    if not dot or _SECRET.fullmatch(secret) is None or len(ids) > 200:
        return None
    try:
        text = base64.urlsafe_b64decode(ids + "=" * (-len(ids) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    trial_id, slash, participant_id = text.partition("/")
    if (
        not slash
        or _TRIAL_ID.fullmatch(trial_id) is None
        or _PARTICIPANT_ID.fullmatch(participant_id) is None
    ):
        return None
    return trial_id, participant_id


def _new_token(trial_id: str, participant_id: str) -> str:
    ids = base64.urlsafe_b64encode(f"{trial_id}/{participant_id}".encode()).decode().rstrip("=")
    return f"{TOKEN_PREFIX}{ids}.{secrets.token_urlsafe(32)}"


class AccessService:
    """Issues codes, exchanges them for tokens, and resolves a presented token.

    Parameters
    ----------
    store : AccessStore
        Codes and tokens (as hashes).
    trials : callable
        ``trial_id -> Trial`` (the trial service's cached read); raises `NotFound`.
    clock : Clock
    cache_seconds : float
        How long a warm function trusts a token it has read (capped at 5 s, as keys).
    monotonic : callable
        The clock of the cache (injected by tests: never the machine's in a test).
    """

    def __init__(
        self,
        store: AccessStore,
        *,
        trials: Callable[[str], Trial],
        clock: Clock,
        cache_seconds: float = MAX_KEY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.trials = trials
        self.clock = clock
        self.cache_seconds = min(cache_seconds, MAX_KEY_CACHE_SECONDS)
        self.monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, Participant, ParticipantToken]] = OrderedDict()
        self._lock = threading.Lock()

    # -- codes -------------------------------------------------------------------------------

    def issue_code(self, participant: Participant) -> IssuedCode:
        """A new one-time code for an enrolled, not withdrawn participant (shown once)."""
        now = self.clock()
        code = "".join(secrets.choice(_CROCKFORD) for _ in range(_CODE_SYMBOLS))
        expires_at = iso(now + CODE_LIFETIME)
        stored = self.store.issue_code(
            _hash("code", code),
            AccessCode(
                trial_id=participant.trial_id,
                participant_id=participant.participant_id,
                enrolled_at=participant.enrolled_at,
                created_at=iso(now),
                expires_at=expires_at,
            ),
        )
        if not stored:
            raise NotFound(
                f"participant {participant.participant_id} is not enrolled (or is withdrawn) "
                f"in {participant.trial_id}"
            )
        return IssuedCode(
            code="-".join(code[n : n + 4] for n in range(0, _CODE_SYMBOLS, 4)),
            trial_id=participant.trial_id,
            participant_id=participant.participant_id,
            expires_at=expires_at,
        )

    def exchange(self, code: str) -> IssuedToken:
        """Use a code once for a participant token; any wrong code is `NotAuthenticated`."""
        symbols = normalise_code(code)
        if symbols is None:
            raise NotAuthenticated(WRONG_CODE)
        code_hash = _hash("code", symbols)
        now = self.clock()
        record = self.store.code(code_hash)
        if record is None or record.expires_at <= iso(now):
            raise NotAuthenticated(WRONG_CODE)
        try:
            trial = self.trials(record.trial_id)
        except NotFound:
            raise NotAuthenticated(WRONG_CODE) from None
        token = _new_token(record.trial_id, record.participant_id)
        token_hash = _hash("token", token)
        issued = ParticipantToken(
            token_id="t_" + secrets.token_hex(8),
            issued_at=iso(now),
            expires_at=iso(token_expiry(trial, enrolled_at=_moment(record.enrolled_at), now=now)),
        )
        exchanged = self.store.exchange_code(
            code_hash, record, token_hash=token_hash, token=issued, now=iso(now)
        )
        if exchanged is None:
            raise NotAuthenticated(WRONG_CODE)
        self._prune(record.trial_id, record.participant_id, exchanged[1], now)
        return IssuedToken(
            participant_token=token,
            token_id=issued.token_id,
            trial_id=record.trial_id,
            participant_id=record.participant_id,
            expires_at=issued.expires_at,
        )

    def _prune(
        self,
        trial_id: str,
        participant_id: str,
        tokens: dict[str, ParticipantToken],
        now: datetime,
    ) -> None:
        """Drop the participant's expired tokens and the oldest beyond the cap (rare)."""
        moment = iso(now)
        live = sorted(
            ((t.issued_at, h) for h, t in tokens.items() if t.expires_at > moment), reverse=True
        )
        keep = {h for _, h in live[:MAX_TOKENS_PER_PARTICIPANT]}
        drop = [h for h in tokens if h not in keep]
        if drop:
            self.store.drop_tokens(trial_id, participant_id, drop)

    # -- tokens ------------------------------------------------------------------------------

    def is_token(self, credential: str) -> bool:
        """Whether a bearer credential is meant as a participant token (by its prefix)."""
        return credential.startswith(TOKEN_PREFIX)

    def authenticate(self, token: str) -> TokenHolder:
        """The participant a token acts for; `NotAuthenticated` for any token not valid now."""
        ids = _token_ids(token)
        if ids is None:
            raise NotAuthenticated("not a participant token")
        trial_id, participant_id = ids
        token_hash = _hash("token", token)
        at = self.monotonic()
        with self._lock:
            cached = self._cache.get(token_hash)
        if cached is not None and at - cached[0] < self.cache_seconds:
            _, participant, record = cached
        else:
            held = self.store.token_holder(
                trial_id=trial_id, participant_id=participant_id, token_hash=token_hash
            )
            if held is None:
                self._drop(token_hash)
                raise NotAuthenticated("unknown or ended participant token")
            participant, record = held
            with self._lock:
                self._cache[token_hash] = (at, participant, record)
                self._cache.move_to_end(token_hash)
                while len(self._cache) > _CACHED_TOKENS:
                    self._cache.popitem(last=False)
        if participant.status == "withdrawn":
            raise NotAuthenticated("unknown or ended participant token")
        if record.expires_at <= iso(self.clock()):
            raise NotAuthenticated(
                "this participant token has expired; ask the trial team for a new code"
            )
        return TokenHolder(
            principal=Principal(
                key_id=record.token_id,
                role="participant",
                trial_id=trial_id,
                participant_id=participant_id,
            ),
            participant=participant,
            token_hash=token_hash,
        )

    def end(self, holder: TokenHolder) -> None:
        """End the token the caller presented (``DELETE /v1/me/token``)."""
        principal = holder.principal
        assert principal.participant_id is not None
        self.store.revoke_token(
            trial_id=principal.trial_id,
            participant_id=principal.participant_id,
            token_hash=holder.token_hash,
        )
        self._drop(holder.token_hash)

    def revoke(self, trial_id: str, participant_id: str, *, with_code: bool) -> int:
        """End every token of a participant (and, `with_code`, the unused code).

        Returns how many tokens were ended. This function refuses them at once; every other
        warm function within 5 seconds.

        Raises
        ------
        NotFound
            The participant is not enrolled in the trial.
        """
        ended = self.store.revoke_access(trial_id, participant_id, with_code=with_code)
        self.forget(trial_id, participant_id)
        if ended is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial_id}")
        return ended

    def forget(self, trial_id: str, participant_id: str) -> None:
        """Drop what this function has cached of the participant's tokens."""
        with self._lock:
            for token_hash in [
                h
                for h, (_, p, _) in self._cache.items()
                if (p.trial_id, p.participant_id) == (trial_id, participant_id)
            ]:
                del self._cache[token_hash]

    def _drop(self, token_hash: str) -> None:
        with self._lock:
            self._cache.pop(token_hash, None)
