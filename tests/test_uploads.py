"""One tenant's Corteza uploads cannot stall the others (issue 31, item 4): JPEG scans are bounded,
previews are made in a pool no tenant can fill and awaited within a deadline, and a workspace's
attachments have a budget whose export imports back."""

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from mockserver.admin import MAX_IMPORT_BYTES
from mockserver.testing import running
from mockserver.vendor import discover
from mockserver.vendors.corteza import attachments, preview_pool, previews
from tests.test_corteza import channel_named, error, ok

UPLOAD = 4 * 1024 * 1024 - 1024  # the most a 4 MiB request body carries, with its multipart framing


@pytest.fixture
def cz(tenant):
    with tenant.client("corteza") as client:
        yield client


def png(size=(8, 8)) -> bytes:
    encoded = io.BytesIO()
    Image.new("RGB", size, "teal").save(encoded, "PNG")
    return encoded.getvalue()


def progressive_jpeg(scans: int) -> bytes:
    """A small progressive JPEG whose last scan is repeated until it has `scans` (the decoder
    warns of the repeats and decodes it all the same)."""
    encoded = io.BytesIO()
    Image.effect_mandelbrot((64, 48), (-2, -1.5, 1, 1.5), 50).convert("RGB").save(encoded, "JPEG", progressive=True)
    data = encoded.getvalue()
    last = data.rfind(previews.SOS)
    return data[:-2] + data[last:-2] * (scans - data.count(previews.SOS)) + data[-2:]


def attach(client: httpx.Client, channel: str, name: str, data: bytes, mime: str = "image/png") -> httpx.Response:
    return client.post(f"/channels/{channel}/attach", files={"upload": (name, data, mime)})


BLOCKED = (7, 5)  # the size of the images whose previews `blocked` holds


@pytest.fixture
def blocked(monkeypatch):
    """Previews of BLOCKED-sized images wait for the event: what a costly image does to a worker."""
    release = threading.Event()
    make = previews.preview

    def waiting(data, ext):
        if Image.open(io.BytesIO(data)).size == BLOCKED:
            release.wait(60)
        return make(data, ext)

    monkeypatch.setattr(previews, "preview", waiting)
    yield release
    release.set()


def test_a_jpeg_of_more_scans_than_the_bound_is_not_processed(cz):
    general = channel_named(cz, "general")["channelID"]
    assert ok(attach(cz, general, "fine.jpg", progressive_jpeg(previews.MAX_SCANS), "image/jpeg"))["meta"]["preview"]
    error(attach(cz, general, "scans.jpg", progressive_jpeg(previews.MAX_SCANS + 1), "image/jpeg"),
          "could not process image")


def test_one_tenant_previews_never_fill_the_pool(server, blocked, monkeypatch):
    """More uploads than the pool (and than asyncio's default executor) has workers, all waiting
    on one tenant's previews: another tenant's requests and previews go on meanwhile."""
    monkeypatch.setattr(preview_pool, "PREVIEW_SECONDS", 120)  # the waiting uploads' deadline is not what is tested
    many = max(preview_pool.WORKERS, min(32, (os.cpu_count() or 1) + 4)) + 1
    arrived, all_arrived, sniff = [], threading.Event(), previews.mimetype

    def sniffed(data, declared):  # the first look at an upload's bytes: it has reached the server
        if data == png(BLOCKED):
            arrived.append(data)
            if len(arrived) == many:
                all_arrived.set()
        return sniff(data, declared)

    monkeypatch.setattr(previews, "mimetype", sniffed)
    one, other = server.new_tenant(), server.new_tenant()
    with one.client("corteza") as busy, other.client("corteza") as idle:
        busy.timeout = 120
        stuck = channel_named(busy, "general")["channelID"]
        general = channel_named(idle, "general")["channelID"]
        with ThreadPoolExecutor(many) as senders:
            waiting = [senders.submit(attach, busy, stuck, f"{index}.png", png(BLOCKED)) for index in range(many)]
            try:
                assert all_arrived.wait(30)
                assert ok(idle.get(f"/channels/{general}"))["channelID"] == general
                assert ok(attach(idle, general, "chart.png", png()))["meta"]["preview"]
                assert not any(upload.done() for upload in waiting)
            finally:
                blocked.set()
            assert all(ok(upload.result())["meta"]["preview"] for upload in waiting)


def test_an_upload_whose_preview_misses_its_deadline_is_an_image_not_processed(cz, tenant, blocked, monkeypatch):
    monkeypatch.setattr(preview_pool, "PREVIEW_SECONDS", 0.5)
    general = channel_named(cz, "general")["channelID"]
    before = tenant.state("corteza")["messages"]
    error(attach(cz, general, "slow.png", png(BLOCKED)), "could not process image")
    assert tenant.state("corteza")["messages"] == before
    # a file that is no image needs no preview: it never waits for the tenant's preview still under way
    assert ok(attach(cz, general, "notes.txt", b"notes", "text/plain"))["meta"]["original"]["mimetype"] == "text/plain"


def test_the_spec_declares_the_attachment_budget_as_ours():
    corteza = next(vendor for vendor in discover() if vendor.name == "corteza")
    budget = corteza.operations["channelAttach"].extensions["x-attachment-budget"]
    assert budget["bytes"] == attachments.ATTACHMENT_BYTES and budget["x-inferred"] is True


OVER_BUDGET = "attachment budget exceeded: a workspace keeps at most 10000 bytes of uploads and their previews"


def test_a_workspace_keeps_at_most_its_attachment_budget(cz, tenant, monkeypatch):
    """Its uploads' bytes and their previews': Corteza's error envelope beyond, and nothing kept."""
    monkeypatch.setattr(attachments, "ATTACHMENT_BYTES", 10_000)
    general = channel_named(cz, "general")["channelID"]
    image = png()
    ok(attach(cz, general, "a.bin", b"a" * 6_000, "application/octet-stream"))
    refused = attach(cz, general, "b.bin", b"b" * 4_001, "application/octet-stream")
    assert refused.headers["X-Mockserver-Error-Status"] == "400"
    error(refused, OVER_BUDGET)
    ok(attach(cz, general, "c.bin", b"c" * (4_000 - len(image)), "application/octet-stream"))
    before = tenant.state("corteza")["messages"]
    error(attach(cz, general, "d.png", image), OVER_BUDGET)  # its original fits; not with its preview
    assert tenant.state("corteza")["messages"] == before
    ok(attach(cz, general, "d.bin", b"d" * len(image), "application/octet-stream"))  # exactly the budget


def test_a_tenant_at_its_attachment_budget_exports_and_imports_back():
    """The largest export one tenant can reach is a state import (whose bound is MAX_IMPORT_BYTES)."""
    data = os.urandom(UPLOAD)
    with running(seed=0, ticking=False) as server:
        tenant = server.new_tenant()
        with tenant.client("corteza") as cz:
            cz.timeout = 60
            general = channel_named(cz, "general")["channelID"]
            kept = attachments.ATTACHMENT_BYTES // UPLOAD
            for index in range(kept):
                ok(attach(cz, general, f"{index}.bin", data, "application/octet-stream"))
            error(attach(cz, general, "over.bin", data, "application/octet-stream"))
        server.admin.timeout = 120
        exported = server.admin.get("/__admin/state/export")
        assert len(exported.content) < MAX_IMPORT_BYTES
        imported = server.admin.post("/__admin/state/import", content=exported.content,
                                     headers={"Content-Type": "application/json"})
        assert imported.status_code == 204, imported.text[:300]
        assert sum(message["type"] == "attachment" for message in tenant.state("corteza")["messages"]) == kept

