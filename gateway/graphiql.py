"""GraphiQL served entirely by the gateway: the page, and its pinned JavaScript and CSS under
``/static`` (vendored from npm by ``scripts/update-graphiql``; versions and SRI hashes in
``static/vendor/assets.json``). No request of the page leaves the gateway's origin; the
Content-Security-Policy makes the browser enforce it."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from string import Template
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"
PAGE_SCRIPT = "graphiql-page.js"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "graphiql.html"
# Everything from the page's own origin; GraphiQL styles elements inline and embeds its fonts.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
IMMUTABLE = "public, max-age=31536000, immutable"


def integrity(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def assets() -> list[dict[str, Any]]:
    """The vendored files in page order, each with ``file``, ``kind`` and ``integrity``."""
    return json.loads((STATIC_DIR / "vendor" / "assets.json").read_text())


def page_html() -> str:
    styles, scripts = [], []
    for asset in assets():
        href = html.escape(f"{STATIC_PATH}/vendor/{asset['file']}")
        sri = html.escape(asset["integrity"])
        if asset["kind"] == "style":
            styles.append(f'    <link rel="stylesheet" href="{href}" integrity="{sri}" />')
        else:
            scripts.append(f'    <script src="{href}" integrity="{sri}"></script>')
    own = (STATIC_DIR / PAGE_SCRIPT).read_bytes()
    # The file name is not versioned: the content hash in the URL keeps the immutable cache honest.
    version = hashlib.sha256(own).hexdigest()[:12]
    scripts.append(
        f'    <script src="{STATIC_PATH}/{PAGE_SCRIPT}?v={version}" integrity="{integrity(own)}"></script>'
    )
    return Template(TEMPLATE.read_text()).substitute(styles="\n".join(styles), scripts="\n".join(scripts))


class ImmutableStaticFiles(StaticFiles):
    """Static files whose URLs change with their content (versioned names or ``?v=``), so a
    browser may keep them for a year without asking again."""

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


def static_files() -> ImmutableStaticFiles:
    return ImmutableStaticFiles(directory=STATIC_DIR)
