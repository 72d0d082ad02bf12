"""Outgoing e-mail through SES; optionally also written as .eml files to a local outbox.

Callers never pass item responses or free text (see services.mail_render).
"""

from __future__ import annotations

import email.policy
import pathlib
import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any


class SesMailer:
    def __init__(self, client: Any, sender: str, outbox_dir: str | None = None) -> None:
        self.client = client
        self.sender = sender
        self.outbox = pathlib.Path(outbox_dir) if outbox_dir else None

    def send(self, *, to: Sequence[str], subject: str, text: str, html: str) -> str:
        response = self.client.send_email(
            Source=self.sender,
            Destination={"ToAddresses": list(to)},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": text, "Charset": "UTF-8"},
                    "Html": {"Data": html, "Charset": "UTF-8"},
                },
            },
        )
        message_id = str(response.get("MessageId", ""))
        if self.outbox is not None:
            self._write_eml(to=to, subject=subject, text=text, html=html, message_id=message_id)
        return message_id

    def _write_eml(
        self, *, to: Sequence[str], subject: str, text: str, html: str, message_id: str
    ) -> pathlib.Path:
        assert self.outbox is not None
        self.outbox.mkdir(parents=True, exist_ok=True)
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["X-SES-Message-Id"] = message_id
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        # time-ordered, unique names: nanoseconds then randomness
        path = self.outbox / f"{time.time_ns():020d}-{secrets.token_hex(4)}.eml"
        path.write_bytes(bytes(message))
        return path
