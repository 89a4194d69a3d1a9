"""Corteza handlers (operationIds in snake_case). Answers are `{"response": ...}`, or
`{"success": {"message": "OK"}}` where Corteza returns nothing."""

from urllib.parse import quote, quote_plus

from starlette.responses import Response

from mockserver.exchange import exchange
from mockserver.vendors.corteza.attachments import described_in_pool
from mockserver.vendors.corteza.exceptions import corteza_error
from mockserver.vendors.corteza.models import Workspace
from mockserver.vendors.corteza.payload import parse_bool
from mockserver.webhooks import CallFailed, add_delivery, settle_delivery

OK = {"success": {"message": "OK"}}


def _call():
    """(workspace, caller's userID)."""
    ex = exchange()
    return ex.state, ex.principal


def _call_at():
    """(workspace, caller's userID, now): for handlers whose answer or change depends on the time."""
    ex = exchange()
    return ex.state, ex.principal, ex.now()


def _message(state, message, viewer):
    return {"response": state.message_view(message, viewer)}


# --- activity, commands, permissions, statuses --------------------------------------------------

async def activity_send(body):
    state, me, now = _call_at()
    state.record_activity(me, body, now)
    return {"response": True}


async def command_list():
    return {"response": exchange().state.fixtures["commands"]}


async def permissions_list():
    return {"response": exchange().state.whitelist()}


async def permissions_effective(resource=None):
    state, me = _call()
    return {"response": state.effective(me)}


async def permissions_read(role_id):
    state, me = _call()
    return {"response": state.role_rules(me, role_id)}


async def permissions_delete(role_id):
    state, me = _call()
    state.clear_rules(me, role_id)
    return OK


async def permissions_update(role_id, body):
    state, me = _call()
    state.update_rules(me, role_id, body["rules"])
    return OK


async def status_list():
    state, _, now = _call_at()
    return {"response": [state.status_view(status) for status in state.current_statuses(now)]}


async def status_set(body=None):
    state, me, now = _call_at()
    return {"response": state.status_view(state.set_status(me, body, now))}


async def status_delete():
    state, me = _call()
    state.statuses.pop(me, None)
    return OK


# --- channels -----------------------------------------------------------------------------------

def _channel(state, channel, viewer):
    """A channel's answer; None (an unknown state or flag, which changes nothing) is `false`, as
    the real server's api.Send answers nothing."""
    return {"response": state.channel_view(channel, viewer) if channel is not None else False}


async def channel_list(query=None):
    state, me = _call()
    return {"response": [state.channel_view(c, me) for c in state.list_channels(me, query)]}


async def channel_create(body=None):
    state, me, now = _call_at()
    return _channel(state, state.create_channel(me, body, now), me)


async def channel_read(channel_id):
    state, me = _call()
    return _channel(state, state.channel(channel_id, me), me)


async def channel_update(channel_id, body=None):
    state, me, now = _call_at()
    return _channel(state, state.update_channel(me, channel_id, body, now), me)


async def channel_state(channel_id, body):
    state, me, now = _call_at()
    return _channel(state, state.set_state(me, channel_id, body["state"], now), me)


async def channel_set_flag(channel_id, body):
    state, me = _call()
    return _channel(state, state.set_flag(me, channel_id, body["flag"]), me)


async def channel_remove_flag(channel_id):
    state, me = _call()
    return _channel(state, state.set_flag(me, channel_id, ""), me)


async def channel_members(channel_id):
    state, me = _call()
    channel = state.channel(channel_id, me)
    return {"response": [state.member_view(member) for member in channel["members"].values()]}


async def channel_join(channel_id, user_id):
    state, me, now = _call_at()
    return {"response": [state.member_view(state.join(me, channel_id, user_id, now))]}  # wrapMemberSet


async def channel_part(channel_id, user_id):
    state, me, now = _call_at()
    state.part(me, channel_id, user_id, now)
    return OK


async def channel_invite(channel_id, body=None):
    state, me, now = _call_at()
    members = state.invite(me, channel_id, body.get("userID") or [], now)
    return {"response": [state.member_view(member) for member in members]}


async def channel_attach(channel_id, body=None, upload=None):
    ex = exchange()
    state, me, now = _call_at()
    if upload is None or not hasattr(upload, "read"):
        raise corteza_error("upload is required")
    data = await upload.read()
    name, mime = upload.filename or "", upload.content_type or "application/octet-stream"
    # An image's preview takes up to 2 s to make (40 MP, 100 scans): in the preview pool, so that
    # other tenants' requests are answered meanwhile.
    typed = await described_in_pool(ex.tenant, name, mime, data)
    message = state.attach(me, channel_id, name, mime, data, body.get("replyTo"), now, typed)
    ex.register_handles()  # the attachment's public handle
    return {"response": state.attachment_view(message["att"], me)}  # rest/channel.go Attach: payload.Attachment


# --- messages -----------------------------------------------------------------------------------

async def message_create(channel_id, body):
    state, me, now = _call_at()
    return _message(state, state.post(me, channel_id, body["message"], now), me)


async def message_reply_create(channel_id, message_id, body):
    state, me, now = _call_at()
    return _message(state, state.post(me, channel_id, body["message"], now, reply_to=message_id), me)


async def message_execute_command(channel_id, command, body=None):
    state, me, now = _call_at()
    text = body.get("input") or ""
    message = state.execute(me, channel_id, command, text, now)
    if message is None:
        webhook = state.outgoing_by_trigger(me, channel_id, command)
        if webhook is None:
            return {"response": None}
        message = await _outgoing(state, webhook, text, now)
    return _message(state, message, me)


async def _outgoing(state, webhook, text, now):
    """service/webhook.go Do (2020.3): POST `{"text": input}` to the URL, `%s` in it replaced by
    the escaped input, and post the reply's text as the webhook's user: a text/plain body as it
    is, else (on a 200) the JSON `text`. The call is on the admin API's delivery list too."""
    url = webhook["url"].replace("%s", quote_plus(text))
    record = add_delivery(state.deliveries, {"webhookID": webhook["id"], "target_url": url, "attempted_at": now})
    try:
        reply = await exchange().call_webhook(url, {"text": text})
    except CallFailed as failed:
        settle_delivery(state.deliveries, record, {"status": "failed", "error": str(failed)})
        raise corteza_error(str(failed)) from None
    settle_delivery(state.deliveries, record, {"status": "delivered", "response_status": reply.status_code})
    if "text/plain" in reply.content_type:
        answer = reply.text
    elif reply.status_code != 200:
        raise corteza_error(f"unexpected webhook response status: {reply.status_code}")  # inferred wording
    else:
        try:
            data = reply.json()
        except ValueError:
            raise corteza_error("invalid webhook response") from None  # inferred wording
        text_field = data.get("text") if isinstance(data, dict) else None
        answer = text_field if isinstance(text_field, str) else ""
        if not answer:
            raise corteza_error("Empty webhook response")
    return state.webhook_message(webhook, answer, now)


async def message_mark_as_read(channel_id, thread_id=None, last_read_message_id=None):
    state, me = _call()
    return {"response": state.mark_as_read(me, channel_id, thread_id, last_read_message_id)}


async def message_edit(channel_id, message_id, body):
    state, me, now = _call_at()
    return _message(state, state.edit(me, channel_id, message_id, body["message"], now), me)


async def message_delete(channel_id, message_id):
    state, me, now = _call_at()
    state.delete(me, channel_id, message_id, now)
    return OK


async def message_pin_create(channel_id, message_id):
    state, me = _call()
    state.set_pin(me, channel_id, message_id, True)
    return OK


async def message_pin_remove(channel_id, message_id):
    state, me = _call()
    state.set_pin(me, channel_id, message_id, False)
    return OK


async def message_bookmark_create(channel_id, message_id):
    state, me = _call()
    state.set_bookmark(me, channel_id, message_id, True)
    return OK


async def message_bookmark_remove(channel_id, message_id):
    state, me = _call()
    state.set_bookmark(me, channel_id, message_id, False)
    return OK


async def message_reaction_create(channel_id, message_id, reaction):
    state, me = _call()
    state.react(me, channel_id, message_id, reaction, add=True)
    return OK


async def message_reaction_remove(channel_id, message_id, reaction):
    state, me = _call()
    state.react(me, channel_id, message_id, reaction, add=False)
    return OK


# --- search -------------------------------------------------------------------------------------

async def search_messages(channel_id=None, after_message_id=None, before_message_id=None, from_message_id=None,
                          to_message_id=None, thread_id=None, user_id=None, type_=None, pinned_only=None,
                          bookmarked_only=None, limit=None, query=None):
    state, me = _call()
    given = {"channelID": channel_id, "afterMessageID": after_message_id, "beforeMessageID": before_message_id,
             "fromMessageID": from_message_id, "toMessageID": to_message_id, "threadID": thread_id,
             "userID": user_id, "type": type_, "pinnedOnly": pinned_only, "bookmarkedOnly": bookmarked_only,
             "limit": limit, "query": query}
    found = state.search(me, {key: value for key, value in given.items() if value is not None})
    return {"response": [state.message_view(message, me) for message in found]}


async def search_threads(channel_id=None, limit=None, query=None):
    state, me = _call()
    given = {"channelID": channel_id, "limit": limit, "query": query}
    found = state.search_threads(me, {key: value for key, value in given.items() if value is not None})
    return {"response": [state.message_view(message, me) for message in found]}


# --- attachments (public: the signature is the credential) -------------------------------------

async def _attachment(attachment_id, sign, user_id):
    Workspace.check_signed_request(attachment_id, sign, user_id)
    ex = exchange()
    if not await ex.adopt(f"attachment:{attachment_id}"):
        raise corteza_error("missing or invalid signature")
    return ex.state.attachment(attachment_id, sign, user_id)


def _file(name: str, mime: str, data: bytes, disposition: str) -> Response:
    """An upload or its preview served back: inline only for types that cannot run in a browser
    (images but SVG, audio, video, plain text), never sniffed into another type."""
    kind = mime.split(";")[0].strip().lower()
    passive = kind == "text/plain" or (kind.startswith(("image/", "audio/", "video/")) and kind != "image/svg+xml")
    if not passive:
        disposition = "attachment"
    quoted = name.encode("ascii", "replace").decode().replace('"', "")
    headers = {"Content-Disposition": f"{disposition}; filename=\"{quoted}\"; filename*=UTF-8''{quote(name)}",
               "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=mime, headers=headers)


async def attachment_original(attachment_id, name, sign=None, user_id=None, download=None):
    """rest/attachment.go Original: the `{name}` segment is not read; `download` as ParseBool reads it."""
    attachment = await _attachment(attachment_id, sign, user_id)
    return _file(attachment["name"], attachment["mime"], attachment["data"],
                 "attachment" if parse_bool(download) else "inline")


async def attachment_preview(attachment_id, ext, sign=None, user_id=None):
    attachment = await _attachment(attachment_id, sign, user_id)
    preview = attachment["preview"]
    if preview is None:  # the extension asked for is not read, as on the real server
        raise corteza_error("attachment preview does not exist")
    return _file(attachment["name"], preview["mimetype"], preview["data"], "inline")


# --- webhooks -----------------------------------------------------------------------------------

def _webhook(state, webhook):
    return {"response": state.webhook_view(webhook)}


async def webhooks_list(channel_id=None, user_id=None):
    state, me = _call()
    return {"response": [state.webhook_view(w) for w in state.list_webhooks(me, channel_id, user_id)]}


async def webhooks_create(body, avatar=None):
    ex = exchange()
    state, me, now = _call_at()
    webhook = state.save_webhook(me, body, now, ex.allowed)
    ex.register_handles()  # the new token's public handle
    # The real server never returns the token (`json:"-"`); the mock tells the client in a header
    # of its own, so tests (and `mockserver fuzz`) can call the public endpoints.
    return _webhook(state, webhook), 200, {"X-Mockserver-Webhook-Token": webhook["token"]}


async def webhooks_update(webhook_id, body, avatar=None):
    ex = exchange()
    state, me, now = _call_at()
    return _webhook(state, state.save_webhook(me, body, now, ex.allowed, webhook_id))


async def webhooks_get(webhook_id):
    state, me = _call()
    return _webhook(state, state.webhook(me, webhook_id))


async def webhooks_delete(webhook_id):
    state, me = _call()
    state.delete_webhook(state.webhook(me, webhook_id)["id"])
    return OK


async def _by_token(webhook_id, webhook_token):
    """The workspace the webhook's public handle names; a handle unknown (or of a webhook since
    deleted) is the real server's not-found error."""
    ex = exchange()
    if not await ex.adopt(f"webhook:{webhook_id}:{webhook_token}"):
        raise corteza_error("sql: no rows in result set")
    ex.state.by_token(webhook_id, webhook_token)
    return ex


async def webhooks_public_delete(webhook_id, webhook_token):
    (await _by_token(webhook_id, webhook_token)).state.delete_webhook(webhook_id)
    return OK


async def webhooks_public_create(webhook_id, webhook_token, body=None, content=None, username=None, avatar_url=None):
    ex = await _by_token(webhook_id, webhook_token)
    message = ex.state.incoming(webhook_id, webhook_token, content or body.get("content") or "", ex.now())
    return _message(ex.state, message, message["userID"])
