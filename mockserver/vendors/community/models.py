"""A Habitate community: users and roles, boards, posts with comments and replies, tags, REST hooks."""

import base64
import re
import string
from html.parser import HTMLParser

from mockserver.clock import isoformat_ms, optional_isoformat  # the seed's samples carry fractions of a second
from mockserver.errors import ApiError
from mockserver.records import (
    ANY,
    BOOL,
    INT,
    NUM,
    RNG,
    STR,
    arr,
    mapping,
    nullable,
    obj,
    refers,
    rng_dump,
    rng_load,
    tuple_of,
)
from mockserver.tables import Table, Tracked
from mockserver.vendors.community.exceptions import bad_request, conflict, forbidden, not_found
from mockserver.webhooks import DELIVERY, deliveries_table, delivery_views, numbered_deliveries

SID_CHARS = string.ascii_letters + string.digits
PUBLISHED = 15  # post/comment/reply status of everything shown here
NEXT_KINDS = ("user", "board", "post", "comment", "reply", "tag", "hook", "job")  # ids handed out in turn
MAX_HOOKS = 20  # REST hooks per community (inferred; each event fans out to every one)
SHORT_TEXT = 110  # post_short_text: clean text cut at a word boundary within this many characters


BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
              "table", "blockquote", "pre", "hr", "section", "article"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)

    def handle_starttag(self, tag, attrs):
        if tag in BLOCK_TAGS:  # block tags separate words; inline ones (<b>, <a>) do not
            self.parts.append(" ")

    def handle_endtag(self, tag):
        self.handle_starttag(tag, [])


def clean_text(content: str) -> str:
    """Content without HTML: tags dropped, entities decoded, white space collapsed."""
    parser = _Text()
    parser.feed(content)
    parser.close()
    return " ".join("".join(parser.parts).split())


def short_text(text: str) -> str:
    if len(text) <= SHORT_TEXT:
        return text
    cut = text[:SHORT_TEXT + 1]
    return cut[:cut.rfind(" ")].rstrip() if " " in cut else text[:SHORT_TEXT]


def hashtag(display_name: str) -> str:
    """A tag's `name`: the display name lower-cased, with only letters, digits and `_` kept."""
    return re.sub(r"[^\w]", "", display_name.lower())


def lookup(table: dict, key, kind: str) -> dict:
    """An entity by id, given as a number or a string of digits; anything else is not found."""
    try:
        entity = table.get(int(key))
    except (TypeError, ValueError):
        entity = None
    if entity is None:
        raise not_found(kind, key)
    return entity


def in_body(lookup, key, kind: str) -> dict:
    """An entity named inside a request body: unknown is a payload error (400), since 404 is kept
    for the resource the URL names."""
    try:
        return lookup(key)
    except ApiError:
        raise bad_request(f"unknown {kind} {key}") from None


def _some_reactions(rng) -> dict:
    """One or two emoji slots with a few reactions each, as the seed's samples have."""
    return {f"s{slot}": rng.randint(1, 5) for slot in rng.sample(range(1, 6), rng.randint(1, 2))}


def _first_user_id(rng) -> int:
    """The first draw of a seeding: the API user's id (all its credentials need)."""
    return rng.randint(100, 150)


def _board_row(board: dict) -> dict:
    """A board as recorded: its members (a set in memory) as a sorted list."""
    return board | {"members": sorted(board["members"])}


def _tag_ref_row(ref: dict):
    """A tag mapping as recorded: [ref_type, ref_id, tag ids] (in memory, keyed by (ref_type, ref_id))."""
    ref_type, ref_id = ref["ref"]
    return [ref_type, ref_id, ref["tag_ids"]]


def _tag_ref(triple) -> dict:
    ref_type, ref_id, ids = triple
    return {"ref": (ref_type, ref_id), "tag_ids": ids}


def _board(row: dict) -> dict:
    return row | {"members": set(row["members"])}


def _tag_refs(triples) -> Table:
    return Table("tag_refs", "ref", map(_tag_ref, triples), encode=_tag_ref_row, decode=_tag_ref)


def _bump(table: Table, key, field: str, by: int, **fields) -> dict:
    """A record's counter moved by `by` (other fields changed with it); the changed record."""
    return table.change(key, **{field: table[key][field] + by}, **fields)


_WRITTEN = dict(content=STR, reactions=mapping(INT), last_edited_at=nullable(NUM), created_at=NUM,
                last_modified_at=NUM, author=INT)  # what posts, comments and replies share


class Community(Tracked):
    SCHEMA = 2  # of dump(): see mockserver.records (2: deliveries a table, numbered; schema 1's are numbered on load)
    RECORD = obj(
        api_key=STR, rng=RNG, next=obj(**{kind: INT for kind in NEXT_KINDS}), api_user_id=INT,
        last_display_order=INT,
        roles=arr(obj(role_id=INT, role_name=ANY, role_details=ANY, is_default=ANY)),
        users=arr(obj(user_id=INT, sid=STR, username=STR, user_avatar=ANY, first_name=STR, middle_name=ANY,
                      last_name=nullable(STR), email=STR, role_id=INT, is_bot=BOOL, user_status=INT, lang=ANY,
                      timezone=ANY, user_description=ANY, banner=ANY, social_media_links=ANY, meta=ANY,
                      login_count=INT, post_count=INT, comment_count=INT, reply_count=INT, created_at=NUM,
                      last_modified_at=NUM)),
        boards=arr(obj(board_id=INT, display_order=INT, board_type=STR, pinned_posts=ANY, post_count=INT,
                       last_posted_at=nullable(NUM), members=arr(INT), created_at=NUM, board_name=ANY, about=ANY,
                       is_private=ANY, hidden_type=ANY, permission_for=INT, needs_approval=ANY, icon=ANY)),
        posts=arr(obj(post_id=INT, board_id=INT, headline=ANY, post_status=INT, comment_count=INT, reply_count=INT,
                      view_count=INT, **_WRITTEN)),
        comments=arr(obj(comment_id=INT, post_id=INT, reply_count=INT, comment_status=INT, state=INT, **_WRITTEN)),
        replies=arr(obj(reply_id=INT, comment_id=INT, post_id=INT, status=INT, state=INT, **_WRITTEN)),
        tags=arr(obj(tag_id=INT, name=STR, display_name=STR, back_color=STR, text_color=STR, description=ANY,
                     image=ANY, og_image=ANY, og_title=ANY, og_description=ANY)),
        tag_refs=arr(tuple_of(STR, INT, arr(INT))),
        hooks=arr(obj(hook_id=INT, target_url=STR, event=STR, created_at=STR)),
        deliveries=arr(DELIVERY),
    )
    TABLES = ("roles", "users", "boards", "posts", "comments", "replies", "tags", "tag_refs", "hooks", "deliveries")
    KEYS = {"roles": "role_id", "users": "user_id", "posts": "post_id", "comments": "comment_id",
            "replies": "reply_id", "tags": "tag_id", "hooks": "hook_id"}  # and boards (board_id), tag_refs

    @classmethod
    def seed(cls, ctx) -> "Community":
        fixtures, rng, fake = ctx.vendor.fixtures, ctx.rng, ctx.fake
        next_ids = {"user": _first_user_id(rng), "board": 1, "post": rng.randint(140, 160),
                    "comment": rng.randint(20, 40), "reply": rng.randint(5, 15), "tag": 1, "hook": 1,
                    "job": rng.randint(100, 200)}
        community = cls(fixtures, ctx.secret("api-key"), rng, next_ids)
        # The seeded history: within the last 180 days, each event after the one before and the
        # last before now. The gaps are drawn first, one more than the events (the quiet since the
        # last), and shrunk to fit the 180 days if they would not.
        span = 180 * 86400
        events = 1 + fixtures["users"] + len(fixtures["boards"]) + fixtures["posts"] + fixtures["comments"] \
            + fixtures["replies"]
        gaps = [rng.uniform(600, 5 * 86400) for _ in range(events + 1)]
        scale = min(1.0, span / sum(gaps))
        gaps.reverse()  # taken from the end
        moment = ctx.now - span

        def later() -> float:
            nonlocal moment
            moment += gaps.pop() * scale
            return moment

        api = fixtures["api_user"]
        community.api_user_id = community._add_user(
            {"first_name": api["first_name"], "last_name": api["last_name"], "username": api["username"],
             "email": f"{api['username']}@community.example.com"}, later(), role_id=api["role_id"], is_bot=True)["user_id"]
        statuses = fixtures["statuses"]
        for index in range(fixtures["users"]):
            first, last = fake.first_name(), fake.last_name()
            user = community._add_user(
                {"first_name": first, "last_name": last, "email": f"{first}.{last}{index}@example.com".lower(),
                 "user_avatar": f"https://avatars.example.com/habitate/{rng.getrandbits(48):012x}.png"},
                later(), role_id=3 if index % 7 == 0 else fixtures["member_role"])
            community.users.change(user["user_id"], user_status=statuses[index % len(statuses)])
        for board in fixtures["boards"]:
            community._add_board(board, later())
        authors = [user for user in community.users.values() if user["user_status"] == 10]
        boards = list(community.boards.values())
        for _ in range(fixtures["posts"]):
            post = community._add_post(
                rng.choice(boards), rng.choice(authors), fake.sentence(nb_words=5).rstrip("."),
                "".join(f"<p>{fake.paragraph(nb_sentences=4)}</p>" for _ in range(rng.randint(1, 3))), later())
            if rng.random() < 0.5:
                community.posts.change(post["post_id"], reactions=_some_reactions(rng))
        posts = list(community.posts.values())
        for _ in range(fixtures["comments"]):
            community._add_comment(rng.choice(posts), rng.choice(authors), f"<p>{fake.paragraph()}</p>", later())
        comments = list(community.comments.values())
        for _ in range(fixtures["replies"]):
            community._add_reply(rng.choice(comments), rng.choice(authors), fake.paragraph(), later())
        for name in fixtures["tags"]:
            community._add_tag({"name": name, "description": fake.word().capitalize(),
                                "og_title": fake.job(), "og_description": fake.bs()})
        tag_ids = list(community.tags)
        for post in posts:
            community.tag_refs.insert({"ref": ("post", post["post_id"]), "tag_ids": rng.sample(tag_ids, rng.randint(0, 2))})
        for post in posts:  # records are replaced as they change: the lists above hold ids, not the latest records
            community.posts.change(post["post_id"], view_count=rng.randint(1, 80))
        for table in (community.comments, community.replies):
            for key in list(table):
                if rng.random() < 0.4:
                    table.change(key, reactions=_some_reactions(rng))
        return community

    @classmethod
    def principals(cls, ctx) -> tuple[dict, dict]:
        return cls._credentials(ctx.secret("api-key"), _first_user_id(ctx.rng))

    def meta(self) -> dict:
        return {"api_key": self.api_key, "rng": rng_dump(self.rng), "next": self.next, "api_user_id": self.api_user_id,
                "last_display_order": self.last_display_order}

    @classmethod
    def load(cls, data: dict, schema: int, ctx) -> "Community":
        community = cls(ctx.vendor.fixtures, data["api_key"], rng_load(data["rng"]), data["next"])
        for name, key in cls.KEYS.items():
            setattr(community, name, Table(name, key, data[name]))
        community.boards = Table("boards", "board_id", map(_board, data["boards"]), encode=_board_row, decode=_board)
        community.tag_refs = _tag_refs(data["tag_refs"])
        community.deliveries = deliveries_table(numbered_deliveries(data["deliveries"]) if schema == 1
                                                else data["deliveries"])  # schema 1: a list in the meta
        community.last_display_order = data["last_display_order"]
        community.api_user_id = data["api_user_id"]
        users, posts = community.users, community.posts
        refers([community.api_user_id], users, "the API user")
        refers([board["permission_for"] for board in community.boards.values()], community.posting_roles,
               "a board's permission_for")
        refers([member for board in community.boards.values() for member in board["members"]], users, "a board member")
        refers([post["board_id"] for post in posts.values()], community.boards, "a post's board")
        refers([c["post_id"] for c in [*community.comments.values(), *community.replies.values()]], posts, "a post")
        refers([reply["comment_id"] for reply in community.replies.values()], community.comments, "a reply's comment")
        refers([entity["author"] for entity in [*posts.values(), *community.comments.values(),
                                                *community.replies.values()]], users, "an author")
        return community

    def __init__(self, fixtures: dict, api_key: str, rng, next_ids: dict[str, int]):
        self.roles = Table("roles", "role_id", [dict(role) for role in fixtures["roles"]])
        self.posting_roles = {int(key): value for key, value in fixtures["posting_roles"].items()}
        self.member_role = fixtures["member_role"]
        self.api_key = api_key
        self.rng = rng
        self.users = Table("users", "user_id")
        self.boards = Table("boards", "board_id", encode=_board_row, decode=_board)  # members: a set of user ids
        self.last_display_order = 0  # the highest board display_order: a new board goes last
        self.posts = Table("posts", "post_id")
        self.comments = Table("comments", "comment_id")
        self.replies = Table("replies", "reply_id")
        self.tags = Table("tags", "tag_id")
        self.tag_refs = _tag_refs(())  # (ref_type, ref_id) -> {"ref": that pair, "tag_ids": [...]}
        self.hooks = Table("hooks", "hook_id")
        self.deliveries = deliveries_table()  # webhooks.py adds each record handed to `deliver`, bounded
        self.next = next_ids
        self.api_user_id = 0

    def restore(self, meta: dict) -> None:
        self.api_key, self.rng, self.next = meta["api_key"], rng_load(meta["rng"]), meta["next"]
        self.api_user_id, self.last_display_order = meta["api_user_id"], meta["last_display_order"]

    @property
    def api_user(self) -> dict:
        return self.users[self.api_user_id]

    def _id(self, kind: str) -> int:
        value = self.next[kind]
        self.next = {**self.next, kind: value + 1}  # a new dict: the meta is seen as changed
        return value

    # --- users --------------------------------------------------------------------------------

    def _username_for(self, first_name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "", first_name)[:40] or "user"
        taken = {user["username"].lower() for user in self.users.values()}
        candidate, suffix = base, 1
        while candidate.lower() in taken:
            suffix += 1
            candidate = f"{base}{suffix}"
        return candidate

    def _check_unique(self, field: str, value: str, exclude: dict | None = None) -> None:
        for user in self.users.values():
            if user is not exclude and user.get(field) and user[field].lower() == value.lower():
                raise conflict(f"{field} {value} is already taken")

    def _add_user(self, body: dict, now: float, role_id: int | None = None, is_bot: bool = False) -> dict:
        user = {
            "user_id": self._id("user"),
            "sid": "".join(self.rng.choice(SID_CHARS) for _ in range(25)),
            "username": body.get("username") or self._username_for(body["first_name"]),
            "user_avatar": body.get("user_avatar", ""),
            "first_name": body["first_name"],
            "middle_name": body.get("middle_name"),
            "last_name": body.get("last_name"),
            "email": body["email"],
            "role_id": role_id or self.member_role,
            "is_bot": is_bot,
            "user_status": 10,
            "lang": body.get("lang", "en"),
            "timezone": body.get("timezone", "UTC"),
            "user_description": "",
            "banner": None,
            "social_media_links": None,
            "meta": {},
            "login_count": 0, "post_count": 0, "comment_count": 0, "reply_count": 0,
            "created_at": now,
            "last_modified_at": now,
        }
        return self.users.insert(user)

    def user(self, msid: str) -> dict:
        """By msid (`user_id.sid`) or by user_id."""
        user_id, dot, sid = msid.partition(".")
        user = self.users.get(int(user_id)) if user_id.isascii() and user_id.isdigit() else None
        if user is None or (dot and sid != user["sid"]):
            raise not_found("User", msid)
        return user

    def create_user(self, body: dict, now: float, deliver) -> dict:
        self._check_unique("email", body["email"])
        if "username" in body:
            self._check_unique("username", body["username"])
        user = self._add_user(body, now)
        for hook in self.hooks.values():
            if hook["event"] == "member.joined":
                job_id = self._id("job")
                record = {"hook_id": hook["hook_id"], "event": "member.joined", "job_id": job_id,
                          "attempted_at": isoformat_ms(now)}
                deliver(hook["target_url"], {"event": "member.joined", "job_id": job_id,
                                             "entities": {"user": [self.hook_user_view(user)]}}, record)
        return user

    def edit_user(self, msid: str, body: dict, now: float) -> dict:
        user = self.user(msid)
        if "username" in body:
            self._check_unique("username", body["username"], exclude=user)
        fields = {field: body[field] for field in ("first_name", "middle_name", "last_name", "username", "user_avatar",
                                                   "lang", "timezone", "user_description", "banner", "social_media_links")
                  if field in body}
        return self.users.change(user["user_id"], **fields, last_modified_at=now)

    # What each PATCH /users/{msid} action needs in `data` (the seed marks every `data` field optional:
    # each is needed only by the action that uses it).
    PATCH_ACTIONS = {101: ("update::role", ("role_id",))}

    def patch_user(self, msid: str, body: dict, now: float) -> dict:
        name, needed = self.PATCH_ACTIONS[body["action"]]
        for field in needed:
            if field not in body["data"]:
                raise bad_request(f"data.{field} is required for action {body['action']} ({name})")
        return self.change_role(msid, body["data"]["role_id"], now)

    def change_role(self, msid: str, role_id: int, now: float) -> dict:
        user = self.user(msid)
        if role_id not in self.roles:
            raise bad_request(f"unknown role {role_id}")
        return self.users.change(user["user_id"], role_id=role_id, last_modified_at=now)

    def list_users(self, sort_by: str, order: str, status: int) -> list[dict]:
        keys = {"user_id": lambda u: u["user_id"], "joined": lambda u: (u["created_at"], u["user_id"]),
                "name": lambda u: (u["first_name"].lower(), (u["last_name"] or "").lower(), u["user_id"])}
        chosen = [user for user in self.users.values() if user["user_status"] == status]
        return sorted(chosen, key=keys[sort_by], reverse=order == "desc")

    # --- boards -------------------------------------------------------------------------------

    BOARD_FIELDS = ("board_name", "about", "is_private", "hidden_type", "permission_for", "needs_approval", "icon")

    def _add_board(self, body: dict, now: float) -> dict:
        self.last_display_order += 1
        board: dict = {"board_id": self._id("board"), "display_order": self.last_display_order,
                 "board_type": "discussion", "pinned_posts": [], "post_count": 0, "last_posted_at": None,
                 "members": set(), "created_at": now}
        board.update({field: body.get(field) for field in self.BOARD_FIELDS})  # not in the table yet
        return self.boards.insert(board)

    def board(self, board_id) -> dict:
        return lookup(self.boards, board_id, "Board")

    def create_board(self, body: dict, now: float) -> dict:
        return self._add_board(body, now)

    def edit_board(self, board_id: int, body: dict) -> dict:
        board = self.board(board_id)
        return self.boards.change(board["board_id"], **{field: body.get(field) for field in self.BOARD_FIELDS})

    def ordered_boards(self) -> list[dict]:
        return sorted(self.boards.values(), key=lambda board: (board["display_order"], board["board_id"]))

    def reorder(self, display_order: dict[str, int]) -> None:
        boards = {key: in_body(self.board, key, "board") for key in display_order}  # all checked first
        for key, board in boards.items():
            self.boards.change(board["board_id"], display_order=display_order[key])
        self.last_display_order = max(board["display_order"] for board in self.boards.values())

    def change_members(self, board_id: int, changes: dict[str, bool]) -> None:
        board = self.board(board_id)
        users = {msid: in_body(self.user, msid, "user") for msid in changes}
        members = set(board["members"])  # a new set: the record is replaced, not changed in place
        for msid, grant in changes.items():
            (members.add if grant else members.discard)(users[msid]["user_id"])
        self.boards.change(board["board_id"], members=members)

    # --- posts, comments, replies -------------------------------------------------------------

    def _add_post(self, board: dict, author: dict, headline: str, content: str, now: float) -> dict:
        post = {"post_id": self._id("post"), "board_id": board["board_id"], "headline": headline, "content": content,
                "post_status": PUBLISHED, "comment_count": 0, "reply_count": 0, "reactions": {}, "view_count": 0,
                "last_edited_at": None, "created_at": now, "last_modified_at": now, "author": author["user_id"]}
        self.posts.insert(post)
        _bump(self.boards, board["board_id"], "post_count", 1, last_posted_at=now)
        _bump(self.users, author["user_id"], "post_count", 1)
        return post

    def _may_post(self, board: dict) -> None:
        """Posting rights are the API user's, whoever the author is (as the vendor documents)."""
        if self.api_user["role_id"] not in self.posting_roles[board["permission_for"]]:
            raise forbidden(f"Your role may not post in board {board['board_id']}")

    def post(self, post_id) -> dict:
        return lookup(self.posts, post_id, "Post")

    def view_post(self, post_id) -> dict:
        post = self.post(post_id)
        return _bump(self.posts, post["post_id"], "view_count", 1)

    def create_post(self, body: dict, now: float) -> dict:
        board, author = in_body(self.board, body["board_id"], "board"), in_body(self.user, body["authors"][0], "user")
        self._may_post(board)
        return self._add_post(board, author, body["headline"], body["content"], now)

    def edit_post(self, post_id: int, body: dict, now: float) -> dict:
        post = self.post(post_id)
        board, author = in_body(self.board, body["board_id"], "board"), in_body(self.user, body["authors"][0], "user")
        self._may_post(board)
        if board["board_id"] != post["board_id"]:
            _bump(self.boards, post["board_id"], "post_count", -1)
            _bump(self.boards, board["board_id"], "post_count", 1, last_posted_at=now)
        if author["user_id"] != post["author"]:
            _bump(self.users, post["author"], "post_count", -1)
            _bump(self.users, author["user_id"], "post_count", 1)
        return self.posts.change(post["post_id"], board_id=board["board_id"], author=author["user_id"],
                                 headline=body["headline"], content=body["content"], last_edited_at=now,
                                 last_modified_at=now)

    def _add_comment(self, post: dict, author: dict, content: str, now: float) -> dict:
        comment = {"comment_id": self._id("comment"), "post_id": post["post_id"], "content": content,
                   "reply_count": 0, "reactions": {}, "comment_status": PUBLISHED, "state": 0,
                   "last_edited_at": None, "created_at": now, "last_modified_at": now, "author": author["user_id"]}
        self.comments.insert(comment)
        _bump(self.posts, post["post_id"], "comment_count", 1)
        _bump(self.users, author["user_id"], "comment_count", 1)
        return comment

    def comment(self, comment_id) -> dict:
        return lookup(self.comments, comment_id, "Comment")

    def create_comment(self, body: dict, now: float) -> dict:
        return self._add_comment(in_body(self.post, body["post_id"], "post"), in_body(self.user, body["author"], "user"),
                                 body["content"], now)

    def _add_reply(self, comment: dict, author: dict, content: str, now: float) -> dict:
        reply = {"reply_id": self._id("reply"), "comment_id": comment["comment_id"], "post_id": comment["post_id"],
                 "content": content, "reactions": {}, "status": PUBLISHED, "state": 0, "last_edited_at": None,
                 "created_at": now, "last_modified_at": now, "author": author["user_id"]}
        self.replies.insert(reply)
        _bump(self.comments, comment["comment_id"], "reply_count", 1)
        _bump(self.posts, comment["post_id"], "reply_count", 1)
        _bump(self.users, author["user_id"], "reply_count", 1)
        return reply

    def reply(self, reply_id) -> dict:
        return lookup(self.replies, reply_id, "Reply")

    def create_reply(self, body: dict, now: float) -> dict:
        return self._add_reply(in_body(self.comment, body["comment_id"], "comment"),
                               in_body(self.user, body["author"], "user"), body["content"], now)

    @staticmethod
    def edit_content(table: Table, entity: dict, content: str, now: float) -> dict:
        """A comment or reply (`entity`, of `table`) with new content; the changed record."""
        return table.change(entity[table.key], content=content, last_edited_at=now, last_modified_at=now)

    # --- tags ---------------------------------------------------------------------------------

    TAG_FIELDS = ("description", "image", "og_image", "og_title", "og_description")
    TAG_BLANKS = ("image", "og_image")  # "" when not given, as every sample of the seed shows them

    def _tag_fields(self, body: dict, exclude: dict | None = None) -> dict:
        name = hashtag(body["name"])
        if not name:
            raise bad_request("Tag name needs letters or digits")
        if any(tag is not exclude and tag["name"] == name for tag in self.tags.values()):
            raise conflict(f"Tag name {name} is already taken")
        return {"name": name, "display_name": body["name"],
                "back_color": body.get("back_color", "#ffffff"), "text_color": body.get("text_color", "#330000"),
                **{field: body.get(field, "" if field in self.TAG_BLANKS else None) for field in self.TAG_FIELDS}}

    def _add_tag(self, body: dict) -> dict:
        fields = self._tag_fields(body)  # checked before an id is taken: a refused tag takes none
        tag = {"tag_id": self._id("tag"), **fields}
        return self.tags.insert(tag)

    def tag_view(self, tag: dict) -> dict:
        """A tag as answered: `image` and `og_image` always there ("" in tags a state file kept from
        before they were stored so)."""
        return tag | {field: "" for field in self.TAG_BLANKS if tag.get(field) is None}

    def tag(self, tag_id: int) -> dict:
        return lookup(self.tags, tag_id, "Tag")

    def create_tag(self, body: dict) -> dict:
        return self._add_tag(body)

    def edit_tag(self, tag_id: int, body: dict) -> dict:
        tag = self.tag(tag_id)
        return self.tags.change(tag["tag_id"], **self._tag_fields(body, exclude=tag))

    def list_tags(self, sort_by: str | None, order: str, ids: str | None) -> list[dict]:
        tags = list(self.tags.values())
        if ids is not None:
            wanted = {int(id_) for id_ in ids.split(",")}
            tags = [tag for tag in tags if tag["tag_id"] in wanted]
        if sort_by is not None:
            tags.sort(key=lambda tag: tag["tag_id"] if sort_by == "id" else (tag["name"], tag["tag_id"]))
        return tags[::-1] if order == "desc" else tags

    def search_tags(self, q: str) -> list[dict]:
        return [tag for tag in self.tags.values() if q.lower() in tag["name"]]

    def tags_of(self, ref_type: str, ref_id: int) -> list[dict]:
        ref = self.tag_refs.get((ref_type, ref_id))
        return [self.tags[tag_id] for tag_id in (ref["tag_ids"] if ref else []) if tag_id in self.tags]

    # --- REST hooks ---------------------------------------------------------------------------

    def subscribe(self, body: dict, now: float, allowed) -> dict:
        if len(self.hooks) >= MAX_HOOKS:
            raise bad_request(f"A community has at most {MAX_HOOKS} hooks; delete one first")
        if not allowed(body["target_url"]):
            raise bad_request("target_url must be http(s) on an allowed host (loopback by default), "
                              "not this server itself")
        hook = {"hook_id": self._id("hook"), "target_url": body["target_url"], "event": body["event"],
                "created_at": isoformat_ms(now)}
        return self.hooks.insert(hook)

    def unsubscribe(self, hook_id: int) -> None:
        if self.hooks.pop(hook_id, None) is None:
            raise not_found("Hook", hook_id)

    # --- views (null fields are dropped by the jsonifier) -------------------------------------

    @staticmethod
    def msid(user: dict) -> str:
        return f"{user['user_id']}.{user['sid']}"

    def user_view(self, user: dict) -> dict:
        return {key: value for key, value in user.items() if key not in ("created_at", "last_modified_at")} | {
            "msid": self.msid(user), "created_at": isoformat_ms(user["created_at"]),
            "last_modified_at": isoformat_ms(user["last_modified_at"])}

    def user_summary(self, user: dict) -> dict:
        return {"user_id": user["user_id"], "sid": user["sid"], "msid": self.msid(user), "username": user["username"],
                "user_avatar": user["user_avatar"], "first_name": user["first_name"], "role_id": user["role_id"],
                "user_status": user["user_status"], "created_at": isoformat_ms(user["created_at"])}

    def hook_user_view(self, user: dict) -> dict:
        keys = ("sid", "email", "role_id", "user_id", "username", "last_name", "first_name", "user_avatar", "user_status")
        return {key: user[key] for key in keys} | {"msid": self.msid(user), "created_at": isoformat_ms(user["created_at"])}

    def author_view(self, user_id: int) -> dict:
        user = self.users[user_id]
        return {"user_id": user_id, "user_avatar": user["user_avatar"], "username": user["username"],
                "msid": self.msid(user)}

    @staticmethod
    def board_view(board: dict) -> dict:
        view = {key: value for key, value in board.items() if key not in ("members", "created_at")}
        view["last_posted_at"] = optional_isoformat(board["last_posted_at"], milliseconds=True)
        return view

    def _written_view(self, entity: dict) -> dict:
        """Shared by posts, comments and replies."""
        return {
            "content": entity["content"],
            "clean_text": clean_text(entity["content"]),
            "react_count": sum(entity["reactions"].values()),
            "reactions": dict(entity["reactions"]) or None,
            "last_edited_at": optional_isoformat(entity["last_edited_at"], milliseconds=True),
            "created_at": isoformat_ms(entity["created_at"]),
            "last_modified_at": isoformat_ms(entity["last_modified_at"]),
            "user": self.author_view(entity["author"]),
        }

    def post_view(self, post: dict) -> dict:
        written = self._written_view(post)
        return {"post_id": post["post_id"], "board_id": post["board_id"], "headline": post["headline"],
                "post_short_text": short_text(written["clean_text"]), "post_status": post["post_status"],
                "comment_count": post["comment_count"], "reply_count": post["reply_count"],
                "view_count": post["view_count"]} | written

    def comment_view(self, comment: dict) -> dict:
        return {"post_id": comment["post_id"], "comment_id": comment["comment_id"],
                "reply_count": comment["reply_count"], "comment_status": comment["comment_status"],
                "state": comment["state"]} | self._written_view(comment)

    def reply_view(self, reply: dict) -> dict:
        return {"post_id": reply["post_id"], "comment_id": reply["comment_id"], "reply_id": reply["reply_id"],
                "status": reply["status"], "state": reply["state"]} | self._written_view(reply)

    @staticmethod
    def tag_summary(tag: dict) -> dict:
        return {key: tag[key] for key in ("tag_id", "name", "display_name", "back_color", "text_color")}

    def snapshot(self) -> dict:
        return {
            "users": [self.user_view(user) for user in self.users.values()],
            "roles": list(self.roles.values()),
            "boards": [self.board_view(board) | {"members": sorted(self.msid(self.users[id_]) for id_ in board["members"])}
                       for board in self.ordered_boards()],
            "posts": [self.post_view(post) for post in self.posts.values()],
            "comments": [self.comment_view(comment) for comment in self.comments.values()],
            "replies": [self.reply_view(reply) for reply in self.replies.values()],
            "tags": list(self.tags.values()),
            "tag_mappings": [{"ref_type": ref_type, "ref_id": ref_id, "tag_ids": ref["tag_ids"]}
                             for (ref_type, ref_id), ref in self.tag_refs.items() if ref["tag_ids"]],
            "hooks": list(self.hooks.values()),
            "webhook_deliveries": delivery_views(self.deliveries),
        }

    def credentials(self) -> tuple[dict, dict]:
        return self._credentials(self.api_key, self.api_user["user_id"])

    @staticmethod
    def _credentials(api_key: str, api_user_id: int) -> tuple[dict, dict]:
        username = "mockserver-client"
        token = base64.b64encode(f"{username}:{api_key}".encode()).decode()
        admin = {"headers": {"Authorization": f"Basic {token}"}, "username": username, "password": api_key}
        return admin, {api_key: api_user_id}
