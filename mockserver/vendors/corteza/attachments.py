"""Uploads and their signed URLs (messaging/service/attachment.go, rest/attachment.go).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

import functools
import hashlib
import hmac
import re
from collections.abc import Hashable
from typing import TYPE_CHECKING
from urllib.parse import quote

from mockserver.clock import optional_isoformat
from mockserver.errors import ApiError
from mockserver.vendors.corteza import preview_pool, previews
from mockserver.vendors.corteza.exceptions import corteza_error
from mockserver.vendors.corteza.payload import parse_uint64

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# url.PathEscape leaves these unescaped in a path segment (Python's quote would escape them)
PATH_SAFE = "$&+=:@"

MIME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[\x20-\x7e]*)?")

# Ours (the real server has none): the bytes of uploads and their previews a workspace keeps. An
# export of a tenant at it (base64: about 86 MiB) stays well inside a state import's 256 MiB.
ATTACHMENT_BYTES = 64 * 1024 * 1024


class Attachments:
    def attach(self: "Workspace", user_id: str, channel_id: str, name: str, mime: str, data: bytes, reply_to: str | None,
               now: float, typed: dict | ApiError) -> dict:
        """The upload as an attachment message; `typed` is `described_or_refused` of it, made
        beforehand (off the event loop), its refusal raised here, after the checks that come first."""
        channel = self.channel(channel_id, user_id)
        self._may_send(channel, user_id)
        if CONTROL.search(name) or not MIME.fullmatch(mime):
            raise corteza_error("invalid upload: control characters in its name, or not a MIME type")
        name = stored_name(name)
        parent = self.message(user_id, channel_id, reply_to)[1] if reply_to is not None else None
        if isinstance(typed, ApiError):
            raise typed
        if self.attachment_bytes() + held_bytes(len(data), typed["preview"]) > ATTACHMENT_BYTES:
            raise corteza_error(f"attachment budget exceeded: a workspace keeps at most {ATTACHMENT_BYTES} bytes "
                                "of uploads and their previews")
        attachment = {"id": self.new_id(), "userID": user_id, "name": name, "size": len(data), "data": data,
                      **typed, "createdAt": now}
        self.attachments.insert(attachment)
        # service/attachment.go CreateMessageAttachment: an image's message is an inline one
        return self._add_message(channel, user_id, name, now, reply_to=parent, attachment=attachment["id"],
                                 kind="inlineImage" if attachment["mime"].startswith("image/") else "attachment")

    def attachment_bytes(self: "Workspace") -> int:
        """The bytes its uploads and their previews hold (what ATTACHMENT_BYTES bounds)."""
        return sum(held_bytes(attachment["size"], attachment["preview"]) for attachment in self.attachments.values())

    def sign(self: "Workspace", attachment_id: str, user_id: str) -> str:
        return hmac.new(self.secret.encode(), f"{attachment_id}:{user_id}".encode(), hashlib.sha256).hexdigest()[:40]

    def attachment(self: "Workspace", attachment_id: str, sign: str, user_id: str) -> dict:
        attachment = self.attachments.get(attachment_id)
        if attachment is None or not hmac.compare_digest(sign.encode(), self.sign(attachment_id, user_id).encode()):
            raise corteza_error("missing or invalid signature")
        return attachment

    @staticmethod
    def check_signed_request(attachment_id: str, sign: str | None, user_id: str | None) -> None:
        """rest/attachment.go isAccessible, before the signature: its checks and words."""
        if not sign:
            raise corteza_error("unauthorized")
        if not parse_uint64(user_id or ""):
            raise corteza_error("missing or invalid user ID")
        if not parse_uint64(attachment_id):
            raise corteza_error("missing or invalid attachment ID")

    def attachment_view(self: "Workspace", attachment_id: str, viewer: str) -> dict:
        """pkg/payload Attachment: `previewUrl` is the signature alone when there is no preview,
        as the real server writes it (the preview's path, empty, then the signed query)."""
        attachment = self.attachments[attachment_id]
        query = f"?sign={self.sign(attachment_id, viewer)}&userID={viewer}"
        original = {"size": attachment["size"], "ext": previews.extension(attachment["name"]),
                    "mimetype": attachment["mime"]}
        if attachment["image"] is not None:
            original["image"] = attachment["image"]
        meta: dict = {"original": original}
        preview = attachment["preview"]
        if preview is not None:
            meta["preview"] = {"size": len(preview["data"]), "ext": preview["ext"], "mimetype": preview["mimetype"],
                               "image": {"width": preview["width"], "height": preview["height"], "animated": False}}
        path = f"/attachment/{attachment_id}/preview.{preview['ext']}" if preview is not None else ""
        return {"attachmentID": attachment_id, "userID": attachment["userID"],
                "url": f"/attachment/{attachment_id}/original/{quote(attachment['name'], safe=PATH_SAFE)}{query}",
                "previewUrl": path + query, "meta": meta, "name": attachment["name"],
                "createdAt": optional_isoformat(attachment["createdAt"])}


def held_bytes(size: int, preview: dict | None) -> int:
    """What an upload of `size` bytes and its preview count against ATTACHMENT_BYTES."""
    return size + (len(preview["data"]) if preview is not None else 0)


def stored_name(name: str) -> str:
    """An upload's name as kept and shown: never a path."""
    return name.replace("/", "_").replace("\\", "_").strip() or "upload"


def described_or_refused(name: str, declared: str, data: bytes) -> dict | ApiError:
    """`described`, or the refusal it raised (for `Attachments.attach` to raise in its turn)."""
    try:
        return described(stored_name(name), declared, data)
    except ApiError as refusal:
        return refusal


async def described_in_pool(tenant: Hashable, name: str, declared: str, data: bytes) -> dict | ApiError:
    """`described_or_refused`, an image's preview made in the preview pool (in the tenant's slot,
    within its deadline); anything else needs no preview, nor to wait."""
    if not previews.mimetype(data, declared).startswith("image/"):
        return described_or_refused(name, declared, data)
    try:
        return await preview_pool.made(tenant, functools.partial(described_or_refused, name, declared, data))
    except ApiError as refusal:  # its deadline passed
        return refusal


def described(name: str, declared: str, data: bytes) -> dict:
    """An upload's type, and for an image its size and preview (service/attachment.go create)."""
    mime = previews.mimetype(data, declared)
    if not mime.startswith("image/"):
        return {"mime": mime, "image": None, "preview": None}
    image, preview = previews.preview(data, previews.extension(name))
    return {"mime": mime, "image": image, "preview": preview}
