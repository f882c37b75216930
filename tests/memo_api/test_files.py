"""Files through the real app: a GraphQL multipart upload, the memo's files connection, and the
HTTP download with the same token and account scope."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import orjson

from gateway import auth
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f

UPLOAD = """
mutation($id: ID!, $file: Upload!) {
  uploadCreditMemoFile(creditMemoId: $id, file: $file) {
    file { id kind name contentType size sha256 createdBy downloadUrl }
    userErrors { code field message }
  }
}
"""
FILES = (
    "query($id: ID!) { creditMemo(id: $id) { files { totalCount nodes { name size contentType kind } } } }"
)


async def upload(
    http: httpx.AsyncClient, memo_id: str, name: str, data: bytes, content_type: str, **headers: str
) -> httpx.Response:
    """A request as the GraphQL multipart request spec describes it: operations, map, the file."""
    operations = {"query": UPLOAD, "variables": {"id": memo_id, "file": None}}
    return await http.post(
        "/graphql",
        data={
            "operations": orjson.dumps(operations).decode(),
            "map": orjson.dumps({"0": ["variables.file"]}).decode(),
        },
        files={"0": (name, data, content_type)},
        headers=headers,
    )


async def test_upload_then_download_round_trip(db: Database, http: httpx.AsyncClient) -> None:
    memo = encode("CreditMemo", await f.credit_memo(db, await f.account(db)))
    data = b"%PDF-1.4 receipt of the customer's return\n" * 10
    response = await upload(http, memo, "../../etc/return receipt.pdf", data, "application/pdf")
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["uploadCreditMemoFile"]
    assert payload["userErrors"] == []
    file = payload["file"]
    assert (file["kind"], file["name"], file["contentType"], file["size"], file["createdBy"]) == (
        "ATTACHMENT",
        "return receipt.pdf",
        "application/pdf",
        len(data),
        "test-admin",
    )
    assert file["sha256"] == hashlib.sha256(data).hexdigest()

    listed = await http.post("/graphql", json={"query": FILES, "variables": {"id": memo}})
    assert listed.json()["data"]["creditMemo"]["files"] == {
        "totalCount": 1,
        "nodes": [
            {
                "name": "return receipt.pdf",
                "size": len(data),
                "contentType": "application/pdf",
                "kind": "ATTACHMENT",
            }
        ],
    }

    got = await http.get(file["downloadUrl"])
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''return%20receipt.pdf"


async def test_download_needs_a_token_read_and_the_account(db: Database, http: httpx.AsyncClient) -> None:
    mine, theirs = await f.account(db), await f.account(db, name="Other")
    memo = encode("CreditMemo", await f.credit_memo(db, theirs))
    response = await upload(http, memo, "note.txt", b"hello", "text/plain")
    url = response.json()["data"]["uploadCreditMemoFile"]["file"]["downloadUrl"]

    assert (await http.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
    writer = await auth.create_token(db, name="writer", permissions=["document.manage"])
    denied = await http.get(url, headers={"Authorization": f"Bearer {writer}"})
    assert (denied.status_code, denied.json()["errors"][0]["extensions"]["code"]) == (
        403,
        "PERMISSION_DENIED",
    )
    scoped = await auth.create_token(
        db, name="portal", permissions=["read"], accounts=[encode("Account", mine)]
    )
    hidden = await http.get(url, headers={"Authorization": f"Bearer {scoped}"})
    assert (hidden.status_code, hidden.json()["errors"][0]["extensions"]["code"]) == (404, "NOT_FOUND")
    assert (await http.get("/files/" + encode("CreditMemo", 1))).status_code == 404
    reader = await auth.create_token(
        db, name="reader", permissions=["read"], accounts=[encode("Account", theirs)]
    )
    assert (await http.get(url, headers={"Authorization": f"Bearer {reader}"})).content == b"hello"


async def test_size_and_type_limits_and_scope_on_upload(
    db: Database, http: httpx.AsyncClient, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = await f.account(db), await f.account(db, name="Other")
    memo = encode("CreditMemo", await f.credit_memo(db, theirs))
    too_big = await upload(http, memo, "big.txt", b"x" * 1_001, "text/plain")
    assert [
        (e["code"], e["field"]) for e in too_big.json()["data"]["uploadCreditMemoFile"]["userErrors"]
    ] == [("FILE_TOO_LARGE", ["file"])]
    exe = await upload(http, memo, "run.exe", b"MZ", "application/x-msdownload")
    assert [(e["code"], e["field"]) for e in exe.json()["data"]["uploadCreditMemoFile"]["userErrors"]] == [
        ("UNSUPPORTED_CONTENT_TYPE", ["file"])
    ]
    scoped = await auth.create_token(
        db, name="clerk", permissions=["document.manage"], accounts=[encode("Account", mine)]
    )
    hidden = await upload(http, memo, "a.txt", b"a", "text/plain", Authorization=f"Bearer {scoped}")
    assert [(e["code"], e["field"]) for e in hidden.json()["data"]["uploadCreditMemoFile"]["userErrors"]] == [
        ("NOT_FOUND", ["creditMemoId"])
    ]
    # nothing refused left bytes behind
    assert not (tmp_path / "files").exists() or not any(p.is_file() for p in (tmp_path / "files").rglob("*"))


async def test_deleting_a_memo_deletes_its_files_pdf_and_emails(
    db: Database, http: httpx.AsyncClient, settings
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from gateway import jobs
    from gateway import store as s

    acct = await f.account(db)
    memo_pk, kept_pk = await f.credit_memo(db, acct, post=False), await f.credit_memo(db, acct, post=False)
    memo, kept = encode("CreditMemo", memo_pk), encode("CreditMemo", kept_pk)
    url = (await upload(http, memo, "a.txt", b"a", "text/plain")).json()["data"]["uploadCreditMemoFile"][
        "file"
    ]["downloadUrl"]
    run = "mutation($ids: [ID!]!) { generateCreditMemoPdfs(input: {creditMemoIds: $ids}) { id } }"
    await http.post("/graphql", json={"query": run, "variables": {"ids": [memo, kept]}})
    await jobs.Worker(db, settings).run_once()
    for mutation in ("cancelCreditMemo", "deleteCreditMemo"):
        out = await http.post(
            "/graphql",
            json={
                "query": f"mutation($id: ID!) {{ {mutation}(id: $id) {{ userErrors {{ code }} }} }}",
                "variables": {"id": memo},
            },
        )
        assert out.json()["data"][mutation]["userErrors"] == [], out.text
    assert (await http.get(url)).status_code == 404
    async with db.connect() as conn:
        files = (await conn.execute(select(s.file_t.c.credit_memo_id))).scalars().all()
        pdfs = (await conn.execute(select(s.pdf_t.c.credit_memo_id, s.pdf_t.c.status))).all()
        jobs_left = await conn.scalar(select(func.count()).select_from(s.job_t))
    assert (files, [tuple(p) for p in pdfs], jobs_left) == ([kept_pk], [(kept_pk, "GENERATED")], 0)
    # the deleted memo's upload and PDF left the store; the other memo's PDF is all that remains
    assert sum(1 for p in Path(settings.files_dir).rglob("*") if p.is_file()) == 1


async def test_a_file_sent_as_json_is_refused_with_a_user_error(
    db: Database, http: httpx.AsyncClient
) -> None:
    memo = encode("CreditMemo", await f.credit_memo(db, await f.account(db)))
    out = await http.post("/graphql", json={"query": UPLOAD, "variables": {"id": memo, "file": "not a file"}})
    assert [(e["code"], e["field"]) for e in out.json()["data"]["uploadCreditMemoFile"]["userErrors"]] == [
        ("INVALID_VALUE", ["file"])
    ]
