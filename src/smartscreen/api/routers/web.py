"""The operator web page: static HTML/CSS/JS shipped as package data (no data in it; it logs in by API)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Response, status

router = APIRouter(tags=["web"], include_in_schema=False)

_FILES = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}


def _read(name: str) -> bytes:
    return resources.files("smartscreen.api").joinpath("web", name).read_bytes()


@router.get("/")
def index() -> Response:
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    """Only the named files of the page: no path from a request reaches any other file."""
    media = _FILES.get(name)
    if media is None or name == "index.html":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return Response(_read(name), media_type=f"{media}; charset=utf-8", headers={"Cache-Control": "no-cache"})
