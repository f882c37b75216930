"""generateCreditMemoPdfs as a job run by the ordinary workers; creditMemoPdfStatus and
CreditMemo.pdf; the PDF's text (pypdf) carries the memo's numbers."""

from __future__ import annotations

import io

import pypdf
from sqlalchemy import select

from gateway import jobs
from gateway import store as s
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.files import file_store
from gateway.ids import encode
from schema.build import build_schema
from tests import factories as f
from tests.conftest import GraphQLClient

GENERATE = """mutation($ids: [ID!]!) { generateCreditMemoPdfs(input: {creditMemoIds: $ids}) {
  id operation status progress { totalItems processedItems } creditMemo { number } } }"""
STATUS = """query($ids: [ID!]!) { creditMemoPdfStatus(ids: $ids) { status error creditMemo { number }
  job { status } file { name kind contentType size downloadUrl } } }"""
JOB = "subscription($id: ID!) { jobUpdated(id: $id) { status progress { processedItems totalItems } } }"


async def pdf_text(db: Database, settings: Settings, memo_pk: int) -> str:
    async with db.connect() as conn:
        state = (await conn.execute(select(s.pdf_t).where(s.pdf_t.c.credit_memo_id == memo_pk))).one()
        row = (await conn.execute(select(s.file_t).where(s.file_t.c.id == state.file_id))).one()
    data = await file_store(settings).get(row.storage_key)
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


async def applied_memo(db: Database, settings: Settings) -> tuple[int, int, int]:
    acct = await f.account(db, name="Acme Corp")
    inv = await f.invoice(db, acct, f.item("2000.00"))
    memo = await f.credit_memo(db, acct, f.item("1200.00", tax="34.50"), f.item("0.99"), post=True)
    await f.settle(db, settings, memo, [(inv, "1000.25")], rule="FIFO")
    return acct, inv, memo


async def test_a_pdf_job_renders_every_memo_and_the_text_has_its_numbers(
    db: Database, settings: Settings, gql: GraphQLClient
) -> None:
    _, _, memo = await applied_memo(db, settings)
    other = await f.credit_memo(
        db, await f.account(db, currency="JPY", name="Tokyo KK"), f.item("1500"), post=False
    )
    ids = [encode("CreditMemo", memo), encode("CreditMemo", other)]
    job = (await gql(GENERATE, ids=ids))["generateCreditMemoPdfs"]
    assert job["operation"] == "GENERATE_CREDIT_MEMO_PDFS"
    assert (job["status"], job["progress"]) == (
        "PENDING",
        {"totalItems": 2, "processedItems": 0},
    )
    pending = (await gql(STATUS, ids=ids))["creditMemoPdfStatus"]
    assert [p["status"] for p in pending] == ["PENDING", "PENDING"]

    assert await jobs.Worker(db, settings).run_once() is True

    done = (await gql(STATUS, ids=[*ids, encode("CreditMemo", 999)]))["creditMemoPdfStatus"]
    assert done[2] is None
    assert [(p["status"], p["job"]["status"], p["file"]["name"], p["file"]["kind"]) for p in done[:2]] == [
        ("GENERATED", "COMPLETED", "CM00000001.pdf", "PDF"),
        ("GENERATED", "COMPLETED", "CM00000002.pdf", "PDF"),
    ]
    text = await pdf_text(db, settings, memo)
    for expected in (
        "Credit memo CM00000001",
        "A00000001 - Acme Corp",
        "Status POSTED",
        "CHARGE",
        "1,200.00 USD",
        "34.50 USD",  # the tax item
        "0.99 USD",
        "INV00000001 1,000.25 USD",  # the part applied to the invoice
        "Unapplied 235.24 USD",  # the unapplied part, and the total line
        "APPLY 2026-03-02 1,000.25 USD",
        "Total 1,235.49 USD",
        "Tax 34.50 USD",
        "Applied 1,000.25 USD",
    ):
        assert expected in text, (expected, text)
    assert "Total 1,500 JPY" in await pdf_text(db, settings, other)  # no decimals in yen


async def test_unknown_memos_are_refused_before_any_job(db: Database, gql: GraphQLClient) -> None:
    memo = await f.credit_memo(db, await f.account(db))
    out = await gql.execute(GENERATE, ids=[encode("CreditMemo", memo), "CM404", encode("Invoice", 1)])
    assert out.data == {"generateCreditMemoPdfs": None}
    (error,) = out.errors or []
    assert (error.extensions["code"], error.extensions["field"]) == ("NOT_FOUND", ["creditMemoIds", "1"])
    assert [(e["code"], e["field"]) for e in error.extensions["userErrors"]] == [
        ("NOT_FOUND", ["creditMemoIds", "1"]),
        ("NOT_FOUND", ["creditMemoIds", "2"]),
    ]
    async with db.connect() as conn:
        assert (await conn.execute(select(s.job_t))).all() == []
    status = (await gql(STATUS, ids=[encode("CreditMemo", memo)]))["creditMemoPdfStatus"]
    assert status == [
        {"status": "NONE", "error": None, "creditMemo": {"number": "CM00000001"}, "job": None, "file": None}
    ]


async def test_job_updated_follows_a_pdf_job_to_completion(
    db: Database, settings: Settings, gql: GraphQLClient
) -> None:
    memos = [await f.credit_memo(db, await f.account(db)) for _ in range(3)]
    job = (await gql(GENERATE, ids=[encode("CreditMemo", m) for m in memos]))["generateCreditMemoPdfs"]
    context = Context(db=db, settings=settings, principal=ANONYMOUS_ADMIN)
    try:
        stream = await build_schema().subscribe(JOB, variable_values={"id": job["id"]}, context_value=context)
        first = await stream.__anext__()  # type: ignore[union-attr]
        assert first.data["jobUpdated"] == {
            "status": "PENDING",
            "progress": {"processedItems": 0, "totalItems": 3},
        }
        await jobs.Worker(db, settings).run_once()
        states = [r.data["jobUpdated"] async for r in stream]  # type: ignore[union-attr]
    finally:
        await context.close()
    assert states[-1] == {"status": "COMPLETED", "progress": {"processedItems": 3, "totalItems": 3}}


async def test_a_memo_whose_pdf_cannot_be_stored_fails_alone(
    db: Database, settings: Settings, gql: GraphQLClient, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store wants a directory")
    broken = settings.replace(files_dir=str(blocked))
    memo = encode("CreditMemo", await f.credit_memo(db, await f.account(db)))
    await gql(GENERATE, ids=[memo])
    assert await jobs.Worker(db, broken).run_once() is True
    (state,) = (await gql(STATUS, ids=[memo]))["creditMemoPdfStatus"]
    assert (state["status"], state["job"]["status"], state["file"]) == ("FAILED", "FAILED", None)
    assert state["error"] == "the PDF of credit memo 1 could not be generated: NotADirectoryError"
    async with db.connect() as conn:
        job = (await conn.execute(select(s.job_t))).one()
    assert '"field":["creditMemoIds","0"]' in job.errors


async def test_names_in_other_scripts_print_as_written(
    db: Database, settings: Settings, gql: GraphQLClient
) -> None:
    acct = await f.account(db, name="Zürich ООО Ωmega Łódź 東京")
    memo = await f.credit_memo(db, acct, f.item("10.00"))
    await gql(GENERATE, ids=[encode("CreditMemo", memo)])
    assert await jobs.Worker(db, settings).run_once() is True
    text = await pdf_text(db, settings, memo)
    # DejaVu Sans is embedded: Latin, Cyrillic and Greek as written; what it lacks (CJK) is visibly
    # replaced, never dropped.
    assert "A00000001 - Zürich ООО Ωmega Łódź \ufffd\ufffd" in text, text
