"""The dashboard's web application: read-only GET endpoints over a trade run's folder.

``/`` is the page (rendered on the server, no script or style fetched from anywhere); ``/fragment`` is its
body, which the page's small script fetches every ``refresh`` seconds; ``/api/*`` are the sections as
JSON. There is no endpoint that changes anything: every route is GET (other methods get 405).

With a token, every request must carry it: ``Authorization: Bearer T``, the ``dashboard_token`` cookie,
or ``?token=T`` once (answered with the cookie and a redirect to the same page without the token).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from .data import RunFolder
from .page import render_body, render_page

COOKIE = "dashboard_token"
REFRESH_SECONDS = 30


def authorised(request: Request, token: str) -> bool:
    """Whether ``request`` carries ``token`` (compared in constant time) in the header, cookie or query."""
    header = request.headers.get("authorization", "")
    offered = [header[7:] if header.lower().startswith("bearer ") else "", request.cookies.get(COOKIE, ""),
               request.query_params.get("token", "")]
    return any(o and secrets.compare_digest(o.encode(), token.encode()) for o in offered)


def create_app(run: RunFolder, token: str | None = None, refresh: int = REFRESH_SECONDS) -> FastAPI:
    """The dashboard of ``run``; ``token`` (None: loopback use, no token) guards every request."""
    app = FastAPI(title="vnpy_rotation dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is not None and not authorised(request, token):
            return PlainTextResponse("401: this dashboard needs its token (Authorization: Bearer T or ?token=T)",
                                     status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if token is not None and "token" in request.query_params:
            # the token once in the address: keep it in a cookie, drop it from the address (and history)
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            target = request.url.path + ("?" + rest if rest else "")
            response = RedirectResponse(target, status_code=303) if request.url.path == "/" else await call_next(request)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        else:
            response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # nothing may be loaded from elsewhere; the page's own inline script and style only
        response.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'unsafe-inline' 'self'; "
                                                       "style-src 'unsafe-inline'; img-src 'self' data:")
        return response

    def section(name: str) -> Callable[[], JSONResponse]:
        def endpoint() -> JSONResponse:
            return JSONResponse(run.summary() if name == "summary" else run.section(name))
        endpoint.__name__ = f"api_{name}"
        return endpoint

    for name in ("summary", "run", "account", "kpis", "risk", "canary", "plan", "fills", "orders", "alerts"):
        app.add_api_route(f"/api/{name}", section(name), methods=["GET"])

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(render_page(run.summary(), refresh))

    @app.get("/fragment", response_class=HTMLResponse)
    def fragment() -> HTMLResponse:
        return HTMLResponse(render_body(run.summary()))

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"ok": True}

    return app
