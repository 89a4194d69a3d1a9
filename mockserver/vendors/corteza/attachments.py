"""Uploads and their signed URLs (messaging/service/attachment.go, rest/attachment.go).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

import hashlib
import hmac
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from mockserver.clock import optional_isoformat
from mockserver.vendors.corteza.exceptions import corteza_error
from mockserver.vendors.corteza.payload import parse_uint64

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MIME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[\x20-\x7e]*)?")


class Attachments:
    def attach(self: "Workspace", user_id: str, channel_id: str, name: str, mime: str, data: bytes, reply_to: str | None,
               now: float) -> dict:
        channel = self.channel(channel_id, user_id)
        self._may_send(channel, user_id)
        if CONTROL.search(name) or not MIME.fullmatch(mime):
            raise corteza_error("invalid upload: control characters in its name, or not a MIME type")
        name = name.replace("/", "_").replace("\\", "_").strip() or "upload"
        preview = self.fixtures["upload_preview_types"].get(mime)
        attachment = {"id": self.new_id(), "userID": user_id, "name": name, "mime": mime, "size": len(data),
                      "data": data, "preview": preview, "createdAt": now}
        self.attachments[attachment["id"]] = attachment
        parent = self.message(user_id, channel_id, reply_to)[1] if reply_to is not None else None
        return self._add_message(channel, user_id, name, now, kind="inlineImage" if preview else "attachment",
                                 reply_to=parent, attachment=attachment["id"])

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
        attachment = self.attachments[attachment_id]
        query = f"?sign={self.sign(attachment_id, viewer)}&userID={viewer}"
        # The extension from the name, as service/attachment.go takes it (path.Ext, dots trimmed).
        extension = attachment["name"].strip(".").rpartition(".")[2] if "." in attachment["name"].strip(".") else ""
        meta = {"original": {"size": attachment["size"], "ext": extension, "mimetype": attachment["mime"]}}
        view = {"attachmentID": attachment_id, "userID": attachment["userID"],
                "url": f"/attachment/{attachment_id}/original/{quote(attachment['name'])}{query}",
                "meta": meta, "name": attachment["name"], "createdAt": optional_isoformat(attachment["createdAt"])}
        if attachment["preview"]:
            view["previewUrl"] = f"/attachment/{attachment_id}/preview.{attachment['preview']}{query}"
            meta["preview"] = {"size": attachment["size"], "mimetype": attachment["mime"]}
        return view
