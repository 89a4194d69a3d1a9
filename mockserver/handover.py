"""Connections handed between the workers of one `serve --workers N`, so that each tenant is
served by one worker (its home: the tenant's number modulo N) and its lease never moves.

The workers share one listening socket, and the kernel gives each connection to any of them.
When a request arrives on a connection between requests (nothing of it parsed yet, no answer
still being written), its head is read here: the vendor by its path, the tenant by the
credentials its spec's security schemes name. If the tenant's home is another worker, the
connection itself goes there, with the bytes read so far, over a Unix socket
(SCM_RIGHTS): the home worker parses and answers them as if it had accepted the connection, and
the connection stays with it. A pinned suite's connections each move at most once; a connection
visiting every tenant moves whenever the next tenant's home is elsewhere (a file descriptor
sent, a transport made: far cheaper than moving a tenant's lease and records).

A request that cannot be read here (headers split over reads, a body chunk larger than
MAX_HANDED, an unknown credential) or whose home does not answer (not started, restarting) is
served where it arrived, through the lease (`shared.SharedTurns`): handing over is only ever a
shortcut. Each worker's inbox is an abstract Unix seqpacket socket named after the server and its
index, taken by the first worker to bind it, released by the kernel when that worker dies; the
other workers link to it when they first hand it a connection, and a link is kept only from a
process of the same user (SO_PEERCRED).
"""

import array
import asyncio
import logging
import os
import socket
import struct
from functools import cached_property
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from mockserver.gateway import named_tenant
from mockserver.protocol import HeadDeadlineProtocol
from mockserver.state import ServerState

logger = logging.getLogger("mockserver")

MAX_HANDED = 65536  # bytes handed with a connection at most (a longer first read is served where it arrived)
CREDENTIALS = struct.calcsize("3i")  # SO_PEERCRED: pid, uid, gid


class Fields(dict[str, str]):
    """Header fields by lower-case name, looked up in any case (as Starlette's Headers)."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Head:
    """A request's head as read from its first bytes: what `presented_credential` reads."""

    def __init__(self, headers: Fields, query: str) -> None:
        self.headers = headers
        self._query = query

    @cached_property
    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self._query, keep_blank_values=True))

    @cached_property
    def cookies(self) -> dict[str, str]:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("cookie", ""))
        except Exception:  # a malformed cookie header: no cookies, as far as routing goes
            return {}
        return {name: morsel.value for name, morsel in cookie.items()}


class Handover:
    """One worker's end: where its connections' requests belong, its inbox, its links to the
    other workers' inboxes."""

    def __init__(self, state: ServerState, server: str, workers: int) -> None:
        self.state = state
        self.server = server  # names this server's inboxes (one `serve`)
        self.workers = workers
        self.index: int | None = None  # this worker's inbox, once bound
        self.protocol: tuple[Any, ...] | None = None  # uvicorn's arguments for a new connection's protocol
        self.inbox: socket.socket | None = None
        self.links: dict[int, socket.socket] = {}  # index -> a connection to that worker's inbox
        self.senders: set[socket.socket] = set()  # other workers' connections to this inbox
        self.loop: asyncio.AbstractEventLoop | None = None
        self.adopting: set[asyncio.Task[Any]] = set()

    def address(self, index: int) -> bytes:
        return f"\0mockserver-{self.server}-{index}".encode()

    def start(self) -> None:
        """Take an inbox as the worker starts: adopted connections get protocols made with the
        arguments uvicorn's server gives its own, found on the task that runs it (uvicorn offers
        no other way in). Failing that, the inbox is taken at the first connection accepted here
        (`HandingProtocol`): until then, connections for this worker stay where they are."""
        for task in asyncio.all_tasks():
            frame = getattr(task.get_coro(), "cr_frame", None)
            server = frame.f_locals.get("self") if frame is not None else None
            if isinstance(server, uvicorn.Server) and getattr(server, "lifespan", None) is not None:
                self.open((server.config, server.server_state, server.lifespan.state), asyncio.get_running_loop())
                return

    def open(self, protocol: tuple[Any, ...], loop: asyncio.AbstractEventLoop) -> None:
        """Take a free inbox; `protocol`: the arguments for an adopted connection's protocol."""
        if self.protocol is not None:
            return
        self.protocol, self.loop = protocol, loop
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for index in range(self.workers):
            try:
                inbox.bind(self.address(index))
            except OSError:
                continue
            inbox.listen(self.workers * 2)
            inbox.setblocking(False)
            self.inbox, self.index = inbox, index
            loop.add_reader(inbox.fileno(), self._accept)
            return
        inbox.close()
        logger.warning("no free handover inbox among %d workers: this worker keeps its connections", self.workers)

    # --- sending ----------------------------------------------------------------------------------

    def home(self, data: bytes) -> int | None:
        """The worker index of the tenant this request's head names, if it can be told."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = data[:end].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")
        if len(target) != 3:
            return None
        path, _, query = target[1].partition("?")
        vendor = self.state.vendor_for(path)
        if vendor is None:
            return None
        headers = Fields()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        tenant = named_tenant(self.state.store, vendor, Head(headers, query))
        return None if tenant is None else tenant.number % self.workers

    def hand(self, connection: Any, data: bytes, home: int | None) -> bool:
        """Send the connection, with the bytes read from it, to `home`; False to serve it here."""
        if home is None or home == self.index or len(data) > MAX_HANDED:
            return False
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [connection.fileno()]))]
        for _ in range(2):  # a link to a worker since restarted is made again, once
            link = self.links.get(home)
            if link is None:
                link = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                link.setblocking(False)
                try:
                    link.connect(self.address(home))
                except OSError:  # not there (yet, or any more), or busy
                    link.close()
                    return False
                self.links[home] = link
            try:
                link.sendmsg([data], rights)
            except (BlockingIOError, InterruptedError):  # its inbox is full: served here
                return False
            except OSError:  # gone: linked again once (it may have been restarted)
                self.links.pop(home).close()
                continue
            return True
        return False

    # --- receiving --------------------------------------------------------------------------------

    def _accept(self) -> None:
        """A link from another worker: kept if it runs as this user (SO_PEERCRED)."""
        assert self.inbox is not None and self.loop is not None
        while True:
            try:
                link, _ = self.inbox.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("handover inbox: %s", exc)
                return
            uid = struct.unpack("3i", link.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, CREDENTIALS))[1]
            if uid != os.getuid():
                link.close()
                continue
            link.setblocking(False)
            self.senders.add(link)
            self.loop.add_reader(link.fileno(), self._receive, link)

    def _receive(self, link: socket.socket) -> None:
        assert self.loop is not None
        space = socket.CMSG_SPACE(array.array("i").itemsize)
        while True:
            try:
                data, ancillary, flags, _ = link.recvmsg(MAX_HANDED, space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, ancillary, flags = b"", [], 0
            fds = array.array("i")
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            if not data and not fds:  # the other worker went away
                self.loop.remove_reader(link.fileno())
                self.senders.discard(link)
                link.close()
                return
            if len(fds) != 1 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                for fd in fds:
                    os.close(fd)
                continue
            self._adopt(fds[0], data)

    def _adopt(self, fd: int, data: bytes) -> None:
        """Serve a connection handed over, its first bytes first."""
        try:
            connection = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return
        if connection.type != socket.SOCK_STREAM or self.protocol is None or self.loop is None:
            connection.close()
            return
        connection.setblocking(False)
        protocol = HandingProtocol(*self.protocol)
        protocol.arrived = data
        task = self.loop.create_task(self.loop.connect_accepted_socket(lambda: protocol, connection))
        self.adopting.add(task)
        task.add_done_callback(lambda done: self._adopted(done, connection))

    def _adopted(self, task: asyncio.Task[Any], connection: socket.socket) -> None:
        self.adopting.discard(task)
        if task.cancelled() or task.exception() is not None:  # the client went away meanwhile
            connection.close()


# This worker's end (cli.worker installs it): uvicorn makes protocols by class, with no room for more.
installed: Handover | None = None


class HandingProtocol(HeadDeadlineProtocol):
    """uvicorn's HTTP protocol (with its head deadline), which hands a connection to its next
    request's home worker (`Handover`) when that is another worker."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.between = True  # no request parsed in part
        self.arrived: bytes | None = None  # a connection handed over: the bytes read before
        self.head = b""  # the last request head read here
        self.home: int | None = None  # and the worker it belongs to
        if installed is not None and installed.protocol is None:
            installed.open((config, server_state, app_state), self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if self.arrived is not None:  # answered here, whatever it is: a connection moves once per request
            data, self.arrived = self.arrived, None
            super().data_received(data)

    def on_message_begin(self) -> None:
        self.between = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.between = True

    def data_received(self, data: bytes) -> None:
        if (installed is not None and self.between and not self.pipeline
                and (self.cycle is None or self.cycle.response_complete)
                and not self.transport.get_write_buffer_size()):
            head = data.partition(b"\r\n\r\n")[0]
            if head != self.head:  # a client sends the same head again and again: read once
                self.home = installed.home(data)
                self.head = head if self.home is not None else b""  # unknown yet: read again next time
            if installed.hand(self.transport.get_extra_info("socket"), data, self.home):
                # The connection lives on in the other worker: this end is closed, not shut down.
                self.transport.abort()
                return
        super().data_received(data)
