"""Logging for `mockserver serve`: the server's own messages, and an access line per vendor request
(logger `mockserver.access`, level INFO), as text or as one JSON object a line."""

import logging
import sys
import time

import orjson

access = logging.getLogger("mockserver.access")
ACCESS_FIELDS = ("vendor", "tenant", "operation", "method", "path", "status", "duration_ms")
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and, for access lines, their fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        line |= {field: getattr(record, field) for field in ACCESS_FIELDS if hasattr(record, field)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send mockserver's logs to stderr at `level`; Connexion's per-request validation messages
    stay out (the access line has the status, the answer has the reason)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("mockserver")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    logging.getLogger("connexion").setLevel(logging.WARNING)


def log_access(vendor: str | None, tenant: str | None, operation: str | None, method: str, path: str,
               status: int, started: float) -> None:
    """One access line, when INFO is on: `karmabot tenant-2 createPlus POST /karmabot/api/v1/pluses 201 0.8 ms`."""
    if not access.isEnabledFor(logging.INFO):
        return
    duration = round((time.perf_counter() - started) * 1000, 2)
    fields = {"vendor": vendor, "tenant": tenant, "operation": operation, "method": method, "path": path,
              "status": status, "duration_ms": duration}
    access.info("%s %s %s %s %s %s %.2f ms", vendor or "-", tenant or "-", operation or "-", method, path, status,
                duration, extra=fields)
