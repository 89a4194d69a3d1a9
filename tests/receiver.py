"""A local HTTP receiver for webhook deliveries (loopback only), optionally slow, optionally replying."""

import json
import time

from tests.helpers import QuietHandler, serve_locally, stop_serving


class Receiver:
    def __init__(self, delay: float = 0.0, reply: dict | None = None):
        self.received: list[dict] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                outer.received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                payload = json.dumps(reply or {}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server, root = serve_locally(Handler)
        self.url = root + "/hook"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self):
        stop_serving(self.server)


def wait_until(predicate, timeout: float = 5.0):
    """Poll `predicate` until it returns something truthy (returned) or the time runs out (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    return None
