"""Channels and their members (messaging/service/channel.go), and the channel view.

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

from typing import TYPE_CHECKING

from mockserver.clock import optional_isoformat
from mockserver.vendors.corteza.exceptions import corteza_error

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

CHANNEL_TYPES = ("public", "private", "group")

MEMBERSHIP_POLICIES = ("", "featured", "forced")

MAX_NAME_BYTES, MAX_TOPIC_BYTES = 40, 200  # service/channel.go settingsChannelNameLength, ...TopicLength


class Channels:
    def _add_channel(self: "Workspace", creator: str, name: str, topic: str, kind: str, members: list[str],
                     now: float, policy: str = "") -> dict:
        channel: dict = {"id": self.new_id(), "name": name, "topic": topic, "type": kind, "membershipPolicy": policy,
                   "createdAt": now, "updatedAt": None, "archivedAt": None, "deletedAt": None, "lastMessageID": "0",
                   "members": {}}
        for user_id in dict.fromkeys([creator, *members]):
            channel["members"][user_id] = {"userID": user_id, "type": "owner" if user_id == creator else "member",
                                           "createdAt": now, "updatedAt": None, "flag": ""}
        return self.channels.insert(channel)

    def channel(self: "Workspace", channel_id: str, user_id: str) -> dict:
        """A channel the user may see (public ones, or ones they belong to)."""
        channel = self.channels.get(channel_id)
        if channel is None or (channel["type"] != "public" and user_id not in channel["members"]):
            raise corteza_error("channel does not exist")
        return channel

    def _user(self: "Workspace", user_id: str) -> dict:
        if user_id not in self.users:
            raise corteza_error("user does not exist")
        return self.users[user_id]

    def _manages(self: "Workspace", channel: dict, user_id: str, operation: str) -> bool:
        """A rule on the operation, else the owner fallback (access_control.go isChannelOwnerFallback)."""
        member = channel["members"].get(user_id)
        return self.can(user_id, channel["id"], operation, member is not None and member["type"] == "owner")

    def _open_to(self: "Workspace", channel: dict, user_id: str) -> bool:
        """canReadFallback and canSendMessagesFallback: a valid channel, public or the user's."""
        return channel["archivedAt"] is None and channel["deletedAt"] is None and (
            channel["type"] == "public" or user_id in channel["members"])

    @staticmethod
    def _require(allowed: bool) -> None:
        """Every permission refusal is the service's one error (messaging/service/error.go)."""
        if not allowed:
            raise corteza_error("messaging.service.NoPermissions")

    def list_channels(self: "Workspace", user_id: str, query: str | None) -> list[dict]:
        """repository/channel.go Find: neither archived nor deleted, public or the user's, the
        query matching the name only, sorted by name."""
        needle = (query or "").lower()
        found = [c for c in self.channels.values()
                 if c["archivedAt"] is None and c["deletedAt"] is None and
                 (c["type"] == "public" or user_id in c["members"]) and needle in c["name"].lower()]
        return sorted(found, key=lambda c: c["name"])

    @staticmethod
    def _check_name_and_topic(name: str, topic: str, kind: str) -> None:
        """service/channel.go: Go's len, so bytes."""
        if not name and kind != "group":
            raise corteza_error("channel name not provided")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise corteza_error(f"channel name ({len(name.encode())} characters) too long (max: {MAX_NAME_BYTES})")
        if len(topic.encode()) > MAX_TOPIC_BYTES:
            raise corteza_error(f"channel topic ({len(topic.encode())} characters) too long (max: {MAX_TOPIC_BYTES})")

    def _may_create(self: "Workspace", user_id: str, kind: str) -> None:
        if not self.can_service(user_id, f"channel.{kind}.create"):
            raise corteza_error("messaging.service.NoPermissions")

    def create_channel(self: "Workspace", user_id: str, body: dict, now: float) -> dict:
        """service/channel.go Create: the type checked first, then name and topic; a group with
        the same members is the existing group; the creation is the channel's first message."""
        kind, name, topic = body.get("type") or "", body.get("name") or "", body.get("topic") or ""
        if kind not in CHANNEL_TYPES:
            raise corteza_error("invalid channel type")
        self._check_name_and_topic(name, topic, kind)
        members = [self._user(member)["userID"] for member in body.get("members") or []]
        if kind == "group":
            wanted = {user_id, *members}
            for existing in self.channels.values():
                if existing["type"] == "group" and set(existing["members"]) == wanted:
                    return existing
        self._may_create(user_id, kind)
        policy = body.get("membershipPolicy") or ""
        policy = policy if policy in MEMBERSHIP_POLICIES else ""
        if policy and not self.can_service(user_id, "grant"):
            raise corteza_error("messaging.service.NoPermissions")
        channel = self._add_channel(user_id, name, topic, kind, members, now, policy)
        created = f"<@{user_id}> created {kind} channel" + (f" **{name}**" if name else "") + (
            f", topic: {topic}" if name and topic else "")
        self._add_message(channel, user_id, created, now, kind="channelEvent")
        return self.channels[channel["id"]]

    def update_channel(self: "Workspace", user_id: str, channel_id: str, body: dict, now: float) -> dict:
        """service/channel.go Update: name and topic checked as on create (the name is needed
        unless the request says group); a new name or topic is announced; the membership policy
        is set to what is sent (nothing: the default), which needs `grant` to change."""
        name, topic, kind = body.get("name") or "", body.get("topic") or "", body.get("type") or ""
        self._check_name_and_topic(name, topic, kind)
        channel = self.channel(channel_id, user_id)
        self._require(self._manages(channel, user_id, "update"))
        # Each change (and each announcement, which moves lastMessageID) replaces the record: read afresh.
        channels, channel_id = self.channels, channel["id"]
        if kind in CHANNEL_TYPES and kind != channel["type"]:
            self._may_create(user_id, kind)
            channel = channels.change(channel_id, type=kind)
        if name and name != channel["name"]:
            self._add_message(channel, user_id, f"<@{user_id}> renamed channel **{name}** (was: {channel['name']})"
                              if channel["name"] else f"<@{user_id}> set channel name to **{name}**", now,
                              kind="channelEvent")
            channel = channels.change(channel_id, name=name)
        if topic and topic != channel["topic"]:
            self._add_message(channel, user_id, f"<@{user_id}> changed channel topic: {topic} (was: {channel['topic']})"
                              if channel["topic"] else f"<@{user_id}> set channel topic to {topic}", now,
                              kind="channelEvent")
            channel = channels.change(channel_id, topic=topic)
        policy = body.get("membershipPolicy") or ""
        if policy != channel["membershipPolicy"] and not self.can_service(user_id, "grant"):
            raise corteza_error("messaging.service.NoPermissions")
        return channels.change(channel_id, membershipPolicy=policy if policy in MEMBERSHIP_POLICIES else "",
                               updatedAt=now)

    # state -> (the operation it needs, its field, the value it sets, the error if already so)
    _STATES = {"delete": ("delete", "deletedAt", True, "channel already deleted"),
               "undelete": ("undelete", "deletedAt", False, "channel not deleted"),
               "archive": ("archive", "archivedAt", True, "channel already archived"),
               "unarchive": ("unarchive", "archivedAt", False, "channel not archived")}

    def set_state(self: "Workspace", user_id: str, channel_id: str, state: str, now: float) -> dict | None:
        """rest/channel.go State; an unknown state changes nothing (None: `{"response": false}`)."""
        if state not in self._STATES:
            return None
        operation, field, set_it, already = self._STATES[state]
        channel = self.channel(channel_id, user_id)
        self._require(self._manages(channel, user_id, operation))
        if (channel[field] is not None) == set_it:
            raise corteza_error(already)
        return self.channels.change(channel["id"], **{field: now if set_it else None, "updatedAt": now})

    def set_flag(self: "Workspace", user_id: str, channel_id: str, flag: str) -> dict | None:
        """rest/channel.go SetFlag: pinned, hidden or ignored; another flag changes nothing (None)."""
        if flag not in ("pinned", "hidden", "ignored", ""):
            return None
        channel = self.channel(channel_id, user_id)
        member = channel["members"].get(user_id)
        if member is None:
            raise corteza_error("not a member of this channel")
        return self.channels.change(channel["id"], members={**channel["members"], user_id: member | {"flag": flag}})

    def join(self: "Workspace", user_id: str, channel_id: str, member_id: str, now: float) -> dict:
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("adding members to a group is not currently supported")
        self._user(member_id)
        if member_id == user_id:
            self._require(channel["type"] == "public" or user_id in channel["members"])
        else:
            self._require(self._manages(channel, user_id, "members.manage"))
        return self._add_member(channel, member_id, now)

    def part(self: "Workspace", user_id: str, channel_id: str, member_id: str, now: float) -> None:
        """service/channel.go DeleteMember: removing someone who is not a member is no error."""
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("removing members from a group is currently not supported")
        if member_id != user_id:
            self._require(self._manages(channel, user_id, "members.manage"))
        if member_id not in channel["members"]:
            return
        channel = self.channels.change(channel["id"], members={user: member for user, member in
                                                               channel["members"].items() if user != member_id})
        self._add_message(channel, member_id, f"<@{member_id}> left", now, kind="channelEvent")

    def invite(self: "Workspace", user_id: str, channel_id: str, invited: list[str], now: float) -> list[dict]:
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("adding members to a group is not currently supported")
        self._require(self._manages(channel, user_id, "members.manage") or
                      (channel["type"] == "public" and user_id in channel["members"]))
        for member_id in invited:
            self._user(member_id)
        return [self._add_member(channel, member_id, now, "invitee") for member_id in dict.fromkeys(invited)]

    def _add_member(self: "Workspace", channel: dict, member_id: str, now: float, kind: str = "member") -> dict:
        """The member (added, with a channelEvent message, if they were not one yet). `channel` is
        read afresh: a caller adding several holds the record as it was before the first."""
        channel = self.channels[channel["id"]]
        if member_id not in channel["members"]:
            member = {"userID": member_id, "type": kind, "createdAt": now, "updatedAt": None, "flag": ""}
            channel = self.channels.change(channel["id"], members={**channel["members"], member_id: member})
            self._add_message(channel, member_id, f"<@{member_id}> joined", now, kind="channelEvent")
        return channel["members"][member_id]


    def channel_view(self: "Workspace", channel: dict, viewer: str) -> dict:
        member = channel["members"].get(viewer)
        owner = member is not None and member["type"] == "owner"
        valid = channel["archivedAt"] is None and channel["deletedAt"] is None
        # service/channel.go setPermissionFlags, each a rule or access_control.go's fallback
        view = {
            "channelID": channel["id"], "name": channel["name"], "topic": channel["topic"], "type": channel["type"],
            "membershipPolicy": channel["membershipPolicy"], "lastMessageID": channel["lastMessageID"],
            "members": list(channel["members"]), "membershipFlag": member["flag"] if member else "",
            "canJoin": self.can(viewer, channel["id"], "join", (valid and channel["type"] == "public") or owner),
            "canPart": self.can(viewer, channel["id"], "leave", True),
            "canObserve": self.can(viewer, channel["id"], "read", self._open_to(channel, viewer)),
            "canSendMessages": valid and self.can(viewer, channel["id"], "message.send",
                                                           self._open_to(channel, viewer)),
            "canDeleteMessages": self.can(viewer, channel["id"], "message.delete.all", False),
            "canChangeMembers": self._manages(channel, viewer, "members.manage"),
            "canChangeMembershipPolicy": self.can_service(viewer, "grant"),
            "canUpdate": self._manages(channel, viewer, "update"),
            "canArchive": self._manages(channel, viewer, "archive"),
            "canDelete": self._manages(channel, viewer, "delete"),
            "createdAt": optional_isoformat(channel["createdAt"]), "updatedAt": optional_isoformat(channel["updatedAt"]),
            "archivedAt": optional_isoformat(channel["archivedAt"]), "deletedAt": optional_isoformat(channel["deletedAt"]),
        }
        if member is not None:  # payload.ChannelUnread: none while nothing is unread
            messages = self._channel_messages(channel["id"])
            unread, threads = self._unread(viewer, channel["id"], messages), self._threads(messages)
            thread_count = self._thread_unreads(viewer, threads)
            if unread["count"] or thread_count:
                view["unread"] = unread | {"threadCount": thread_count} | (
                    {"threadTotal": len(threads)} if threads else {})
        return {key: value for key, value in view.items() if value is not None}

    @staticmethod
    def member_view(member: dict) -> dict:
        view = {"userID": member["userID"], "type": member["type"], "createdAt": optional_isoformat(member["createdAt"])}
        if member["updatedAt"] is not None:
            view["updatedAt"] = optional_isoformat(member["updatedAt"])
        return view
