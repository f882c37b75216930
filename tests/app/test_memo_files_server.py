"""End to end through a real `settlement-gateway serve` process: a multipart upload over TCP, a PDF
job run by the server's own worker, and both files downloaded back with the same token."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import orjson
import pypdf

from benchmarks.common import server
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f

UPLOAD = """mutation($id: ID!, $file: Upload!) { uploadCreditMemoFile(creditMemoId: $id, file: $file) {
  file { downloadUrl size } userErrors { code } } }"""
GENERATE = "mutation($ids: [ID!]!) { generateCreditMemoPdfs(input: {creditMemoIds: $ids}) { job { id } userErrors { code } } }"
PDF = "query($id: ID!) { creditMemo(id: $id) { pdf { status file { downloadUrl } } } }"


async def test_upload_pdf_and_download_through_a_server_process(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    memo = encode("CreditMemo", await f.credit_memo(db, await f.account(db), f.item("42.42"), post=True))
    env = {
        "GATEWAY_WORKERS": "1",
        "GATEWAY_FILES_DIR": str(tmp_path / "files"),
        "GATEWAY_JOB_POLL_SECONDS": "0.05",
    }
    async with (
        server(settings.database_url, **env) as base,
        httpx.AsyncClient(base_url=str(base), timeout=30) as client,
    ):
        client.headers["Authorization"] = f"Bearer {base.token}"
        operations = {"query": UPLOAD, "variables": {"id": memo, "file": None}}
        data = bytes(range(256)) * 40  # 10 KB, every byte value
        up = await client.post(
            "/graphql",
            data={"operations": orjson.dumps(operations).decode(), "map": '{"0": ["variables.file"]}'},
            files={"0": ("scan.png", data, "image/png")},
        )
        uploaded = up.json()["data"]["uploadCreditMemoFile"]
        assert uploaded["userErrors"] == [] and uploaded["file"]["size"] == len(data)
        assert (await client.get(uploaded["file"]["downloadUrl"])).content == data

        job = (await client.post("/graphql", json={"query": GENERATE, "variables": {"ids": [memo]}})).json()
        assert job["data"]["generateCreditMemoPdfs"]["userErrors"] == []
        state: dict[str, object] = {}
        for _ in range(400):  # the server's worker runs the job; wait for the memo's PDF to show it
            state = (await client.post("/graphql", json={"query": PDF, "variables": {"id": memo}})).json()
            if state["data"]["creditMemo"]["pdf"]["status"] == "GENERATED":  # type: ignore[index]
                break
            await asyncio.sleep(0.05)
        pdf = state["data"]["creditMemo"]["pdf"]  # type: ignore[index]
        assert pdf["status"] == "GENERATED"
        got = await client.get(pdf["file"]["downloadUrl"])
        assert got.headers["content-type"] == "application/pdf"
        text = pypdf.PdfReader(io.BytesIO(got.content)).pages[0].extract_text()
        assert "Credit memo CM00000001" in text and "Total 42.42 USD" in text
