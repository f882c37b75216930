"""GraphiQL is served by the gateway itself: every script and stylesheet of the page comes from its
own origin, pinned, with an integrity hash that matches the bytes served and a year of caching."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx

from gateway import graphiql
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database

VENDOR = Path(graphiql.__file__).parent / "static" / "vendor"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def page(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/graphql", headers={"Accept": "text/html"}, auth=None)


async def test_the_page_loads_only_its_own_assets_each_with_a_matching_integrity(
    http: httpx.AsyncClient,
) -> None:
    r = await page(http)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    tags = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)" integrity="([^"]+)"', r.text)
    assert len(tags) == 7  # graphiql, explorer (css + js), react, react-dom, the page's own script
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", r.text)  # nothing from another host
    for url, integrity in tags:
        assert url.startswith("/static/")
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert sri(asset.content) == integrity, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_assets_json_pins_versions_and_hashes_of_the_vendored_files() -> None:
    listed = json.loads((VENDOR / "assets.json").read_text())
    assert {a["package"] for a in listed} == {"react", "react-dom", "graphiql", "@graphiql/plugin-explorer"}
    for asset in listed:
        assert asset["version"] in asset["file"]
        assert sri((VENDOR / asset["file"]).read_bytes()) == asset["integrity"]


async def test_the_bundles_are_served_gzipped(http: httpx.AsyncClient) -> None:
    name = next(a["file"] for a in graphiql.assets() if a["package"] == "graphiql" and a["kind"] == "script")
    async with http.stream("GET", f"/static/vendor/{name}", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip"
    assert len(raw) < (VENDOR / name).stat().st_size / 2


async def test_without_graphiql_neither_the_page_nor_the_assets_are_served(
    db: Database, settings: Settings, admin_token: str
) -> None:
    app = create_app(settings.replace(graphiql=False), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code in (401, 404)
        assert (await client.get("/static/graphiql-page.js")).status_code == 404


async def test_a_subscription_sent_by_plain_http_is_refused_clearly(http: httpx.AsyncClient) -> None:
    # GraphiQL does this when Run is pressed within 100 ms of an edit (it runs the previous document's
    # operation type): a clear error, not an internal one.
    r = await http.post("/graphql", json={"query": "subscription { settlementEvents { kind } }"})
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["extensions"].pop("requestId")
    assert error["extensions"] == {"code": "BAD_REQUEST", "category": "BAD_REQUEST"}
    assert "WebSocket" in error["message"]
    named = await http.post(
        "/graphql",
        json={
            "query": "query Q { limits { totalItems } } subscription S { settlementEvents { kind } }",
            "operationName": "Q",
        },
    )
    assert named.status_code == 200 and "data" in named.json()


def test_the_page_proposes_the_readme_first_query() -> None:
    script = (Path(graphiql.__file__).parent / "static" / graphiql.PAGE_SCRIPT).read_text()
    block = script[script.index("FIRST_QUERY = [") : script.index('].join("\\n")')]
    lines = [json.loads(line.strip().rstrip(",")) for line in block.splitlines()[1:] if line.strip()]
    readme = (Path(graphiql.__file__).parents[1] / "README.md").read_text()
    assert "\n".join(lines) == re.search(r"```graphql\n(.*?)```", readme, re.S).group(1)  # type: ignore[union-attr]
