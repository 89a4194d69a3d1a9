"""mockserver: a local, stateful, deterministic stand-in for vendor HTTP APIs."""

import warnings

# Connexion imports Starlette's test client at start-up, which warns on every `mockserver` run.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from mockserver.app import MockServer  # noqa: E402

__all__ = ["MockServer"]
