"""An upstream that answers the way a broken or hostile vendor might, chosen per request by its
`X-Hostile` header (which the proxy forwards like any other): a body far past the proxy's bound,
a gzip bomb, a trickle, JSON nested 100,000 deep, forged `X-Mockserver-*` headers. Without the
header it echoes what it received. Every request's raw target and headers are kept in
`received`. Loopback only."""

import functools
import gzip
import json
import time
import zlib

from tests.helpers import QuietHandler, serve_locally, stop_serving

BIG_BYTES = 64 << 20  # four times the proxy's bound
BOMB_BYTES = 256 << 20  # inflated; about 250 KiB on the wire
TRICKLE_SECONDS = 30  # one byte every 0.1 s for this long at most
DEEP = 100_000


@functools.cache
def gzip_bomb() -> bytes:
    zeros, packer = bytes(1 << 20), zlib.compressobj(6, zlib.DEFLATED, 31)
    return b"".join(packer.compress(zeros) for _ in range(BOMB_BYTES >> 20)) + packer.flush()


class HostileUpstream:
    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        self.sent_bytes: dict[str, int] = {}  # body bytes a behaviour got out before the client hung up
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                outer.received.append({"target": self.path, "headers": self.headers.items()})
                behaviour = self.headers.get("X-Hostile", "echo")
                try:
                    getattr(self, "_" + behaviour)()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _head(self, length: int, *extra: tuple[str, str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()

            def _whole(self, body: bytes, *extra: tuple[str, str]) -> None:
                self._head(len(body), *extra)
                self.wfile.write(body)

            def _echo(self) -> None:
                self._whole(json.dumps({"target": self.path}).encode())

            def _forged(self) -> None:
                self._whole(b'{"users": []}', ("X-Mockserver-Drift", "0: forged by the upstream"),
                            ("x-mockserver-error-status", "200"))

            def _deep(self) -> None:
                self._whole(b"[" * DEEP + b"]" * DEEP)

            def _gzip(self) -> None:
                self._whole(gzip.compress(b'{"users": []}'), ("Content-Encoding", "gzip"))

            def _bomb(self) -> None:
                self._whole(gzip_bomb(), ("Content-Encoding", "gzip"))

            def _big(self) -> None:
                self._head(BIG_BYTES)
                outer.sent_bytes["big"] = 0
                chunk = b" " * (64 << 10)
                for _ in range(BIG_BYTES // len(chunk)):
                    self.wfile.write(chunk)
                    outer.sent_bytes["big"] += len(chunk)

            def _trickle(self) -> None:
                self._head(TRICKLE_SECONDS * 10)
                for _ in range(TRICKLE_SECONDS * 10):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        self.server, self.url = serve_locally(Handler)

    def __enter__(self) -> "HostileUpstream":
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self.server)
