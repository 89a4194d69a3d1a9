"""kudosnow handlers (operationIds in snake_case); every answer sits in a `data` envelope."""

from mockserver.exchange import exchange


async def give_kudos(body):
    return {"data": exchange().state.give(body)}


async def look_up_user(email=None, employee_number=None):
    return {"data": exchange().state.lookup(email, employee_number)}


async def redemption_history(user_id=None, page=1, per_page=15):
    return {"data": exchange().state.history(user_id, page, per_page)}


async def redeem_reward(body):
    ex = exchange()
    return {"data": ex.state.redeem(body, ex.now())}


async def cancel_redemption(id_, user_id, sender_id):
    ex = exchange()
    return {"data": ex.state.cancel(id_, user_id, sender_id, ex.now())}
