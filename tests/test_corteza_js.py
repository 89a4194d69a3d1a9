"""The official JavaScript client, @cortezaproject/corteza-js 2020.12.4 (from npm), drives every
Messaging method against the mock unchanged (tests/corteza_js_driver.js), and gets the shapes the
real server's REST layer answers."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT = "@cortezaproject/corteza-js@2020.12.4"
DRIVER = Path(__file__).with_name("corteza_js_driver.js")


@pytest.fixture(scope="module")
def client_folder(tmp_path_factory):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the official Corteza client")
    folder = tmp_path_factory.mktemp("corteza-js")
    (folder / "package.json").write_text('{"name": "corteza-js-check", "private": true}')
    installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", CLIENT], cwd=folder,
                               capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        pytest.skip(f"npm could not install {CLIENT} (registry unreachable?): {installed.stderr[-500:]}")
    shutil.copy(DRIVER, folder / DRIVER.name)
    return folder


def test_every_messaging_method_of_the_official_client(client_folder, server, tenant):
    credentials = tenant.credentials["corteza"]
    environment = {"PATH": os.environ["PATH"], "CORTEZA_BASE": server.base_url("corteza"),
                   "CORTEZA_TOKEN": credentials["token"], "CORTEZA_OTHER": credentials["other_user_ids"][0]}
    run = subprocess.run(["node", DRIVER.name], cwd=client_folder, env=environment, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout)
    upload = results.pop("multipartUpload")
    assert len(results) == 38  # every method of apiClients.Messaging
    failed = {name: result["error"] for name, result in results.items() if "error" in result}
    # The one the client cannot do against the real server either: it sends the upload as JSON.
    assert failed == {"channelAttach": "Invalid Content-type (application/json), expected ['multipart/form-data']"}

    def answer(name):
        return results[name].get("ok")

    me, other = credentials["user_id"], credentials["other_user_ids"][0]
    channel = answer("channelCreate")
    assert channel["name"] == "corteza-js" and channel["lastMessageID"] != "0"  # its channelEvent message
    assert [c["channelID"] for c in answer("channelList")] == [channel["channelID"]]
    assert answer("channelUpdate")["name"] == "corteza-js 2" and answer("channelRead")["channelID"] == channel["channelID"]
    assert answer("channelSetFlag")["membershipFlag"] == "pinned" and answer("channelRemoveFlag")["membershipFlag"] == ""
    assert [(m["userID"], m["type"]) for m in answer("channelInvite")] == [(other, "invitee")]
    assert [m["userID"] for m in answer("channelJoin")] == [other]  # a member set
    assert {m["userID"] for m in answer("channelMembers")} == {me, other}
    message = answer("messageCreate")
    assert answer("messageEdit")["message"] == "Hello, edited" and answer("messageReplyCreate")["replyTo"] == \
        message["messageID"]
    found = answer("searchMessages")  # channelID sent as channelID[]=... by axios
    assert found and {m["channelID"] for m in found} == {channel["channelID"]}
    assert [m["messageID"] for m in answer("searchThreads")][0] == message["messageID"]
    assert answer("messageMarkAsRead")["lastMessageID"] == message["messageID"]
    assert answer("messageExecuteCommand")["message"] == "oh well ¯\\\\_(ツ)_/¯"
    assert answer("activitySend") is True
    assert [c["name"] for c in answer("commandsList")] == ["me", "shrug", "tableflip", "unflip"]
    assert answer("statusSet")["expires"] and answer("statusList")[0]["present"] == "online"
    attachment = upload["response"]  # an Attachment, with the preview of the 1x1 PNG
    assert attachment["name"] == "chart.png" and "/preview.jpg?sign=" in attachment["previewUrl"]
    assert attachment["meta"]["original"]["image"] == attachment["meta"]["preview"]["image"] == \
        {"width": 1, "height": 1, "animated": False}
    assert len(answer("permissionsList")) == 30
    assert {e["operation"]: e["allow"] for e in answer("permissionsEffective")}["grant"] is True
    assert all(rule["roleID"] == "2" for rule in answer("permissionsRead"))
    assert "archivedAt" in answer("channelState")
