"""Messages, threads, flags, reactions, read markers and commands (messaging/service/message.go,
command.go), and the message view.

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

import re
from typing import TYPE_CHECKING

from mockserver.clock import optional_isoformat
from mockserver.vendors.corteza.exceptions import corteza_error

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

MENTION = re.compile(r"<@(\d{1,20})(?:\s[^<>]*)?>")  # [^<>]: a try ends at the next "<", so matching stays linear

# The built-in commands (rest/commands.go List, service/command.go Do).
COMMANDS = {"tableflip": "(╯°□°）╯︵ ┻━┻", "unflip": "┬─┬ ノ( ゜-゜ノ)", "shrug": "¯\\\\_(ツ)_/¯"}


class Messages:
    def _add_message(self: "Workspace", channel: dict, user_id: str, text: str, now: float, kind: str = "",
                     reply_to: dict | None = None, attachment: str | None = None) -> dict:
        """The message added: the thread's root (`reply_to`) counts it, else the channel has it as its
        last. Only the ids of `channel` and `reply_to` are read: their records as they are now are changed."""
        message = {"id": self.new_id(), "type": kind, "message": text, "channelID": channel["id"], "userID": user_id,
                   "replyTo": reply_to["id"] if reply_to else None, "replies": 0, "repliesFrom": [],
                   "att": attachment, "mentions": [m for m in dict.fromkeys(MENTION.findall(text)) if m in self.users],
                   "reactions": {}, "pinned": False, "bookmarks": set(),
                   "createdAt": now, "updatedAt": None, "deletedAt": None}
        self.messages.insert(message)
        if reply_to:
            root = self.messages[reply_to["id"]]
            replies_from = root["repliesFrom"]
            self.messages.change(root["id"], replies=root["replies"] + 1, repliesFrom=replies_from if
                                 user_id in replies_from else [*replies_from, user_id])
        else:
            self.channels.change(channel["id"], lastMessageID=message["id"])
        return message

    def message(self: "Workspace", user_id: str, channel_id: str, message_id: str) -> tuple[dict, dict]:
        channel = self.channel(channel_id, user_id)
        message = self.messages.get(message_id)
        if message is None or message["channelID"] != channel_id or message["deletedAt"] is not None:
            raise corteza_error("message does not exist")
        return channel, message

    def _may_send(self: "Workspace", channel: dict, user_id: str) -> None:
        """CanSendMessage: a rule, else a valid channel that is public or the user's (a public
        channel needs no membership); never an archived or deleted one."""
        self._require(channel["archivedAt"] is None and channel["deletedAt"] is None and
                      self.can(user_id, channel["id"], "message.send", self._open_to(channel, user_id)))

    def post(self: "Workspace", user_id: str, channel_id: str, text: str, now: float, kind: str = "",
             reply_to: str | None = None) -> dict:
        channel = self.channel(channel_id, user_id)
        self._may_send(channel, user_id)
        if not text.strip():
            raise corteza_error("message is empty")
        parent = None
        if reply_to is not None:
            _, parent = self.message(user_id, channel_id, reply_to)
            if parent["replyTo"] is not None:
                raise corteza_error("unable to reply on replies")
        return self._add_message(channel, user_id, text, now, kind=kind, reply_to=parent)

    def edit(self: "Workspace", user_id: str, channel_id: str, message_id: str, text: str, now: float) -> dict:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(message["userID"] == user_id or self.can(user_id, channel_id, "message.update.all"))
        if not text.strip():
            raise corteza_error("message is empty")
        return self.messages.change(message["id"], message=text, updatedAt=now,
                                    mentions=[m for m in dict.fromkeys(MENTION.findall(text)) if m in self.users])

    def delete(self: "Workspace", user_id: str, channel_id: str, message_id: str, now: float) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(message["userID"] == user_id or self.can(user_id, channel_id, "message.delete.all"))
        self.messages.change(message["id"], deletedAt=now)
        if message["replyTo"] and message["replyTo"] in self.messages:
            parent = self.messages[message["replyTo"]]
            self.messages.change(parent["id"], replies=max(0, parent["replies"] - 1))

    def set_pin(self: "Workspace", user_id: str, channel_id: str, message_id: str, pinned: bool) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(user_id in channel["members"])
        self.messages.change(message["id"], pinned=pinned)

    def set_bookmark(self: "Workspace", user_id: str, channel_id: str, message_id: str, bookmarked: bool) -> None:
        _, message = self.message(user_id, channel_id, message_id)
        bookmarks = (message["bookmarks"] | {user_id}) if bookmarked else (message["bookmarks"] - {user_id})
        self.messages.change(message["id"], bookmarks=bookmarks)

    def react(self: "Workspace", user_id: str, channel_id: str, message_id: str, reaction: str, add: bool) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(self.can(user_id, channel["id"], "message.react", True))  # CanReactMessage: Allowed
        users = message["reactions"].get(reaction, [])
        if add and user_id not in users:
            users = [*users, user_id]
        elif not add and user_id in users:
            users = [user for user in users if user != user_id]
        # the reaction keeps its place while anyone still has it; a new one comes last
        reactions = {**message["reactions"], reaction: users} if users else {
            name: given for name, given in message["reactions"].items() if name != reaction}
        self.messages.change(message["id"], reactions=reactions)

    def _unread(self: "Workspace", user_id: str, key: str, messages: list[dict]) -> dict:
        """Messages past the user's read marker (others', not `channelEvent`s: repository/message.go
        CountFromMessageID), as outgoing.Unread has them (lastMessageID left out while none)."""
        marker = self._marker(user_id, key)
        unread = [m for m in messages if int(m["id"]) > int(marker) and m["userID"] != user_id and
                  m["type"] != "channelEvent"]
        return ({"lastMessageID": marker} if marker != "0" else {}) | {"count": len(unread), "threadCount": 0}

    def _marker(self: "Workspace", user_id: str, key: str) -> str:
        """The last message the user read in a channel or thread ("0": none)."""
        marker = self.read_markers.get((user_id, key))
        return "0" if marker is None else marker["last"]

    def _set_marker(self: "Workspace", user_id: str, key: str, last: str) -> None:
        self.read_markers.insert({"marker": (user_id, key), "last": last})

    def _threads(self: "Workspace", roots: list[dict]) -> dict[str, list[dict]]:
        """The live replies of each of these top-level messages that has any, gathered in one pass."""
        threads: dict[str, list[dict]] = {m["id"]: [] for m in roots if m["replies"]}
        if threads:
            for m in self.messages.values():
                if m["replyTo"] in threads and m["deletedAt"] is None:
                    threads[m["replyTo"]].append(m)
        return threads

    def _thread_unreads(self: "Workspace", user_id: str, threads: dict[str, list[dict]]) -> int:
        """How many of these threads have replies the user has not read."""
        return sum(1 for root, replies in threads.items() if self._unread(user_id, root, replies)["count"])

    def _thread(self: "Workspace", root_id: str) -> list[dict]:
        return [m for m in self.messages.values() if m["replyTo"] == root_id and m["deletedAt"] is None]

    def _channel_messages(self: "Workspace", channel_id: str) -> list[dict]:
        return [m for m in self.messages.values()
                if m["channelID"] == channel_id and m["replyTo"] is None and m["deletedAt"] is None]

    def mark_as_read(self: "Workspace", user_id: str, channel_id: str, thread_id: str | None, last_read: str | None) -> dict:
        """service/message.go MarkAsRead: the thread and the last read message checked, with its
        errors; marking the whole channel also marks its threads read. Answers outgoing.Unread:
        the marker, the count left, and (for the channel) the threads that had unread replies."""
        channel = self.channel(channel_id, user_id)
        thread_count = 0
        if thread_id:
            thread = self.messages.get(thread_id)
            if thread is None or thread["deletedAt"] is not None:
                raise corteza_error("unable to mark as read: unable to verify thread: sql: no rows in result set")
            messages, key = self._thread(thread_id), thread_id
        else:
            messages, key = self._channel_messages(channel["id"]), channel["id"]
            threads = self._threads(messages)
            thread_count = self._thread_unreads(user_id, threads)
        if last_read:
            last = self.messages.get(last_read)
            if last is None or last["deletedAt"] is not None:
                raise corteza_error("unable to mark as read: unable to verify last message: sql: no rows in result set")
            if last["channelID"] != channel["id"]:
                raise corteza_error("unable to mark as read: last read message not in the same channel")
            if thread_id and last["replyTo"] != thread_id:
                raise corteza_error("unable to mark as read: last read message not in the same thread")
        else:
            last_read = max((m["id"] for m in messages), key=int, default="0")
        self._set_marker(user_id, key, last_read)
        if not thread_id:  # ClearThreads: every thread of the channel read
            for root, replies in threads.items():
                self._set_marker(user_id, root, max((m["id"] for m in replies), key=int, default="0"))
        return self._unread(user_id, key, messages) | {"threadCount": thread_count}

    def execute(self: "Workspace", user_id: str, channel_id: str, command: str, text: str, now: float) -> dict | None:
        """service/command.go Do: `me` (nothing without input), `shrug`, `tableflip`, `unflip`;
        another name is the trigger of the channel's outgoing webhooks (2020.3); else nothing."""
        if command == "me":
            return self.post(user_id, channel_id, text, now, kind="illeism") if text else None
        if command in COMMANDS:
            return self.post(user_id, channel_id, f"{text} {COMMANDS[command]}" if text else COMMANDS[command], now)
        return None

    def message_view(self: "Workspace", message: dict, viewer: str) -> dict:
        # pkg/payload Message: an editable type (plain, inlineImage, attachment) by the viewer may be
        # edited and deleted; one of those types not in a thread may be replied to
        editable = message["type"] in ("", "inlineImage", "attachment")
        view = {
            "messageID": message["id"], "type": message["type"], "message": message["message"],
            "channelID": message["channelID"], "userID": message["userID"],
            "isBookmarked": viewer in message["bookmarks"], "isPinned": message["pinned"],
            "canReply": editable and message["replyTo"] is None, "canEdit": editable and message["userID"] == viewer,
            "canDelete": editable and message["userID"] == viewer,
            "createdAt": optional_isoformat(message["createdAt"]),
        }
        if message["replyTo"]:
            view["replyTo"] = message["replyTo"]
        if message["replies"]:
            view.update(replies=message["replies"], repliesFrom=list(message["repliesFrom"]))
            unread = self._unread(viewer, message["id"], self._thread(message["id"]))
            if unread["count"]:  # payload.MessageUnread: none while nothing is unread
                view["unread"] = unread
        if message["att"]:
            view["att"] = self.attachment_view(message["att"], viewer)
        if message["mentions"]:
            view["mentions"] = list(message["mentions"])
        if message["reactions"]:
            view["reactions"] = [{"userIDs": list(users), "reaction": reaction, "count": len(users)}
                                 for reaction, users in message["reactions"].items()]
        for field in ("updatedAt", "deletedAt"):
            if message[field] is not None:
                view[field] = optional_isoformat(message[field])
        return view
