"""Incoming and outgoing webhooks (2020.3: messaging/service/webhook.go).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

import hmac
from typing import TYPE_CHECKING

from mockserver.clock import optional_isoformat
from mockserver.vendors.corteza.exceptions import corteza_error

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace


class Webhooks:
    def save_webhook(self: "Workspace", user_id: str, body: dict, now: float, allowed,
                     webhook_id: str | None = None) -> dict:
        channel = self.channel(body["channelID"], user_id)
        self._require(user_id in channel["members"] or self.can(user_id, channel["id"], "update"))
        self._user(body["userID"])
        if body["kind"] == "outgoing":
            if not body.get("trigger") or not body.get("url"):
                raise corteza_error("outgoing webhooks need a trigger and a url")
            if not allowed(body["url"]):
                raise corteza_error("webhook url must be http(s) on an allowed host (loopback by default), not this server")
        fields = {"kind": body["kind"], "userId": body["userID"], "channelId": channel["id"],
                  "trigger": body.get("trigger") or "", "url": body.get("url") or "",
                  "username": body.get("username"), "avatarURL": body.get("avatarURL")}
        if webhook_id is None:
            webhook = {"id": self.new_id(), "owner": user_id, "createdAt": now, "updatedAt": None,
                       "token": f"{self.rng.getrandbits(128):032x}", **fields}
            self.webhooks.insert(webhook)
        else:
            webhook = self.webhooks.change(self.webhook(user_id, webhook_id)["id"], **fields, updatedAt=now)
        return webhook

    def webhook(self: "Workspace", user_id: str, webhook_id: str) -> dict:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or (webhook["owner"] != user_id and not self.can(user_id, webhook["channelId"], "update")):
            raise corteza_error("webhook does not exist")
        return webhook

    def list_webhooks(self: "Workspace", user_id: str, channel_id: str | None, owner: str | None) -> list[dict]:
        return [w for w in self.webhooks.values()
                if (w["owner"] == user_id or self.can(user_id, w["channelId"], "update")) and
                (channel_id is None or w["channelId"] == channel_id) and (owner is None or w["owner"] == owner)]

    def delete_webhook(self: "Workspace", webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)

    def by_token(self: "Workspace", webhook_id: str, token: str) -> dict:
        """repository/webhook.go GetByToken, with its errors."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            raise corteza_error("sql: no rows in result set")
        if not hmac.compare_digest(webhook["token"], token):
            raise corteza_error("Invalid Webhook Token")
        return webhook

    def incoming(self: "Workspace", webhook_id: str, token: str, content: str, now: float) -> dict:
        webhook = self.by_token(webhook_id, token)
        if webhook["kind"] != "incoming":
            raise corteza_error("not an incoming webhook")
        if not (content or "").strip():
            raise corteza_error("content is required")
        channel = self.channels[webhook["channelId"]]
        return self._add_message(channel, webhook["userId"], content, now)

    def outgoing_by_trigger(self: "Workspace", user_id: str, channel_id: str, trigger: str) -> dict | None:
        """service/command.go Do: the first outgoing webhook of the channel with this trigger."""
        channel = self.channel(channel_id, user_id)
        return next((w for w in self.webhooks.values()
                     if w["kind"] == "outgoing" and w["channelId"] == channel["id"] and w["trigger"] == trigger), None)

    def webhook_message(self: "Workspace", webhook: dict, text: str, now: float) -> dict:
        """service/webhook.go sendMessage: the reply posted to the channel as the webhook's user."""
        return self._add_message(self.channels[webhook["channelId"]], webhook["userId"], text, now)

    @staticmethod
    def webhook_view(webhook: dict) -> dict:
        view = {key: webhook[key] for key in ("id", "kind", "userId", "channelId", "trigger", "url")}
        view["createdAt"] = optional_isoformat(webhook["createdAt"])
        for field in ("username", "avatarURL"):
            if webhook[field]:
                view[field] = webhook[field]
        if webhook["updatedAt"] is not None:
            view["updatedAt"] = optional_isoformat(webhook["updatedAt"])
        return view
