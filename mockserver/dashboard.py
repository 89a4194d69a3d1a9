"""The dashboard at /__admin/ui: pages to look at (and change, through the admin API) tenants, the
request journal, each tenant's vendor state, webhook deliveries, faults and clocks.

The server renders each page's frame (its part of `dashboard/*.html` inside the layout here); the
page's data comes from the admin API, fetched by `dashboard/dashboard.js` with the tab's admin
token (kept in the tab's sessionStorage), so the dashboard has no way of its own to read or
change anything. The frames hold no data: with an admin token they are served without one (a
browser's navigation cannot send it); without a token the admin API's rules apply to them too
(loopback clients only, no other site's pages). Everything shown is set as text (`textContent`),
never parsed as HTML, and a Content-Security-Policy lets only the dashboard's own script run.
"""

from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PREFIX = "/__admin/ui"
# (path under PREFIX, file of its frame, title): the navigation's order.
PAGES = (
    ("", "tenants", "Tenants"),
    ("/requests", "requests", "Request log"),
    ("/state", "state", "Tenant state"),
    ("/webhooks", "webhooks", "Webhooks"),
    ("/faults", "faults", "Faults"),
    ("/clock", "clock", "Clocks"),
    ("/chart", "chart", "Chart"),
)
STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
HEADERS = {
    # Only the dashboard's own script and style; fetches to this server only; never in a frame (its
    # buttons reset and delete); the favicon is an empty data: URL (no request, no 404 logged).
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_page(path: str) -> bool:
    """Whether a path is one of the dashboard's pages or files (they hold no data), or `/`."""
    return path == "/" or path == PREFIX or path.startswith(PREFIX + "/")


def _file(name: str) -> str:
    return resources.files("mockserver").joinpath("dashboard", name).read_text(encoding="utf-8")


def _layout(page: str, title: str, body: str) -> str:
    links = "".join(f'<a href="{PREFIX}{path}"{" aria-current=page" if name == page else ""}>{text}</a>'
                    for path, name, text in PAGES)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · mockserver</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{PREFIX}/static/dashboard.css">
<script src="{PREFIX}/static/dashboard.js" defer></script>
</head>
<body data-page="{page}">
<header>
<a class="brand" href="{PREFIX}">mockserver</a>
<nav>{links}</nav>
<form id="token-form" class="token" autocomplete="off">
<label>admin token <input id="token" type="password" placeholder="(none)" size="14"></label>
<button type="submit">Use</button>
</form>
</header>
<p id="notice" role="status" hidden></p>
<main>
{body}
</main>
</body>
</html>
"""


def _page(page: str, title: str) -> Callable[[Request], Awaitable[Response]]:
    html = _layout(page, title, _file(f"{page}.html"))

    async def serve(request: Request) -> Response:
        return Response(html, media_type="text/html; charset=utf-8", headers=HEADERS)

    return serve


ROOT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mockserver</title><link rel="icon" href="data:,"></head>
<body>
<h1>mockserver</h1>
<p><a href="/__admin/ui">Dashboard</a>: tenants, the request log, each tenant's state, webhooks, faults, clocks.</p>
<p>The admin API is under <code>/__admin</code>; each vendor's Swagger UI is at its base path's <code>/ui/</code>
(<a href="/__admin/vendors">/__admin/vendors</a> lists them).</p>
</body>
</html>
"""


async def root(request: Request) -> Response:
    """`/`: a link to the dashboard."""
    return Response(ROOT, media_type="text/html; charset=utf-8", headers=HEADERS)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise HTTPException(404, f"no file {name!r}")
    return Response(_file(name), media_type=STATIC[name], headers=HEADERS)


def routes() -> list[Route]:
    """The dashboard's routes, for the admin API's app (the frames read once, here)."""
    return [Route("/", root, methods=["GET"]), Route(f"{PREFIX}/static/{{name}}", static, methods=["GET"]),
            *(Route(PREFIX + path, _page(page, title), methods=["GET"]) for path, page, title in PAGES)]
