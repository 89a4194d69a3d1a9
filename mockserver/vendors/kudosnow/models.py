"""A kudosnow company: users with points, groups, qualities, badges, kudos and redemptions."""

from mockserver.clock import isodate
from mockserver.paging import page_of
from mockserver.records import ANY, INT, STR, StateError, arr, mapping, obj, refers
from mockserver.tables import Table, Tracked
from mockserver.vendors.kudosnow.exceptions import bad_request, forbidden, not_found

KUDOS_FIELDS = ("sender", "recipients", "message", "level", "badge_name", "points", "qualities")


class Company(Tracked):
    # of dump(): see mockserver.records. Schema 2 numbers kudos records (an `id`, kept from the API's
    # answers and the admin view) so that they can be a Table; schema 1's are numbered on load.
    SCHEMA = 2
    TABLES = ("users", "kudos", "redemptions")
    RECORD = obj(
        users=arr(obj(id=INT, email=STR, pointsBalance=INT, employeeNumber=STR)),
        groups=mapping(arr(INT)), qualities=arr(STR), badges=arr(STR), api_key=STR,
        # as given (checked by the spec then), only shown back; `id` is ours
        kudos=arr({"type": "object", "properties": {"id": INT}, "required": ["id"]}),
        redemptions=arr(obj(("notes", "cancellationDate"), id=INT, createdBy=INT, rewardId=STR, name=STR,
                            description=STR, kudosPoints=INT, currencyCode=STR, amountInCents=INT,
                            transactionId=STR, userId=STR, orderId=STR, createdAt=STR, updatedAt=STR, notes=ANY,
                            cancellationDate=STR)),
        next_redemption_id=INT, next_kudos_id=INT,
    )

    @classmethod
    def seed(cls, ctx) -> "Company":
        fixtures, rng, fake = ctx.vendor.fixtures, ctx.rng, ctx.fake
        users, numbers, user_id = [], set(), rng.randint(1000, 5000)
        for index in range(fixtures["users"]):
            user_id += rng.randint(1, 9)
            number = f"E{rng.randint(10000, 99999)}"
            while number in numbers:
                number = f"E{rng.randint(10000, 99999)}"
            numbers.add(number)
            email = f"{fake.first_name()}.{fake.last_name()}{index}@{fixtures['domain']}".lower()
            users.append({"id": user_id, "email": email, "pointsBalance": rng.randint(*fixtures["points"]),
                          "employeeNumber": number})
        for index, example in enumerate(fixtures["example_people"]):
            users[index].update(example)
        groups = {name: [user["id"] for user in rng.sample(users, rng.randint(3, 6))] for name in fixtures["groups"]}
        company = cls(users, groups, fixtures["qualities"], fixtures["badges"], ctx.secret("api-key"),
                      rng.randint(10_000, 20_000))
        span = fixtures["history_days"] * 86400
        for created in sorted(ctx.now - rng.uniform(86400, span) for _ in range(fixtures["redemptions"])):
            user, sender = rng.choice(users), rng.choice(users)
            reward = rng.choice(fixtures["rewards"])
            redemption = company._add_redemption(
                user["id"], sender["id"], reward | {"transactionId": f"tx-{rng.getrandbits(48):012x}",
                                                    "orderId": f"ord-{rng.getrandbits(32):08x}"}, created)
            if rng.random() < 0.2:
                redemption["cancellationDate"] = redemption["updatedAt"] = isodate(created + 86400)
        return company

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        return cls._credentials(ctx.secret("api-key"))

    def meta(self) -> dict:
        return {"groups": self.groups, "qualities": sorted(self.qualities), "badges": sorted(self.badges),
                "api_key": self.api_key, "next_redemption_id": self.next_redemption_id,
                "next_kudos_id": self.next_kudos_id}

    def restore(self, meta: dict) -> None:
        self.groups, self.api_key = meta["groups"], meta["api_key"]
        self.qualities, self.badges = set(meta["qualities"]), set(meta["badges"])
        self.next_redemption_id, self.next_kudos_id = meta["next_redemption_id"], meta["next_kudos_id"]

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Company":
        company = cls(data["users"], data["groups"], data["qualities"], data["badges"], data["api_key"],
                      data["next_redemption_id"])
        kudos = data["kudos"]
        if schema == 1:  # kudos records had no id: numbered in their order
            if any("id" in record for record in kudos):
                raise StateError("a kudos record of schema 1 has an id")
            kudos = [{"id": number} | record for number, record in enumerate(kudos, 1)]
            company.next_kudos_id = len(kudos) + 1
        else:
            company.next_kudos_id = data["next_kudos_id"]
        company.kudos = Table("kudos", "id", kudos)
        company.redemptions = Table("redemptions", "id", data["redemptions"])
        if not all(type(key) is int for key in [*company.users, *company.kudos, *company.redemptions]) or \
                not all(type(user["pointsBalance"]) is int for user in company.users.values()):
            raise StateError("ids and point balances are whole numbers")
        if company.kudos and max(company.kudos) >= company.next_kudos_id:
            raise StateError("next_kudos_id must be above every kudos record's id")
        refers([member for members in company.groups.values() for member in members], company.users, "a group member")
        refers([r["createdBy"] for r in company.redemptions.values()], company.users, "a redemption's creator")
        refers([int(r["userId"]) for r in company.redemptions.values()], company.users, "a redemption's user")
        return company

    def __init__(self, users, groups, qualities, badges, api_key, first_redemption_id):
        self.users = Table("users", "id", users)
        self.groups = groups  # never changed: the seed's
        self.qualities = {name.lower() for name in qualities}
        self.badges = {name.lower() for name in badges}
        self.api_key = api_key
        self.kudos = Table("kudos", "id")  # {"id": n} and the fields given (KUDOS_FIELDS); creation order
        self.redemptions = Table("redemptions", "id")  # creation order
        self.next_redemption_id = first_redemption_id
        self.next_kudos_id = 1

    def _user_by_email(self, email: str) -> dict:
        for user in self.users.values():
            if user["email"] == email.lower():
                return user
        raise not_found(f"No user with email {email}.")

    def _user(self, user_id: int, role: str) -> dict:
        if user_id not in self.users:
            raise not_found(f"No {role} with id {user_id}.")
        return self.users[user_id]

    # --- kudos --------------------------------------------------------------------------------

    def give(self, body: dict) -> list[dict]:
        if body["sender"]["kind"] != "email":
            raise bad_request("The sender must be a user (kind 'email').")
        sender = self._user_by_email(body["sender"]["value"])
        recipients: list[dict] = []
        for reference in body["recipients"]:
            if reference["kind"] == "email":
                user = self._user_by_email(reference["value"])
                if user is sender:
                    raise bad_request("The sender cannot be a recipient.")
                members = [user]
            else:
                if reference["value"] not in self.groups:
                    raise not_found(f"No group named {reference['value']}.")
                members = [self.users[id_] for id_ in self.groups[reference["value"]] if id_ != sender["id"]]
            recipients += [member for member in members if member not in recipients]
        if not recipients:
            raise bad_request("No recipients left once the sender is left out.")
        unknown = [q["value"] for q in body["qualities"] if q["value"].lower() not in self.qualities]
        if unknown:
            raise bad_request(f"Unknown qualities: {', '.join(unknown)}.")
        if "badge_name" in body and body["badge_name"].lower() not in self.badges:
            raise bad_request(f"Unknown badge {body['badge_name']}.")
        points = body.get("points", 0)
        if sender["pointsBalance"] < points * len(recipients):
            raise bad_request(f"Sender has {sender['pointsBalance']} points; "
                              f"{points * len(recipients)} needed.")
        created = []
        if points:
            self.users.change(sender["id"], pointsBalance=sender["pointsBalance"] - points * len(recipients))
        for recipient in recipients:
            if points:
                self.users.change(recipient["id"], pointsBalance=recipient["pointsBalance"] + points)
            kudos = body | {"recipients": [{"kind": "email", "value": recipient["email"]}]}
            created.append({key: kudos[key] for key in KUDOS_FIELDS if key in kudos})
            self.kudos.insert({"id": self.next_kudos_id} | created[-1])
            self.next_kudos_id += 1
        return created

    def lookup(self, email: str | None, employee_number: str | None) -> dict:
        if email is None and employee_number is None:
            raise bad_request("Give email or employeeNumber.")
        for user in self.users.values():
            if (email is None or user["email"] == email.lower()) and \
                    (employee_number is None or user["employeeNumber"] == employee_number):
                return user
        raise not_found("No such user.")

    # --- redemptions --------------------------------------------------------------------------

    def _add_redemption(self, user_id: int, sender_id: int, body: dict, now: float) -> dict:
        redemption = {
            "id": self.next_redemption_id,
            "createdBy": sender_id,
            "rewardId": body["rewardId"],
            "name": body["name"],
            "description": body.get("description", ""),
            "kudosPoints": body["kudosPoints"],
            "currencyCode": body.get("currencyCode", "USD"),
            "amountInCents": body["amountInCents"],
            "transactionId": body["transactionId"],
            "userId": str(user_id),
            "orderId": body["orderId"],
            "createdAt": isodate(now),
            "updatedAt": isodate(now),
        } | ({"notes": body["notes"]} if "notes" in body else {})
        self.next_redemption_id += 1
        return self.redemptions.insert(redemption)

    def redeem(self, body: dict, now: float) -> dict:
        user = self._user(body["userId"], "user")
        self._user(body["senderId"], "sender")
        if user["pointsBalance"] < body["kudosPoints"]:
            raise bad_request(f"User has {user['pointsBalance']} points; {body['kudosPoints']} needed.")
        self.users.change(user["id"], pointsBalance=user["pointsBalance"] - body["kudosPoints"])
        return self._add_redemption(user["id"], body["senderId"], body, now)

    def history(self, user_id: int | None, page: int, per_page: int) -> dict:
        if user_id is not None:
            self._user(user_id, "user")
        chosen = [r for r in reversed(self.redemptions.values()) if user_id is None or r["userId"] == str(user_id)]
        return {"page": page, "totalCount": len(chosen), "data": page_of(chosen, page, per_page)[0]}

    def cancel(self, redemption_id: int, user_id: int, sender_id: int, now: float) -> dict:
        redemption = self.redemptions.get(redemption_id)
        if redemption is None or redemption["userId"] != str(user_id):
            raise not_found(f"No redemption {redemption_id} for user {user_id}.")
        if sender_id not in (redemption["createdBy"], user_id):
            raise forbidden(f"Sender {sender_id} may not cancel this redemption.")
        if "cancellationDate" in redemption:
            raise bad_request(f"Redemption {redemption_id} was already cancelled.")
        self.users.change(user_id, pointsBalance=self.users[user_id]["pointsBalance"] + redemption["kudosPoints"])
        return self.redemptions.change(redemption_id, cancellationDate=isodate(now), updatedAt=isodate(now))

    def snapshot(self) -> dict:
        return {"users": list(self.users.values()),
                "kudos": [{key: value for key, value in record.items() if key != "id"} for record in self.kudos.values()],
                "redemptions": list(self.redemptions.values())}

    def credentials(self) -> tuple[dict, dict]:
        return self._credentials(self.api_key)

    @staticmethod
    def _credentials(api_key: str) -> tuple[dict, dict]:
        return {"headers": {"apikey": api_key}, "api_key": api_key}, {api_key: "company"}
