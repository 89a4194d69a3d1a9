"""Turns: how requests take their go at the server's state, in one process or in several.

A request changes state only between its turn's `begin` and `end` (handlers never yield while
changing it), so requests take effect one after another. One process needs nothing for that
(`LocalTurns`). Several processes (`serve --workers N`) behave exactly like one when a turn also
holds a lock in Redis, first brings the process's copy of the state up to date, and at its end
writes back what it changed (`RedisTurns`).

What is shared, as versioned parts of one Redis hash each:
- `world`: seed, tenants (id, number, rate-limit switch, clock), the server clock, the faults;
- `state:{tenant}:{vendor}`: one vendor's workspace of one tenant;
- `limits:{tenant}`: one tenant's rate-limit counters;
plus the request journal (a Redis list) and the request counter. Parts are pickles read back
with persistence's restricted loader.
"""

import asyncio
import os
import pickle
from collections import deque
from dataclasses import dataclass, field

import orjson

from mockserver import persistence
from mockserver.tenants import Tenant


@dataclass
class Turn:
    """One request's go at the state, and what it changed (for `RedisTurns.end`)."""

    number: int = 0  # a vendor request's sequence number on the server (ids may derive from it)
    open: bool = True
    world: bool = False
    states: set = field(default_factory=set)  # (tenant id, vendor name)
    limits: set = field(default_factory=set)  # tenant ids
    entries: list = field(default_factory=list)  # journal entries to append
    before: dict | None = None  # admin turns: tenant id -> (states, limiter) at the start


class LocalTurns:
    """One process: turns cost nothing; requests are numbered here."""

    def __init__(self):
        self.served = 0

    async def begin(self, numbered: bool = False, admin: bool = False, journal: bool = False) -> Turn:
        if numbered:
            self.served += 1
        return Turn(self.served if numbered else 0)

    async def end(self, turn: Turn) -> None:
        turn.open = False

    async def pause(self, turn: Turn, seconds: float) -> None:
        await asyncio.sleep(seconds)


# KEYS: lock, versions, request counter. ARGV: token, lease (ms), numbered (0/1).
# The lock, and with it the request's number and every part's version; nil while another holds it.
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
local number = 0
if ARGV[3] == '1' then number = redis.call('INCR', KEYS[3]) end
return {number, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: lock, versions, blobs, journal. ARGV: token, journal limit, clear journal (0/1),
# n, n x (part, blob), m, m x part to drop, journal entries...
# Writes a turn's changes and releases the lock, only while this process still holds it.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('mockserver: turn lock lost') end
local i, versions = 4, {}
local n = tonumber(ARGV[i])
for k = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i + 2 * k - 1], ARGV[i + 2 * k])
  versions[k] = redis.call('HINCRBY', KEYS[2], ARGV[i + 2 * k - 1], 1)
end
i = i + 2 * n + 1
local m = tonumber(ARGV[i])
for k = 1, m do
  redis.call('HDEL', KEYS[2], ARGV[i + k])
  redis.call('HDEL', KEYS[3], ARGV[i + k])
end
i = i + m + 1
if ARGV[3] == '1' then redis.call('DEL', KEYS[4]) end
if i <= #ARGV then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, i))
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[2]), -1)
end
redis.call('DEL', KEYS[1])
return versions
"""


class RedisTurns:
    """Several processes sharing one server's state through Redis (see the module docstring).

    `prefix` namespaces the keys: one server (all its workers) per prefix. A turn's lock is a
    lease, so a process that dies holding it stalls the others for `lease_ms` at most.
    """

    def __init__(self, server, url: str, prefix: str = "mockserver", lease_ms: int = 30_000):
        import redis.asyncio

        self.server = server
        self.redis = redis.asyncio.Redis.from_url(url)
        self.key = self.keys(prefix)
        self.lease_ms = lease_ms
        self.token = os.urandom(16).hex()
        self.local = asyncio.Lock()  # one turn at a time in this process; only it asks Redis
        self.seen: dict[str, int] = {}  # part -> the version this process holds
        self._acquire = self.redis.register_script(ACQUIRE)
        self._publish = self.redis.register_script(PUBLISH)

    @staticmethod
    def keys(prefix: str) -> dict[str, str]:
        return {name: f"{prefix}:{name}" for name in ("lock", "versions", "blobs", "journal", "requests")}

    async def begin(self, numbered: bool = False, admin: bool = False, journal: bool = False) -> Turn:
        """Take the lock and bring this process's state up to date. `admin`: the turn may add,
        reset or replace tenants (found by comparison at its end); `journal`: it reads the
        journal, so load it."""
        turn = Turn()
        await self._lock(turn, numbered)
        if admin:
            turn.before = {tenant.id: (tenant.states, tenant.limiter) for tenant in self.server.store.tenants.values()}
        if journal:
            await self._load_journal()
        return turn

    async def pause(self, turn: Turn, seconds: float) -> None:
        """Sleep without holding the lock (others go on, as in one process), then resume."""
        await self.end(turn)
        await asyncio.sleep(seconds)
        turn.open = True
        await self._lock(turn, numbered=False)

    async def _lock(self, turn: Turn, numbered: bool) -> None:
        await self.local.acquire()
        try:
            delay = 0.0001
            while True:
                got = await self._acquire(keys=[self.key["lock"], self.key["versions"], self.key["requests"]],
                                          args=[self.token, self.lease_ms, int(numbered)])
                if got is not None:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.002)
            number, flat = got
            if numbered:
                turn.number = number
            versions = {part.decode(): int(version) for part, version in zip(flat[::2], flat[1::2])}
            if "world" not in versions:  # the first turn on a fresh namespace: this process's state is it
                turn.world = True
                turn.states = {(t.id, name) for t in self.server.store.tenants.values() for name in t.states}
                turn.limits = set(self.server.store.tenants)
            else:
                await self._sync(versions)
            # Faults change as requests take them (counts, seeded draws): share them while any exist.
            turn.world = turn.world or bool(self.server.faults.faults)
        except BaseException:
            self.local.release()
            raise

    async def _sync(self, versions: dict[str, int]) -> None:
        """Load every part another process changed since this one last saw it."""
        for part in [part for part in self.seen if part not in versions]:
            del self.seen[part]
        synced = False
        while stale := [part for part, version in versions.items() if self.seen.get(part) != version]:
            synced = True
            blobs = dict(zip(stale, await self.redis.hmget(self.key["blobs"], stale)))
            # The world first: it may add tenants (whose parts are then loaded) or drop them.
            if "world" in blobs:
                self._apply_world(persistence.loads(blobs.pop("world")))
                self.seen["world"] = versions["world"]
            for part, blob in blobs.items():
                self._apply(part, persistence.loads(blob))
                self.seen[part] = versions[part]
        if synced:
            self.server.answers.invalidate()

    def _apply_world(self, world: dict) -> None:
        server, store = self.server, self.server.store
        server.seed = store.seed = world["seed"]
        store.created = world["created"]
        clock = server.clock
        clock.start, clock.ticking, clock.offset, clock._origin = world["clock"]
        server.faults.faults, server.faults.added = world["faults"]
        tenants = {}
        for tenant_id, number, rate_limits, offset in world["tenants"]:
            tenant = store.tenants.get(tenant_id)
            if tenant is None or tenant.number != number:  # new here: its parts come next
                tenant = Tenant(tenant_id, number, store.vendors, store.seed, clock, rate_limits, states={})
                for part in list(self.seen):
                    if part.split(":")[1:2] == [tenant_id]:
                        del self.seen[part]
            tenant.rate_limits, tenant.clock.offset = rate_limits, offset
            tenants[tenant_id] = tenant
        for tenant_id in set(store.tenants) - set(tenants):
            store.delete(tenant_id)
        store.tenants = tenants

    def _apply(self, part: str, value) -> None:
        kind, tenant_id, *vendor = part.split(":")
        tenant = self.server.store.tenants[tenant_id]
        if kind == "limits":
            tenant.limiter.storage.events = value
        else:
            states = tenant.states | {vendor[0]: value}  # in the server's vendor order, as seeding makes it
            tenant.states = {v.name: states[v.name] for v in self.server.vendors if v.name in states}
            self.server.store.reindex(tenant)

    def _world(self) -> dict:
        server, store = self.server, self.server.store
        clock = server.clock
        return {
            "seed": server.seed,
            "created": store.created,
            "clock": (clock.start, clock.ticking, clock.offset, clock._origin),
            "faults": (server.faults.faults, server.faults.added),
            "tenants": [(t.id, t.number, t.rate_limits, t.clock.offset) for t in store.tenants.values()],
        }

    async def end(self, turn: Turn) -> None:
        """Write back what the turn changed and release the lock (once; later calls do nothing)."""
        if not turn.open:
            return
        turn.open = False
        try:
            await self._publish_changes(turn)
        finally:
            turn.world, turn.states, turn.limits, turn.entries = False, set(), set(), []
            self.local.release()

    async def _publish_changes(self, turn: Turn) -> None:
        tenants = self.server.store.tenants
        if turn.before is not None:  # tenants added, reset or replaced: all their parts
            for tenant in tenants.values():
                states, limiter = turn.before.get(tenant.id, (None, None))
                if tenant.states is not states:
                    turn.states.update((tenant.id, name) for name in tenant.states)
                if tenant.limiter is not limiter:
                    turn.limits.add(tenant.id)
        parts = {}
        if turn.world:
            parts["world"] = self._world()
        for tenant_id, vendor in turn.states:
            if tenant_id in tenants:
                parts[f"state:{tenant_id}:{vendor}"] = tenants[tenant_id].states[vendor]
        for tenant_id in turn.limits:
            if tenant_id in tenants:
                parts[f"limits:{tenant_id}"] = tenants[tenant_id].limiter.storage.events
        dropped = [part for part in self.seen if part != "world" and part.split(":")[1] not in tenants]
        cleared = self.server.journal.cleared
        self.server.journal.cleared = False
        args = [self.token, self.server.journal.entries.maxlen, int(cleared), len(parts)]
        for part, value in parts.items():
            args += [part, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)]
        args += [len(dropped), *dropped, *(orjson.dumps(entry) for entry in turn.entries)]
        versions = await self._publish(keys=[self.key["lock"], self.key["versions"], self.key["blobs"],
                                             self.key["journal"]], args=args)
        for part in dropped:
            del self.seen[part]
        self.seen.update(zip(parts, versions))

    async def _load_journal(self) -> None:
        journal = self.server.journal
        entries = await self.redis.lrange(self.key["journal"], 0, -1)
        journal.entries = deque(map(orjson.loads, entries), maxlen=journal.entries.maxlen)
