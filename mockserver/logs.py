"""Logging for `mockserver serve`: the server's own messages, and an access line per vendor request
(logger `mockserver.access`, level INFO), as text or as one JSON object a line."""

import asyncio
import atexit
import logging
import sys
import time
from typing import TextIO

import orjson

access = logging.getLogger("mockserver.access")
ACCESS_FIELDS = ("vendor", "tenant", "operation", "method", "path", "status", "duration_ms")
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and, for access lines, their fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record, DATE_FORMAT), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        line |= {field: getattr(record, field) for field in ACCESS_FIELDS if hasattr(record, field)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class Lines:
    """A stream written once per turn of the event loop, every line of the turn in one write (an
    access line each is many lines); at once when no loop runs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending: list[str] = []
        atexit.register(self.flush)  # the last turn's lines, if the loop stopped before writing them

    def write(self, line: str) -> None:
        if not self.pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: start-up, shutdown, the command line
                self.stream.write(line)
                self.stream.flush()
                return
        self.pending.append(line)

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.stream.write("".join(lines))
            self.stream.flush()


class LinesHandler(logging.Handler):
    """logging's records, formatted, to `Lines`."""

    def __init__(self, lines: Lines) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class AccessLines:
    """Access lines as `configure`'s handler formats them, written without a log record each: the
    time formatted once a second."""

    def __init__(self, lines: Lines, fmt: str) -> None:
        self.lines = lines
        self.json = fmt == "json"
        self.second = -1
        self.stamp = ""

    def write(self, vendor: str | None, tenant: str | None, operation: str | None, method: str, path: str,
              status: int, duration: float) -> None:
        now = int(time.time())
        if now != self.second:
            self.second, self.stamp = now, time.strftime(DATE_FORMAT, time.localtime(now))
        message = f"{vendor or '-'} {tenant or '-'} {operation or '-'} {method} {path} {status} {duration:.2f} ms"
        if self.json:
            self.lines.write(orjson.dumps({
                "time": self.stamp, "level": "info", "logger": access.name, "message": message, "vendor": vendor,
                "tenant": tenant, "operation": operation, "method": method, "path": path, "status": status,
                "duration_ms": duration}).decode() + "\n")
        else:
            self.lines.write(f"{self.stamp} INFO {access.name}: {message}\n")


_access_lines: AccessLines | None = None  # set by `configure`


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send mockserver's logs to stderr at `level`; Connexion's per-request validation messages
    stay out (the access line has the status, the answer has the reason)."""
    global _access_lines
    lines = Lines(sys.stderr)
    handler = LinesHandler(lines)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT, DATE_FORMAT))
    root = logging.getLogger("mockserver")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    logging.getLogger("connexion").setLevel(logging.WARNING)
    _access_lines = AccessLines(lines, fmt)


def log_access(vendor: str | None, tenant: str | None, operation: str | None, method: str, path: str,
               status: int, started: float) -> None:
    """One access line, when INFO is on: `karmabot tenant-2 createPlus POST /karmabot/api/v1/pluses 201 0.8 ms`."""
    if not access.isEnabledFor(logging.INFO):
        return
    duration = round((time.perf_counter() - started) * 1000, 2)
    if _access_lines is not None:  # `serve`'s logging (configure)
        return _access_lines.write(vendor, tenant, operation, method, path, status, duration)
    fields = {"vendor": vendor, "tenant": tenant, "operation": operation, "method": method, "path": path,
              "status": status, "duration_ms": duration}
    access.info("%s %s %s %s %s %s %.2f ms", vendor or "-", tenant or "-", operation or "-", method, path, status,
                duration, extra=fields)
