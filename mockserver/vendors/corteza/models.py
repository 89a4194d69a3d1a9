"""A Corteza messaging workspace: users with JWTs, roles and permission rules, channels with
members, messages (threads, pins, bookmarks, reactions, read markers), attachments, statuses
and webhooks. IDs are uint64 decimal strings, as the real server sends them."""

import functools
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import jwt

from mockserver.clock import optional_isoformat
from mockserver.records import (
    ANY,
    BOOL,
    INT,
    NUM,
    RNG,
    STR,
    StateError,
    arr,
    b64,
    by_id,
    mapping,
    nullable,
    obj,
    refers,
    rng_dump,
    rng_load,
    tuple_of,
    unb64,
)
from mockserver.vendors.corteza.exceptions import corteza_error

MENTION = re.compile(r"<@(\d{1,20})(?:\s[^<>]*)?>")  # [^<>]: a try ends at the next "<", so matching stays linear
DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?$")
CLOCK_TIME = re.compile(r"^(\d{1,2})(?::(\d\d))?\s*(am|pm)?$", re.IGNORECASE)
MESSAGES_MAX_LIMIT = 100  # repository/message.go: the default and the most a search answers
# Corteza's own role IDs (pkg/permissions/permissions.go: EveryoneRoleID = 1, AdminsRoleID = 2).
EVERYONE_ROLE, ADMINS_ROLE = "1", "2"
# Permission resources and the service-level checks (messaging/types/permission_resources.go and
# messaging/service/access_control.go, 2020.3.0-rc.3).
SERVICE_RESOURCE, CHANNEL_RESOURCE = "messaging", "messaging:channel:"
EFFECTIVE_OPERATIONS = ("access", "grant", "settings.read", "settings.manage", "channel.public.create",
                        "channel.private.create", "channel.group.create")
SERVICE_ALLOWED_WITHOUT_RULE = {"channel.public.create", "channel.private.create", "channel.group.create"}
CHANNEL_TYPES = ("public", "private", "group")
MEMBERSHIP_POLICIES = ("", "featured", "forced")
MAX_NAME_BYTES, MAX_TOPIC_BYTES = 40, 200  # service/channel.go settingsChannelNameLength, ...TopicLength
# The built-in commands (rest/commands.go List, service/command.go Do).
COMMANDS = {"tableflip": "(╯°□°）╯︵ ┻━┻", "unflip": "┬─┬ ノ( ゜-゜ノ)", "shrug": "¯\\\\_(ツ)_/¯"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[\x20-\x7e]*)?")


TRUTHY = re.compile(r"\s*(t(rue)?|y(es)?|1)\s*")


def parse_bool(text: str | None) -> bool:
    """pkg/payload ParseBool: t, true, y, yes or 1 in any case; anything else is false."""
    return text is not None and TRUTHY.fullmatch(text.lower()) is not None


def parse_uint64(text: str) -> int:
    """pkg/payload ParseUint64: a uint64 in decimal, or 0 for anything else."""
    return int(text) if text.isascii() and text.isdigit() and int(text) < 2**64 else 0


def _search_limit(limit) -> int:
    """repository/message.go sanitizeFilter: 0 or over the maximum is the maximum."""
    number = parse_uint64(str(limit or ""))
    return MESSAGES_MAX_LIMIT if number == 0 or number > MESSAGES_MAX_LIMIT else number


def _without_id(resource: str) -> str:
    """A rule's resource as the whitelist names it: `messaging:channel:123` or `:*` is `messaging:channel:`."""
    if resource.startswith(CHANNEL_RESOURCE):
        rest = resource[len(CHANNEL_RESOURCE):]
        if rest == "*" or rest.isdigit():
            return CHANNEL_RESOURCE
    return resource


def parse_expires(text: str, now: float) -> tuple[float | None, bool]:
    """The status `expires` grammar (inferred): when-active, afternoon, tomorrow, 1h/30m/1h30m,
    1 PM / 13:00, or a date (YYYY-MM-DD). Returns (timestamp or None, expires when active)."""
    text = text.strip().lower()
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if text in ("", "never"):
        return None, False
    if text == "when-active":
        return None, True
    if text == "tomorrow":
        return (today + timedelta(days=1)).timestamp(), False
    if text.startswith("tomorrow "):  # "tomorrow 1h": from the start of tomorrow
        tomorrow = (today + timedelta(days=1)).timestamp()
        later, _ = parse_expires(text.removeprefix("tomorrow ").strip(), tomorrow)
        if later is None:
            raise corteza_error(f"invalid expires value: {text}")
        return later, False
    if text == "afternoon":
        moment = today + timedelta(hours=13)
        return (moment if moment.timestamp() > now else moment + timedelta(days=1)).timestamp(), False
    if (duration := DURATION.match(text)) and any(duration.groups()):
        hours, minutes = (int(group or 0) for group in duration.groups())
        return now + hours * 3600 + minutes * 60, False
    if clock := CLOCK_TIME.match(text):
        hour, minute, half = int(clock.group(1)), int(clock.group(2) or 0), clock.group(3)
        if half:
            hour = hour % 12 + (12 if half == "pm" else 0)
        if hour < 24 and minute < 60:
            moment = today + timedelta(hours=hour, minutes=minute)
            return (moment if moment.timestamp() > now else moment + timedelta(days=1)).timestamp(), False
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp(), False
    except ValueError:
        raise corteza_error(f"invalid expires value: {text}") from None



@functools.lru_cache(maxsize=4096)  # every request presents its token again; decoding it dominated reads
def _claims(token: str, secret: str) -> dict | None:
    """A token's claims if it is an HS256 token signed with `secret` (expiry not checked here)."""
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return None

WHEN = nullable(NUM)


class Workspace:
    SCHEMA = 1  # of dump(): see mockserver.records
    RECORD = obj(
        secret=STR, rng=RNG, last_id=INT, everyone_role=STR, admin_role=STR, roles=mapping(STR),
        rules=mapping(arr(tuple_of(STR, STR, {"enum": ["allow", "deny"]}))),
        users=arr(obj(userID=STR, name=STR, handle=STR, email=STR, roles=arr(STR))),
        tokens=mapping(STR),
        channels=arr(obj(id=STR, name=STR, topic=STR, type=STR, membershipPolicy=STR, createdAt=NUM, updatedAt=WHEN,
                         archivedAt=WHEN, deletedAt=WHEN, lastMessageID=STR,
                         members=mapping(obj(userID=STR, type=STR, createdAt=NUM, updatedAt=WHEN, flag=STR)))),
        messages=arr(obj(id=STR, type=STR, message=STR, channelID=STR, userID=STR, replyTo=nullable(STR), replies=INT,
                         repliesFrom=arr(STR), att=nullable(STR), mentions=arr(STR), reactions=mapping(arr(STR)),
                         pinned=BOOL, bookmarks=arr(STR), createdAt=NUM, updatedAt=WHEN, deletedAt=WHEN)),
        attachments=arr(obj(id=STR, userID=STR, name=STR, mime=STR, size=INT, data=STR, preview=nullable(STR),
                            createdAt=NUM)),
        read_markers=arr(tuple_of(STR, STR, STR)),
        statuses=arr(obj(userID=STR, icon=STR, message=STR, expires=WHEN, expiresWhenActive=BOOL, createdAt=NUM)),
        webhooks=arr(obj(id=STR, owner=STR, createdAt=NUM, updatedAt=WHEN, token=STR, kind=STR, userId=STR,
                         channelId=STR, trigger=STR, url=STR, username=nullable(STR), avatarURL=nullable(STR))),
        deliveries=arr({"type": "object"}), activity=arr(ANY),
    )

    @classmethod
    def seed(cls, ctx) -> "Workspace":
        fixtures, rng, fake = ctx.vendor.fixtures, ctx.rng, ctx.fake
        space, user_ids = cls._identities(ctx)
        moment = ctx.now - 30 * 86400

        def later() -> float:
            nonlocal moment
            moment += rng.uniform(60, 4 * 3600)
            return moment

        for index, user_id in enumerate(user_ids):
            name = fake.name()
            space.users[user_id] = {"userID": user_id, "name": name, "handle": name.lower().replace(" ", "."),
                                    "email": f"{name.lower().replace(' ', '.')}@example.com",
                                    "roles": space._seeded_roles(index)}
        for spec in fixtures["channels"]:
            count = len(user_ids) if spec["members"] == "all" else spec["members"]
            members = user_ids[:count]
            channel = space._add_channel(user_ids[0], spec["name"], spec["topic"], spec["type"], members, later())
            for _ in range(fixtures["messages_per_channel"]):
                space._add_message(channel, rng.choice(members), fake.sentence(nb_words=rng.randint(4, 12)), later())
            root = space.messages[channel["lastMessageID"]]
            space._add_message(channel, members[-1], fake.sentence(), later(), reply_to=root)
            root["reactions"].setdefault("👍", []).append(members[0])
        general = next(iter(space.channels.values()))
        space.messages[next(m for m in space.messages if space.messages[m]["channelID"] == general["id"])]["pinned"] = True
        space.tokens = space._seeded_tokens(user_ids, ctx.now)
        return space

    @classmethod
    def _identities(cls, ctx) -> tuple["Workspace", list[str]]:
        """The first draws of a seeding, all its credentials need: a workspace with its roles and
        rules, and the users' ids."""
        fixtures, rng = ctx.vendor.fixtures, ctx.rng
        space = cls(fixtures, ctx.secret("jwt-secret"), rng, rng.randint(10**17, 2 * 10**17))
        space.everyone_role, space.admin_role = EVERYONE_ROLE, ADMINS_ROLE
        space.roles = {space.everyone_role: "everyone", space.admin_role: "admins"}
        space.rules = {
            space.admin_role: {(r["resource"], r["operation"]): "allow" for r in fixtures["admin_rules"]},
            space.everyone_role: {(r["resource"], r["operation"]): "allow" for r in fixtures["everyone_rules"]},
        }
        return space, [space.new_id() for _ in range(fixtures["users"])]

    def _seeded_roles(self, index: int) -> list[str]:
        return [self.everyone_role] + ([self.admin_role] if index == 0 else [])

    def _seeded_tokens(self, user_ids: list[str], now: float) -> dict[str, str]:
        expires = now + self.fixtures["token_days"] * 86400
        return {user_id: self._mint(user_id, self._seeded_roles(index), expires) for index, user_id in enumerate(user_ids)}

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        space, user_ids = cls._identities(ctx)
        space.tokens = space._seeded_tokens(user_ids, ctx.now)
        return space.credentials()

    def dump(self) -> dict:
        return {
            "secret": self.secret, "rng": rng_dump(self.rng), "last_id": self.last_id,
            "everyone_role": self.everyone_role, "admin_role": self.admin_role, "roles": self.roles,
            "rules": {role: [[resource, operation, access] for (resource, operation), access in rules.items()]
                      for role, rules in self.rules.items()},
            "users": list(self.users.values()), "tokens": self.tokens,
            "channels": list(self.channels.values()),
            "messages": [message | {"bookmarks": sorted(message["bookmarks"])} for message in self.messages.values()],
            "attachments": [attachment | {"data": b64(attachment["data"])} for attachment in self.attachments.values()],
            "read_markers": [[user, key, last] for (user, key), last in self.read_markers.items()],
            "statuses": list(self.statuses.values()), "webhooks": list(self.webhooks.values()),
            "deliveries": self.deliveries, "activity": self.activity,
        }

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Workspace":
        space = cls(ctx.vendor.fixtures, data["secret"], rng_load(data["rng"]), data["last_id"])
        space.everyone_role, space.admin_role, space.roles = data["everyone_role"], data["admin_role"], data["roles"]
        space.rules = {role: {(resource, operation): access for resource, operation, access in rules}
                       for role, rules in data["rules"].items()}
        space.users, space.tokens = by_id(data["users"], "userID"), data["tokens"]
        space.channels = by_id(data["channels"], "id")
        space.messages = by_id([message | {"bookmarks": set(message["bookmarks"])} for message in data["messages"]], "id")
        space.attachments = by_id([attachment | {"data": unb64(attachment["data"])}
                                   for attachment in data["attachments"]], "id")
        space.read_markers = {(user, key): last for user, key, last in data["read_markers"]}
        space.statuses = by_id(data["statuses"], "userID")
        space.webhooks = by_id(data["webhooks"], "id")
        space.deliveries, space.activity = data["deliveries"], data["activity"]
        if not space.tokens or not all(id_.isdigit() for id_ in [*space.users, *space.channels, *space.messages]):
            raise StateError("ids are decimal strings, and users have tokens")
        users, channels, messages = space.users, space.channels, space.messages.values()
        refers(space.tokens, users, "a token's user")
        refers([member for channel in channels.values() for member in channel["members"]], users, "a channel member")
        refers([message["channelID"] for message in messages], channels, "a message's channel")
        refers([message["userID"] for message in messages], users, "a message's author")
        refers([message["replyTo"] for message in messages if message["replyTo"]], space.messages, "a thread")
        refers([message["att"] for message in messages if message["att"]], space.attachments, "an attachment")
        refers([webhook["channelId"] for webhook in space.webhooks.values()], channels, "a webhook's channel")
        return space

    def __init__(self, fixtures: dict, secret: str, rng, last_id: int):
        self.fixtures = fixtures
        self.secret = secret
        self.rng = rng
        self.last_id = last_id
        self.everyone_role = self.admin_role = ""
        self.roles: dict[str, str] = {}
        self.rules: dict[str, dict[tuple[str, str], str]] = {}
        self.users: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.channels: dict[str, dict] = {}
        self.messages: dict[str, dict] = {}
        self.attachments: dict[str, dict] = {}
        self.read_markers: dict[tuple[str, str], str] = {}  # (user, channel or thread) -> last read message
        self.statuses: dict[str, dict] = {}
        self.webhooks: dict[str, dict] = {}
        self.deliveries: list[dict] = []
        self.activity: list[dict] = []

    def new_id(self) -> str:
        self.last_id += self.rng.randint(1, 10**6)
        return str(self.last_id)

    # --- tokens -------------------------------------------------------------------------------

    def _mint(self, user_id: str, roles: list[str], expires: float) -> str:
        claims = {"userID": user_id, "memberOf": " ".join(roles), "exp": int(expires),
                  "iat": int(expires - self.fixtures["token_days"] * 86400)}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def accepts_credential(self, credential: str, now: float) -> bool:
        """Only our own unexpired HS256 tokens (expiry on the tenant's clock)."""
        claims = _claims(credential, self.secret)
        return claims is not None and claims.get("exp", 0) > now and claims.get("userID") in self.users

    # --- permissions --------------------------------------------------------------------------

    def _verdict(self, user_id: str, resources: tuple[str, ...], operation: str) -> str | None:
        """Rules of the user's roles, the most specific resource first; deny wins; None: no rule."""
        roles = self.users[user_id]["roles"]
        for resource in resources:
            verdicts = {self.rules.get(role, {}).get((resource, operation)) for role in roles} - {None}
            if verdicts:
                return "deny" if "deny" in verdicts else "allow"
        return None

    def can(self, user_id: str, channel_id: str, operation: str) -> bool:
        return self._verdict(user_id, (f"{CHANNEL_RESOURCE}{channel_id}", f"{CHANNEL_RESOURCE}*"), operation) == "allow"

    def can_service(self, user_id: str, operation: str) -> bool:
        """A service-level operation: its rule, else the source's fallback (channel creation is
        allowed, everything else denied: access_control.go)."""
        verdict = self._verdict(user_id, (SERVICE_RESOURCE,), operation)
        return verdict == "allow" if verdict else operation in SERVICE_ALLOWED_WITHOUT_RULE

    def effective(self, user_id: str) -> list[dict]:
        """`Effective`: the caller's service-level permissions, whatever `resource` asks."""
        return [{"resource": SERVICE_RESOURCE, "operation": operation, "allow": self.can_service(user_id, operation)}
                for operation in EFFECTIVE_OPERATIONS]

    def whitelist(self) -> list[dict]:
        """What rules may name (`Whitelist().Flatten()`)."""
        return [{"resource": resource, "operation": operation}
                for resource, operations in self.fixtures["permissions"].items() for operation in operations]

    def role_rules(self, caller: str, role_id: str) -> list[dict]:
        """`FindRulesByRoleID`: needs `grant`; a role without rules (or unknown) has none."""
        if not self.can_service(caller, "grant"):
            raise corteza_error("messaging.service.NoPermissions")
        return [{"roleID": role_id, "resource": resource, "operation": operation, "access": access}
                for (resource, operation), access in self.rules.get(role_id, {}).items()]

    def update_rules(self, caller: str, role_id: str, rules: list[dict]) -> None:
        """`Grant`: needs `grant`; every rule within the whitelist or none applied; `inherit` (or
        any access but allow and deny) removes a rule."""
        if not self.can_service(caller, "grant"):
            raise corteza_error("messaging.service.NoGrantPermissions")
        allowed = self.fixtures["permissions"]
        for rule in rules:
            if rule["operation"] not in allowed.get(_without_id(rule["resource"]), ()):
                raise corteza_error(f"invalid rule: '{rule['operation']}' on '{rule['resource']}'")
        own = self.rules.setdefault(role_id, {})
        for rule in rules:
            key = (rule["resource"], rule["operation"])
            if rule["access"] in ("allow", "deny"):
                own[key] = rule["access"]
            else:
                own.pop(key, None)

    def clear_rules(self, caller: str, role_id: str) -> None:
        """`Delete`: the role's rules read (needs `grant`), then each set to inherit."""
        self.role_rules(caller, role_id)
        self.rules.pop(role_id, None)

    # --- channels -----------------------------------------------------------------------------

    def _add_channel(self, creator: str, name: str, topic: str, kind: str, members: list[str], now: float) -> dict:
        channel: dict = {"id": self.new_id(), "name": name, "topic": topic, "type": kind, "membershipPolicy": "",
                   "createdAt": now, "updatedAt": None, "archivedAt": None, "deletedAt": None, "lastMessageID": "0",
                   "members": {}}
        for user_id in dict.fromkeys([creator, *members]):
            channel["members"][user_id] = {"userID": user_id, "type": "owner" if user_id == creator else "member",
                                           "createdAt": now, "updatedAt": None, "flag": ""}
        self.channels[channel["id"]] = channel
        return channel

    def channel(self, channel_id: str, user_id: str) -> dict:
        """A channel the user may see (public ones, or ones they belong to)."""
        channel = self.channels.get(channel_id)
        if channel is None or (channel["type"] != "public" and user_id not in channel["members"]):
            raise corteza_error("channel does not exist")
        return channel

    def _user(self, user_id: str) -> dict:
        if user_id not in self.users:
            raise corteza_error("user does not exist")
        return self.users[user_id]

    def _manages(self, channel: dict, user_id: str, operation: str) -> bool:
        """A rule on the operation, else the owner fallback (access_control.go isChannelOwnerFallback)."""
        member = channel["members"].get(user_id)
        return self._channel_can(user_id, channel, operation, member is not None and member["type"] == "owner")

    def _channel_can(self, user_id: str, channel: dict, operation: str, fallback: bool) -> bool:
        """access_control.go can(): the most specific rule of the user's roles, else the fallback."""
        verdict = self._verdict(user_id, (f"{CHANNEL_RESOURCE}{channel['id']}", f"{CHANNEL_RESOURCE}*"), operation)
        return verdict == "allow" if verdict else fallback

    def _open_to(self, channel: dict, user_id: str) -> bool:
        """canReadFallback and canSendMessagesFallback: a valid channel, public or the user's."""
        return channel["archivedAt"] is None and channel["deletedAt"] is None and (
            channel["type"] == "public" or user_id in channel["members"])

    def _require(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise corteza_error(f"not allowed to {what}")

    def list_channels(self, user_id: str, query: str | None) -> list[dict]:
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

    def _may_create(self, user_id: str, kind: str) -> None:
        if not self.can_service(user_id, f"channel.{kind}.create"):
            raise corteza_error("messaging.service.NoPermissions")

    def create_channel(self, user_id: str, body: dict, now: float) -> dict:
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
        channel = self._add_channel(user_id, name, topic, kind, members, now)
        channel["membershipPolicy"] = policy
        created = f"<@{user_id}> created {kind} channel" + (f" **{name}**" if name else "") + (
            f", topic: {topic}" if name and topic else "")
        self._add_message(channel, user_id, created, now, kind="channelEvent")
        return channel

    def update_channel(self, user_id: str, channel_id: str, body: dict, now: float) -> dict:
        """service/channel.go Update: name and topic checked as on create (the name is needed
        unless the request says group); a new name or topic is announced; the membership policy
        is set to what is sent (nothing: the default), which needs `grant` to change."""
        name, topic, kind = body.get("name") or "", body.get("topic") or "", body.get("type") or ""
        self._check_name_and_topic(name, topic, kind)
        channel = self.channel(channel_id, user_id)
        self._require(self._manages(channel, user_id, "update"), "update this channel")
        if kind in CHANNEL_TYPES and kind != channel["type"]:
            self._may_create(user_id, kind)
            channel["type"] = kind
        if name and name != channel["name"]:
            self._add_message(channel, user_id, f"<@{user_id}> renamed channel **{name}** (was: {channel['name']})"
                              if channel["name"] else f"<@{user_id}> set channel name to **{name}**", now,
                              kind="channelEvent")
            channel["name"] = name
        if topic and topic != channel["topic"]:
            self._add_message(channel, user_id, f"<@{user_id}> changed channel topic: {topic} (was: {channel['topic']})"
                              if channel["topic"] else f"<@{user_id}> set channel topic to {topic}", now,
                              kind="channelEvent")
            channel["topic"] = topic
        policy = body.get("membershipPolicy") or ""
        if policy != channel["membershipPolicy"] and not self.can_service(user_id, "grant"):
            raise corteza_error("messaging.service.NoPermissions")
        channel["membershipPolicy"] = policy if policy in MEMBERSHIP_POLICIES else ""
        channel["updatedAt"] = now
        return channel

    # state -> (the operation it needs, its field, the value it sets, the error if already so)
    _STATES = {"delete": ("delete", "deletedAt", True, "channel already deleted"),
               "undelete": ("undelete", "deletedAt", False, "channel not deleted"),
               "archive": ("archive", "archivedAt", True, "channel already archived"),
               "unarchive": ("unarchive", "archivedAt", False, "channel not archived")}

    def set_state(self, user_id: str, channel_id: str, state: str, now: float) -> dict | None:
        """rest/channel.go State; an unknown state changes nothing (None: `{"response": false}`)."""
        if state not in self._STATES:
            return None
        operation, field, set_it, already = self._STATES[state]
        channel = self.channel(channel_id, user_id)
        self._require(self._manages(channel, user_id, operation), f"{state} this channel")
        if (channel[field] is not None) == set_it:
            raise corteza_error(already)
        channel[field] = now if set_it else None
        channel["updatedAt"] = now
        return channel

    def set_flag(self, user_id: str, channel_id: str, flag: str) -> dict | None:
        """rest/channel.go SetFlag: pinned, hidden or ignored; another flag changes nothing (None)."""
        if flag not in ("pinned", "hidden", "ignored", ""):
            return None
        channel = self.channel(channel_id, user_id)
        member = channel["members"].get(user_id)
        if member is None:
            raise corteza_error("not a member of this channel")
        member["flag"] = flag
        return channel

    def join(self, user_id: str, channel_id: str, member_id: str, now: float) -> dict:
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("adding members to a group is not currently supported")
        self._user(member_id)
        if member_id == user_id:
            self._require(channel["type"] == "public" or user_id in channel["members"], "join this channel")
        else:
            self._require(self._manages(channel, user_id, "members.manage"), "change members of this channel")
        return self._add_member(channel, member_id, now)

    def part(self, user_id: str, channel_id: str, member_id: str, now: float) -> None:
        """service/channel.go DeleteMember: removing someone who is not a member is no error."""
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("removing members from a group is currently not supported")
        if member_id != user_id:
            self._require(self._manages(channel, user_id, "members.manage"), "change members of this channel")
        if member_id not in channel["members"]:
            return
        del channel["members"][member_id]
        self._add_message(channel, member_id, f"<@{member_id}> left", now, kind="channelEvent")

    def invite(self, user_id: str, channel_id: str, invited: list[str], now: float) -> list[dict]:
        channel = self.channel(channel_id, user_id)
        if channel["type"] == "group":
            raise corteza_error("adding members to a group is not currently supported")
        self._require(self._manages(channel, user_id, "members.manage") or
                      (channel["type"] == "public" and user_id in channel["members"]), "invite to this channel")
        for member_id in invited:
            self._user(member_id)
        return [self._add_member(channel, member_id, now, "invitee") for member_id in dict.fromkeys(invited)]

    def _add_member(self, channel: dict, member_id: str, now: float, kind: str = "member") -> dict:
        """The member (added, with a channelEvent message, if they were not one yet)."""
        if member_id not in channel["members"]:
            channel["members"][member_id] = {"userID": member_id, "type": kind, "createdAt": now,
                                             "updatedAt": None, "flag": ""}
            self._add_message(channel, member_id, f"<@{member_id}> joined", now, kind="channelEvent")
        return channel["members"][member_id]

    # --- messages -----------------------------------------------------------------------------

    def _add_message(self, channel: dict, user_id: str, text: str, now: float, kind: str = "",
                     reply_to: dict | None = None, attachment: str | None = None) -> dict:
        message = {"id": self.new_id(), "type": kind, "message": text, "channelID": channel["id"], "userID": user_id,
                   "replyTo": reply_to["id"] if reply_to else None, "replies": 0, "repliesFrom": [],
                   "att": attachment, "mentions": [m for m in dict.fromkeys(MENTION.findall(text)) if m in self.users],
                   "reactions": {}, "pinned": False, "bookmarks": set(),
                   "createdAt": now, "updatedAt": None, "deletedAt": None}
        self.messages[message["id"]] = message
        if reply_to:
            reply_to["replies"] += 1
            if user_id not in reply_to["repliesFrom"]:
                reply_to["repliesFrom"].append(user_id)
        else:
            channel["lastMessageID"] = message["id"]
        return message

    def message(self, user_id: str, channel_id: str, message_id: str) -> tuple[dict, dict]:
        channel = self.channel(channel_id, user_id)
        message = self.messages.get(message_id)
        if message is None or message["channelID"] != channel_id or message["deletedAt"] is not None:
            raise corteza_error("message does not exist")
        return channel, message

    def _may_send(self, channel: dict, user_id: str) -> None:
        """CanSendMessage: a rule, else a valid channel that is public or the user's (a public
        channel needs no membership); never an archived or deleted one."""
        self._require(channel["archivedAt"] is None and channel["deletedAt"] is None and
                      self._channel_can(user_id, channel, "message.send", self._open_to(channel, user_id)),
                      "send messages to this channel")

    def post(self, user_id: str, channel_id: str, text: str, now: float, kind: str = "",
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

    def edit(self, user_id: str, channel_id: str, message_id: str, text: str, now: float) -> dict:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(message["userID"] == user_id or self.can(user_id, channel_id, "message.update.all"),
                      "edit this message")
        if not text.strip():
            raise corteza_error("message is empty")
        message.update(message=text, updatedAt=now,
                       mentions=[m for m in dict.fromkeys(MENTION.findall(text)) if m in self.users])
        return message

    def delete(self, user_id: str, channel_id: str, message_id: str, now: float) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(message["userID"] == user_id or self.can(user_id, channel_id, "message.delete.all"),
                      "delete this message")
        message["deletedAt"] = now
        if message["replyTo"] and message["replyTo"] in self.messages:
            parent = self.messages[message["replyTo"]]
            parent["replies"] = max(0, parent["replies"] - 1)

    def set_pin(self, user_id: str, channel_id: str, message_id: str, pinned: bool) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(user_id in channel["members"], "pin messages in this channel")
        message["pinned"] = pinned

    def set_bookmark(self, user_id: str, channel_id: str, message_id: str, bookmarked: bool) -> None:
        _, message = self.message(user_id, channel_id, message_id)
        (message["bookmarks"].add if bookmarked else message["bookmarks"].discard)(user_id)

    def react(self, user_id: str, channel_id: str, message_id: str, reaction: str, add: bool) -> None:
        channel, message = self.message(user_id, channel_id, message_id)
        self._require(self._channel_can(user_id, channel, "message.react", True),  # CanReactMessage: Allowed
                      "react to messages in this channel")
        users = message["reactions"].setdefault(reaction, [])
        if add and user_id not in users:
            users.append(user_id)
        elif not add and user_id in users:
            users.remove(user_id)
        if not users:
            del message["reactions"][reaction]

    def _unread(self, user_id: str, key: str, messages: list[dict]) -> dict:
        """Messages past the user's read marker (others', not `channelEvent`s: repository/message.go
        CountFromMessageID), as outgoing.Unread has them (lastMessageID left out while none)."""
        marker = self.read_markers.get((user_id, key), "0")
        unread = [m for m in messages if int(m["id"]) > int(marker) and m["userID"] != user_id and
                  m["type"] != "channelEvent"]
        return ({"lastMessageID": marker} if marker != "0" else {}) | {"count": len(unread), "threadCount": 0}

    def _thread_unreads(self, user_id: str, channel_id: str) -> tuple[int, int]:
        """(threads with unread replies, threads) of a channel, for the user."""
        threads = [m for m in self._channel_messages(channel_id) if m["replies"]]
        unread = sum(1 for m in threads if self._unread(user_id, m["id"], self._thread(m["id"]))["count"])
        return unread, len(threads)

    def _thread(self, root_id: str) -> list[dict]:
        return [m for m in self.messages.values() if m["replyTo"] == root_id and m["deletedAt"] is None]

    def _channel_messages(self, channel_id: str) -> list[dict]:
        return [m for m in self.messages.values()
                if m["channelID"] == channel_id and m["replyTo"] is None and m["deletedAt"] is None]

    def mark_as_read(self, user_id: str, channel_id: str, thread_id: str | None, last_read: str | None) -> dict:
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
            thread_count, _ = self._thread_unreads(user_id, channel["id"])
            messages, key = self._channel_messages(channel["id"]), channel["id"]
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
        self.read_markers[(user_id, key)] = last_read
        if not thread_id:  # ClearThreads: every thread of the channel read
            for root in self._channel_messages(channel["id"]):
                if root["replies"]:
                    newest = max((m["id"] for m in self._thread(root["id"])), key=int, default="0")
                    self.read_markers[(user_id, root["id"])] = newest
        return self._unread(user_id, key, messages) | {"threadCount": thread_count}

    def execute(self, user_id: str, channel_id: str, command: str, text: str, now: float) -> dict | None:
        """service/command.go Do: `me` (nothing without input), `shrug`, `tableflip`, `unflip`;
        another name is the trigger of the channel's outgoing webhooks (2020.3); else nothing."""
        if command == "me":
            return self.post(user_id, channel_id, text, now, kind="illeism") if text else None
        if command in COMMANDS:
            return self.post(user_id, channel_id, f"{text} {COMMANDS[command]}" if text else COMMANDS[command], now)
        return None

    # --- attachments --------------------------------------------------------------------------

    def attach(self, user_id: str, channel_id: str, name: str, mime: str, data: bytes, reply_to: str | None,
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

    def sign(self, attachment_id: str, user_id: str) -> str:
        return hmac.new(self.secret.encode(), f"{attachment_id}:{user_id}".encode(), hashlib.sha256).hexdigest()[:40]

    def attachment(self, attachment_id: str, sign: str, user_id: str) -> dict:
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

    def attachment_view(self, attachment_id: str, viewer: str) -> dict:
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

    # --- search -------------------------------------------------------------------------------

    def _readable_channels(self, user_id: str, wanted: list[str]) -> set[str]:
        """service/message.go readableChannels: the channels asked for (all when none) that the
        user may read, archived ones left out (the channel list never has them); none is
        NoPermissions."""
        readable = {c["id"] for c in self.channels.values()
                    if c["archivedAt"] is None and (c["type"] == "public" or user_id in c["members"]) and
                    (not wanted or c["id"] in wanted)}
        if not readable:
            raise corteza_error("messaging.service.NoPermissions")
        return readable

    def search(self, user_id: str, f: dict) -> list[dict]:
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

    def search_threads(self, user_id: str, f: dict) -> list[dict]:
        """repository/message.go FindThreads: the threads (newest first, up to the limit) the user
        started or replied to, each root followed by its replies; `query` filters them all."""
        channels = self._readable_channels(user_id, f.get("channelID") or [])
        live = [m for m in self.messages.values() if m["deletedAt"] is None]
        mine = {m["replyTo"] for m in live if m["replyTo"] and m["userID"] == user_id}
        roots = sorted((m for m in live if m["replyTo"] is None and m["replies"] and m["channelID"] in channels and
                        (m["userID"] == user_id or m["id"] in mine)), key=lambda m: int(m["id"]), reverse=True)
        query = (f.get("query") or "").lower()
        found = []
        for root in roots[:_search_limit(f.get("limit"))]:
            thread = [root] + sorted(self._thread(root["id"]), key=lambda m: int(m["id"]))
            found += [m for m in thread if not query or query in m["message"].lower()]
        return found

    # --- statuses and activity ----------------------------------------------------------------

    def set_status(self, user_id: str, body: dict, now: float) -> dict:
        expires, when_active = parse_expires(body.get("expires") or "", now)
        self.statuses[user_id] = {"userID": user_id, "icon": body.get("icon") or "", "message": body.get("message") or "",
                                  "expires": expires, "expiresWhenActive": when_active, "createdAt": now}
        return self.statuses[user_id]

    def current_statuses(self, now: float) -> list[dict]:
        return [s for s in self.statuses.values() if s["expires"] is None or s["expires"] > now]

    def record_activity(self, user_id: str, body: dict, now: float) -> None:
        """rest/activity.go Send, its checks and wording (an activity is only relayed to
        subscribers; the mock keeps the last 100)."""
        if not body.get("channelID") and body.get("messageID"):
            raise corteza_error("can not send activity on message without channel ID")
        if not body.get("kind"):
            raise corteza_error("missing value for activity kind")
        if body["kind"] in ("connected", "disconnected"):
            raise corteza_error("can not use reserved values for activity kind")
        self.activity = (self.activity + [{"userID": user_id, "kind": body["kind"], "channelID": body.get("channelID"),
                                           "messageID": body.get("messageID"), "at": optional_isoformat(now)}])[-100:]

    # --- webhooks -----------------------------------------------------------------------------

    def save_webhook(self, user_id: str, body: dict, now: float, allowed, webhook_id: str | None = None) -> dict:
        channel = self.channel(body["channelID"], user_id)
        self._require(user_id in channel["members"] or self.can(user_id, channel["id"], "update"),
                      "manage webhooks of this channel")
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
            self.webhooks[webhook["id"]] = webhook
        else:
            webhook = self.webhook(user_id, webhook_id)
            webhook.update(fields, updatedAt=now)
        return webhook

    def webhook(self, user_id: str, webhook_id: str) -> dict:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or (webhook["owner"] != user_id and not self.can(user_id, webhook["channelId"], "update")):
            raise corteza_error("webhook does not exist")
        return webhook

    def list_webhooks(self, user_id: str, channel_id: str | None, owner: str | None) -> list[dict]:
        return [w for w in self.webhooks.values()
                if (w["owner"] == user_id or self.can(user_id, w["channelId"], "update")) and
                (channel_id is None or w["channelId"] == channel_id) and (owner is None or w["owner"] == owner)]

    def delete_webhook(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)

    def by_token(self, webhook_id: str, token: str) -> dict:
        """repository/webhook.go GetByToken, with its errors."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            raise corteza_error("sql: no rows in result set")
        if not hmac.compare_digest(webhook["token"], token):
            raise corteza_error("Invalid Webhook Token")
        return webhook

    def incoming(self, webhook_id: str, token: str, content: str, now: float) -> dict:
        webhook = self.by_token(webhook_id, token)
        if webhook["kind"] != "incoming":
            raise corteza_error("not an incoming webhook")
        if not (content or "").strip():
            raise corteza_error("content is required")
        channel = self.channels[webhook["channelId"]]
        return self._add_message(channel, webhook["userId"], content, now)

    def outgoing_for(self, message: dict) -> list[dict]:
        """Outgoing webhooks of the message's channel whose trigger word starts the message."""
        words = message["message"].split()
        return [w for w in self.webhooks.values()
                if w["kind"] == "outgoing" and w["channelId"] == message["channelID"] and words and
                words[0] == w["trigger"] and message["userID"] != w["userId"]]

    def bot_reply(self, webhook_id: str, text: str, now: float) -> None:
        webhook = self.webhooks.get(webhook_id)
        if webhook is not None and text.strip():
            self._add_message(self.channels[webhook["channelId"]], webhook["userId"], text, now)

    # --- views --------------------------------------------------------------------------------

    def channel_view(self, channel: dict, viewer: str) -> dict:
        member = channel["members"].get(viewer)
        owner = member is not None and member["type"] == "owner"
        valid = channel["archivedAt"] is None and channel["deletedAt"] is None
        # service/channel.go setPermissionFlags, each a rule or access_control.go's fallback
        view = {
            "channelID": channel["id"], "name": channel["name"], "topic": channel["topic"], "type": channel["type"],
            "membershipPolicy": channel["membershipPolicy"], "lastMessageID": channel["lastMessageID"],
            "members": list(channel["members"]), "membershipFlag": member["flag"] if member else "",
            "canJoin": self._channel_can(viewer, channel, "join", (valid and channel["type"] == "public") or owner),
            "canPart": self._channel_can(viewer, channel, "leave", True),
            "canObserve": self._channel_can(viewer, channel, "read", self._open_to(channel, viewer)),
            "canSendMessages": valid and self._channel_can(viewer, channel, "message.send",
                                                           self._open_to(channel, viewer)),
            "canDeleteMessages": self._channel_can(viewer, channel, "message.delete.all", False),
            "canChangeMembers": self._manages(channel, viewer, "members.manage"),
            "canChangeMembershipPolicy": self.can_service(viewer, "grant"),
            "canUpdate": self._manages(channel, viewer, "update"),
            "canArchive": self._manages(channel, viewer, "archive"),
            "canDelete": self._manages(channel, viewer, "delete"),
            "createdAt": optional_isoformat(channel["createdAt"]), "updatedAt": optional_isoformat(channel["updatedAt"]),
            "archivedAt": optional_isoformat(channel["archivedAt"]), "deletedAt": optional_isoformat(channel["deletedAt"]),
        }
        if member is not None:  # payload.ChannelUnread: none while nothing is unread
            unread = self._unread(viewer, channel["id"], self._channel_messages(channel["id"]))
            thread_count, thread_total = self._thread_unreads(viewer, channel["id"])
            if unread["count"] or thread_count:
                view["unread"] = unread | {"threadCount": thread_count} | (
                    {"threadTotal": thread_total} if thread_total else {})
        return {key: value for key, value in view.items() if value is not None}

    @staticmethod
    def member_view(member: dict) -> dict:
        view = {"userID": member["userID"], "type": member["type"], "createdAt": optional_isoformat(member["createdAt"])}
        if member["updatedAt"] is not None:
            view["updatedAt"] = optional_isoformat(member["updatedAt"])
        return view

    def message_view(self, message: dict, viewer: str) -> dict:
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

    @staticmethod
    def status_view(status: dict) -> dict:
        # `present` as the real list has it (rest/status.go: "online" for connected users; a user
        # with a current status counts as connected here, inferred).
        view = {"userID": status["userID"], "present": "online", "icon": status["icon"], "message": status["message"],
                "expiresWhenActive": status["expiresWhenActive"], "createdAt": optional_isoformat(status["createdAt"])}
        if status["expires"] is not None:
            view["expires"] = optional_isoformat(status["expires"])
        return view

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

    def snapshot(self) -> dict:
        admin = next(iter(self.users))
        return {
            "users": [{key: value for key, value in user.items()} for user in self.users.values()],
            "roles": [{"roleID": role_id, "name": name} for role_id, name in self.roles.items()],
            "channels": [self.channel_view(channel, admin) | {"members": list(channel["members"])}
                         for channel in self.channels.values()],
            "messages": [self.message_view(message, message["userID"]) for message in self.messages.values()],
            "webhooks": [self.webhook_view(w) | {"authToken": w["token"]} for w in self.webhooks.values()],
            "webhook_deliveries": self.deliveries,
            "statuses": [self.status_view(status) for status in self.statuses.values()],
            "activity": self.activity,
        }

    def credentials(self) -> tuple[dict, dict]:
        admin, *others = self.tokens
        entry = {"headers": {"Authorization": f"Bearer {self.tokens[admin]}"}, "token": self.tokens[admin],
                 "user_id": admin, "other_user_ids": others,
                 "other_tokens": {user_id: self.tokens[user_id] for user_id in others}}
        handles = {token: user_id for user_id, token in self.tokens.items()}
        handles |= {f"webhook:{w['id']}:{w['token']}": w["id"] for w in self.webhooks.values()}
        handles |= {f"attachment:{attachment_id}": attachment_id for attachment_id in self.attachments}
        return entry, handles
