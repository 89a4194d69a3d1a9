"""A Dailybot organisation: users (each with an API key), teams, company values and kudos."""

import hashlib
import uuid

from mockserver.clock import isoformat
from mockserver.records import (
    BOOL,
    NUM,
    RNG,
    STR,
    StateError,
    arr,
    mapping,
    nullable,
    obj,
    refers,
    rng_dump,
    rng_load,
)
from mockserver.tables import Table, Tracked
from mockserver.vendors.dailybot.exceptions import (
    AlreadyBoosted,
    BoostChild,
    BoostOwn,
    EmptyReceivers,
    InvalidCompanyValue,
    NotFound,
    NoUsersFound,
    SelfKudo,
)


def exchange_token(api_key: str) -> str:
    """A user's exchange token: derived from their key, so it needs no record of its own."""
    return "xt_" + hashlib.sha256(f"exchange:{api_key}".encode()).hexdigest()[:32]


def random_uuid(rng) -> str:
    """A version-4 UUID from the seeded RNG (so the same seed gives the same ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _people(ctx) -> list[tuple[str, int]]:
    """Each user's (uuid, avatar number): the first draws of a seeding, and all its credentials need."""
    return [(random_uuid(ctx.rng), ctx.rng.getrandbits(64)) for _ in range(ctx.vendor.fixtures["users"])]


class Organization(Tracked):
    """Tables: users, teams and values (seeded, never written), kudos (boosts included). The meta:
    the API keys (one per seeded user: it does not grow) and the RNG that draws new ids."""

    SCHEMA = 1  # of dump(): see mockserver.records
    TABLES = ("users", "teams", "values", "kudos")
    RECORD = obj(
        users=arr(obj(uuid=STR, full_name=STR, role=STR, image=STR)),
        teams=arr(obj(uuid=STR, name=STR, members=arr(obj(uuid=STR, is_active=BOOL)))),
        values=arr(obj(id=STR, name=STR)),
        keys=mapping(STR),
        kudos=arr(obj(id=STR, parent=nullable(STR), sender=STR, receivers=arr(STR), company_value=nullable(STR),
                      content=STR, is_anonymous=BOOL, created_at=NUM, boosts=arr(STR))),
        rng=RNG,
    )

    @classmethod
    def seed(cls, ctx) -> "Organization":
        fixtures, rng, fake = ctx.vendor.fixtures, ctx.rng, ctx.fake
        new_uuid = lambda: random_uuid(rng)  # noqa: E731
        roles = fixtures["roles"]
        users = [
            {"uuid": uuid_, "full_name": fake.name(), "role": roles[index % len(roles)],
             "image": f"https://avatars.example.com/dailybot/{avatar:016x}.png"}
            for index, (uuid_, avatar) in enumerate(_people(ctx))
        ]
        teams = []
        for name in fixtures["teams"]:
            members = rng.sample(users, rng.randint(3, 6))
            teams.append({"uuid": new_uuid(), "name": name, "members": [
                {"uuid": member["uuid"], "is_active": rng.random() > 0.2} for member in members]})
        values = [{"id": new_uuid(), "name": name} for name in fixtures["values"]]
        org = cls(users, teams, values, cls._keys(ctx, [user["uuid"] for user in users]), rng)

        # History: the key owner (users[0]) both receives and gives; everyone else mixes freely.
        owner, others = users[0]["uuid"], [user["uuid"] for user in users[1:]]
        span = fixtures["history_days"] * 86400
        times = sorted(ctx.now - rng.uniform(3600, span) for _ in range(fixtures["kudos"]))
        for index, created in enumerate(times):
            sender = owner if index % 4 == 1 else rng.choice(others)
            pool = [uuid_ for uuid_ in [owner, *others] if uuid_ != sender]
            receivers = [owner] if index % 4 == 0 else rng.sample(pool, rng.randint(1, 3))
            value = rng.choice(values)["id"] if rng.random() < 0.6 else None
            kudo = org._add(sender, receivers, rng.choice(fixtures["messages"]), value,
                            anonymous=rng.random() < 0.15, created=created)
            for booster in rng.sample(pool, rng.randint(0, 2)):
                if booster not in receivers:
                    org._boost(kudo["id"], booster, created + rng.uniform(60, 3000))
        return org

    @staticmethod
    def _keys(ctx, uuids: list[str]) -> dict[str, str]:
        return {uuid_: ctx.secret(uuid_) for uuid_ in uuids}

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        return cls._credentials(cls._keys(ctx, [uuid_ for uuid_, _ in _people(ctx)]))

    def meta(self) -> dict:
        return {"keys": self.keys, "rng": rng_dump(self.rng)}

    def restore(self, meta: dict) -> None:
        self.keys, self.rng = meta["keys"], rng_load(meta["rng"])

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Organization":
        org = cls(data["users"], data["teams"], data["values"], data["keys"], rng_load(data["rng"]), data["kudos"])
        if not org.keys or set(org.keys) != set(org.users):
            raise StateError("every user has one key")
        kudos = org.kudos.values()
        refers([member["uuid"] for team in org.teams.values() for member in team["members"]], org.users, "a team member")
        refers([uuid_ for kudo in kudos for uuid_ in (kudo["sender"], *kudo["receivers"])], org.users, "a kudo's user")
        refers([child for kudo in kudos for child in kudo["boosts"]], org.kudos, "a boost")
        refers([kudo["parent"] for kudo in kudos if kudo["parent"] is not None], org.kudos, "a boost's kudo")
        return org

    def __init__(self, users, teams, values, keys, rng, kudos=()):
        self.users = Table("users", "uuid", users)
        self.teams = Table("teams", "uuid", teams)
        self.values = Table("values", "id", values)
        self.keys = keys  # user uuid -> API key: set when seeded, never changed (so it stays in the meta)
        self.kudos = Table("kudos", "id", kudos)  # insertion order is creation order
        self.rng = rng

    def new_uuid(self) -> str:
        return random_uuid(self.rng)

    # --- writes -------------------------------------------------------------------------------

    def _add(self, sender, receivers, content, value_id, anonymous, created, parent=None) -> dict:
        kudo = {"id": self.new_uuid(), "parent": parent, "sender": sender, "receivers": receivers,
                "company_value": value_id, "content": content, "is_anonymous": anonymous,
                "created_at": created, "boosts": []}
        return self.kudos.insert(kudo)

    def _boost(self, kudo_id: str, booster: str, created: float) -> dict:
        """A boost of a kudo: a child kudo, its id added to the (replaced) parent's `boosts`."""
        kudo = self.kudos[kudo_id]
        child = self._add(booster, list(kudo["receivers"]), "", None, False, created, parent=kudo_id)
        self.kudos.change(kudo_id, boosts=[*kudo["boosts"], child["id"]])
        return child

    def give(self, sender: str, body: dict, now: float) -> dict:
        """Create a kudo, checked as the vendor documents (and, where it is silent, as inferred).

        `receivers` may hold users and teams; `users_receivers` and `teams_receivers` say which is
        which. The official CLI sends both (`receivers` = users + teams, beside the typed lists:
        dailybot-cli 3.27.13, `api_client.give_kudos`), so a UUID named in both counts once; one
        named twice in the same list is refused, as the seed says."""
        direct, typed_users, typed_teams = (list(body.get(key) or []) for key in
                                            ("receivers", "users_receivers", "teams_receivers"))
        if any(len(set(each)) != len(each) for each in (direct, typed_users, typed_teams)):
            raise NoUsersFound()
        users = list(dict.fromkeys(typed_users + [uuid_ for uuid_ in direct if uuid_ not in self.teams]))
        teams = list(dict.fromkeys(typed_teams + [uuid_ for uuid_ in direct if uuid_ in self.teams]))
        if not users and not teams:
            raise EmptyReceivers()
        if sender in users:
            raise SelfKudo()
        if any(user not in self.users for user in users) or any(team not in self.teams for team in teams):
            raise NoUsersFound()
        receivers = list(users)
        for team in teams:
            for member in self.teams[team]["members"]:
                if member["is_active"] and member["uuid"] != sender and member["uuid"] not in receivers:
                    receivers.append(member["uuid"])
        if not receivers:
            raise EmptyReceivers()
        value = body.get("company_value") or None
        if value is not None and value not in self.values:
            raise InvalidCompanyValue()
        kudo = self._add(sender, receivers, body.get("content") or "", value,
                         bool(body.get("is_anonymous", False)), now)
        return self.created_view(kudo, sender)

    def boost(self, kudo_id: str, booster: str, now: float) -> dict:
        kudo = self.kudos.get(kudo_id)
        if kudo is None:
            raise NotFound()
        if kudo["parent"] is not None:
            raise BoostChild()
        if kudo["sender"] == booster:
            raise BoostOwn()
        if any(self.kudos[child]["sender"] == booster for child in kudo["boosts"]):
            raise AlreadyBoosted()
        child = self._boost(kudo_id, booster, now)
        return {"id": child["id"], "parent": kudo_id, "user": self._ref(booster),
                "created_at": isoformat(now), "boost_count": len(self.kudos[kudo_id]["boosts"])}

    # --- reads --------------------------------------------------------------------------------

    def listing(self, viewer: str, which: str, search: str | None = None, since: float | None = None,
                until: float | None = None) -> list[dict]:
        """Kudos the viewer received (original kudos) or gave (boosts included), newest first,
        as stored (`list_view` shows one); with `search`, those whose content holds it (any case);
        with `since`/`until`, those created in [since, until)."""
        if which == "kudos_given":
            chosen = [kudo for kudo in self.kudos.values() if kudo["sender"] == viewer]
        else:
            chosen = [kudo for kudo in self.kudos.values() if kudo["parent"] is None and viewer in kudo["receivers"]]
        if search:
            chosen = [kudo for kudo in chosen if search.casefold() in kudo["content"].casefold()]
        if since is not None or until is not None:
            chosen = [kudo for kudo in chosen if (since is None or kudo["created_at"] >= since)
                      and (until is None or kudo["created_at"] < until)]
        chosen.sort(key=lambda kudo: kudo["created_at"], reverse=True)  # stable: ties keep creation order
        return chosen

    def _ref(self, user_uuid: str) -> dict:
        user = self.users[user_uuid]
        return {"uuid": user["uuid"], "full_name": user["full_name"]}

    def _boost_fields(self, kudo: dict, viewer: str) -> dict:
        children = [self.kudos[child] for child in kudo["boosts"]]
        return {
            "children_kudos": [{"id": child["id"], "parent": kudo["id"], "user": self._ref(child["sender"]),
                                "created_at": isoformat(child["created_at"])} for child in children],
            "boost_count": len(children),
            "has_boosted": any(child["sender"] == viewer for child in children),
        }

    def list_view(self, kudo: dict, viewer: str) -> dict:
        sender = self.users[kudo["sender"]]
        hidden = kudo["is_anonymous"] and viewer != kudo["sender"]
        value = self.values.get(kudo["company_value"])
        return {
            "id": kudo["id"],
            "parent": kudo["parent"],
            "user": None if hidden else dict(sender),
            "receivers": [self._ref(receiver) for receiver in kudo["receivers"]],
            "company_value": dict(value) if value else None,
            "content": kudo["content"],
            "is_anonymous": kudo["is_anonymous"],
            "by_dailybot": False,
            "metadata": {},
            "created_at": isoformat(kudo["created_at"]),
        } | self._boost_fields(kudo, viewer)

    def created_view(self, kudo: dict, viewer: str) -> dict:
        view = self.list_view(kudo, viewer)
        view["user"] = self._ref(kudo["sender"])
        del view["parent"], view["metadata"]
        return view

    # --- the directory the official CLI reads (inferred: see specs/dailybot.yaml) -----------------

    def sees_everyone(self, viewer: str) -> bool:
        """Admins and managers see every team and people's emails; members their own teams."""
        return self.users[viewer]["role"] in ("admin", "manager")

    def user_view(self, user_uuid: str, viewer: str, include_email: bool = False) -> dict:
        user = self.users.get(user_uuid)
        if user is None:
            raise NotFound()
        view = dict(user) | {"is_active": True}
        if include_email and self.sees_everyone(viewer):
            view["email"] = ".".join(user["full_name"].lower().split()) + "@example.com"
        return view

    def visible_teams(self, viewer: str) -> list[dict]:
        return [team for team in self.teams.values() if self.sees_everyone(viewer)
                or any(member["uuid"] == viewer for member in team["members"])]

    def team_view(self, team: dict, members: bool = False) -> dict:
        active = [member["uuid"] for member in team["members"] if member["is_active"]]
        view = {"uuid": team["uuid"], "name": team["name"], "members_count": len(active)}
        if members:
            view["members"] = [self._ref(member) for member in active]
        return view

    def team(self, team_uuid: str, viewer: str) -> dict:
        team = next((team for team in self.visible_teams(viewer) if team["uuid"] == team_uuid), None)
        if team is None:
            raise NotFound()
        return self.team_view(team, members=True)

    def snapshot(self) -> dict:
        return {
            "users": list(self.users.values()),
            "teams": list(self.teams.values()),
            "values": list(self.values.values()),
            "kudos": [self.list_view(kudo, kudo["sender"]) for kudo in self.kudos.values()],
        }

    def credentials(self) -> tuple[dict, dict]:
        return self._credentials(self.keys)

    def exchange_user(self, token: str) -> str | None:
        """The user an exchange token stands for (inferred: see specs/dailybot.yaml)."""
        return next((user for user, key in self.keys.items() if exchange_token(key) == token), None)

    @staticmethod
    def _credentials(keys: dict[str, str]) -> tuple[dict, dict]:
        owner, *others = keys
        admin = {
            "headers": {"X-API-KEY": keys[owner]},
            "api_key": keys[owner],
            "user_uuid": owner,
            "exchange_token": exchange_token(keys[owner]),
            "other_users": [{"user_uuid": user, "api_key": keys[user], "exchange_token": exchange_token(keys[user])}
                            for user in others],
        }
        return admin, {key: user for user, key in keys.items()}
