"""emailCreditMemo as a job, against a real SMTP server (aiosmtpd) in the test process on 127.0.0.1:
the message, its recipients and the attached PDF; the outcome recorded on the memo; idempotency."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from typing import Any

import pypdf
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from gateway import jobs
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from gateway.services import documents as svc
from tests import factories as f
from tests.conftest import GraphQLClient

EMAIL = """mutation($input: EmailCreditMemoInput!) { emailCreditMemo(input: $input) {
  job { id operation status } userErrors { code field } } }"""
EMAILS = """query($id: ID!) { creditMemo(id: $id) { emails { recipients status error createdBy sentAt job { status } } } }"""


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="gateway-test"), "127.0.0.1", 0
    )
    try:
        yield inbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def mail_settings(settings: Settings, smtp: tuple[Inbox, int]) -> Settings:
    return settings.replace(smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_from="billing@example.com")


async def memo_with_bill_to(db: Database) -> int:
    acct = await svc.create_account(db, name="Acme Corp", currency="EUR", bill_to_email="ap@acme.example")
    return await f.credit_memo(db, acct, f.item("1234.56", tax="19.00"), post=True)


async def test_the_pdf_goes_to_the_bill_to_contact(
    db: Database, mail_settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    gql = GraphQLClient(db, mail_settings)
    memo = encode("CreditMemo", await memo_with_bill_to(db))
    out = (await gql(EMAIL, input={"creditMemoId": memo}))["emailCreditMemo"]
    assert out["userErrors"] == [] and out["job"]["operation"] == "EMAIL_CREDIT_MEMO"
    assert (await gql(EMAILS, id=memo))["creditMemo"]["emails"][0]["status"] == "PENDING"

    assert await jobs.Worker(db, mail_settings).run_once() is True

    (envelope,) = inbox.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("billing@example.com", ["ap@acme.example"])
    msg: Any = message_from_bytes(envelope.original_content or b"", policy=policy.default)
    assert (msg["Subject"], msg["To"], msg["From"]) == (
        "Credit memo CM00000001",
        "ap@acme.example",
        "billing@example.com",
    )
    (attachment,) = list(msg.iter_attachments())
    assert (attachment.get_content_type(), attachment.get_filename()) == ("application/pdf", "CM00000001.pdf")
    text = pypdf.PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    assert "Credit memo CM00000001" in text and "Total 1,253.56 EUR" in text

    (email,) = (await gql(EMAILS, id=memo))["creditMemo"]["emails"]
    assert (email["recipients"], email["status"], email["error"], email["job"]["status"]) == (
        ["ap@acme.example"],
        "SENT",
        None,
        "COMPLETED",
    )
    assert email["sentAt"] is not None


async def test_given_addresses_and_an_idempotency_key(
    db: Database, mail_settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    gql = GraphQLClient(db, mail_settings)
    memo = encode("CreditMemo", await memo_with_bill_to(db))
    ask = {
        "creditMemoId": memo,
        "to": ["a@x.example", "b@y.example", "a@x.example"],
        "idempotencyKey": "mail-1",
    }
    first = (await gql(EMAIL, input=ask))["emailCreditMemo"]["job"]["id"]
    again = (await gql(EMAIL, input=ask))["emailCreditMemo"]["job"]["id"]
    assert again == first  # the same job: one email
    await jobs.Worker(db, mail_settings).run_once()
    assert await jobs.Worker(db, mail_settings).run_once() is False
    assert [e.rcpt_tos for e in inbox.envelopes] == [["a@x.example", "b@y.example"]]
    assert (await gql(EMAIL, input=ask))["emailCreditMemo"]["job"]["id"] == first  # still, once done
    changed = (await gql(EMAIL, input={**ask, "to": ["c@z.example"]}))["emailCreditMemo"]
    assert changed["userErrors"] == [{"code": "IDEMPOTENCY_KEY_REUSED", "field": ["idempotencyKey"]}]


async def test_bad_addresses_no_bill_to_and_drafts_are_refused(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    draft = encode("CreditMemo", await f.credit_memo(db, acct, post=False))
    out = (await gql(EMAIL, input={"creditMemoId": draft, "to": ["a@b.example"]}))["emailCreditMemo"]
    assert out == {"job": None, "userErrors": [{"code": "INVALID_STATUS", "field": ["creditMemoId"]}]}
    memo = encode("CreditMemo", await f.credit_memo(db, acct, post=True))
    out = (await gql(EMAIL, input={"creditMemoId": memo}))["emailCreditMemo"]
    assert out == {"job": None, "userErrors": [{"code": "INVALID_VALUE", "field": ["to"]}]}
    out = await gql(EMAIL, input={"creditMemoId": memo, "to": ["ok@x.example", "not an address", "x@y"]})
    assert out["emailCreditMemo"]["userErrors"] == [
        {"code": "INVALID_VALUE", "field": ["to", "1"]},
        {"code": "INVALID_VALUE", "field": ["to", "2"]},
    ]


async def test_an_unreachable_server_is_recorded_as_failed(db: Database, settings: Settings) -> None:
    closed = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    down = settings.replace(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=5.0)
    gql = GraphQLClient(db, down)
    memo = encode("CreditMemo", await memo_with_bill_to(db))
    await gql(EMAIL, input={"creditMemoId": memo})
    await jobs.Worker(db, down).run_once()
    (email,) = (await gql(EMAILS, id=memo))["creditMemo"]["emails"]
    assert (email["status"], email["job"]["status"], email["sentAt"]) == ("FAILED", "FAILED", None)
    assert email["error"].startswith("the email could not be sent")
    async with db.connect() as conn:
        job = (await conn.execute(select(s.job_t))).one()
    assert '"code":"EMAIL_NOT_SENT"' in job.errors
