"""Turns: how requests take their go at the server's state, in one process or in several.

A request changes state only between its turn's `begin` and `end` (handlers never yield while
changing it), so requests take effect one after another. One process needs nothing for that
(`LocalTurns`). Several processes (`serve --workers N`) behave exactly like one when turns also
hold a lock in Redis, first bring the process's copy of the state up to date, and write back
what they changed before any of their answers goes out (`RedisTurns`). A process that holds the
lock keeps it for the turns already waiting in it (a batch, a few milliseconds at most), so the
lock, the sync and the write-back are paid once per batch rather than once per request.

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
import time
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

    def add(self, other: "Turn") -> None:
        self.world = self.world or other.world
        self.states |= other.states
        self.limits |= other.limits
        self.entries += other.entries


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


# KEYS: lock, versions, request counter, next. ARGV: token, lease (ms), claim (ms).
# The lock, and with it the request counter and every part's version; nil while another holds
# it. A process refused first claims the next go (for a while), so the holder cannot take the
# lock straight back: under load the processes take turns.
ACQUIRE = """
local next = redis.call('GET', KEYS[4])
if (next and next ~= ARGV[1]) or not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if not next then redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[3]) end
  return nil
end
if next then redis.call('DEL', KEYS[4]) end
return {tonumber(redis.call('GET', KEYS[3]) or '0'), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: lock, versions, blobs, journal, request counter. ARGV: token, journal limit,
# clear journal (0/1), release (0/1), request counter, n, n x (part, blob), m, m x part to drop,
# journal entries... Writes a batch's changes (and releases the lock), only while this process
# still holds it; returns the written parts' new versions.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('mockserver: turn lock lost') end
redis.call('SET', KEYS[5], ARGV[5])
local i, versions = 6, {}
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
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
return versions
"""


class RedisTurns:
    """Several processes sharing one server's state through Redis (see the module docstring).

    `prefix` namespaces the keys: one server (all its workers) per prefix. The lock is a lease,
    so a process that dies holding it stalls the others for `lease_ms` at most.
    """

    BATCH_TURNS = 256  # a batch ends after this many turns or BATCH_SECONDS, so others get the lock
    BATCH_SECONDS = 0.005
    CLAIM_MS = 100  # how long a refused process's claim on the next go holds

    def __init__(self, server, url: str, prefix: str = "mockserver", lease_ms: int = 30_000):
        import redis.asyncio

        self.server = server
        self.redis = redis.asyncio.Redis.from_url(url)
        self.key = self.keys(prefix)
        self.lease_ms = lease_ms
        self.token = os.urandom(16).hex()
        self.local = asyncio.Lock()  # one turn at a time in this process
        self.waiting = 0  # turns waiting for `local`
        self.holding = False  # whether this process holds the Redis lock
        self.batch = Turn()  # what the batch's ended turns changed, still to write back
        self.batch_turns, self.batch_started = 0, 0.0
        self.written: asyncio.Future | None = None  # done when the batch is written back
        self.requests = 0  # the server's request counter
        self.seen: dict[str, int] = {}  # part -> the version this process holds
        self._acquire = self.redis.register_script(ACQUIRE)
        self._publish = self.redis.register_script(PUBLISH)

    @staticmethod
    def keys(prefix: str) -> dict[str, str]:
        return {name: f"{prefix}:{name}" for name in ("lock", "versions", "blobs", "journal", "requests", "next")}

    async def begin(self, numbered: bool = False, admin: bool = False, journal: bool = False) -> Turn:
        """A turn on up-to-date state. `admin`: the turn may add, reset or replace tenants (found
        by comparison at its end); `journal`: it reads the journal, so load it."""
        turn = Turn()
        await self._enter(turn)
        try:
            if numbered:
                self.requests += 1
                turn.number = self.requests
            if admin:
                turn.before = {t.id: (t.states, t.limiter) for t in self.server.store.tenants.values()}
            if journal:
                await self._write_back(release=False)  # this batch's entries first
                await self._load_journal()
        except BaseException:
            self.local.release()
            raise
        return turn

    async def pause(self, turn: Turn, seconds: float) -> None:
        """Sleep out of turn (others go on, as in one process), then go on in a new turn."""
        await self.end(turn)
        await asyncio.sleep(seconds)
        turn.open = True
        await self._enter(turn)

    async def _enter(self, turn: Turn) -> None:
        self.waiting += 1
        try:
            await self.local.acquire()
        finally:
            self.waiting -= 1
        try:
            if not self.holding:
                await self._take()
            # Faults change as requests take them (counts, seeded draws): share them while any exist.
            turn.world = bool(self.server.faults.faults)
        except BaseException:
            self.local.release()
            raise

    async def _take(self) -> None:
        """Take the Redis lock and load what other processes changed."""
        delay = 0.0001
        keys = [self.key[name] for name in ("lock", "versions", "requests", "next")]
        while (got := await self._acquire(keys=keys, args=[self.token, self.lease_ms, self.CLAIM_MS])) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.BATCH_SECONDS / 4)
        self.holding = True
        self.batch_turns, self.batch_started = 0, time.monotonic()
        self.written = asyncio.get_running_loop().create_future()
        self.requests, flat = got
        versions = {part.decode(): int(version) for part, version in zip(flat[::2], flat[1::2])}
        if "world" in versions:
            await self._sync(versions)
        else:  # the first turn on a fresh namespace: this process's state is it
            tenants = self.server.store.tenants.values()
            self.batch.world = True
            self.batch.states |= {(t.id, name) for t in tenants for name in t.states}
            self.batch.limits |= {t.id for t in tenants}

    async def end(self, turn: Turn) -> None:
        """End the turn (once; later calls do nothing); return when its changes are written back."""
        if not turn.open:
            return
        turn.open = False
        if turn.before is not None:  # tenants added, reset or replaced: all their parts
            for tenant in self.server.store.tenants.values():
                states, limiter = turn.before.get(tenant.id, (None, None))
                if tenant.states is not states:
                    turn.states.update((tenant.id, name) for name in tenant.states)
                if tenant.limiter is not limiter:
                    turn.limits.add(tenant.id)
        self.batch.add(turn)
        turn.world, turn.states, turn.limits, turn.entries = False, set(), set(), []
        self.batch_turns += 1
        written = self.written
        if self.waiting and self.batch_turns < self.BATCH_TURNS and \
                time.monotonic() - self.batch_started < self.BATCH_SECONDS:
            self.local.release()  # a later turn of this batch writes it back
            try:
                await asyncio.wait_for(asyncio.shield(written), self.BATCH_SECONDS * 4)
            except asyncio.TimeoutError:  # the later turns went away (cancelled) or take long
                async with self.local:
                    if self.written is written and self.holding:
                        await self._write_back(release=True)
                await written
            return
        try:
            await self._write_back(release=True)
        finally:
            self.local.release()

    async def _write_back(self, release: bool) -> None:
        """Write the batch's changes to Redis (and release the lock); tell the batch's turns."""
        written = self.written
        try:
            await self._publish_batch(release)
        except BaseException as exc:
            if release:
                self.holding = False
                if not written.done():
                    written.set_exception(exc)
                    written.exception()  # read here, so a batch of one leaves no unread exception
            raise
        if release:
            self.holding = False
            written.set_result(None)

    async def _publish_batch(self, release: bool) -> None:
        batch, tenants = self.batch, self.server.store.tenants
        self.batch = Turn()
        parts = {}
        if batch.world:
            parts["world"] = self._world()
        for tenant_id, vendor in batch.states:
            if tenant_id in tenants:
                parts[f"state:{tenant_id}:{vendor}"] = tenants[tenant_id].states[vendor]
        for tenant_id in batch.limits:
            if tenant_id in tenants:
                parts[f"limits:{tenant_id}"] = tenants[tenant_id].limiter.storage.events
        dropped = [part for part in self.seen if part != "world" and part.split(":")[1] not in tenants]
        journal = self.server.journal
        cleared, journal.cleared = journal.cleared, False
        args = [self.token, journal.entries.maxlen, int(cleared), int(release), self.requests, len(parts)]
        for part, value in parts.items():
            args += [part, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)]
        args += [len(dropped), *dropped, *(orjson.dumps(entry) for entry in batch.entries)]
        versions = await self._publish(keys=[self.key[name] for name in ("lock", "versions", "blobs", "journal",
                                                                          "requests")], args=args)
        for part in dropped:
            del self.seen[part]
        self.seen.update(zip(parts, versions))

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

    async def _load_journal(self) -> None:
        journal = self.server.journal
        entries = await self.redis.lrange(self.key["journal"], 0, -1)
        journal.entries = deque(map(orjson.loads, entries), maxlen=journal.entries.maxlen)
