"""Routes of the guests' web page: ``/`` (the hub's rooms), ``/r/{code}`` (one room) and the
page's files under ``/web/``. The page itself talks only to the hub's public API."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.hub.api.responses import ApiError
from gambiarra_desktop.web.pages import PAGE, SECURITY_HEADERS, StaticFile, load_files

WEB_FILES = web.AppKey("web_files", dict[str, StaticFile])

routes = web.RouteTableDef()


def _serve(request: web.Request, name: str) -> web.Response:
    file = request.app[WEB_FILES].get(name)
    if file is None:
        raise ApiError(404, "Not found")
    headers = {**SECURITY_HEADERS, "ETag": file.etag}
    if file.matches(request.headers.get("If-None-Match")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, content_type=file.content_type,
                        charset="utf-8", headers=headers)


@routes.get("/")
async def rooms_page(request: web.Request) -> web.Response:
    return _serve(request, PAGE)


@routes.get(r"/r/{code:[A-Za-z0-9]{1,32}}")
async def room_page(request: web.Request) -> web.Response:
    """The same page: its script reads the room code from the address and asks the API,
    which says whether the room exists (a missing room is shown as such, in the page)."""
    return _serve(request, PAGE)


@routes.get(r"/web/{name:[a-z]+\.(?:js|css|svg)}")
async def page_file(request: web.Request) -> web.Response:
    return _serve(request, request.match_info["name"])


def add_web_page(app: web.Application) -> None:
    app[WEB_FILES] = load_files()
    app.add_routes(routes)
