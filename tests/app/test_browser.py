"""A real browser (Debian's chromium driven by Playwright) against a real server, with the network
to anything but 127.0.0.1 blocked: GraphiQL asks for the token, runs the README's first query and a
live subscription; a page on another origin calls the API through CORS. Screenshots of every step
go to the test's tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from benchmarks.common import free_port, server
from gateway.config import Settings
from gateway.db import Database
from tests.app.real_clients import CHROMIUM, CHROMIUM_ARGS, ROOT, need_chromium
from tests.app.test_subscriptions import APPLY, documents, post

README_QUERY = re.search(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)  # type: ignore[union-attr]
LATEST = "query($a: ID) { settlementEvents(last: 1, accountId: $a) { pageInfo { endCursor } } }"


class Browser:
    """One page whose requests may only go to 127.0.0.1; every other request is aborted and kept."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots = page, shots
        self.requests: list[str] = []
        self.bodies: list[str] = []
        self.blocked: list[str] = []
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda e: self.problems.append(str(e)))

    async def route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(f"{route.request.method} {url}")
        self.bodies.append(route.request.post_data or "")
        if urlparse(url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort()

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"))

    async def editor_value(self, selector: str) -> str:
        return await self.page.evaluate(
            f"document.querySelector('{selector} .CodeMirror').CodeMirror.getValue()"
        )  # type: ignore[no-any-return]

    async def wait_for_result(self, predicate: Any, timeout: float = 30) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        text = ""
        while loop.time() < deadline:
            text = await self.editor_value(".result-window")
            if predicate(text):
                return text
            await asyncio.sleep(0.1)
        raise AssertionError(f"the result pane never showed it: {text[:500]}")

    async def run(self, query: str) -> None:
        """Type a query into GraphiQL's editor as a user pastes it, and press the run button."""
        await self.page.click(".graphiql-query-editor .CodeMirror")
        await self.page.keyboard.press("Control+A")
        await self.page.keyboard.insert_text(query)
        assert (await self.editor_value(".graphiql-query-editor")).strip() == query.strip()
        # GraphiQL parses the edited document 100 ms after the last change (and then saves it): run
        # before that and it would run with the previous document's operation type.
        await self.page.wait_for_function(
            "text => localStorage.getItem('graphiql:query') === text",
            arg=await self.editor_value(".graphiql-query-editor"),
        )
        await self.page.click(".graphiql-execute-button")


@contextlib.asynccontextmanager
async def browser(shots: Path) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            b = Browser(page, shots)
            await context.route("**/*", b.route)
            yield b
        finally:
            await chromium.close()


async def test_graphiql_asks_for_the_token_runs_the_readme_query_and_a_subscription(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    need_chromium()
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        httpx.AsyncClient(timeout=30) as client,
        browser(tmp_path) as b,
    ):
        await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount="1.00")
        await b.page.goto(f"{base}/graphql")
        await b.page.wait_for_selector("#waiting")
        await b.shot("1-asks-for-the-token")
        assert not [body for body in b.bodies if "__schema" in body]  # no schema fetch without a token

        await b.page.fill("#token", "not-a-token")
        await b.page.click("#use-token")
        await b.page.wait_for_selector("#token-status.refused")
        assert await b.page.locator(".graphiql-container").count() == 0
        await b.shot("2-a-wrong-token-is-refused")

        await b.page.fill("#token", base.token)
        async with b.page.expect_response(
            lambda r: r.request.method == "POST" and "__schema" in (r.request.post_data or "")
        ) as introspection:
            await b.page.click("#use-token")  # the schema loads as soon as there is a token
        assert (await introspection.value).status == 200
        await b.page.click('[aria-label="Show Documentation Explorer"]')
        await b.page.wait_for_selector("text=Root Types")
        await b.shot("3-token-entered-schema-loaded")

        await b.run(README_QUERY)
        result = json.loads(await b.wait_for_result(lambda text: '"data"' in text))
        memos = result["data"]["creditMemos"]
        assert memos["totalCount"] == 1
        assert memos["nodes"][0]["number"] == "CM00000001" and memos["nodes"][0]["amount"] == "10.00"
        assert memos["nodes"][0]["unappliedAmount"] == "9.00"
        assert memos["nodes"][0]["parts"]["nodes"] == [
            {"amount": "9.00", "target": None},  # the unapplied part
            {
                "amount": "1.00",
                "target": {"__typename": "Invoice", "number": "INV00000001", "balance": "99.00"},
            },
        ]
        await b.shot("4-readme-query")

        cursor = (await post(client, base, LATEST, a=ids["a"]))["settlementEvents"]["pageInfo"]["endCursor"]
        await b.run(
            f'subscription {{ settlementEvents(accountId: "{ids["a"]}", after: "{cursor}") '
            "{ kind account { number } application { amount } } }"
        )
        await b.shot("5-subscribed")
        await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount="7.00")
        live = json.loads(await b.wait_for_result(lambda text: "7.00" in text))
        assert live["data"]["settlementEvents"] == {
            "kind": "APPLIED",
            "account": {"number": "A00000001"},
            "application": {"amount": "7.00"},
        }
        await b.shot("6-event-arrived")
    assert b.blocked == []
    assert [p for p in b.problems if "status of 401" not in p] == []  # the wrong token's answer
    assert all(urlparse(r.split()[1]).hostname == "127.0.0.1" for r in b.requests)


async def test_graphiql_needs_no_token_from_a_gateway_without_auth(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    need_chromium()
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0", GATEWAY_AUTH="false") as base,
        browser(tmp_path) as b,
    ):
        async with b.page.expect_response(
            lambda r: "__schema" in (r.request.post_data or "")
        ) as introspection:
            await b.page.goto(f"{base}/graphql")
        assert (await introspection.value).status == 200
        await b.page.wait_for_selector("text=this gateway needs no token")
        await b.shot("no-auth")
    assert b.blocked == [] and b.problems == []


class _Page(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """A second origin on loopback that serves ``directory``; stopped on exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(_Page, directory=str(directory)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


APP_PAGE = """<!doctype html><html><body><h1>A web app on another origin</h1><pre id="out">calling</pre>
<script>
const params = new URLSearchParams(location.search);
async function call(key) {
  const response = await fetch(params.get("api"), {
    method: "POST",
    credentials: "include",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + params.get("token"),
              "Idempotency-Key": key},
    body: JSON.stringify({query: "{ accounts { totalCount } }"}),
  });
  return {status: response.status, retryAfter: response.headers.get("Retry-After"),
          body: await response.json()};
}
(async () => {
  let results;
  try { results = [await call("k1"), await call("k2")]; }
  catch (error) { results = "refused: " + error; }
  document.getElementById("out").textContent = JSON.stringify(results);
  document.body.dataset.done = "yes";
})();
</script></body></html>"""


@pytest.mark.parametrize("allowed", [True, False])
async def test_a_web_app_on_another_origin_calls_the_api_through_cors(
    db: Database, settings: Settings, tmp_path: Path, allowed: bool
) -> None:
    need_chromium()
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.html").write_text(APP_PAGE)
    with static_site(site) as origin:
        async with (
            server(
                settings.database_url,
                GATEWAY_WORKERS="0",
                GATEWAY_CORS_ORIGINS=origin if allowed else "http://127.0.0.1:1",
                GATEWAY_RATE_LIMIT_BURST="1",
                GATEWAY_RATE_LIMIT_PER_SECOND="0.01",
            ) as base,
            browser(tmp_path) as b,
        ):
            await b.page.goto(f"{origin}/app.html?api={base}/graphql&token={base.token}")
            await b.page.wait_for_selector("body[data-done=yes]", timeout=30_000)
            await b.shot("cors-allowed" if allowed else "cors-refused")
            out = await b.page.text_content("#out")
    assert b.blocked == []
    if not allowed:
        assert out is not None and out.startswith('"refused: TypeError: Failed to fetch')
        assert any("CORS policy" in p for p in b.problems)
        return
    first, second = json.loads(out or "")
    assert (first["status"], first["retryAfter"]) == (200, None)
    assert first["body"]["data"] == {"accounts": {"totalCount": 0}}
    assert second["status"] == 429 and int(second["retryAfter"]) >= 1  # Retry-After is exposed
    assert second["body"]["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert [p for p in b.problems if "status of 429" not in p] == []  # the browser logs the 429 itself
