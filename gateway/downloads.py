"""GET /files/{id}: a credit memo file's bytes, with the same token, permission (read) and account
scope as the GraphQL API. A file outside the caller's accounts is 404, as if it did not exist."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import ids, scope
from gateway.auth import allows, authenticate, bearer
from gateway.context import ANONYMOUS_ADMIN
from gateway.files import file_store
from gateway.services import files


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code, "category": code}}]},
        status_code=status,
        headers=headers,
    )


async def download(request: Request) -> Response:
    db, settings = request.app.state.db, request.app.state.settings
    if settings.auth:
        principal = await authenticate(db, bearer(request.headers.get("authorization")))
    else:
        principal = ANONYMOUS_ADMIN
    if principal is None:
        return _error(401, "UNAUTHENTICATED", "a valid API token is required: Authorization: Bearer <token>")
    if not allows(principal, "read"):
        return _error(403, "PERMISSION_DENIED", f"token {principal.name!r} lacks the permission 'read'")
    raw = request.path_params["id"]
    decoded = ids.decode(raw)
    found = None
    if decoded is not None and decoded[0] == "CreditMemoFile":
        with scope.limited_to(principal.accounts):
            found = await files.read(db, file_store(settings), decoded[1])
    if found is None:
        return _error(404, "NOT_FOUND", f"file {raw} does not exist")
    row, data = found
    return Response(
        data,
        media_type=row.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{row.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )
