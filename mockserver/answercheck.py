"""`serve --check-answers`: every answer the mock gives to an operation is checked against that
operation's documented responses, as `mockserver proxy` checks the real vendor's (contract.Checker):
status (or its range, or `default`), content type, required headers, body schema with OpenAPI
3.0's `nullable`. A drift is logged (a warning of logger `mockserver.answers`, naming the
operation and what differs) and named in the answer's `X-Mockserver-Answer-Drift` header.

Not checked: answers given while an admin fault is set for the vendor (a fault is off the
contract on purpose, and which answers it takes is the fault's draw); the mock's own refusals
(`GUARDS`: its limits, and its state file or shared state failing), unless the operation
documents that status; and answers no operation gives (unknown paths, 405, the trailing-slash
redirect, Swagger UI). Forced answers (`Prefer`) are checked: they are the spec's own examples.

With the check on, an answer is held until its last byte (its drift header goes out first): a
streamed answer reaches the client whole, at its end.
"""

import logging
import os

from starlette.datastructures import Headers
from starlette.types import Message, Scope, Send

from mockserver.contract import Checker, drift_summary
from mockserver.exchange import Exchange
from mockserver.faults import FaultBook
from mockserver.routing import Router
from mockserver.vendor import Vendor

HEADER = "X-Mockserver-Answer-Drift"
VARIABLE = "MOCKSERVER_CHECK_ANSWERS"  # `serve --check-answers`, and MockServer's default (the test suite sets it)
MARK = "answer drift"  # how a drift's log line begins
# A body too slow, a query string too long (README, Security); a change that could not be saved,
# shared state out of reach, a workspace locked by a newer schema.
GUARDS = (408, 414, 503)

logger = logging.getLogger("mockserver.answers")
logger.setLevel(logging.WARNING)  # whatever --log-level says: a drift is never silent


def wanted(option: bool | None) -> bool:
    """The option as given; unset (None), as MOCKSERVER_CHECK_ANSWERS says (1, true, yes, on)."""
    if option is not None:
        return option
    return os.environ.get(VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


class AnswerCheck:
    """Each vendor's spec as the server's own answers are checked against it."""

    def __init__(self, vendors: list[Vendor], routers: dict[str, Router], faults: FaultBook) -> None:
        self.checkers = {vendor.name: Checker(vendor, routers[vendor.name]) for vendor in vendors}
        self.faults = faults

    def faulted(self, vendor: Vendor) -> bool:
        return any(fault.vendor == vendor.name for fault in self.faults.faults.values())

    def watching(self, ex: Exchange, send: Send) -> Send:
        """The ASGI send that holds the answer until it is whole, checks it, and sends it on with
        the drift header when it drifted."""
        faulted = ex.vendor is not None and self.faulted(ex.vendor)  # before a fault of count 1 is spent
        start: Message | None = None
        chunks: list[bytes] = []

        async def checking_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if ex.vendor is None or ex.operation is None or faulted or self.faulted(ex.vendor) or (
                        message["status"] in GUARDS and str(message["status"]) not in ex.operation.responses):
                    return await send(message)  # not an operation's answer, a fault's or a guard's: passed on
                start = message
                return None
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            body = b"".join(chunks)
            await send(self.checked(ex, start, body))
            return await send({"type": "http.response.body", "body": body})

        return checking_send

    def checked(self, ex: Exchange, start: Message, body: bytes) -> Message:
        """The start message, with the drift header added when the answer drifted (and logged)."""
        vendor, operation = ex.routed
        _, problems = self.checkers[vendor.name].response(operation.id, start["status"], Headers(raw=start["headers"]),
                                                          body)
        if not problems:
            return start
        scope: Scope = ex.scope
        logger.warning("%s: %s %s %s (%s) answered %s: %s", MARK, vendor.name, scope["method"], scope["path"],
                       operation.id, start["status"], "; ".join(problem.line() for problem in problems))
        return {**start, "headers": [*start["headers"], (HEADER.lower().encode(), drift_summary(problems).encode())]}
