"""Habitate community handlers (operationIds in snake_case). Lists answer with the `has_more` header."""

from mockserver.exchange import exchange
from mockserver.paging import page_of


def _state():
    return exchange().state


def _now() -> float:
    return exchange().now()


def _page(items: list, view, page: int, page_size: int):
    chosen, more = page_of(items, page, page_size)
    return [view(item) for item in chosen], 200, {"has_more": "1" if more else "0"}


# --- boards -------------------------------------------------------------------------------------

async def list_boards(page=1, page_size=10):
    state = _state()
    return _page(state.ordered_boards(), state.board_view, page, page_size)


async def create_board(body):
    state = _state()
    return state.board_view(state.create_board(body, _now()))


async def get_board(board_id):
    state = _state()
    return state.board_view(state.board(board_id))


async def edit_board(board_id, body):
    state = _state()
    return state.board_view(state.edit_board(board_id, body))


async def reorder_boards(body):
    _state().reorder(body["display_order"])
    return {"message": "OK"}


async def change_board_members(board_id, body):
    _state().change_members(board_id, body["member_changes"])
    return {"message": "OK"}


# --- users and roles ----------------------------------------------------------------------------

async def get_me():
    state = _state()
    return state.user_view(state.api_user)


async def list_users(page=1, page_size=10, sort_by="user_id", order="desc", status=10):
    state = _state()
    return _page(state.list_users(sort_by, order, status), state.user_summary, page, page_size)


async def create_user(body):
    ex = exchange()
    return ex.state.user_view(ex.state.create_user(body, ex.now(), ex.deliver))


async def get_user(msid):
    state = _state()
    return state.user_view(state.user(msid))


async def edit_user(msid, body):
    state = _state()
    return state.user_view(state.edit_user(msid, body, _now()))


async def patch_user(msid, body):
    state = _state()
    return state.user_view(state.patch_user(msid, body, _now()))


async def list_roles(page=1, page_size=10):
    return _page(list(_state().roles.values()), dict, page, page_size)


# --- posts, comments, replies -------------------------------------------------------------------

async def create_post(body):
    state = _state()
    return state.post_view(state.create_post(body, _now()))


async def get_post(post_id):
    state = _state()
    return state.post_view(state.view_post(post_id))


async def edit_post(post_id, body):
    state = _state()
    return state.post_view(state.edit_post(post_id, body, _now()))


async def create_comment(body):
    state = _state()
    return state.comment_view(state.create_comment(body, _now()))


async def get_comment(comment_id):
    state = _state()
    return state.comment_view(state.comment(comment_id))


async def edit_comment(comment_id, body):
    state = _state()
    return state.comment_view(state.edit_content(state.comments, state.comment(comment_id), body["content"], _now()))


async def create_reply(body):
    state = _state()
    return state.reply_view(state.create_reply(body, _now()))


async def get_reply(reply_id):
    state = _state()
    return state.reply_view(state.reply(reply_id))


async def edit_reply(reply_id, body):
    state = _state()
    return state.reply_view(state.edit_content(state.replies, state.reply(reply_id), body["content"], _now()))


# --- tags ---------------------------------------------------------------------------------------

async def list_tags(page=1, page_size=10, sort_by=None, order="asc", ids=None):
    state = _state()
    return _page(state.list_tags(sort_by, order, ids), state.tag_summary, page, page_size)


async def create_tag(body):
    state = _state()
    return state.tag_view(state.create_tag(body))


async def get_tag(tag_id):
    state = _state()
    return state.tag_view(state.tag(tag_id))


async def edit_tag(tag_id, body):
    state = _state()
    return state.tag_view(state.edit_tag(tag_id, body))


async def search_tags(q, page=1, page_size=10):
    state = _state()
    return _page(state.search_tags(q), state.tag_summary, page, page_size)


async def tag_mapping(ref_type, ref_id, page=1, page_size=10):
    state = _state()
    return _page(state.tags_of(ref_type, ref_id), state.tag_summary, page, page_size)


# --- REST hooks ---------------------------------------------------------------------------------

async def list_hooks(page=1, page_size=10):
    return _page(list(_state().hooks.values()), dict, page, page_size)


async def subscribe_hook(body):
    ex = exchange()
    return ex.state.subscribe(body, ex.now(), ex.allowed), 201


async def unsubscribe_hook(hook_id):
    _state().unsubscribe(hook_id)
    return None, 204
