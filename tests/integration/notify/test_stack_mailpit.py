"""The stack's SMTP server: Mailpit runs, answers, and listens on loopback only."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from iocdev.mailbox import MailpitApi
from iocdev.settings import DevSettings
from iocdev.stack import manager

pytestmark = [pytest.mark.integration]


def listening(port: int) -> set[str]:
    """Local addresses (hex, /proc/net/tcp*) listening on ``port``."""
    out: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                out.add(address)
    return out


def test_mailpit_is_up_on_loopback_only(stack: DevSettings) -> None:
    (row,) = manager.status(stack, ["mailpit"])
    assert row.pid is not None and row.answers
    for port in (stack.mail.smtp_port, stack.mail.web_port):
        assert listening(port) == {"0100007F"}, port  # 127.0.0.1, nothing else


def test_a_message_sent_to_the_smtp_port_is_in_the_inbox(stack: DevSettings) -> None:
    subject = f"stack mailpit {uuid.uuid4().hex[:8]}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@ioc.local", "b@ioc.local", subject
    msg.set_content("Xin chào")
    with smtplib.SMTP(stack.stack.host, stack.mail.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg)
    inbox = MailpitApi(f"http://{stack.stack.host}:{stack.mail.web_port}")
    (got,) = [m for m in inbox.messages() if m.subject == subject]
    assert got.to == ("b@ioc.local",)
    assert "Xin chào" in inbox.text(got.id)
