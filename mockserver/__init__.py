"""mockserver: a local, stateful, deterministic stand-in for vendor HTTP APIs."""

from mockserver.app import MockServer, create_app

__all__ = ["MockServer", "create_app"]
