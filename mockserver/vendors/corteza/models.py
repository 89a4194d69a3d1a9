"""A Corteza messaging workspace, one per tenant: its state, seeding, JSON records, tokens and
credentials. What it does lives in its parts, a module each: permissions (roles' rules),
channels (and members), messages (threads, flags, reactions, read markers, commands),
attachments, search, statuses (and activity), webhooks. IDs are uint64 decimal strings, as the
real server sends them."""

import functools
from collections.abc import Callable
from typing import Any

import jwt

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
    mapping,
    nullable,
    obj,
    refers,
    rng_dump,
    rng_load,
    tuple_of,
    unb64,
)
from mockserver.tables import Table, Tracked
from mockserver.vendors.corteza.attachments import Attachments, described_or_refused
from mockserver.vendors.corteza.channels import Channels
from mockserver.vendors.corteza.messages import Messages
from mockserver.vendors.corteza.permissions import Permissions
from mockserver.vendors.corteza.search import Search
from mockserver.vendors.corteza.statuses import Statuses
from mockserver.vendors.corteza.webhooks import Webhooks
from mockserver.webhooks import DELIVERY, deliveries_table, delivery_views, numbered_deliveries

# Corteza's own role IDs (pkg/permissions/permissions.go: EveryoneRoleID = 1, AdminsRoleID = 2).
EVERYONE_ROLE, ADMINS_ROLE = "1", "2"


@functools.lru_cache(maxsize=4096)  # every request presents its token again; decoding it dominated reads
def _claims(token: str, secret: str) -> dict | None:
    """A token's claims if it is an HS256 token signed with `secret` (expiry not checked here)."""
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return None

WHEN = nullable(NUM)


class Workspace(Permissions, Channels, Messages, Attachments, Search, Statuses, Webhooks, Tracked):
    """One tenant's Corteza: its state, seeding, records and credentials here; what it does in the parts it is made of.

    Its records live in `Table`s (TABLES), changed a record at a time and never in place (nested
    members, reactions, bookmarks included: `change` with new ones); the rest (`meta`) is small:
    roles and their rules, tokens, the id generator and the last 100 activities, each reassigned
    when it changes. Outgoing webhook calls are records of `deliveries` (the last
    webhooks.MAX_DELIVERIES)."""

    TABLES = ("users", "channels", "messages", "attachments", "read_markers", "statuses", "webhooks", "deliveries")

    # of dump(): see mockserver.records (2: image meta and preview bytes of attachments; 3: deliveries
    # a table, numbered, where schema 2 kept a list in the meta: numbered on load)
    SCHEMA = 3
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
        attachments=arr(obj(id=STR, userID=STR, name=STR, mime=STR, size=INT, data=STR,
                            image=nullable(obj(width=INT, height=INT, animated=BOOL)),
                            preview=nullable(obj(data=STR, ext=STR, mimetype=STR, width=INT, height=INT)),
                            createdAt=NUM)),
        read_markers=arr(tuple_of(STR, STR, STR)),
        statuses=arr(obj(userID=STR, icon=STR, message=STR, expires=WHEN, expiresWhenActive=BOOL, createdAt=NUM)),
        webhooks=arr(obj(id=STR, owner=STR, createdAt=NUM, updatedAt=WHEN, token=STR, kind=STR, userId=STR,
                         channelId=STR, trigger=STR, url=STR, username=nullable(STR), avatarURL=nullable(STR))),
        deliveries=arr(DELIVERY), activity=arr(ANY),
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
            root_id = space.channels[channel["id"]]["lastMessageID"]
            space._add_message(channel, members[-1], fake.sentence(), later(), reply_to=space.messages[root_id])
            space.messages.change(root_id, reactions={"👍": [members[0]]})
        general = next(iter(space.channels.values()))
        space.messages.change(next(m for m in space.messages if space.messages[m]["channelID"] == general["id"]),
                              pinned=True)
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

    def meta(self) -> dict:
        return {
            "secret": self.secret, "rng": rng_dump(self.rng), "last_id": self.last_id,
            "everyone_role": self.everyone_role, "admin_role": self.admin_role, "roles": self.roles,
            "rules": {role: [[resource, operation, access] for (resource, operation), access in rules.items()]
                      for role, rules in self.rules.items()},
            "tokens": self.tokens, "activity": self.activity,
        }

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Workspace":
        space = cls(ctx.vendor.fixtures, data["secret"], rng_load(data["rng"]), data["last_id"])
        space.everyone_role, space.admin_role, space.roles = data["everyone_role"], data["admin_role"], data["roles"]
        space.rules = _rules(data["rules"])
        space.users, space.tokens = _table("users", "userID", data["users"]), data["tokens"]
        space.channels = _table("channels", "id", data["channels"])
        space.messages = _table("messages", "id", data["messages"], _dumped_message, _loaded_message)
        space.attachments = _table("attachments", "id", data["attachments"], _dumped_attachment,
                                   lambda attachment: _loaded_attachment(attachment, schema))
        space.attachments.decode = lambda attachment: _loaded_attachment(attachment, space.SCHEMA)
        space.read_markers = _table("read_markers", "marker", data["read_markers"], _dumped_marker, _loaded_marker)
        space.statuses = _table("statuses", "userID", data["statuses"])
        space.webhooks = _table("webhooks", "id", data["webhooks"])
        space.deliveries = deliveries_table(numbered_deliveries(data["deliveries"]) if schema < 3
                                            else data["deliveries"])  # before schema 3: a list in the meta
        space.activity = data["activity"]
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
        self.users = Table("users", "userID")
        self.tokens: dict[str, str] = {}
        self.channels = Table("channels", "id")
        self.messages = Table("messages", "id", encode=_dumped_message, decode=_loaded_message)  # bookmarks: a set
        self.attachments = Table("attachments", "id", encode=_dumped_attachment,  # bytes in memory
                                 decode=lambda attachment: _loaded_attachment(attachment, self.SCHEMA))
        # (user, channel or thread) -> {"marker": that pair, "last": the last read message}; [user, key, last] saved
        self.read_markers = Table("read_markers", "marker", encode=_dumped_marker, decode=_loaded_marker)
        self.statuses = Table("statuses", "userID")
        self.webhooks = Table("webhooks", "id")
        self.deliveries = deliveries_table()  # outgoing webhook calls, bounded (webhooks.add_delivery)
        self.activity: list[dict] = []

    def restore(self, meta: dict) -> None:
        self.secret, self.rng, self.last_id = meta["secret"], rng_load(meta["rng"]), meta["last_id"]
        self.everyone_role, self.admin_role, self.roles = meta["everyone_role"], meta["admin_role"], meta["roles"]
        self.rules = _rules(meta["rules"])
        self.tokens, self.activity = meta["tokens"], meta["activity"]

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

    def snapshot(self) -> dict:
        admin = next(iter(self.users))
        return {
            "users": [{key: value for key, value in user.items()} for user in self.users.values()],
            "roles": [{"roleID": role_id, "name": name} for role_id, name in self.roles.items()],
            "channels": [self.channel_view(channel, admin) | {"members": list(channel["members"])}
                         for channel in self.channels.values()],
            "messages": [self.message_view(message, message["userID"]) for message in self.messages.values()],
            "webhooks": [self.webhook_view(w) | {"authToken": w["token"]} for w in self.webhooks.values()],
            "webhook_deliveries": delivery_views(self.deliveries),
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


def _table(name: str, key: str, records: object, encode: Callable[[dict], Any] | None = None,
           decode: Callable[[Any], dict] | None = None) -> Table:
    """A table of a record's list (`decode` turning each saved one into what memory holds)."""
    if not isinstance(records, list):
        raise StateError(f"{name}: a list of records")
    return Table(name, key, records if decode is None else [decode(record) for record in records], encode,
                 decode=decode)


def _rules(saved: dict) -> dict:
    """Each role's rules by (resource, operation), from the record's [resource, operation, access] lists."""
    return {role: {(resource, operation): access for resource, operation, access in rules}
            for role, rules in saved.items()}


def _dumped_message(message: dict) -> dict:
    return message | {"bookmarks": sorted(message["bookmarks"])}


def _loaded_message(record: dict) -> dict:
    return record | {"bookmarks": set(record["bookmarks"])}


def _dumped_marker(marker: dict) -> Any:
    """A read marker as the record has it: [user, channel or thread, last read message]."""
    return [*marker["marker"], marker["last"]]


def _loaded_marker(record: list) -> dict:
    user, key, last = record
    return {"marker": (user, key), "last": last}


def _dumped_attachment(attachment: dict) -> dict:
    preview = attachment["preview"]
    return attachment | {"data": b64(attachment["data"]),
                         "preview": preview and preview | {"data": b64(preview["data"])}}


def _loaded_attachment(record: dict, schema: int) -> dict:
    attachment = record | {"data": unb64(record["data"])}
    if schema == 1:  # no previews made yet: made now, as an upload of these bytes would get them
        typed = described_or_refused(attachment["name"], attachment["mime"], attachment["data"])
        return attachment | (typed if isinstance(typed, dict) else {"image": None, "preview": None})
    preview = record["preview"]
    return attachment | {"preview": preview and preview | {"data": unb64(preview["data"])}}
