"""State shared through Redis, sharded by tenant: the workers of `serve --workers N`, and servers
on other ports or machines started with `--redis-join`, behave as one server.

Every tenant is a shard; so is the world (the seed, the tenant list with each tenant's number,
seed, rate-limit switch and clock, the server clock, the faults). A request holds its tenant's
lease from authentication to the start of its answer, so requests for one tenant take effect one
after another while requests for different tenants run in parallel on any worker. A worker keeps
a lease while its own requests for that tenant keep coming, and HOLD_SECONDS after (unless another
worker asks for it), and a request joins a lease its worker holds without a lock or a round trip;
the workers of one `serve` send each tenant's connections to one of them (handover.py), so the
lease stays put. The changes of requests that ended meanwhile go in one write (group commit):
each answer still waits until its change is in Redis. A lease is
`token:fence`, the fence a number the shard's hash raises on every grant: a write-back is a Lua
compare-and-set on the lease, so a worker whose lease expired (or was lost with Redis) can never
write, and its client gets a 503 instead. A shard's hash holds `version` (raised by every
write): a worker reloads a shard only when the version differs from the one it holds, so a worker
a tenant keeps coming back to reads nothing but the lease, and one that held it before reads only
the records changed since (the tenant's log).

Keys, P the prefix (`--redis-prefix`); `{...}` is a Redis Cluster hash tag, one slot per shard:
- `P:{T}` (hash): `epoch`, `live` (1 while the tenant exists), `fence`, `version`, `ws:<vendor>`
  (a workspace's schema and meta, see tables.Tracked), `it:<vendor>:<table>:<key as JSON>` (one
  record: `<seq> <JSON>`, `seq` from the hash's `seq` counter when first written, so a table's
  records keep their order), `limits` (its rate-limit counters). A write sends only the records
  its turns changed (tables.note), plus each changed workspace's meta;
- `P:{~world}` (hash): `epoch`, `fence`, `version`, `data` (the world's JSON record);
- `P:{T}:lease`, `P:{T}:next` (a refused worker's claim on the next go), likewise for `{~world}`;
- `P:{T}:log` (list): the last LOG_LENGTH writes' version and the workspace fields they wrote, so a
  worker that held the tenant at an earlier version reads only what changed since
  (`_apply_changes`; records checked against the vendor's RECORD, applied to its open workspaces);
- `P:{T}:journal`, `P:{~}:journal` (requests no tenant sent): streams, `XADD ... MAXLEN ~`;
- `P:{T}:coverage`, `P:{~}:coverage` (hashes): each journal entry's answer counted, by the JSON
  `[vendor, operation, status]` (`HINCRBY` beside its `XADD`); deleted with the tenant or its reset;
- `P:requests` (request numbers, `INCR`), `P:epoch` (which start of the shared state this is).

Redis losing its data (a restart without persistence) changes the epoch: every worker notices at
its next request, drops what it holds and starts over from what Redis holds, never keeping a
version of its own. Everything read from Redis is JSON, checked as it is loaded; nothing becomes
code.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from mockserver.errors import ApiError
from mockserver.journal import Answered
from mockserver.records import StateError, load_workspace
from mockserver.state import check_world
from mockserver.tables import Tracked, apply_changes, assemble, check_changes, rows_of
from mockserver.tenants import DEFAULT_TENANT, Tenant, Workspaces
from mockserver.turns import Turn, number, unsaved

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from mockserver.state import ServerState

logger = logging.getLogger("mockserver")

WORLD = "~world"  # the world's shard (no tenant id starts with '~')
NOBODY = "~"  # the journal of requests whose credentials named no tenant

# KEYS: hash, lease, next, log. ARGV: token, lease ms, claim ms, epoch, known version, tenant (0/1).
# {0}: not there (another epoch, or a tenant not live); {1}: held by another, a claim on the next
# go made; granted: {2, fence, requests, limits} when the version known is current;
# {4, fence, requests, limits, version, changes} when the log still reaches back to the version
# known: each field written since, and its value ('' for one deleted); else
# {3, fence, requests, limits, version, fields}: everything.
ACQUIRE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[4] then return {0} end
if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'live') ~= '1' then return {0} end
local next = redis.call('GET', KEYS[3])
if (next and next ~= ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 1 then
  if not next then redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3]) end
  return {1}
end
if next then redis.call('DEL', KEYS[3]) end
local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
local counters = redis.call('HMGET', KEYS[1], 'requests', 'limits', 'version')
local requests, limits, version = counters[1] or '0', counters[2] or '', counters[3] or ''
if version == ARGV[5] then return {2, fence, requests, limits} end
local known = tonumber(ARGV[5])
if known and ARGV[6] == '1' then
  -- the log's entries newer than the version known, read from the newest back (a few, as a rule);
  -- it reaches back far enough when an entry no newer than that version is found
  local newer, covered, last = {}, false, redis.call('LLEN', KEYS[4]) - 1
  while last >= 0 and not covered do
    local first = math.max(0, last - 15)
    local chunk = redis.call('LRANGE', KEYS[4], first, last)
    for j = #chunk, 1, -1 do
      if tonumber(string.match(chunk[j], '^%d+')) <= known then
        covered = true
        break
      end
      newer[#newer + 1] = chunk[j]
    end
    last = first - 1
  end
  if covered then
    local seen, names = {}, {}  -- oldest first: records new since are added to their tables in order
    for i = #newer, 1, -1 do
      local line, at = newer[i], true
      for part in string.gmatch(line, '[^\\n]+') do
        if at then at = false elseif not seen[part] then
          seen[part] = true
          names[#names + 1] = part
        end
      end
    end
    local changes = {}
    for first = 1, #names, 1000 do
      local chunk = {}
      for i = first, math.min(first + 999, #names) do chunk[#chunk + 1] = names[i] end
      local values = redis.call('HMGET', KEYS[1], unpack(chunk))
      for i, name in ipairs(chunk) do
        changes[#changes + 1] = name
        changes[#changes + 1] = values[i] or ''
      end
    end
    return {4, fence, requests, limits, version, changes}
  end
end
return {3, fence, requests, limits, version, redis.call('HGETALL', KEYS[1])}
"""

# KEYS: hash, lease, journal, next, log, coverage. ARGV: lease ('' to take the shard outright: a
# tenant created under the world's lease), release (0/1: else the lease is extended), epoch, journal
# bound, clear the data fields (0/1), live ('', 0, 1), new version (0/1), clear the journal (0/1),
# lease ms, clear the answer counts (0/1), n, n x (field, value), m, m x (record field, JSON or '' to
# delete it), journal entries as (answer counted, entry)...
# A new version is the hash's next `version` (one per write, never reused: two writes under one
# lease differ), and the names of the workspace fields written go on the log (the last LOG_LENGTH
# writes: what a worker that held the tenant before reads instead of everything). Only while the
# lease is still this one; returns {the new version (0: none), whether another worker asked for
# the shard}.
WRITE = """
if ARGV[1] == '' then
  redis.call('HINCRBY', KEYS[1], 'fence', 1)
  redis.call('DEL', KEYS[2])
elseif redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('mockserver: lease lost')
end
if ARGV[5] == '1' then
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if name ~= 'fence' and name ~= 'epoch' and name ~= 'live' and name ~= 'version' then
      redis.call('HDEL', KEYS[1], name)
    end
  end
  redis.call('DEL', KEYS[5])
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[3])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'live', ARGV[6]) end
local n = tonumber(ARGV[11])
for k = 1, n do redis.call('HSET', KEYS[1], ARGV[10 + 2 * k], ARGV[11 + 2 * k]) end
local base = 12 + 2 * n
local m = tonumber(ARGV[base])
for k = 1, m do
  local name, value = ARGV[base + 2 * k - 1], ARGV[base + 2 * k]
  if value == '' then
    redis.call('HDEL', KEYS[1], name)
  else
    local old = redis.call('HGET', KEYS[1], name)
    local seq = old and string.match(old, '^(%d+) ')
    if not seq then seq = redis.call('HINCRBY', KEYS[1], 'seq', 1) end
    redis.call('HSET', KEYS[1], name, seq .. ' ' .. value)
  end
end
local version = 0
if ARGV[7] == '1' then
  version = redis.call('HINCRBY', KEYS[1], 'version', 1)
  local names = {version}
  for k = 1, n do
    if string.sub(ARGV[10 + 2 * k], 1, 3) == 'ws:' then names[#names + 1] = ARGV[10 + 2 * k] end
  end
  for k = 1, m do names[#names + 1] = ARGV[base + 2 * k - 1] end
  redis.call('RPUSH', KEYS[5], table.concat(names, '\\n'))
  redis.call('LTRIM', KEYS[5], -LOG_LENGTH, -1)
end
if ARGV[8] == '1' then redis.call('DEL', KEYS[3]) end
if ARGV[10] == '1' then redis.call('DEL', KEYS[6]) end
if base + 2 * m < #ARGV then
  local t = redis.call('TIME')
  local at = t[1] .. string.format('%06d', tonumber(t[2]))
  for i = base + 2 * m + 1, #ARGV, 2 do
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'at', at, 'entry', ARGV[i + 1])
    redis.call('HINCRBY', KEYS[6], ARGV[i], 1)
  end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) elseif ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[9]) end
local next = redis.call('GET', KEYS[4])
return {version, (next and next ~= string.match(ARGV[1], '^[^:]*')) and 1 or 0}
"""

# KEYS: lease. ARGV: lease. Let go (nothing written), if still held.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease. ARGV: lease, lease ms. Keep holding a lease held a long time (an import).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: journal, coverage. ARGV: journal bound, answer counted, entry. A journal entry outside any lease.
NOTE = """
local t = redis.call('TIME')
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'at', t[1] .. string.format('%06d', tonumber(t[2])),
                  'entry', ARGV[3])
"""

LOG_LENGTH = 1024  # writes a tenant's log keeps: a worker further behind reads the tenant whole
WRITE = WRITE.replace("LOG_LENGTH", str(LOG_LENGTH))
SCRIPTS = {"acquire": ACQUIRE, "write": WRITE, "release": RELEASE, "renew": RENEW, "note": NOTE}


@dataclass
class Shard:
    """This worker's hold on one shard (a tenant, or the world)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # taken to ask for, or let go of, the lease
    lease: str | None = None  # the lease this worker holds, kept while its requests keep coming
    waiting: int = 0  # turns waiting for the lock
    active: int = 0  # turns under way on the lease (a tenant's; they hold no lock)
    quiet: asyncio.Event = field(default_factory=asyncio.Event)  # set while none is
    used: float = 0.0  # when a turn last joined (time.monotonic): the lease is kept HOLD_SECONDS after
    pending: list[Any] = field(default_factory=list)  # (turn, future or None): ended, not written yet
    flusher: asyncio.Task[None] | None = None  # writes what is pending, then lets the lease go when idle
    urgent: bool = False  # write what is pending now (an answer waits, or the lease is wanted)
    holding: bool = False  # the flusher keeps an idle lease a while: any turn that ends wakes it
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # the flusher, napping, is needed now
    claimed: bool = False  # another worker asked for the shard: let it go at the next chance
    generation: int = 0  # moves when a write failed: turns entered before then fail too

    def __post_init__(self) -> None:
        self.quiet.set()

    def free(self) -> bool:
        """Held, and nobody asks for it here or elsewhere: a turn may join without the lock."""
        return self.lease is not None and not self.claimed and not self.lock.locked()

    def releasable(self) -> bool:
        """Nobody here uses the lease now, and either nobody here waits for it or another worker does."""
        return self.lease is not None and not self.lock.locked() and not self.pending and not self.active and (
            self.claimed or self.waiting == 0)


class SharedTurns:
    """Turns on state shared through Redis (see the module docstring); the same calls as
    turns.LocalTurns."""

    LEASE_MS = 5_000  # a lease lasts this long unless extended: a dead worker stalls a tenant that long
    CLAIM_MS = 50  # how long a refused worker's claim on a shard's next go holds
    WAIT_SECONDS = 12.0  # a request waits this long for a lease, then gets a 503
    WHOLE_ATTEMPTS = 20  # an admin call takes every lease at once; it tries this often
    LAZY_SECONDS = 0.025  # a read's journal entry and counters wait this long at most for company
    HOLD_SECONDS = 0.05  # an idle lease is kept this long (unless another worker asks for it)
    BATCH_LIMIT = 256  # turns written in one go at most

    def __init__(self, state: "ServerState", url: str, prefix: str = "mockserver") -> None:
        import redis.asyncio

        self.state = state
        self.redis = redis.asyncio.Redis.from_url(url)
        self.prefix = prefix
        self.token = os.urandom(8).hex()
        self.epoch: bytes | None = None  # the start of the shared state this worker has loaded
        self.versions: dict[str, bytes] = {}  # shard -> the version of its records this worker holds
        self.stored: set[tuple[str, str]] = set()  # (tenant, vendor): workspaces whose records Redis holds
        self.shards: dict[str, Shard] = {}
        self.whole: set[int] = set()  # ids of the admin turns under way (every shard held)
        self.shas = {name: hashlib.sha1(script.encode()).hexdigest() for name, script in SCRIPTS.items()}
        self.renewing: asyncio.Task[None] | None = None
        self.commits: list[Any] = []  # (keys, arguments, future): tenants' writes due, sent together
        self.committer: asyncio.Task[None] | None = None  # sends them
        self.fresh_clock = (state.clock.start, state.clock.ticking)  # a new world's clock
        self.key_requests = f"{prefix}:requests"

    # --- keys -------------------------------------------------------------------------------------

    def key(self, shard: str, part: str = "") -> str:
        return f"{self.prefix}:{{{shard}}}{part and ':' + part}"

    def keys(self, shard: str) -> list[str]:
        return [self.key(shard), self.key(shard, "lease"), self.key(shard, "next"), self.key(shard, "log")]

    # --- the turn protocol ------------------------------------------------------------------------

    async def begin(self, numbered: bool = False, journal: bool = False, whole: bool = False) -> Turn:
        """A turn. `whole` (admin calls): every shard held and fresh, and with `journal` the
        journal loaded too. A vendor request's turn holds nothing until `enter`."""
        turn = Turn(numbered=numbered)
        if whole:
            self.whole.add(id(turn))
            try:
                with _redis_errors_as_503():
                    await self._enter_everything(turn, journal)
            except BaseException:
                self.whole.discard(id(turn))
                self._unlock(turn)
                raise
        return turn

    async def enter(self, turn: Turn, tenant: Tenant) -> bool:
        """Hold the tenant for the rest of the turn, its records fresh. True when they were read
        afresh (its credentials may have changed) or the tenant is gone. While this worker holds
        the lease and nobody asks for it, a turn joins it at once: no lock, no Redis."""
        shard = self.shards.get(tenant.id)
        if shard is not None and shard.free() and self.epoch is not None:
            self._join(turn, tenant.id, shard)
            number(turn, tenant)
            return False
        with _redis_errors_as_503():
            if self.epoch is None:
                await self._start_over()
            shard = await self._take_lock(tenant.id)
            try:
                await self._quiet(shard)  # turns under way end first: records are replaced only then
                reloaded = False
                if shard.lease is not None and shard.claimed:  # another worker's go: let it go, then ask again
                    await self._quiet(shard)
                    await self._written(tenant.id, shard)
                    await self._let_go(tenant.id, shard)
                if shard.lease is None:
                    reloaded = await self._acquire_tenant(shard, tenant)
                    if shard.lease is None:  # gone
                        return True
                self._join(turn, tenant.id, shard)
                number(turn, tenant)
                return reloaded
            finally:
                shard.lock.release()

    async def enter_world(self, turn: Turn) -> None:
        """Hold the world's lease too (after the tenant's, as every turn takes them), to take a fault."""
        with _redis_errors_as_503():
            shard = await self._lock(turn, WORLD)
            deadline, pause = time.monotonic() + self.WAIT_SECONDS, 0.0005
            while True:
                granted = await self._script("acquire", self.keys(WORLD), self._acquire_args(WORLD))
                if granted[0] == 0:
                    await self._start_over()
                    continue
                if granted[0] >= 2:
                    shard.lease = f"{self.token}:{granted[1]}"
                    turn.held[WORLD] = shard.generation
                    if granted[0] == 3:
                        self._load_world(granted[4], _fields(granted[5]))
                    break
                pause = await self._wait(deadline, pause, WORLD)
        turn.world = True

    async def sync(self) -> None:
        """Catch up with the world (tenants, clocks, faults), for a request no tenant holds."""
        with _redis_errors_as_503():
            epoch, version = await self.redis.hmget(self.key(WORLD), "epoch", "version")
            await self._catch_up_world(epoch, version)

    async def refresh(self) -> bool:
        """A credential no tenant here knows: catch up with the tenant list and with every tenant
        changed elsewhere (a token made on another worker). True if anything was learnt."""
        with _redis_errors_as_503():
            before = self.versions.get(WORLD)
            await self.sync()
            learnt = self.versions.get(WORLD) != before
            tenants = [tenant for tenant in self.state.store.tenants.values() if self._idle(tenant.id)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for tenant in tenants:
                    pipe.hget(self.key(tenant.id), "version")
                versions = await pipe.execute()
            for tenant, version in zip(tenants, versions, strict=True):
                if version is not None and version != self.versions.get(tenant.id):
                    fields = await self.redis.hgetall(self.key(tenant.id))
                    if self._idle(tenant.id) and b"version" in fields:  # (a turn may have taken it meanwhile)
                        self._load_tenant(tenant, fields[b"version"], fields)
                        learnt = True
            return learnt

    def _idle(self, name: str) -> bool:
        """Nothing here holds the tenant, nor uses or waits for it: its records may be replaced."""
        shard = self.shards.get(name)
        return shard is None or (shard.lease is None and not shard.active and not shard.lock.locked())

    async def number(self, turn: Turn) -> int:
        """A request no tenant holds takes the server's next number (INCR) when first needed."""
        if turn.numbered and not turn.number:
            with _redis_errors_as_503():
                turn.number = await self.redis.incr(self.key_requests)
        return turn.number

    async def end(self, turn: Turn) -> bool:
        """Write what the turn changed (once; later calls do nothing), then let it go. False when
        it could not be written: the change is then undone here too (read back from Redis)."""
        if not turn.open:
            return True
        turn.open = False
        whole = id(turn) in self.whole
        self.whole.discard(id(turn))
        try:
            direct = list(turn.held) if whole else [shard for shard in turn.held if shard == WORLD]
            saved = await self._write_direct(turn, direct) if direct or whole else True
            saved = await self._write_nobody(turn) and saved
            if turn.joined:
                name, shard = turn.joined[0]
                if turn.held[name] != shard.generation:  # a write before this turn's failed
                    return False
                # A change's answer waits until it is written; a read's journal entry and counters
                # are written with the next change, or within LAZY_SECONDS, or before the lease goes.
                changed = any(tenant_id == name for tenant_id, _ in turn.states)
                future = asyncio.get_running_loop().create_future() if changed else None
                shard.pending.append((turn, future))
                self._leave(turn)  # the next request here may go on while this one's change is written
                self._kick(name, shard, urgent=changed or shard.claimed or len(shard.pending) >= self.BATCH_LIMIT)
                if future is not None:
                    saved = await future and saved
            return saved
        finally:
            self._leave(turn)
            self._unlock(turn)

    async def note(self, entry: dict[str, Any]) -> None:
        """A journal entry outside any lease (a request refused as its change could not be written)."""
        with contextlib.suppress(Exception):
            await self._script("note", *self._note(entry))

    async def pause(self, turn: Turn, seconds: float) -> None:
        """Sleep out of turn (others go on), then hold the same shards again."""
        held = list(turn.held)
        saved = await self.end(turn)
        await asyncio.sleep(seconds)
        turn.open, turn.held = True, {}
        if not saved:
            raise unsaved(turn)
        tenants = self.state.store.tenants
        for shard in held:
            if shard == WORLD:
                await self.enter_world(turn)
            elif shard in tenants and await self.enter(turn, tenants[shard]):
                raise ApiError(503, "The tenant changed while this request waited; try again.")

    async def close(self) -> None:
        """At shutdown: let go of the leases kept (others need not wait for them to expire)."""
        if self.renewing is not None:
            self.renewing.cancel()
        with contextlib.suppress(Exception):
            for name, shard in self.shards.items():
                if shard.lease is not None and not shard.lock.locked():
                    await self._script("release", [self.key(name, "lease")], [shard.lease])
        await self.redis.aclose()

    # --- holding shards ---------------------------------------------------------------------------

    async def _take_lock(self, name: str) -> Shard:
        """The shard (made if new), its lock taken."""
        shard = self.shards.get(name)
        if shard is None:
            shard = self.shards[name] = Shard()
        shard.waiting += 1
        try:
            await shard.lock.acquire()
        finally:
            shard.waiting -= 1
        if self.renewing is None:
            self.renewing = asyncio.get_running_loop().create_task(self._renew())
        return shard

    async def _lock(self, turn: Turn, name: str) -> Shard:
        """The shard's lock, held by the turn until it ends (the world's, or every shard's)."""
        shard = await self._take_lock(name)
        turn.locks.append(shard)
        return shard

    def _unlock(self, turn: Turn) -> None:
        for shard in reversed(turn.locks):
            shard.lock.release()
        turn.locks = []

    @staticmethod
    def _join(turn: Turn, name: str, shard: Shard) -> None:
        """The turn goes on under the tenant's lease (which stays while it is under way)."""
        shard.active += 1
        shard.quiet.clear()
        shard.used = time.monotonic()
        turn.held[name] = shard.generation
        turn.joined.append((name, shard))

    @staticmethod
    def _leave(turn: Turn) -> None:
        for _, shard in turn.joined:
            shard.active -= 1
            if not shard.active:
                shard.quiet.set()
        turn.joined = []

    @staticmethod
    async def _quiet(shard: Shard) -> None:
        """Once the turns under way on the lease have ended (the caller holds the lock: none joins)."""
        while shard.active:
            await shard.quiet.wait()

    async def _acquire_tenant(self, shard: Shard, tenant: Tenant) -> bool:
        """Take the tenant's lease (waiting while another worker holds it); its records read
        afresh if they changed. True if they were, or if the tenant is gone (no lease then)."""
        deadline, pause = time.monotonic() + self.WAIT_SECONDS, 0.0005
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                self._queue(pipe, "acquire", self.keys(tenant.id), self._acquire_args(tenant.id, tenant=True))
                pipe.hmget(self.key(WORLD), "epoch", "version")
                granted, (epoch, version) = await self._execute(pipe)
            if granted[0] >= 2:
                shard.lease, shard.claimed = f"{self.token}:{granted[1]}", False
            try:
                if not await self._catch_up_world(epoch, version):  # started over: ask afresh
                    await self._let_go(tenant.id, shard)
                    continue
                if self.state.store.tenants.get(tenant.id) is not tenant:  # deleted (and made anew) meanwhile
                    await self._let_go(tenant.id, shard)
                    return True
                if granted[0] >= 2:
                    if granted[0] >= 3:
                        await self._catch_up_tenant(tenant, granted)
                    self._load_counters(tenant, granted)
                    return bool(granted[0] >= 3)
            except BaseException:
                await self._let_go(tenant.id, shard)
                raise
            pause = await self._wait(deadline, pause, tenant.id)

    async def _enter_everything(self, turn: Turn, journal: bool) -> None:
        """Every tenant's lease and the world's, all fresh; asked for at once, and all let go and
        asked for again if any is held elsewhere (so two such turns never wait on each other)."""
        if self.epoch is None:
            await self._start_over()
        for attempt in range(self.WHOLE_ATTEMPTS):
            await self.sync()
            names = sorted(self.state.store.tenants) + [WORLD]
            shards = [await self._lock(turn, name) for name in names]
            for name, shard in zip(names, shards, strict=True):  # what ended turns changed, written first
                await self._quiet(shard)
                await self._written(name, shard)
            asking = [(name, shard) for name, shard in zip(names, shards, strict=True) if shard.lease is None]
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, _ in asking:
                    self._queue(pipe, "acquire", self.keys(name), self._acquire_args(name, tenant=name != WORLD))
                results = await self._execute(pipe)
            for (_, shard), granted in zip(asking, results, strict=True):
                if granted[0] >= 2:
                    shard.lease, shard.claimed = f"{self.token}:{granted[1]}", False
            if all(granted[0] >= 2 for granted in results):
                try:
                    granted_world = results[-1] if asking and asking[-1][0] == WORLD else None
                    if granted_world is not None and granted_world[0] == 3:
                        self._load_world(granted_world[4], _fields(granted_world[5]))
                    if sorted(self.state.store.tenants) + [WORLD] == names:
                        tenants = self.state.store.tenants
                        for (name, _), granted in zip(asking, results, strict=True):
                            if name != WORLD:
                                if granted[0] >= 3:
                                    await self._catch_up_tenant(tenants[name], granted)
                                self._load_counters(tenants[name], granted)
                        if journal:
                            await self._load_journal()
                        turn.held = {name: shard.generation for name, shard in zip(names, shards, strict=True)}
                        return
                except BaseException:
                    for name, shard in zip(names, shards, strict=True):
                        await self._let_go(name, shard)
                    raise
            for name, shard in zip(names, shards, strict=True):
                await self._let_go(name, shard)
            self._unlock(turn)
            if any(granted[0] == 0 for granted in results):
                await self._start_over()
            await asyncio.sleep(0.001 * (attempt + 1) * (1 + os.urandom(1)[0] / 255))
        raise ApiError(503, "Other requests kept the tenants busy; try again.")

    def _acquire_args(self, shard: str, tenant: bool = False) -> list[Any]:
        return [self.token, self.LEASE_MS, self.CLAIM_MS, self.epoch, self.versions.get(shard, b""), int(tenant)]

    async def _wait(self, deadline: float, pause: float, shard: str) -> float:
        if time.monotonic() > deadline:
            raise ApiError(503, f"Tenant {shard} stayed busy on another worker; try again.")
        await asyncio.sleep(pause)
        return min(pause * 2, 0.002)

    async def _let_go(self, name: str, shard: Shard) -> None:
        """Release a lease without writing anything."""
        lease, shard.lease = shard.lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                await self._script("release", [self.key(name, "lease")], [lease])

    async def _renew(self) -> None:
        """Extend every lease held (kept between requests, or by an admin call importing a large state)."""
        while True:
            await asyncio.sleep(self.LEASE_MS / 3000)
            with contextlib.suppress(Exception):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for name, shard in list(self.shards.items()):
                        if shard.lease is not None:
                            self._queue(pipe, "renew", [self.key(name, "lease")], [shard.lease, self.LEASE_MS])
                    await self._execute(pipe)

    # --- writing ----------------------------------------------------------------------------------

    def _kick(self, name: str, shard: Shard, urgent: bool) -> None:
        """See that what is pending gets written: now if `urgent`, else within LAZY_SECONDS."""
        shard.urgent = shard.urgent or urgent
        if shard.flusher is None:
            shard.flusher = asyncio.get_running_loop().create_task(self._flush(name, shard))
        elif urgent or shard.holding:
            shard.wake.set()

    async def _written(self, name: str, shard: Shard) -> None:
        """Once everything pending is written (the caller holds the shard's lock: nothing more comes)."""
        if shard.pending:
            self._kick(name, shard, urgent=True)
        while shard.flusher is not None:
            shard.wake.set()  # a flusher keeping the lease idle: on to letting it go
            await asyncio.wait({shard.flusher})

    async def _flush(self, name: str, shard: Shard) -> None:
        """Write what ended turns changed, in batches; let the lease go once nobody here has needed
        it for HOLD_SECONDS, or another worker asks for it."""
        try:
            while True:
                if shard.pending:
                    if not shard.urgent:  # reads alone: wait a little for company
                        await self._nap(shard, self.LAZY_SECONDS)
                    shard.urgent = False
                    await self._write_batch(name, shard)
                elif not shard.releasable():
                    return
                elif shard.claimed or time.monotonic() - shard.used >= self.HOLD_SECONDS:
                    await self._let_go(name, shard)
                else:
                    shard.holding = True
                    await self._nap(shard, self.HOLD_SECONDS - (time.monotonic() - shard.used))
                    shard.holding = False
        finally:
            shard.flusher = None

    @staticmethod
    async def _nap(shard: Shard, seconds: float) -> None:
        """Sleep until `seconds` pass or the flusher is woken."""
        shard.wake.clear()
        alarm = asyncio.get_running_loop().call_later(seconds, shard.wake.set)  # cheaper than asyncio.timeout
        try:
            await shard.wake.wait()
        finally:
            alarm.cancel()

    async def _write_batch(self, name: str, shard: Shard) -> None:
        """One write for every turn that ended since the last: the workspaces they changed (each
        dumped once), the tenant's counters, their journal entries. Each turn's answer waits for it."""
        batch, shard.pending = shard.pending[:self.BATCH_LIMIT], shard.pending[self.BATCH_LIMIT:]
        generation, lease, tenant = shard.generation, shard.lease, self.state.store.tenants.get(name)
        stale = [future for turn, future in batch if turn.held.get(name) != generation]
        batch = [(turn, future) for turn, future in batch if turn.held.get(name) == generation]
        if lease is None or tenant is None:  # cannot happen while turns hold the shard; refused if it did
            stale += [future for _, future in batch]
            batch = []
        for future in stale:
            if future is not None:
                future.set_result(False)
        if not batch:
            return
        assert lease is not None and tenant is not None
        turns = list({id(turn): turn for turn, _ in batch}.values())  # a turn that paused is pending twice
        fields, records = self._tenant_fields(tenant, turns, any(name in turn.limits for turn in turns))
        new_version = any(key.startswith("ws:") for key in fields)
        fields["requests"] = str(tenant.requests).encode()
        entries = [part for turn in turns for entry in turn.entries if entry["tenant"] == name
                   for part in (_answered(entry), _entry_json(entry))]
        release = shard.claimed and shard.releasable()
        if release:
            shard.lease = None
        args = [lease, int(release), self.epoch, self.state.journal.limit, 0, "", int(new_version), 0,
                self.LEASE_MS, 0, *_pairs(fields), *_pairs(records)]
        try:
            version, claimed = await self._commit(self._write_keys(name), args + entries)
            saved = True
            if new_version:
                self.versions[name] = str(version).encode()
            shard.claimed = shard.claimed or bool(claimed)
        except Exception as exc:  # the lease lost, Redis gone: undone here too, read back next time
            if "lease lost" not in str(exc):
                logger.warning("could not write a change to Redis: %s", exc)
                for turn, _ in batch:
                    turn.unconfirmed = True
            saved = False
            if shard.generation == generation:
                shard.generation += 1
                shard.lease = None
            self._forget_records(tenant)
        for _, future in batch:
            if future is not None:
                future.set_result(saved)

    async def _commit(self, keys: list[str], args: list[Any]) -> Any:
        """A tenant's write, sent in one round trip with the other tenants' that fall due while
        the one before is under way (group commit across tenants)."""
        future = asyncio.get_running_loop().create_future()
        self.commits.append((keys, args, future))
        if self.committer is None:
            self.committer = asyncio.get_running_loop().create_task(self._send_commits())
        return await future

    async def _send_commits(self) -> None:
        try:
            while self.commits:
                commits, self.commits = self.commits, []
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for keys, args, _ in commits:
                            self._queue(pipe, "write", keys, args)
                        results = await self._execute(pipe, raise_on_error=False)
                except Exception as exc:  # Redis unreachable: every write fails
                    results = [exc] * len(commits)
                for (_, _, future), result in zip(commits, results, strict=True):
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.committer = None

    async def _write_direct(self, turn: Turn, names: list[str]) -> bool:
        """An admin call's changes (every shard it holds, the tenants it created, the journals it
        cleared), or a fault's on the world: tenants before the world, so a tenant the world lists
        exists. Every lease is let go. False if nothing could be written."""
        store, journal = self.state.store, self.state.journal
        cleared = {NOBODY if shard is None else shard for shard in turn.journals}
        created = [name for name in turn.tenants if name not in turn.held and name in store.tenants]
        writes = []  # (name, lease or '' for a created tenant, arguments)
        for name in sorted(names, key=lambda name: name == WORLD) + created:
            lease = self.shards[name].lease if name in turn.held else ""
            records: dict[str, bytes] = {}
            if name == WORLD:
                fields = {"data": orjson.dumps(self._world())} if turn.world else {}
                clear, live = False, ""
            else:
                tenant = store.tenants.get(name)
                clear = tenant is None or not lease or turn.reset_all or name in turn.resets
                live = "0" if tenant is None else "1" if not lease else ""
                if clear:
                    self.stored = {owner for owner in self.stored if owner[0] != name}
                fields = {}
                if tenant is not None:
                    fields, records = self._tenant_fields(tenant, [turn], name in turn.limits)
            clear_journal = name != WORLD and (... in cleared or name in cleared or not lease)
            forgotten = name != WORLD and (name not in store.tenants or name in turn.resets or not lease)
            args = [lease, 1, self.epoch, journal.limit, int(clear), live, int(clear or "data" in fields or any(
                key.startswith("ws:") for key in fields)), int(clear_journal), self.LEASE_MS, int(forgotten),
                *_pairs(fields), *_pairs(records)]
            writes.append((name, lease, args))
        others = {shard for shard in cleared if shard is not ...} | (
            {*store.tenants, NOBODY} if ... in cleared else set())
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, _, args in writes:
                self._queue(pipe, "write", self._write_keys(name), args)
            for name in others - {name for name, _, _ in writes}:  # journals of tenants not held
                pipe.delete(self.key(name, "journal"))
            try:
                results = await self._execute(pipe, raise_on_error=False)
            except Exception as exc:
                results = [exc]
        for name, lease, _ in writes:
            if lease:
                self.shards[name].lease = None
            if name != WORLD and name not in store.tenants:  # deleted
                self._drop(name)
        failed = next((result for result in results if isinstance(result, Exception)), None)
        if failed is not None:
            if "lease lost" not in str(failed):
                logger.warning("could not write a change to Redis: %s", failed)
                turn.unconfirmed = True
            for name, _, _ in writes:
                self.versions.pop(name, None)
                self.stored = {owner for owner in self.stored if owner[0] != name}
            for name in turn.held:  # what the turn changed here is read back from Redis
                if name != WORLD and name in store.tenants:
                    self._forget_records(store.tenants[name])
            return False
        for (name, _, args), result in zip(writes, results[:len(writes)], strict=True):  # then the journals deleted
            if args[6]:  # a new version: this worker holds it
                self.versions[name] = str(result[0]).encode()
        return True

    async def _write_nobody(self, turn: Turn) -> bool:
        """The journal entries of a request no tenant holds, and its number if it took none."""
        entries = [entry for entry in turn.entries if entry["tenant"] is None or entry["tenant"] not in turn.held]
        numbering = turn.numbered and not turn.number and not turn.held
        if not entries and not numbering:
            return True
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if numbering:
                    pipe.incr(self.key_requests)
                for entry in entries:
                    self._queue(pipe, "note", *self._note(entry))
                results = await self._execute(pipe)
        except Exception as exc:
            logger.warning("could not write a journal entry to Redis: %s", exc)
            return False
        if numbering:
            turn.number = results[0]
        return True

    def _write_keys(self, name: str) -> list[str]:
        return [self.key(name), self.key(name, "lease"), self.key(name, "journal"), self.key(name, "next"),
                self.key(name, "log"), self.key(name, "coverage")]

    def _note(self, entry: dict[str, Any]) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the script that writes a journal entry outside any lease."""
        shard = entry["tenant"] or NOBODY
        return ([self.key(shard, "journal"), self.key(shard, "coverage")],
                [self.state.journal.limit, _answered(entry), _entry_json(entry)])

    def _tenant_fields(self, tenant: Tenant, turns: list[Turn], limits: bool) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """What to write of a tenant for these turns: (fields, records). Fields: the meta of each
        open workspace they changed and, with `limits`, its rate-limit counters. Records: the
        records they changed (b'' for one deleted), or all of a workspace Redis does not hold yet."""
        changed: dict[str, dict[Any, None]] = {}  # vendor -> the (table, key) changed, in order
        for turn in turns:
            for tenant_id, vendor in turn.states:
                if tenant_id == tenant.id:
                    changed.setdefault(vendor, {}).update(turn.items.get((tenant_id, vendor), {}))
        fields, records = {}, {}
        for vendor in sorted(changed):
            workspace = tenant.states.get(vendor)
            if workspace is None:
                continue
            schema = self.state.store.by_name[vendor].state.SCHEMA
            fields[f"ws:{vendor}"] = orjson.dumps({"schema": schema, "data": workspace.meta()})
            held = (tenant.id, vendor) in self.stored  # else Redis holds none of it yet: all of it goes
            for table, key, row in rows_of(workspace, changed[vendor] if held else None):
                records[_record_field(vendor, table, key)] = b"" if row is None else orjson.dumps(row)
            self.stored.add((tenant.id, vendor))
        if limits and tenant.counters() is not None:
            fields["limits"] = orjson.dumps(tenant.counters())
        return fields, records

    def _drop(self, name: str) -> None:
        """Forget a deleted tenant's shard (turns holding it keep their reference)."""
        self.versions.pop(name, None)
        self.shards.pop(name, None)

    def _forget_records(self, tenant: Tenant) -> None:
        """Hold a tenant's records here as unknown (a change to them could not be written): read
        whole from Redis when it is next held. Turns still under way (they will be refused) keep
        the workspaces they had: they are replaced only once those turns are done (`enter` waits)."""
        self.versions.pop(tenant.id, None)
        self.stored = {owner for owner in self.stored if owner[0] != tenant.id}
        self.state.answers.invalidate()

    # --- reading ----------------------------------------------------------------------------------

    async def _catch_up_world(self, epoch: bytes | None, version: bytes | None) -> bool:
        """Load the world if it changed; False (after starting over) if Redis lost its data."""
        if epoch is None or epoch != self.epoch:
            await self._start_over()
            return False
        if version != self.versions.get(WORLD):
            data, version = await self.redis.hmget(self.key(WORLD), "data", "version")
            self._load_world(version, {b"data": data})
        return True

    def _load_world(self, version: bytes, fields: dict[bytes, Any]) -> None:
        try:
            self._apply_world(orjson.loads(fields[b"data"]))
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # a record that is not ours: never run
            self.versions.pop(WORLD, None)
            raise _unreadable(exc) from None
        self.versions[WORLD] = version
        self.state.answers.invalidate()

    async def _catch_up_tenant(self, tenant: Tenant, granted: list[Any]) -> None:
        """A granted lease's records: everything (3), or what changed since this worker last held
        the tenant (4), applied to its open workspaces; read whole when they cannot take it."""
        if granted[0] == 4 and self._apply_changes(tenant, granted[4], _fields(granted[5])):
            return
        fields = granted[5] if granted[0] == 3 else await self.redis.hgetall(self.key(tenant.id))
        self._load_tenant(tenant, granted[4], fields)

    def _apply_changes(self, tenant: Tenant, version: bytes, changes: dict[bytes, bytes]) -> bool:
        """Apply records changed elsewhere to the tenant's open workspaces (each checked as it is
        read); False, with nothing applied, when a change is to a workspace not open here or of
        another schema."""
        store = self.state.store
        metas: dict[str, Any] = {}
        rows: dict[str, list[tuple[str, str, bytes]]] = {}
        for key, value in changes.items():
            name = key.decode()
            if name.startswith("ws:"):
                metas[name[3:]] = orjson.loads(value) if value else None
            elif name.startswith("it:"):
                _, vendor_name, table, item = name.split(":", 3)
                rows.setdefault(vendor_name, []).append((table, item, value))
        plans = []
        try:
            for vendor_name in {*metas, *rows}:
                if vendor_name not in store.by_name:
                    continue
                workspace, meta = tenant.states.get(vendor_name), metas.get(vendor_name)
                vendor = store.by_name[vendor_name]
                if not isinstance(workspace, Tracked) or meta is None or meta["schema"] != vendor.state.SCHEMA:
                    return False  # not open here (or a record this server must migrate): read whole
                plan = [(table, orjson.loads(item), orjson.loads(value.partition(b" ")[2]) if value else None)
                        for table, item, value in rows.get(vendor_name, ())]
                check_changes(workspace, meta["data"], plan)
                plans.append((workspace, meta["data"], plan))
        except (ValueError, TypeError, KeyError, StateError) as exc:
            self.versions.pop(tenant.id, None)
            raise _unreadable(exc) from None
        for workspace, meta, plan in plans:
            apply_changes(workspace, meta, plan)
        store.reindex(tenant)
        self.versions[tenant.id] = version
        self.state.answers.invalidate()
        return True

    def _load_tenant(self, tenant: Tenant, version: bytes, flat: object) -> None:
        """Replace the tenant's workspaces and counters with its records in Redis."""
        store = self.state.store
        states, limits = Workspaces(tenant), {}
        metas: dict[str, Any] = {}
        rows: dict[str, dict[str, list[tuple[int, Any]]]] = {}  # vendor -> table -> (seq, record)
        try:
            for key, value in _fields(flat).items():
                name = key.decode()
                if name.startswith("ws:") and name[3:] in store.by_name:  # others: vendors not served here
                    metas[name[3:]] = orjson.loads(value)
                elif name.startswith("it:"):
                    _, vendor_name, table, _ = name.split(":", 3)
                    seq, _, record = value.partition(b" ")
                    rows.setdefault(vendor_name, {}).setdefault(table, []).append((int(seq), record))
                elif name == "limits":
                    limits = _limits(orjson.loads(value))
            for vendor_name, meta in metas.items():
                vendor = store.by_name[vendor_name]
                tables = {table: [orjson.loads(record) for _, record in sorted(kept)]
                          for table, kept in rows.get(vendor_name, {}).items()}
                states[vendor_name] = load_workspace(vendor, assemble(meta["data"], tables, vendor.state), meta["schema"],
                                                     tenant.context(vendor))
        except (ValueError, TypeError, KeyError, StateError) as exc:
            self.versions.pop(tenant.id, None)
            raise _unreadable(exc) from None
        tenant.generation = store.generation
        tenant.replace(states, limits)
        store.reindex(tenant)
        # A workspace read from records of an older schema is written whole when it next changes
        # (its rows are what `load` migrated, not what single records written later fit in).
        self.stored = {owner for owner in self.stored if owner[0] != tenant.id} | {
            (tenant.id, name) for name, meta in metas.items() if meta["schema"] == store.by_name[name].state.SCHEMA}
        self.versions[tenant.id] = version
        self.state.answers.invalidate()

    @staticmethod
    def _load_counters(tenant: Tenant, granted: list[Any]) -> None:
        """A tenant's request count and rate-limit counters, as a granted lease brings them."""
        try:
            requests, limits = int(granted[2]), _limits(orjson.loads(granted[3])) if granted[3] else {}
        except ValueError as exc:  # counters that are not ours
            raise _unreadable(exc) from None
        tenant.requests = requests
        tenant.replace(tenant.states, limits)

    async def _load_journal(self) -> None:
        """The journal as Redis holds it: every stream's last entries, merged in the order written,
        and every tenant's answer counts."""
        journal, shards = self.state.journal, [*self.state.store.tenants, NOBODY]
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.xrevrange(self.key(shard, "journal"), count=journal.limit)
                pipe.hgetall(self.key(shard, "coverage"))
            read = await pipe.execute()
        kept, counts = [], {}
        for shard, stream, counted in zip(shards, read[::2], read[1::2], strict=True):
            for stream_id, fields in reversed(stream):
                kept.append((int(fields[b"at"]), stream_id, orjson.loads(fields[b"entry"]), len(fields[b"entry"])))
            if counted:
                counts[None if shard == NOBODY else shard] = _answer_counts(counted)
        kept.sort(key=lambda item: item[:2])
        journal.replace([(entry, size) for *_, entry, size in kept], counts)

    # --- the world --------------------------------------------------------------------------------

    def _world(self) -> dict[str, Any]:
        """The world record (ServerState.world), with what workers share beyond it: the clock's
        start, ticking and offset and its origin as wall time (workers on any machine read the same
        now), and the faults."""
        clock = self.state.clock
        origin = clock.origin + (time.time() - time.monotonic())
        return self.state.world() | {"clock": [clock.start, clock.ticking, clock.offset, origin],
                                     "faults": self.state.faults.dump()}

    def _apply_world(self, world: dict[str, Any]) -> None:
        check_world(world)
        state, store = self.state, self.state.store
        start, ticking, offset, origin = world["clock"]
        state.faults.load(world["faults"])
        state.seed = store.seed = world["seed"]
        store.created = world["created"]
        clock = state.clock
        clock.start, clock.ticking, clock.offset = float(start), bool(ticking), float(offset)
        clock.origin = float(origin) - (time.time() - time.monotonic())
        known, listed = store.tenants, {}
        for entry in world["tenants"]:
            tenant = known.get(entry["id"])
            if tenant is not None and (tenant.number, tenant.seed) != (entry["number"], entry["seed"]):  # made anew
                store.forget(known.pop(entry["id"]))
                tenant = None
            if tenant is None:  # new here: its records are read when it is first held
                tenant = store.create(entry["id"], entry["rate_limits"], entry["number"], entry["seed"])
                self.versions.pop(entry["id"], None)
            tenant.rate_limits, tenant.clock.offset = entry["rate_limits"], entry["clock_offset"]
            listed[entry["id"]] = tenant
        for tenant_id in set(known) - set(listed):  # gone
            store.forget(known[tenant_id])
            self._drop(tenant_id)
        store.tenants = listed  # in the world's order

    async def _start_over(self) -> None:
        """Load the shared state afresh: at the first turn, or when Redis lost its data (its epoch
        changed). Into an empty Redis, one worker writes a new server's world; every worker then
        loads it, and reads each tenant's records from Redis when it next holds it."""
        epoch = await self.redis.get(f"{self.prefix}:epoch")
        if epoch is None:
            new = os.urandom(8).hex().encode()
            if await self.redis.set(f"{self.prefix}:epoch", new, nx=True):
                await self._write_new_world(new)
            epoch = await self.redis.get(f"{self.prefix}:epoch")
        if self.epoch is not None and epoch != self.epoch:
            logger.warning("the shared state in Redis started over (Redis lost its data?): loading it afresh")
        self.epoch = epoch
        self.versions.clear()
        self.stored.clear()
        for shard in self.shards.values():  # turns under way fail: what they hold is gone
            shard.lease = None
            shard.generation += 1
        data, version = await self.redis.hmget(self.key(WORLD), "data", "version")
        if data is None:  # the worker that made the epoch has not written the world yet
            await asyncio.sleep(0.01)
            self.epoch = None
            return await self._start_over()
        self._load_world(version, {b"data": data})  # each tenant's records are read whole when next held

    async def _write_new_world(self, epoch: bytes) -> None:
        """A new server's world (the default tenant alone, the clock at its start) and the default
        tenant's shard."""
        seed, (start, ticking) = self.state.seed, self.fresh_clock
        world = {"seed": seed, "created": 1, "now": start,
                 "tenants": [{"id": DEFAULT_TENANT, "number": 1, "seed": seed, "rate_limits": True, "clock_offset": 0.0}],
                 "clock": [start, ticking, 0.0, time.time()], "faults": {"added": 0, "faults": []}}
        async with self.redis.pipeline(transaction=True) as pipe:
            for shard in (DEFAULT_TENANT, WORLD):
                pipe.delete(*self.keys(shard), self.key(shard, "journal"), self.key(shard, "coverage"))
                fields = {"epoch": epoch, "fence": 1, "version": 1}
                if shard == WORLD:
                    fields["data"] = orjson.dumps(world)
                else:
                    fields["live"] = 1
                pipe.hset(self.key(shard), mapping=fields)
            await pipe.execute()

    # --- Redis ------------------------------------------------------------------------------------

    def _queue(self, pipe: "Pipeline", script: str, keys: list[Any], args: list[Any]) -> None:
        pipe.execute_command("EVALSHA", self.shas[script], len(keys), *keys, *args)

    async def _script(self, script: str, keys: list[Any], args: list[Any]) -> Any:
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue(pipe, script, keys, args)
            return (await self._execute(pipe))[0]

    async def _execute(self, pipe: "Pipeline", raise_on_error: bool = True) -> list[Any]:
        """Run a pipeline; if Redis does not know the scripts yet (or restarted since), they are
        loaded and it runs again."""
        import redis

        stack = list(pipe.command_stack)
        try:
            results = await pipe.execute(raise_on_error=raise_on_error)
        except redis.exceptions.NoScriptError:
            results = None
        if results is None or any(isinstance(result, redis.exceptions.NoScriptError) for result in results):
            for script in SCRIPTS.values():
                await self.redis.script_load(script)
            pipe.command_stack = stack
            results = await pipe.execute(raise_on_error=raise_on_error)
        return list(results)


def _record_field(vendor: str, table: str, key: Any) -> str:
    return f"it:{vendor}:{table}:{orjson.dumps(key).decode()}"


def _pairs(mapping: dict[str, bytes]) -> list[Any]:
    """A script's arguments for a mapping: its length, then each key and value."""
    flat: list[Any] = [len(mapping)]
    for key, value in mapping.items():
        flat += [key, value]
    return flat


def _unreadable(exc: Exception) -> ApiError:
    return ApiError(503, f"The shared state (Redis) holds a record this server cannot read: {exc}")


def _fields(flat: Any) -> dict[bytes, Any]:
    """HGETALL's answer as a dict (a script returns it flat)."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _limits(value: object) -> dict[str, Any]:
    """Rate-limit counters read back: per key, a list of times."""
    if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(times, list) and all(type(t) in (int, float) for t in times)
            for key, times in value.items()):
        raise ValueError("rate-limit counters are not a map of keys to lists of times")
    return value


def _answered(entry: dict[str, Any]) -> bytes:
    """A journal entry's answer as its tenant's coverage hash counts it."""
    return orjson.dumps([entry["vendor"], entry["operation"], entry["status"]])


def _answer_counts(counted: dict[bytes, bytes]) -> Counter[Answered]:
    """A coverage hash read back; a field that is not ours is skipped (it counts nothing we serve)."""
    counts: Counter[Answered] = Counter()
    for field_name, value in counted.items():
        with contextlib.suppress(ValueError, TypeError):
            vendor, operation, status = orjson.loads(field_name)
            if (isinstance(vendor, str) and (operation is None or isinstance(operation, str))
                    and type(status) is int and value.isdigit()):
                counts[vendor, operation, status] = int(value)
    return counts


def _entry_json(entry: dict[str, Any]) -> bytes:
    """A journal entry as JSON; one that will not serialise (it never should) keeps its body as text."""
    try:
        return orjson.dumps(entry)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(entry | {"body": repr(entry.get("body"))[:65536]}, default=repr)


@contextlib.contextmanager
def _redis_errors_as_503() -> Iterator[None]:
    import redis

    try:
        yield
    except redis.RedisError as exc:
        raise ApiError(503, f"The shared state (Redis) is unavailable: {exc}") from None
