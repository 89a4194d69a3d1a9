"""A sixth vendor is a folder and a spec: copied next to a scratch copy of the package, it is
served with no change to the core (ARCHITECTURE.md, "Adding a vendor")."""

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
