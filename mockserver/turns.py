"""Turns: how requests take their go at the server's state, in one process or in several.

A request changes state only between its turn's `begin` and `end` (handlers never yield while
changing it), so requests take effect one after another. One process needs nothing for that
(`LocalTurns`). Several processes (`serve --workers N`) behave exactly like one when turns are
taken only under a lock in Redis, by a process whose copy of the state is brought up to date
when it takes the lock, and which writes back what it changed before it lets the lock go
(`RedisTurns`).

What is shared, as parts (fields of a Redis hash, each with a version in another):
- `world`: seed, tenants (id, number, rate-limit switch, clock), the server clock, the faults;
- `state:{tenant}:{vendor}`: one vendor's workspace of one tenant;
- `limits:{tenant}`: one tenant's rate-limit counters;
plus the request journal (a Redis list) and the request counter. Parts are JSON records (a
workspace's is its vendor's `dump()`, read back through `records.load_workspace`); nothing read
from Redis ever becomes code.
"""

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field

import orjson

from mockserver.errors import ApiError
from mockserver.records import load_workspace

logger = logging.getLogger("mockserver")


@dataclass
class Turn:
    """One request's go at the state, and its change record: everything it changed, noted where
    the change is made. The one answer to "what did this request change?": the answer cache,
    the state file (persistence.StateFile.commit) and the workers' replication all read it.
    A webhook's outcome and an admin call get a turn of their own."""

    number: int = 0  # a vendor request's sequence number on the server (ids may derive from it)
    open: bool = True
    world: bool = False  # anything server-wide: the tenant list, a clock, faults, the seed
    tenants: set = field(default_factory=set)  # ids of tenants created, deleted or changed (clock, switch)
    resets: set = field(default_factory=set)  # ids of tenants whose workspaces went back to their seed
    reset_all: bool = False  # every tenant's workspaces went back to their seed
    states: set = field(default_factory=set)  # (tenant id, vendor name): workspaces changed
    limits: set = field(default_factory=set)  # ids of tenants whose rate-limit counters moved
    entries: list = field(default_factory=list)  # journal entries to append

    def add(self, other: "Turn") -> None:
        self.world = self.world or other.world
        self.tenants |= other.tenants
        self.resets |= other.resets
        self.reset_all = self.reset_all or other.reset_all
        self.states |= other.states
        self.limits |= other.limits
        self.entries += other.entries

    @property
    def changed(self) -> bool:
        """Whether it changed anything a client can see (the journal and counters aside)."""
        return bool(self.world or self.tenants or self.resets or self.reset_all or self.states)


class LocalTurns:
    """One process: turns cost nothing; requests are numbered here."""

    def __init__(self):
        self.served = 0

    async def begin(self, numbered: bool = False, journal: bool = False) -> Turn:
        if numbered:
            self.served += 1
        return Turn(self.served if numbered else 0)

    async def end(self, turn: Turn) -> None:
        turn.open = False

    async def pause(self, turn: Turn, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        pass


# KEYS: lock, versions, request counter, next, events. ARGV: token, lease (ms), claim (ms).
# The lock, and with it the request counter and every part's version; nil while another holds
# it. A process refused claims the next go (for a while, so the holder cannot take the lock
# straight back) and tells the holder, which hands the lock over after its minimum hold.
ACQUIRE = """
local next = redis.call('GET', KEYS[4])
if (next and next ~= ARGV[1]) or not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if not next then redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[3]) end
  redis.call('PUBLISH', KEYS[5], 'claim:' .. ARGV[1])
  return nil
end
if next then redis.call('DEL', KEYS[4]) end
return {tonumber(redis.call('GET', KEYS[3]) or '0'), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: lock, versions, blobs, journal, request counter, events. ARGV: token, journal limit,
# clear journal (0/1), release (0/1), request counter, n, n x (part, blob), m, m x part to drop,
# journal entries... Writes what changed (and releases the lock, telling the others), only
# while this process still holds the lock; returns the written parts' new versions.
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
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[6], 'released')
end
return versions
"""

# KEYS: lock. ARGV: token, lease (ms). Extends the lease while this process holds the lock.
REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisTurns:
    """Several processes sharing one server's state through Redis (see the module docstring).

    A process keeps the lock, with what it changed, until another one asks for it: changes
    are written back only then, so a process alone pays almost nothing for sharing, and busy
    processes take the lock in turns of at least MIN_HOLD_SECONDS (and HOLD_FACTOR times what
    moving the state in and out costs). `prefix` namespaces the keys: one server (all its
    workers) per prefix. The lock is a lease the holder keeps extending; a process that dies
    holding it stalls the others for LEASE_MS at most, and its unwritten changes are lost with
    it (as a single process loses everything).
    """

    MIN_HOLD_SECONDS = 0.01
    HOLD_FACTOR = 4
    CLAIM_MS = 100  # how long a refused process's claim on the next go holds
    LEASE_MS = 10_000
    RETRY_SECONDS = 0.01  # a refused process asks again after this, should a release go unheard

    def __init__(self, server, url: str, prefix: str = "mockserver"):
        import redis.asyncio

        self.server = server
        self.redis = redis.asyncio.Redis.from_url(url)
        self.key = self.keys(prefix)
        self.token = os.urandom(16).hex()
        self.local = asyncio.Lock()  # one turn at a time in this process
        self.holding = False  # whether this process holds the Redis lock
        self.taken = 0.0  # when it took the lock (and had loaded what changed)
        self.loading = 0.0  # seconds it took to take the lock and load what changed, this time
        self.writing = 0.0  # seconds it took to write back and release, last time
        self.claimed = False  # another process asked for the lock since this one last released it
        self.handing_over = False
        self.released = asyncio.Event()  # the lock was released (by anyone): worth asking again
        self.listening: asyncio.Task | None = None  # the task that hears claims and releases
        self.pending = Turn()  # what ended turns changed, not written back yet
        self.requests = 0  # the server's request counter
        self.seen: dict[str, int] = {}  # part -> the version this process holds
        self._acquire = self.redis.register_script(ACQUIRE)
        self._publish = self.redis.register_script(PUBLISH)
        self._refresh = self.redis.register_script(REFRESH)

    @staticmethod
    def keys(prefix: str) -> dict[str, str]:
        names = ("lock", "versions", "blobs", "journal", "requests", "next", "events")
        return {name: f"{prefix}:{name}" for name in names}

    async def begin(self, numbered: bool = False, journal: bool = False) -> Turn:
        """A turn on up-to-date state. `journal`: it reads the journal, so load it. ApiError 503
        when Redis cannot be reached."""
        with _redis_errors_as_503():
            return await self._begin(numbered, journal)

    async def _begin(self, numbered: bool, journal: bool) -> Turn:
        turn = Turn()
        await self._enter(turn)
        try:
            if numbered:
                self.requests += 1
                turn.number = self.requests
            if journal:
                await self._write_back(release=False)  # this process's entries first
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
        with _redis_errors_as_503():
            await self._enter(turn)

    async def close(self) -> None:
        """At shutdown: write back what changed and let the lock go, so the others go on."""
        async with self.local:
            if self.holding:
                await self._write_back(release=True)
        if self.listening is not None:
            self.listening.cancel()

    async def _enter(self, turn: Turn) -> None:
        await self.local.acquire()
        try:
            if not self.holding:
                await self._take()
            # Faults change as requests take them (counts, seeded draws): share them while any exist.
            turn.world = bool(self.server.faults.faults)
        except BaseException:
            self.local.release()
            raise

    async def end(self, turn: Turn) -> None:
        """End the turn (once; later calls do nothing). What it changed is written back when
        another process takes the lock, before that process can see anything."""
        if not turn.open:
            return
        turn.open = False
        self.pending.add(turn)
        turn.world, turn.states, turn.limits, turn.entries = False, set(), set(), []
        self.local.release()

    async def _take(self) -> None:
        """Take the Redis lock and load what other processes changed."""
        if self.listening is None:
            self.listening = asyncio.get_running_loop().create_task(self._listen())
        keys = [self.key[name] for name in ("lock", "versions", "requests", "next", "events")]
        while True:
            self.released.clear()
            got = await self._acquire(keys=keys, args=[self.token, self.LEASE_MS, self.CLAIM_MS])
            if got is not None:
                break
            try:
                await asyncio.wait_for(self.released.wait(), self.RETRY_SECONDS)
            except asyncio.TimeoutError:
                pass
        self.holding, started = True, time.monotonic()
        self.requests, flat = got
        versions = {part.decode(): int(version) for part, version in zip(flat[::2], flat[1::2])}
        if "world" in versions:
            try:
                await self._sync(versions)
            except (ValueError, TypeError, KeyError) as exc:  # a record that is not ours: never run, refused
                await self._let_go()
                raise ApiError(503, f"The shared state (Redis) holds a record this server cannot read: {exc}") from None
        else:  # the first turn on a fresh namespace: this process's state is it
            tenants = self.server.store.tenants.values()
            self.pending.world = True
            self.pending.states |= {(t.id, name) for t in tenants for name in t.states}
            self.pending.limits |= {t.id for t in tenants}
        self.taken = time.monotonic()
        self.loading = self.taken - started
        if self.claimed:
            self._hand_over_soon()

    async def _let_go(self) -> None:
        """Release the lock without writing anything; read every part afresh next time."""
        keys = [self.key[name] for name in ("lock", "versions", "blobs", "journal", "requests", "events")]
        await self._publish(keys=keys, args=[self.token, self.server.journal.limit, 0, 1, self.requests, 0, 0])
        self.holding, self.claimed = False, False
        self.seen.clear()

    async def _listen(self) -> None:
        """Hear claims (hand the lock over) and releases (ask again); keep the lease while holding."""
        import redis

        while True:
            try:
                await self._hear()
            except redis.RedisError as exc:  # e.g. Redis restarted: listen again; askers ask again meanwhile
                logger.warning("lost the Redis event channel (%s); listening again in a second", exc)
                await asyncio.sleep(1.0)

    async def _hear(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.key["events"])
        claim = f"claim:{self.token}".encode()
        refreshed = time.monotonic()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.LEASE_MS / 4000)
            if message is not None:
                if message["data"] == b"released":
                    self.released.set()
                elif message["data"] != claim:
                    self.claimed = True
                    if self.holding:
                        self._hand_over_soon()
            if self.holding and time.monotonic() - refreshed > self.LEASE_MS / 4000:
                await self._refresh(keys=[self.key["lock"]], args=[self.token, self.LEASE_MS])
                refreshed = time.monotonic()

    def _hand_over_soon(self) -> None:
        if not self.handing_over:
            self.handing_over = True
            asyncio.get_running_loop().create_task(self._hand_over())

    async def _hand_over(self) -> None:
        """Between two turns, once held long enough: write back and release. Long enough is
        MIN_HOLD_SECONDS, or HOLD_FACTOR times what moving the state in and out cost last time,
        so moving it takes at most about a fifth of the time however big it has grown."""
        try:
            hold = max(self.MIN_HOLD_SECONDS, self.HOLD_FACTOR * (self.loading + self.writing))
            await asyncio.sleep(max(0.0, self.taken + hold - time.monotonic()))
            async with self.local:
                if self.holding:
                    started = time.monotonic()
                    await self._write_back(release=True)
                    self.writing = time.monotonic() - started
        finally:
            self.handing_over = False

    async def _write_back(self, release: bool) -> None:
        """Write what changed to Redis (and release the lock)."""
        pending, tenants = self.pending, self.server.store.tenants
        self.pending = Turn()
        parts = {}
        if pending.world:
            parts["world"] = self._world()
        by_name = self.server.store.by_name
        for tenant_id, vendor in pending.states:
            workspace = tenants[tenant_id].states.get(vendor) if tenant_id in tenants else None
            if workspace is not None:
                parts[f"state:{tenant_id}:{vendor}"] = {"schema": by_name[vendor].state.SCHEMA, "data": workspace.dump()}
        for tenant_id in pending.limits:
            if tenant_id in tenants:
                parts[f"limits:{tenant_id}"] = tenants[tenant_id].limiter.storage.events
        dropped = [part for part in self.seen if _tenant_of(part) not in (None, *tenants)]
        journal = self.server.journal
        cleared, journal.cleared = journal.cleared, False
        entries = journal.entries() if cleared else pending.entries  # a partial clear keeps the rest
        args = [self.token, journal.limit, int(cleared), int(release), self.requests, len(parts)]
        for part, value in parts.items():
            args += [part, orjson.dumps(value)]
        args += [len(dropped), *dropped, *map(orjson.dumps, entries)]
        keys = [self.key[name] for name in ("lock", "versions", "blobs", "journal", "requests", "events")]
        try:
            versions = await self._publish(keys=keys, args=args)
        finally:
            if release:
                self.holding, self.claimed = False, False
        for part in dropped:
            del self.seen[part]
        self.seen.update(zip(parts, versions))

    async def _sync(self, versions: dict[str, int]) -> None:
        """Load every part another process changed since this one last saw it."""
        for part in [part for part in self.seen if part not in versions]:
            del self.seen[part]
        synced, reloaded = False, {}
        while stale := [part for part, version in versions.items() if self.seen.get(part) != version]:
            synced = True
            blobs = dict(zip(stale, await self.redis.hmget(self.key["blobs"], stale)))
            # The world first: it may add tenants (whose parts are then loaded) or drop them.
            if "world" in blobs:
                self._apply_world(orjson.loads(blobs.pop("world")))
                self.seen["world"] = versions["world"]
            for part, blob in blobs.items():
                tenant = self._apply(part, orjson.loads(blob))
                if part.startswith("state:"):
                    reloaded[tenant.id] = tenant
                self.seen[part] = versions[part]
        if synced:
            for tenant in reloaded.values():
                self.server.store.reindex(tenant)  # the credentials the loaded parts name
            self.server.answers.invalidate()

    def _apply_world(self, world: dict) -> None:
        server, store = self.server, self.server.store
        server.seed = store.seed = world["seed"]
        store.created, store.generation = world["created"], world["generation"]
        clock = server.clock
        clock.start, clock.ticking, clock.offset, clock._origin = world["clock"]
        server.faults.load(world["faults"])
        known, listed = store.tenants, {}
        for tenant_id, number, seed, rate_limits, offset, resets in world["tenants"]:
            tenant = known.get(tenant_id)
            if tenant is not None and tenant.number != number:  # deleted and made anew meanwhile
                store._forget(known.pop(tenant_id))
                tenant = None
            if tenant is None:  # new here: its parts come next
                tenant = store.create(tenant_id, rate_limits, number, seed)
                for part in [part for part in self.seen if _tenant_of(part) == tenant_id]:
                    del self.seen[part]
            if tenant.resets != resets:  # reset by another worker
                tenant.reset()
            tenant.rate_limits, tenant.clock.offset, tenant.resets = rate_limits, offset, resets
            listed[tenant_id] = tenant
        for tenant_id in set(known) - set(listed):  # gone
            store._forget(known[tenant_id])
        store.tenants = listed  # in the world's order

    def _apply(self, part: str, value):
        """Load one tenant part; the tenant it belongs to."""
        kind, tenant_id, *vendor = part.split(":")
        tenant = self.server.store.tenants[tenant_id]
        if kind == "limits":
            tenant.limiter.storage.events = value
        else:
            vendor = self.server.store.by_name[vendor[0]]
            tenant.states[vendor.name] = load_workspace(vendor, value["data"], value["schema"], tenant.context(vendor))
        return tenant

    def _world(self) -> dict:
        server, store = self.server, self.server.store
        clock = server.clock
        return {
            "seed": server.seed,
            "created": store.created,
            "generation": store.generation,
            "clock": (clock.start, clock.ticking, clock.offset, clock._origin),
            "faults": server.faults.dump(),
            "tenants": [(t.id, t.number, t.seed, t.rate_limits, t.clock.offset, t.resets)
                        for t in store.tenants.values()],
        }

    async def _load_journal(self) -> None:
        self.server.journal.replace(list(map(orjson.loads, await self.redis.lrange(self.key["journal"], 0, -1))))


def _tenant_of(part: str) -> str | None:
    """The tenant a part belongs to (`state:{tenant}:{vendor}`, `limits:{tenant}`); None for `world`."""
    return part.split(":")[1] if ":" in part else None


@contextlib.contextmanager
def _redis_errors_as_503():
    import redis

    try:
        yield
    except redis.RedisError as exc:
        raise ApiError(503, f"The shared state (Redis) is unavailable: {exc}") from None
