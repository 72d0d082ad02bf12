"""Coordinator addresses: the SES rule of `domain.addresses` and the schema type around it.

Each verdict is pinned to email-validator 2.4.0, the library the rule replaces:
``validate_email(address, allow_smtputf8=False, check_deliverability=False)``, accepted or
raising EmailNotValidError with the message quoted beside each case; for an accepted Unicode
domain its ``ascii_domain``.
"""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.addresses import address_problem
from handlers.schemas import SesAddress

ses_address = TypeAdapter(SesAddress)

DELIVERABLE = [
    "coordinator@example.org",
    "a.b+c@sub.example.co.uk",
    "o'brien_{x}@example.org",
    "a@EXAMPLE.ORG",
    "a@xn--mnchen-3ya.de",
]
# (address, email-validator's refusal)
UNDELIVERABLE = [
    ("not-an-address", "An email address must have an @-sign."),
    ("@example.org", "There must be something before the @-sign."),
    ("a@", "There must be something after the @-sign."),
    ("jörg@example.org", "Internationalized characters before the @-sign are not supported"),
    ("a..b@example.org", "An email address cannot have two periods in a row."),
    (".a@example.org", "An email address cannot start with a period."),
    ('"q"@example.org', "Quoting the part before the @-sign is not allowed here."),
    ("Name <a@example.org>", "A display name and angle brackets ... are not permitted here."),
    ("a b@example.org", "The email address contains invalid characters before the @-sign"),
    ("a@b", "The part after the @-sign is not valid. It should have a period."),
    ("a@localhost", "The part after the @-sign is not valid. It should have a period."),
    ("x@foo.test", "The part after the @-sign is a special-use or reserved name"),
    ("x@mail.local", "The part after the @-sign is a special-use or reserved name"),
    ("a@-ex.org", "An email address cannot have a hyphen immediately after the @-sign."),
    ("a@ex-.org", "An email address cannot have a period and a hyphen next to each other."),
    ("a@ab--cd.org", "cannot have two letters followed by two dashes ... except Punycode"),
    ("a@example.123", "It is not within a valid top-level domain."),
    ("a@[192.0.2.1]", "A bracketed IP address after the @-sign is not allowed here."),
    ("a@example.org.", "An email address cannot end with a period."),
    ("a@ex_ample.org", "The part after the @-sign contains invalid characters: '_'."),
    ("a@" + "x" * 64 + ".org", "After the @-sign, periods cannot be separated by so many"),
    ("a" * 250 + "@ex.org", "The email address is too long (3 characters too many)."),
    ("a@xn--zz.org", "The part after the @-sign is not valid IDNA (Invalid A-label)."),
]


@pytest.mark.parametrize("address", DELIVERABLE)
def test_an_address_ses_can_deliver_to_is_accepted_as_sent(address: str) -> None:
    assert address_problem(address) is None
    assert ses_address.validate_python(address) == address


@pytest.mark.parametrize(("address", "reference"), UNDELIVERABLE)
def test_an_address_ses_cannot_deliver_to_is_refused(address: str, reference: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ses_address.validate_python(address)
    (error,) = refused.value.errors()
    assert error["type"] == "email_not_deliverable", reference
    assert error["msg"].startswith("not an address SES can deliver to: ")


@pytest.mark.parametrize(
    ("address", "ascii_form"),
    [
        ("a@münchen.de", "a@xn--mnchen-3ya.de"),
        # IDNA 2008 keeps ß (IDNA 2003 would have mapped it to "ss": another domain)
        ("a@Straße.de", "a@xn--strae-oqa.de"),
        ("a@exämple.org", "a@xn--exmple-cua.org"),
    ],
)
def test_an_internationalised_domain_is_refused_with_its_ascii_form(
    address: str, ascii_form: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ses_address.validate_python(address)
    (error,) = refused.value.errors()
    assert error["type"] == "email_domain_not_ascii"
    assert error["msg"].endswith(f"send {ascii_form}")
    assert ses_address.validate_python(ascii_form) == ascii_form


def test_a_unicode_domain_does_not_excuse_a_unicode_local_part() -> None:
    with pytest.raises(ValidationError) as refused:
        ses_address.validate_python("ä@exämple.org")
    assert refused.value.errors()[0]["type"] == "email_not_deliverable"


def test_an_address_that_is_not_a_string_is_refused_as_such() -> None:
    with pytest.raises(ValidationError) as refused:
        ses_address.validate_python(42)
    assert refused.value.errors()[0]["type"] == "email_type"


def test_the_rule_itself_wants_the_domain_already_in_ascii() -> None:
    assert address_problem("a@münchen.de") == (
        "the part after the @-sign must be in its ASCII (xn--) form"
    )
