"""A proxy in front of a server that drifts from its contract the way a vendor's silent change
does: another status for one operation, a field renamed, a header dropped. Loopback only."""

import json

import httpx

from tests.helpers import QuietHandler, serve_locally, stop_serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


def renamed(document, old: str, new: str):
    if isinstance(document, dict):
        return {(new if key == old else key): renamed(value, old, new) for key, value in document.items()}
    if isinstance(document, list):
        return [renamed(item, old, new) for item in document]
    return document


class DriftingProxy:
    """Forwards every request to `upstream` (a base URL). `status` maps "METHOD /path-suffix" to
    the status answered instead; `rename` = (old, new) renames that JSON key wherever it occurs;
    `drop_header` leaves that answer header out."""

    def __init__(self, upstream: str, *, status: dict[str, int] | None = None,
                 rename: tuple[str, str] | None = None, drop_header: str | None = None):
        self.upstream = upstream.rstrip("/")
        client = httpx.Client(timeout=30)
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
                answer = client.request(self.command, outer.upstream + self.path, content=body, headers=headers)
                content, code = answer.content, answer.status_code
                for key, new_status in (status or {}).items():
                    method, _, suffix = key.partition(" ")
                    if method == self.command and self.path.split("?")[0].endswith(suffix) and code < 300:
                        code = new_status
                if rename and answer.headers.get("content-type", "").startswith("application/json") and content:
                    content = json.dumps(renamed(answer.json(), *rename)).encode()
                self.send_response(code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != (drop_header or "").lower():
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward

        self.server, self.url = serve_locally(Handler)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop_serving(self.server)
