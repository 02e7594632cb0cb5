"""E-mail delivery against a real SMTP server (aiosmtpd on a loopback port, in a thread)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import pytest
from sqlalchemy import select, update

from access_requests import applications, notifications
from access_requests.models import Notification
from enclave.core.people import User
from tests.access_requests.helpers import create
from tests.workflows.factories import Factory

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
SENDER = "enclave@depp.example"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _submitted(factory: Factory, with_emails: bool = True) -> str:
    if with_emails:
        with factory.enclave.db.transaction() as session:
            for name in ("claire", "david"):
                session.execute(update(User).where(User.username == name)
                                .values(email=f"{name}@depp.example"))
    project_id = create(factory, title="Étude « à risque » & co < 10")
    with factory.enclave.db.transaction() as session:
        applications.submit(session, factory.actor("alice"), project_id, version=1)
    return project_id


def _emails(factory: Factory) -> dict[str, tuple[str, int, str]]:
    with factory.enclave.db.sessions() as session:
        return {r.recipient: (r.status, r.attempts, r.last_error) for r in session.execute(
            select(Notification).where(Notification.channel == "email")).scalars()}


def test_pending_emails_are_delivered_through_smtp_and_marked_sent(
        factory: Factory, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    _submitted(factory)
    report = notifications.deliver_email(factory.enclave.db, host="127.0.0.1", port=port,
                                         sender=SENDER)
    # dora has no e-mail address on record: failed at once, never retried.
    assert (report.sent, report.failed, report.retry_later) == (2, 1, 0)
    assert sorted(to for to, _ in inbox.messages) == [["claire@depp.example"],
                                                      ["david@depp.example"]]
    message = message_from_bytes(inbox.messages[0][1], policy=email_policy.default)
    assert message["From"] == SENDER
    assert message["Subject"].startswith("Nouvelle demande d'accès")
    assert "New access application" in message["Subject"]
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert "a été déposée" in body and "was submitted" in body
    assert "« Étude « à risque » & co < 10 »" in body  # plain text, as typed
    assert message.get_content_type() == "text/plain"
    states = _emails(factory)
    assert states["claire"][0] == states["david"][0] == "sent"
    assert states["dora"][:2] == ("failed", 1) and "no e-mail" in states["dora"][2]
    again = notifications.deliver_email(factory.enclave.db, host="127.0.0.1", port=port,
                                        sender=SENDER)
    assert (again.sent, again.failed) == (0, 0) and len(inbox.messages) == 2


def test_an_unreachable_server_leaves_mail_pending_then_failed(sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    _submitted(factory)
    port = _free_port()  # nothing listens there
    for attempt in (1, 2):
        report = notifications.deliver_email(factory.enclave.db, host="127.0.0.1", port=port,
                                             sender=SENDER, timeout=2, max_attempts=2)
        assert report.sent == 0
        assert _emails(factory)["claire"][:2] == (
            "pending" if attempt == 1 else "failed", attempt)
    assert "Error" in _emails(factory)["claire"][2] or "refused" in _emails(factory)["claire"][2]


def test_without_smtp_settings_nothing_is_sent_and_in_app_still_works(
        sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    _submitted(factory)
    report = notifications.deliver_email(factory.enclave.db, host=None, sender=SENDER)
    assert report == notifications.DeliveryReport(0, 0, 0, configured=False)
    assert {s for s, _, _ in _emails(factory).values()} == {"pending"}
    claire = factory.actor("claire")
    with factory.enclave.db.sessions() as session:
        assert notifications.unread_count(session, claire) == 1
