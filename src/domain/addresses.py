"""E-mail addresses SES can deliver to: the rule the trial routes check coordinator addresses by.

SES sends with a 7-bit ASCII envelope: the local part must be an RFC 5322 dot-atom of ASCII
characters (no quoted local parts, no SMTPUTF8), and the domain a globally deliverable host
name in its ASCII form (an internationalised domain is sent as its ``xn--`` labels). The rule
is the one email-validator applies with ``allow_smtputf8=False`` and no DNS check, written out
so the API does not load that library (FastAPI imports it at start-up whenever it is
installed). Turning a Unicode domain into its ASCII form needs IDNA 2008 tables, which are not
in the standard library: the HTTP layer does that (`handlers.schemas`) and hands this module
the result.

References
----------
.. [1] RFC 5322, section 3.2.3 (atext, dot-atom) and 3.4.1 (addr-spec).
.. [2] RFC 5321, section 4.5.3.1 (size limits: 254 octets per address, 63 per label).
.. [3] RFC 1123, section 2.1 (host name syntax); RFC 5891, section 4.2.3.1 (hyphens in
   the third and fourth positions are reserved for ``xn--``).
.. [4] IANA special-use domain names (RFC 6761, 6762, 7686): ``arpa``, ``invalid``,
   ``local``, ``localhost``, ``onion``, ``test``.
"""

from __future__ import annotations

import re

__all__ = ["address_problem", "split_address"]

_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_LABEL = re.compile(r"(?:[a-zA-Z0-9][a-zA-Z0-9-]*)?[a-zA-Z0-9]")
_RESERVED_HYPHENS = re.compile(r"(?!xn)..--", re.IGNORECASE)
MAX_ADDRESS = 254
MAX_DOMAIN = 253
MAX_LABEL = 63
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def split_address(address: str) -> tuple[str, str] | None:
    """(local part, domain) at the last ``@``, or None when there is none."""
    local, at, domain = address.rpartition("@")
    return (local, domain) if at else None


def address_problem(address: str) -> str | None:
    """Why SES could not deliver to `address` (its domain already in ASCII form), or None.

    Parameters
    ----------
    address : str
        ``local@domain``; a Unicode domain must be converted to its ASCII (``xn--``) form
        first, the local part is taken as given.

    Returns
    -------
    str or None
        A sentence for the caller, or None when the address is deliverable as far as its
        syntax can tell (no DNS lookup is made).
    """
    parts = split_address(address)
    if parts is None:
        return "an address needs an @-sign"
    local, domain = parts
    if not local:
        return "there must be something before the @-sign"
    if not local.isascii():
        return "the part before the @-sign must be 7-bit ASCII (SES does not send SMTPUTF8)"
    if _DOT_ATOM.fullmatch(local) is None:
        return (
            "the part before the @-sign may hold letters, digits and !#$%&'*+-/=?^_`{|}~, "
            "with single dots between them (not first or last)"
        )
    problem = _domain_problem(domain)
    if problem is None and len(address) > MAX_ADDRESS:
        problem = f"an address may be at most {MAX_ADDRESS} characters long"
    return problem


def _domain_problem(domain: str) -> str | None:
    if not domain:
        return "there must be something after the @-sign"
    if not domain.isascii():
        return "the part after the @-sign must be in its ASCII (xn--) form"
    if len(domain) > MAX_DOMAIN:
        return f"the part after the @-sign may be at most {MAX_DOMAIN} characters long"
    labels = domain.split(".")
    for label in labels:
        if _LABEL.fullmatch(label) is None:
            return (
                "the part after the @-sign must be a host name: letters, digits and "
                "hyphens, with single dots between labels (not first or last)"
            )
        if len(label) > MAX_LABEL:
            return f"a label after the @-sign may be at most {MAX_LABEL} characters long"
        if _RESERVED_HYPHENS.match(label):
            return "a label after the @-sign may not have -- in its third and fourth places"
    if len(labels) < 2:
        return "the part after the @-sign should have a period"
    if not labels[-1][-1:].isalpha():
        return "the part after the @-sign is not within a valid top-level domain"
    lowered = domain.lower()
    if any(lowered == d or lowered.endswith("." + d) for d in SPECIAL_USE_DOMAINS):
        return "the part after the @-sign is a special-use or reserved name"
    return None
