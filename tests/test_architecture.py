"""A sixth vendor is a folder and a spec: copied next to a scratch copy of the package, it is
served with no change to the core (ARCHITECTURE.md, "Adding a vendor")."""

import ast
import shutil
from pathlib import Path

import httpx

from tests.served import Served

ROOT = Path(__file__).parent.parent
TOY = Path(__file__).parent / "toy_vendor"


def test_a_toy_vendor_folder_is_served_with_no_core_change(tmp_path):
    for folder in ("mockserver", "specs", "fixtures"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    vendor = tmp_path / "mockserver" / "vendors" / "toybox"
    vendor.mkdir()
    for name in ("__init__.py", "models.py", "responses.py"):
        shutil.copy(TOY / name, vendor / name)
    shutil.copy(TOY / "toybox.yaml", tmp_path / "specs" / "toybox.yaml")

    served = Served("--clock", "frozen", cwd=tmp_path)
    try:
        listed = httpx.get(served.url + "/__admin/vendors").json()["vendors"]
        assert [entry["name"] for entry in listed] == ["community", "corteza", "dailybot", "karmabot", "kudosnow",
                                                       "toybox"]
        tenant = httpx.post(served.url + "/__admin/tenants").json()
        with httpx.Client(base_url=served.url + "/toybox/v1", headers=tenant["credentials"]["toybox"]["headers"]) as toy:
            assert len(toy.get("/things").json()) == 1
            # Validated by its spec, through the server's own pipeline: `id` is required but read-only,
            # so neither a JSON nor a form body need send it; `name` is required and may not be empty.
            assert toy.post("/things", json={"name": "kite"}).status_code == 201
            assert toy.post("/things", data={"name": "yo-yo"}).status_code == 201
            assert toy.post("/things", json={"name": ""}).status_code == 400
            missing = toy.post("/things", json={"id": 5})
            assert missing.status_code == 400 and "'name' is a required property" in missing.text
            assert [thing["name"] for thing in toy.get("/things").json()][-2:] == ["kite", "yo-yo"]
        refused = httpx.get(served.url + "/toybox/v1/things").json()
        assert refused == {"problem": "Authentication credentials were not provided."}
        state = httpx.get(f"{served.url}/__admin/tenants/{tenant['tenant']}/state").json()["toybox"]
        assert state["things"][-2:] == [{"id": 2, "name": "kite"}, {"id": 3, "name": "yo-yo"}]
    finally:
        served.stop()


CORE = Path(__file__).parent.parent / "mockserver"
WAYS_IN = {"__init__", "__main__", "cli", "testing"}  # what builds the app: everything else is handed its parts
UPSTREAM = {"upstream", "upstream_schemathesis"}  # the one place each for other libraries' private names


def core_imports() -> dict[str, set[str]]:
    """Each core module's imports of other core modules (those made for type checking too)."""
    modules = {path.stem for path in CORE.glob("*.py")}
    graph = {}
    for name in modules:
        found = set()
        for node in ast.walk(ast.parse((CORE / f"{name}.py").read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module == "mockserver":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("mockserver."):
                found.add(node.module.split(".")[1])
        graph[name] = (found & modules) - {name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, if it has any."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        found = next((c for nxt in sorted(graph[node]) if (c := visit(nxt, path + [node]))), None)
        done.add(node)
        return found

    return next((c for node in sorted(graph) if (c := visit(node, []))), None)


def test_the_core_never_imports_the_app_and_has_no_import_cycle():
    """The app is built by the ways in (CLI, testing); the admin API, persistence, workers and the
    gateway are handed the ServerState (and the gateway what a request reaches), never the app."""
    graph = core_imports()
    importers = {name for name, imported in graph.items() if "app" in imported}
    assert importers <= WAYS_IN, importers - WAYS_IN
    assert cycle(graph) is None  # not even through type annotations


def test_no_core_module_reaches_into_another_ones_private_names():
    crossings = []
    for path in CORE.glob("*.py"):
        if path.stem in UPSTREAM:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                crossings.append(f"{path.stem}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mockserver"):
                crossings += [f"{path.stem}:{node.lineno} import {alias.name}" for alias in node.names
                              if alias.name.startswith("_")]
    assert crossings == []
