"""mockserver: a local, stateful, deterministic stand-in for vendor HTTP APIs."""

import warnings

# Connexion imports Starlette's test client at start-up, which warns on every `mockserver` run.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

__all__ = ["ADMIN_TOKEN_VARIABLE", "MockServer"]

ADMIN_TOKEN_VARIABLE = "MOCKSERVER_ADMIN_TOKEN"  # the admin token, for `serve` and for the clients of a server


def __getattr__(name: str) -> type:
    """`mockserver.MockServer`, imported when first asked for: the pytest plugin loads this package
    in every session, and must cost nothing until a test asks for a server."""
    if name == "MockServer":
        from mockserver.app import MockServer

        return MockServer
    raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
