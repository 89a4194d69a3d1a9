"""A toybox: things with names; its workspace keeps the contract in mockserver.records, its
things in a tracked table (mockserver.tables)."""

from mockserver.records import INT, STR, arr, obj
from mockserver.tables import Table, Tracked


class Toybox(Tracked):
    SCHEMA = 1
    RECORD = obj(key=STR, things=arr(obj(id=INT, name=STR)), next_id=INT)
    TABLES = ("things",)

    def __init__(self, key: str, things: list, next_id: int):
        self.key, self.things, self.next_id = key, Table("things", "id", things), next_id

    @classmethod
    def seed(cls, ctx) -> "Toybox":
        return cls(ctx.secret("key"), [{"id": 1, "name": ctx.fake.word()}], 2)

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        key = ctx.secret("key")
        return {"headers": {"X-Toy-Key": key}}, {key: "owner"}

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Toybox":
        return cls(data["key"], data["things"], data["next_id"])

    def meta(self) -> dict:
        return {"key": self.key, "next_id": self.next_id}

    def restore(self, meta: dict) -> None:
        self.key, self.next_id = meta["key"], meta["next_id"]

    def make(self, name: str) -> dict:
        thing = self.things.insert({"id": self.next_id, "name": name})
        self.next_id += 1
        return thing

    def snapshot(self) -> dict:
        return {"things": list(self.things.values())}

    def credentials(self) -> tuple[dict, dict]:
        return {"headers": {"X-Toy-Key": self.key}}, {self.key: "owner"}
