"""Helpers the test modules share (none imports another test module)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access lines."""

    def log_message(self, *args):
        pass


def serve_locally(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """`handler` served on a free loopback port in the background: (the server, its root URL).
    Stop it with `stop_serving(server)`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop_serving(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def as_dailybot_user(tenant, index):
    """A client acting as another user of the same organisation (each user has a key)."""
    other = tenant.credentials["dailybot"]["other_users"][index]
    return httpx.Client(base_url=tenant.server.base_url("dailybot"), headers={"X-API-KEY": other["api_key"]}), \
        other["user_uuid"]


def valid_plus(state, **overrides):
    users = state["users"]
    body = {
        "description": "Great work on the release!",
        "user_ids": [users[1]["id"], users[2]["id"]],
        "from_id": users[0]["id"],
        "channel_id": state["channels"][0]["id"],
        "score": 2,
        "private": False,
        "value_id": state["values"][0]["id"],
        "achievement_id": state["achievements"][1]["id"],
        "gif_url": "https://media.example.com/party.gif",
    }
    return body | overrides


def rich_users(tenant, count):
    """Users with the most points first, so point transfers succeed."""
    return sorted(tenant.state("kudosnow")["users"], key=lambda user: -user["pointsBalance"])[:count]


def redemption_body(user, sender, **extra):
    return {"userId": user["id"], "senderId": sender["id"], "rewardId": "coffee-10", "name": "Coffee voucher",
            "kudosPoints": 100, "amountInCents": 1000, "transactionId": "tx-1", "orderId": "ord-1"} | extra
