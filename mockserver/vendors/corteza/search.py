"""Message and thread search (messaging/repository/message.go Find, FindThreads).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

from typing import TYPE_CHECKING

from mockserver.vendors.corteza.exceptions import corteza_error
from mockserver.vendors.corteza.payload import parse_bool, parse_uint64

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

MESSAGES_MAX_LIMIT = 100  # repository/message.go: the default and the most a search answers



def _search_limit(limit) -> int:
    """repository/message.go sanitizeFilter: 0 or over the maximum is the maximum."""
    number = parse_uint64(str(limit or ""))
    return MESSAGES_MAX_LIMIT if number == 0 or number > MESSAGES_MAX_LIMIT else number


class Search:
    def _readable_channels(self: "Workspace", user_id: str, wanted: list[str]) -> set[str]:
        """service/message.go readableChannels: the channels asked for (all when none) that the
        user may read, archived ones left out (the channel list never has them); none is
        NoPermissions."""
        readable = {c["id"] for c in self.channels.values()
                    if c["archivedAt"] is None and (c["type"] == "public" or user_id in c["members"]) and
                    (not wanted or c["id"] in wanted)}
        if not readable:
            raise corteza_error("messaging.service.NoPermissions")
        return readable

    def search(self: "Workspace", user_id: str, f: dict) -> list[dict]:
        """repository/message.go Find: replies of the threads asked for, else top-level messages;
        newest first (oldest first when paging forward); at most 100, which is also the default.
        IDs and booleans as the request parsers read them (anything unreadable is 0, false)."""
        channels = self._readable_channels(user_id, f.get("channelID") or [])
        threads, users = set(f.get("threadID") or ()), set(f.get("userID") or ())
        types = {"" if kind == "text" else kind for kind in f.get("type") or ()}
        bounds = {name: parse_uint64(str(f.get(name) or "")) for name in
                  ("afterMessageID", "beforeMessageID", "fromMessageID", "toMessageID")}
        pinned, bookmarked = parse_bool(f.get("pinnedOnly")), parse_bool(f.get("bookmarkedOnly"))
        query = (f.get("query") or "").lower()
        found = []
        for m in self.messages.values():
            if m["deletedAt"] is not None or m["channelID"] not in channels:
                continue
            if (m["replyTo"] not in threads) if threads else (m["replyTo"] is not None):
                continue
            if (users and m["userID"] not in users) or (types and m["type"] not in types):
                continue
            if (pinned and not m["pinned"]) or (bookmarked and user_id not in m["bookmarks"]):
                continue
            number = int(m["id"])
            if (bounds["afterMessageID"] and number <= bounds["afterMessageID"]) or \
                    (bounds["beforeMessageID"] and number >= bounds["beforeMessageID"]) or \
                    (bounds["fromMessageID"] and number < bounds["fromMessageID"]) or \
                    (bounds["toMessageID"] and number > bounds["toMessageID"]):
                continue
            if query and query not in m["message"].lower():
                continue
            found.append(m)
        forward = bool(bounds["afterMessageID"] or bounds["fromMessageID"])  # paging forward: oldest first
        found.sort(key=lambda m: int(m["id"]), reverse=not forward)
        return found[:_search_limit(f.get("limit"))]

    def search_threads(self: "Workspace", user_id: str, f: dict) -> list[dict]:
        """repository/message.go FindThreads: the threads (newest first, up to the limit) the user
        started or replied to, each root followed by its replies; `query` filters them all."""
        channels = self._readable_channels(user_id, f.get("channelID") or [])
        live = [m for m in self.messages.values() if m["deletedAt"] is None]
        mine = {m["replyTo"] for m in live if m["replyTo"] and m["userID"] == user_id}
        roots = sorted((m for m in live if m["replyTo"] is None and m["replies"] and m["channelID"] in channels and
                        (m["userID"] == user_id or m["id"] in mine)), key=lambda m: int(m["id"]), reverse=True)
        query = (f.get("query") or "").lower()
        roots = roots[:_search_limit(f.get("limit"))]
        threads = self._threads(roots)
        found = []
        for root in roots:
            thread = [root] + sorted(threads[root["id"]], key=lambda m: int(m["id"]))
            found += [m for m in thread if not query or query in m["message"].lower()]
        return found
