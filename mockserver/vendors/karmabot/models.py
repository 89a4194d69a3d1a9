"""A Karma bot team: channels, users, values, achievements and the pluses given."""

import bisect
import string

from mockserver.clock import isoformat
from mockserver.records import BOOL, INT, STR, StateError, arr, nullable, obj, refers
from mockserver.tables import Table, Tracked
from mockserver.vendors.karmabot.exceptions import bad_request, not_found

SLACK_ID_CHARS = string.ascii_uppercase + string.digits


class Collection:
    """Seeded records (never written) kept in ascending id order, for cursor pages."""

    def __init__(self, name: str, records: list[dict]):
        self.by_id = Table(name, "id", records)
        self.ids = sorted(self.by_id)

    def page(self, cursor: int | None, size: int) -> list[dict]:
        start = 0 if cursor is None else bisect.bisect_right(self.ids, cursor)
        return [self.by_id[id_] for id_ in self.ids[start:start + size]]

    def __contains__(self, id_) -> bool:
        return id_ in self.by_id

    def all(self) -> list[dict]:
        return [self.by_id[id_] for id_ in self.ids]


class KarmaWorkspace(Tracked):
    SCHEMA = 1  # of dump(): see mockserver.records
    TABLES = ("channels", "users", "values", "achievements", "pluses")
    RECORD = obj(
        channels=arr(obj(id=INT, slack_id=STR, name=STR, is_private=BOOL)),
        users=arr(obj(id=INT, slack_id=STR, name=STR, image_url=STR)),
        values=arr(obj(id=INT, color=nullable(STR), description=nullable(STR), emoji=nullable(STR), image_url=STR,
                       name=STR)),
        achievements=arr(obj(id=INT, title=STR, emoji=nullable(STR), color=nullable(STR), description=nullable(STR),
                             value_id=nullable(INT))),
        pluses=arr(obj(id=INT, from_id=INT, user_ids=arr(INT), channel_id=nullable(INT), description=nullable(STR),
                       score=INT, private=BOOL, value_id=nullable(INT), achievement_id=nullable(INT),
                       gif_url=nullable(STR), created_at=STR)),
        api_key=STR, team=STR, next_plus_id=INT,
    )

    @classmethod
    def seed(cls, ctx) -> "KarmaWorkspace":
        fixtures, rng, fake = ctx.vendor.fixtures, ctx.rng, ctx.fake

        def ids(count: int, low: int, high: int) -> list[int]:
            first = rng.randint(low, high)
            out = [first]
            for _ in range(count - 1):
                out.append(out[-1] + rng.randint(1, 40))
            return out

        def slack_id(prefix: str) -> str:
            return prefix + "".join(rng.choice(SLACK_ID_CHARS) for _ in range(10))

        channels = [
            {"id": id_, "slack_id": slack_id("C"), "name": spec["name"], "is_private": spec["is_private"]}
            for id_, spec in zip(ids(len(fixtures["channels"]), 4_800_000_000, 4_899_999_999), fixtures["channels"],
                                 strict=True)
        ]
        users = [
            {"id": id_, "slack_id": slack_id("U"), "name": fake.name(),
             "image_url": f"https://avatars.example.com/{rng.getrandbits(64):016x}_192.png"}
            for id_ in ids(fixtures["users"], 18_100_000_000, 18_199_999_999)
        ]
        values = [
            {"id": id_, "color": spec["color"], "description": spec["description"], "emoji": spec["emoji"],
             "image_url": f"https://avatars.example.com/values/{id_}.png", "name": spec["name"]}
            for id_, spec in zip(ids(len(fixtures["values"]), 47_000, 47_999), fixtures["values"], strict=True)
        ]
        value_ids = {value["name"]: value["id"] for value in values}
        achievements = [
            {"id": id_, "title": spec["title"], "emoji": spec["emoji"], "color": spec["color"],
             "description": spec["description"], "value_id": value_ids.get(spec["value"])}
            for id_, spec in zip(ids(len(fixtures["achievements"]), 19_000, 19_999), fixtures["achievements"], strict=True)
        ]
        return cls(channels, users, values, achievements, cls._api_key(ctx), ctx.tenant_id, rng.randint(900_000, 999_999))

    @staticmethod
    def _api_key(ctx) -> str:
        return f"krm_{ctx.number}_{ctx.secret('api-key')}"

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        return cls._credentials(cls._api_key(ctx), ctx.tenant_id)

    def meta(self) -> dict:
        return {"api_key": self.api_key, "team": self.team, "next_plus_id": self.next_plus_id}

    def restore(self, meta: dict) -> None:
        self.api_key, self.team, self.next_plus_id = meta["api_key"], meta["team"], meta["next_plus_id"]

    def tables(self) -> dict[str, Table]:
        return {name: collection.by_id for name, collection in self.collections.items()} | {"pluses": self.pluses}

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "KarmaWorkspace":
        workspace = cls(data["channels"], data["users"], data["values"], data["achievements"],
                        data["api_key"], data["team"], data["next_plus_id"])
        workspace.pluses = Table("pluses", "id", data["pluses"])
        if not all(type(id_) is int for collection in workspace.collections.values() for id_ in collection.ids):
            raise StateError("ids are whole numbers")
        refers([plus["from_id"] for plus in workspace.pluses.values()], workspace.collections["users"], "a plus's user")
        return workspace

    def __init__(self, channels, users, values, achievements, api_key, team, next_plus_id):
        self.collections = {
            "channels": Collection("channels", channels),
            "users": Collection("users", users),
            "values": Collection("values", values),
            "achievements": Collection("achievements", achievements),
        }
        self.pluses = Table("pluses", "id")
        self.api_key = api_key
        self.team = team
        self.next_plus_id = next_plus_id

    def page(self, name: str, cursor: int | None, size: int) -> list[dict]:
        return self.collections[name].page(cursor, size)

    def add_plus(self, body: dict, now: float) -> dict:
        """Store a karma request after checking that everything it names exists."""
        users = self.collections["users"]
        for user_id in [body["from_id"], *body["user_ids"]]:
            if user_id not in users:
                raise not_found("User", user_id)
        if body["from_id"] in body["user_ids"]:
            raise bad_request("A user cannot give karma to themselves.")
        for field, kind in (("channel_id", "channels"), ("value_id", "values"), ("achievement_id", "achievements")):
            if body.get(field) is not None and body[field] not in self.collections[kind]:
                raise not_found(kind[:-1].capitalize(), body[field])
        plus = {
            "id": self.next_plus_id,
            "from_id": body["from_id"],
            "user_ids": list(body["user_ids"]),
            "channel_id": body.get("channel_id"),
            "description": body.get("description"),
            "score": body.get("score", 1),
            "private": body.get("private", False),
            "value_id": body.get("value_id"),
            "achievement_id": body.get("achievement_id"),
            "gif_url": body.get("gif_url"),
            "created_at": isoformat(now),
        }
        self.next_plus_id += 1
        return self.pluses.insert(plus)

    def snapshot(self) -> dict:
        return {name: collection.all() for name, collection in self.collections.items()} | {
            "pluses": list(self.pluses.values())}

    def credentials(self) -> tuple[dict, dict]:
        return self._credentials(self.api_key, self.team)

    @staticmethod
    def _credentials(api_key: str, team: str) -> tuple[dict, dict]:
        return {"headers": {"Authorization": f"Bearer {api_key}"}, "api_key": api_key}, {api_key: team}
