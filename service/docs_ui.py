"""/docs (Swagger UI) and /redoc from files in a package, so they work on a machine without internet.

FastAPI's defaults load their JavaScript and CSS from a CDN. `fastapi-offline` ships the same files; only
its static folder is used here, served read-only under /docs/static.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

STATIC = "/docs/static"
FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
         "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}  # fmt: skip


def install_offline_docs(app: FastAPI) -> None:
    folder = resources.files("fastapi_offline") / "static"
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(STATIC + "/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404, f"no file {name!r} under {STATIC}")
        body = (folder / name).read_bytes()
        return Response(body, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"})
