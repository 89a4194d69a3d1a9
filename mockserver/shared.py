"""State shared through Redis, sharded by tenant: the workers of `serve --workers N`, and servers
on other ports or machines started with `--redis-join`, behave as one server.

Every tenant is a shard; so is the world (the seed, the tenant list with each tenant's number,
seed, rate-limit switch and clock, the server clock, the faults). A request holds its tenant's
lease from authentication to the start of its answer, so requests for one tenant take effect one
after another while requests for different tenants run in parallel on any worker. A lease is
`token:fence`, the fence a number the shard's hash raises on every grant: a write-back is a Lua
compare-and-set on the lease, so a worker whose lease expired (or was lost with Redis) can never
write, and its client gets a 503 instead. A shard's hash holds `version` (the fence of its last
write): a worker reloads a shard only when the version differs from the one it holds, so a worker
a tenant keeps coming back to reads nothing but the lease.

Keys, P the prefix (`--redis-prefix`); `{...}` is a Redis Cluster hash tag, one slot per shard:
- `P:{T}` (hash): `epoch`, `live` (1 while the tenant exists), `fence`, `version`, `ws:<vendor>`
  (one workspace's JSON record), `limits` (its rate-limit counters);
- `P:{~world}` (hash): `epoch`, `fence`, `version`, `data` (the world's JSON record);
- `P:{T}:lease`, `P:{T}:next` (a refused worker's claim on the next go), likewise for `{~world}`;
- `P:{T}:journal`, `P:{~}:journal` (requests no tenant sent): streams, `XADD ... MAXLEN ~`;
- `P:requests` (request numbers, `INCR`), `P:epoch` (which start of the shared state this is).

Redis losing its data (a restart without persistence) changes the epoch: every worker notices at
its next request, drops what it holds and starts over from what Redis holds, never keeping a
version of its own. Everything read from Redis is JSON, checked as it is loaded; nothing becomes
code.
"""

import asyncio
import contextlib
import logging
import os
import time

import orjson

from mockserver.clock import ServerClock
from mockserver.errors import ApiError
from mockserver.records import StateError, load_workspace
from mockserver.tenants import DEFAULT_TENANT, Tenant, Workspaces
from mockserver.turns import Turn

logger = logging.getLogger("mockserver")

WORLD = "~world"  # the world's shard (no tenant id starts with '~')
NOBODY = "~"  # the journal of requests whose credentials named no tenant

# KEYS: hash, lease, next. ARGV: token, lease ms, claim ms, epoch, known version, tenant (0/1).
# {0}: not there (another epoch, or a tenant not live); {1}: held by another, a claim on the next
# go made; {2, fence}: granted, the version known is current; {3, fence, version, fields}: granted.
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
local version = redis.call('HGET', KEYS[1], 'version') or ''
if version == ARGV[5] then return {2, fence} end
return {3, fence, version, redis.call('HGETALL', KEYS[1])}
"""

# KEYS: hash, lease, journal. ARGV: lease ('' to take the shard outright: a tenant created under the
# world's lease), release (0/1), epoch, journal bound, clear the data fields (0/1), live ('', 0, 1),
# new version (0/1), clear the journal (0/1), n, n x (field, value), journal entries...
# Only while the lease is still this one; returns the fence written under.
WRITE = """
local fence
if ARGV[1] == '' then
  fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
  redis.call('DEL', KEYS[2])
else
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('mockserver: lease lost') end
  fence = tonumber(string.match(ARGV[1], ':(%d+)$'))
end
if ARGV[5] == '1' then
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if name ~= 'fence' and name ~= 'epoch' and name ~= 'live' then redis.call('HDEL', KEYS[1], name) end
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[3])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'live', ARGV[6]) end
local n = tonumber(ARGV[9])
for k = 1, n do redis.call('HSET', KEYS[1], ARGV[8 + 2 * k], ARGV[9 + 2 * k]) end
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'version', fence) end
if ARGV[8] == '1' then redis.call('DEL', KEYS[3]) end
if 10 + 2 * n <= #ARGV then
  local t = redis.call('TIME')
  local at = t[1] .. string.format('%06d', tonumber(t[2]))
  for i = 10 + 2 * n, #ARGV do
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'at', at, 'entry', ARGV[i])
  end
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return fence
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

# KEYS: journal. ARGV: journal bound, entry. A journal entry outside any lease (a refusal's).
NOTE = """
local t = redis.call('TIME')
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'at', t[1] .. string.format('%06d', tonumber(t[2])),
                  'entry', ARGV[2])
"""

SCRIPTS = {"acquire": ACQUIRE, "write": WRITE, "release": RELEASE, "renew": RENEW, "note": NOTE}


class LeaseLost(Exception):
    """A write-back refused: the worker no longer held the lease it wrote under."""


class SharedTurns:
    """Turns on state shared through Redis (see the module docstring); the same calls as
    turns.LocalTurns."""

    LEASE_MS = 5_000  # a lease lasts this long unless renewed: a dead worker stalls a tenant that long
    CLAIM_MS = 50  # how long a refused worker's claim on a shard's next go holds
    WAIT_SECONDS = 12.0  # a request waits this long for a lease, then gets a 503
    WORLD_ATTEMPTS = 20  # an admin call takes every lease at once; it tries this often

    def __init__(self, server, url: str, prefix: str = "mockserver"):
        import redis.asyncio

        self.server = server
        self.redis = redis.asyncio.Redis.from_url(url)
        self.prefix = prefix
        self.token = os.urandom(8).hex()
        self.epoch: bytes | None = None  # the start of the shared state this worker has loaded
        self.versions: dict[str, bytes] = {}  # shard -> the version of its records this worker holds
        self.locks: dict[str, asyncio.Lock] = {}  # shard -> one turn at a time in this worker
        self.held: dict[str, str] = {}  # shard -> the lease this worker holds on it
        self.shas = {name: _sha(script) for name, script in SCRIPTS.items()}
        self.renewing: asyncio.Task | None = None
        self.fresh_clock = (server.clock.start, server.clock.ticking)  # a new world's clock

    # --- keys -------------------------------------------------------------------------------------

    def key(self, shard: str, part: str = "") -> str:
        return f"{self.prefix}:{{{shard}}}{part and ':' + part}"

    def keys(self, shard: str) -> list[str]:
        return [self.key(shard), self.key(shard, "lease"), self.key(shard, "next")]

    # --- the turn protocol ------------------------------------------------------------------------

    async def begin(self, numbered: bool = False, journal: bool = False, whole: bool = False) -> Turn:
        """A turn. `whole` (admin calls): every shard held and fresh, the journal loaded too with
        `journal`. A vendor request's turn holds nothing until `enter`."""
        turn = Turn(numbered=numbered)
        if whole:
            with _redis_errors_as_503():
                await self._enter_everything(turn, journal)
        return turn

    async def enter(self, turn: Turn, tenant: Tenant) -> bool:
        """Hold the tenant's lease for the rest of the turn, its records fresh. True when they were
        reloaded (its credentials may have changed) or the tenant is gone."""
        with _redis_errors_as_503():
            return await self._enter_tenant(turn, tenant)

    async def enter_world(self, turn: Turn) -> None:
        """Hold the world's lease too (after the tenant's, as every turn takes them), to take a fault."""
        with _redis_errors_as_503():
            await self._hold(turn, WORLD)
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
            tenants = list(self.server.store.tenants.values())
            async with self.redis.pipeline(transaction=False) as pipe:
                for tenant in tenants:
                    pipe.hget(self.key(tenant.id), "version")
                versions = await pipe.execute()
            for tenant, version in zip(tenants, versions):
                if version is not None and version != self.versions.get(tenant.id):
                    self._load_tenant(tenant, version, await self.redis.hgetall(self.key(tenant.id)))
                    learnt = True
            return learnt

    async def number(self, turn: Turn) -> int:
        """The request's number on the server (from INCR), taken when first needed."""
        if turn.numbered and not turn.number:
            with _redis_errors_as_503():
                turn.number = await self.redis.incr(self.key_requests)
        return turn.number

    @property
    def key_requests(self) -> str:
        return f"{self.prefix}:requests"

    async def end(self, turn: Turn) -> bool:
        """Write back what the turn changed under the leases it holds, release them, and end it
        (once; later calls do nothing). False when nothing could be written: the change is then
        undone here too (read back from Redis next time)."""
        if not turn.open:
            return True
        turn.open = False
        try:
            await self._write_back(turn)
            return True
        except Exception as exc:  # a lease lost, Redis gone: nothing of the turn was written
            if not isinstance(exc, LeaseLost):
                logger.warning("could not write a change to Redis: %s", exc)
            for shard in turn.held:
                self.versions.pop(shard, None)
            await self._let_go(turn)
            return False
        finally:
            self._unlock(turn)

    async def note(self, entry: dict) -> None:
        """A journal entry outside any lease (a request refused as its change could not be written)."""
        with contextlib.suppress(Exception):
            shard = entry["tenant"] or NOBODY
            await self._script(self.redis, "note", [self.key(shard, "journal")],
                               [self.server.journal.limit, _entry_json(entry)])

    async def pause(self, turn: Turn, seconds: float) -> None:
        """Sleep out of turn (others go on), then hold the same shards again."""
        held = list(turn.held)
        saved = await self.end(turn)
        await asyncio.sleep(seconds)
        turn.open, turn.held, turn.locks = True, [], []
        if not saved:
            raise ApiError(503, "The change could not be saved; try again.")
        tenants = self.server.store.tenants
        with _redis_errors_as_503():
            for shard in held:
                if shard == WORLD:
                    await self._hold(turn, WORLD)
                elif shard in tenants:
                    await self._enter_tenant(turn, tenants[shard])

    async def close(self) -> None:
        if self.renewing is not None:
            self.renewing.cancel()
        await self.redis.aclose()

    # --- holding shards ---------------------------------------------------------------------------

    async def _enter_tenant(self, turn: Turn, tenant: Tenant) -> bool:
        if self.epoch is None:
            await self._start_over()
        await self._lock(turn, tenant.id)
        deadline = time.monotonic() + self.WAIT_SECONDS
        pause = 0.0005
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                if turn.numbered and not turn.number:
                    pipe.incr(self.key_requests)
                self._queue(pipe, "acquire", self.keys(tenant.id), self._acquire_args(tenant.id, tenant=True))
                pipe.hmget(self.key(WORLD), "epoch", "version")
                results = await self._execute(pipe)
            if turn.numbered and not turn.number:
                turn.number = results.pop(0)
            granted, (epoch, version) = results
            if granted[0] >= 2:
                self._granted(turn, tenant.id, granted[1])
            try:
                if not await self._catch_up_world(epoch, version):  # started over: take it afresh
                    await self._let_go(turn, tenant.id)
                    continue
                if self.server.store.tenants.get(tenant.id) is not tenant:  # deleted (and made anew) meanwhile
                    await self._let_go(turn, tenant.id)
                    return True
                if granted[0] == 3:
                    self._load_tenant(tenant, granted[2], granted[3])
                    return True
            except BaseException:
                await self._let_go(turn, tenant.id)
                raise
            if granted[0] == 2:
                return False
            pause = await self._wait(deadline, pause, tenant.id)

    async def _hold(self, turn: Turn, shard: str) -> None:
        """Hold the world's lease (its record fresh)."""
        await self._lock(turn, shard)
        deadline, pause = time.monotonic() + self.WAIT_SECONDS, 0.0005
        while True:
            granted = await self._script(self.redis, "acquire", self.keys(shard), self._acquire_args(shard))
            if granted[0] == 0:
                await self._start_over()
                continue
            if granted[0] >= 2:
                self._granted(turn, shard, granted[1])
                if granted[0] == 3:
                    try:
                        self._load_world(granted[2], _fields(granted[3]))
                    except BaseException:
                        await self._let_go(turn, shard)
                        raise
                return
            pause = await self._wait(deadline, pause, shard)

    async def _enter_everything(self, turn: Turn, journal: bool) -> None:
        """Every tenant's lease and the world's, all fresh; tried at once, and all let go and
        tried again if any is held elsewhere (so two such turns never wait on each other)."""
        if self.epoch is None:
            await self._start_over()
        for attempt in range(self.WORLD_ATTEMPTS):
            await self.sync()
            shards = sorted(self.server.store.tenants) + [WORLD]
            for shard in shards:
                await self._lock(turn, shard)
            async with self.redis.pipeline(transaction=False) as pipe:
                for shard in shards:
                    self._queue(pipe, "acquire", self.keys(shard), self._acquire_args(shard, tenant=shard != WORLD))
                results = await self._execute(pipe)
            for shard, granted in zip(shards, results):
                if granted[0] >= 2:
                    self._granted(turn, shard, granted[1])
            if all(granted[0] >= 2 for granted in results):
                try:
                    if results[-1][0] == 3:
                        self._load_world(results[-1][2], _fields(results[-1][3]))
                    if sorted(self.server.store.tenants) + [WORLD] == shards:
                        tenants = self.server.store.tenants
                        for shard, granted in zip(shards, results):
                            if granted[0] == 3 and shard != WORLD:
                                self._load_tenant(tenants[shard], granted[2], granted[3])
                        if journal:
                            await self._load_journal()
                        return
                except BaseException:
                    await self._let_go(turn)
                    self._unlock(turn)
                    raise
            await self._let_go(turn)
            self._unlock(turn)
            if any(granted[0] == 0 for granted in results):
                await self._start_over()
            await asyncio.sleep(0.001 * (attempt + 1) * (1 + os.urandom(1)[0] / 255))
        raise ApiError(503, "Other requests kept the tenants busy; try again.")

    def _acquire_args(self, shard: str, tenant: bool = False) -> list:
        return [self.token, self.LEASE_MS, self.CLAIM_MS, self.epoch, self.versions.get(shard, b""), int(tenant)]

    def _granted(self, turn: Turn, shard: str, fence: int) -> None:
        self.held[shard] = f"{self.token}:{fence}"
        turn.held.append(shard)
        if self.renewing is None:
            self.renewing = asyncio.get_running_loop().create_task(self._renew())

    async def _wait(self, deadline: float, pause: float, shard: str) -> float:
        if time.monotonic() > deadline:
            raise ApiError(503, f"Tenant {shard} stayed busy on another worker; try again.")
        await asyncio.sleep(pause)
        return min(pause * 2, 0.02)

    async def _lock(self, turn: Turn, shard: str) -> None:
        lock = self.locks.get(shard)
        if lock is None:
            lock = self.locks[shard] = asyncio.Lock()
        await lock.acquire()
        turn.locks.append(lock)

    def _unlock(self, turn: Turn) -> None:
        for lock in reversed(turn.locks):
            lock.release()
        turn.locks = []

    async def _let_go(self, turn: Turn, shard: str | None = None) -> None:
        """Release leases without writing (one shard, or every one the turn holds)."""
        shards = [shard] if shard is not None else list(turn.held)
        with contextlib.suppress(Exception):
            async with self.redis.pipeline(transaction=False) as pipe:
                for each in shards:
                    if each in self.held:
                        self._queue(pipe, "release", [self.key(each, "lease")], [self.held[each]])
                await self._execute(pipe)
        for each in shards:
            self.held.pop(each, None)
            if each in turn.held:
                turn.held.remove(each)

    async def _renew(self) -> None:
        """Keep every lease held longer than a third of its life (an import of a large state)."""
        while True:
            await asyncio.sleep(self.LEASE_MS / 3000)
            held = dict(self.held)
            with contextlib.suppress(Exception):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for shard, lease in held.items():
                        self._queue(pipe, "renew", [self.key(shard, "lease")], [lease, self.LEASE_MS])
                    await self._execute(pipe)

    # --- writing back -----------------------------------------------------------------------------

    async def _write_back(self, turn: Turn) -> None:
        """One pipeline: each held shard's changes (and its lease let go), each created tenant's
        records, the journal entries; tenants before the world, so a tenant the world lists exists."""
        store, journal = self.server.store, self.server.journal
        entries: dict[str, list[bytes]] = {}
        for entry in turn.entries:
            entries.setdefault(entry["tenant"] or NOBODY, []).append(_entry_json(entry))
        turn.entries = []
        cleared = {NOBODY if shard is None else shard for shard in turn.journals}
        created = [shard for shard in turn.tenants if shard not in turn.held and shard in store.tenants]
        writes = []  # (shard, lease: '' to take it outright, None for the journal alone, arguments)
        for shard in sorted(turn.held, key=lambda shard: shard == WORLD) + created:
            lease = self.held[shard] if shard in turn.held else ""
            if shard == WORLD:
                fields = {"data": orjson.dumps(self._world())} if turn.world else {}
                clear, live = False, ""
            else:
                tenant = store.tenants.get(shard)
                clear = tenant is None or not lease or turn.reset_all or shard in turn.resets
                live = "0" if tenant is None else "1" if not lease else ""
                fields = self._tenant_fields(tenant, turn) if tenant is not None else {}
            clear_journal = (... in cleared or shard in cleared) and shard != WORLD
            args = [lease, 1, self.epoch, journal.limit, int(clear), live, int(clear or bool(fields)),
                    int(clear_journal or not lease), len(fields)]
            for field, value in fields.items():
                args += [field, value]
            writes.append((shard, lease, args + entries.pop(shard, [])))
        for shard in {*entries, *(shard for shard in cleared if shard is not ...)} - {shard for shard, *_ in writes}:
            writes.append((shard, None, entries.pop(shard, [])))  # the journal of a tenant not held
        if ... in cleared:
            writes += [(shard, None, []) for shard in [*store.tenants, NOBODY] if shard not in turn.held]
        async with self.redis.pipeline(transaction=False) as pipe:
            numbering = turn.numbered and not turn.number
            if numbering:
                pipe.incr(self.key_requests)
            for shard, lease, args in writes:
                journal_key = self.key(shard, "journal")
                if lease is not None:
                    self._queue(pipe, "write", [self.key(shard), self.key(shard, "lease"), journal_key], args)
                    continue
                if shard in cleared or ... in cleared:
                    pipe.delete(journal_key)
                for entry in args:
                    self._queue(pipe, "note", [journal_key], [journal.limit, entry])
            results = await self._execute(pipe, raise_on_error=False)
        if numbering:
            turn.number = results.pop(0)
        for shard, lease, _ in writes:
            if lease is not None:
                self.held.pop(shard, None)
        turn.held = []
        failed = next((result for result in results if isinstance(result, Exception)), None)
        if failed is not None:
            raise LeaseLost(str(failed)) if "lease lost" in str(failed) else failed
        results = iter(results)
        for shard, lease, args in writes:
            if lease is None:
                for _ in args:
                    next(results)
                if shard in cleared or ... in cleared:
                    next(results)
                continue
            fence = next(results)
            if args[6]:  # a new version: this worker holds it
                self.versions[shard] = str(fence).encode()

    def _tenant_fields(self, tenant: Tenant, turn: Turn) -> dict[str, bytes]:
        """The records of the tenant this turn changed: workspaces and rate-limit counters."""
        fields = {}
        for tenant_id, vendor in turn.states:
            workspace = tenant._states.get(vendor) if tenant_id == tenant.id else None
            if workspace is not None:
                schema = self.server.store.by_name[vendor].state.SCHEMA
                fields[f"ws:{vendor}"] = orjson.dumps({"schema": schema, "data": workspace.dump()})
        if tenant.id in turn.limits and tenant._limiter is not None:
            fields["limits"] = orjson.dumps(tenant._limiter.storage.events)
        return fields

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

    def _load_world(self, version: bytes, fields: dict) -> None:
        try:
            self._apply_world(orjson.loads(fields[b"data"]))
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # a record that is not ours: never run
            self.versions.pop(WORLD, None)
            raise ApiError(503, f"The shared state (Redis) holds a record this server cannot read: {exc}") from None
        self.versions[WORLD] = version
        self.server.answers.invalidate()

    def _load_tenant(self, tenant: Tenant, version: bytes, flat) -> None:
        """Replace the tenant's workspaces and counters with its records in Redis."""
        store = self.server.store
        states, limits = Workspaces(tenant), {}
        try:
            for name, value in _fields(flat).items():
                name = name.decode()
                if name.startswith("ws:") and name[3:] in store.by_name:  # others: vendors not served here
                    vendor = store.by_name[name[3:]]
                    record = orjson.loads(value)
                    states[vendor.name] = load_workspace(vendor, record["data"], record["schema"], tenant.context(vendor))
                elif name == "limits":
                    limits = _limits(orjson.loads(value))
        except (ValueError, TypeError, KeyError, StateError) as exc:
            self.versions.pop(tenant.id, None)
            raise ApiError(503, f"The shared state (Redis) holds a record this server cannot read: {exc}") from None
        tenant.generation = store.generation
        tenant._states, tenant._limiter = states, None
        if limits:
            tenant.limiter.storage.events = limits
        store.reindex(tenant)
        self.versions[tenant.id] = version
        self.server.answers.invalidate()

    async def _load_journal(self) -> None:
        """The journal as Redis holds it: every stream's last entries, merged in the order written."""
        journal, shards = self.server.journal, [*self.server.store.tenants, NOBODY]
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.xrevrange(self.key(shard, "journal"), count=journal.limit)
            streams = await pipe.execute()
        kept = []
        for stream in streams:
            for stream_id, fields in reversed(stream):
                kept.append((int(fields[b"at"]), stream_id, orjson.loads(fields[b"entry"])))
        kept.sort(key=lambda item: item[:2])
        journal.replace([entry for *_, entry in kept])

    # --- the world --------------------------------------------------------------------------------

    def _world(self) -> dict:
        server, store, clock = self.server, self.server.store, self.server.clock
        # A ticking clock's origin as wall time: workers (on any machine) read the same now.
        origin = clock._origin + (time.time() - time.monotonic())
        return {
            "seed": server.seed,
            "created": store.created,
            "clock": [clock.start, clock.ticking, clock.offset, origin],
            "faults": server.faults.dump(),
            "tenants": [[t.id, t.number, t.seed, t.rate_limits, t.clock.offset] for t in store.tenants.values()],
        }

    def _apply_world(self, world: dict) -> None:
        server, store = self.server, self.server.store
        tenants = [(str(tenant_id), int(number), int(seed), bool(rate_limits), float(offset))
                   for tenant_id, number, seed, rate_limits, offset in world["tenants"]]
        start, ticking, offset, origin = world["clock"]
        server.faults.load(world["faults"])
        server.seed = store.seed = int(world["seed"])
        store.created = int(world["created"])
        clock = server.clock
        clock.start, clock.ticking, clock.offset = float(start), bool(ticking), float(offset)
        clock._origin = float(origin) - (time.time() - time.monotonic())
        known, listed = store.tenants, {}
        for tenant_id, number, seed, rate_limits, offset in tenants:
            tenant = known.get(tenant_id)
            if tenant is not None and (tenant.number, tenant.seed) != (number, seed):  # deleted and made anew
                store._forget(known.pop(tenant_id))
                tenant = None
            if tenant is None:  # new here: its records are read when it is first held
                tenant = store.create(tenant_id, rate_limits, number, seed)
                self.versions.pop(tenant_id, None)
            tenant.rate_limits, tenant.clock.offset = rate_limits, offset
            listed[tenant_id] = tenant
        for tenant_id in set(known) - set(listed):  # gone
            store._forget(known[tenant_id])
            self.versions.pop(tenant_id, None)
            self.locks.pop(tenant_id, None)
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
        self.held.clear()
        data, version = await self.redis.hmget(self.key(WORLD), "data", "version")
        if data is None:  # the worker that made the epoch has not written the world yet
            await asyncio.sleep(0.01)
            self.epoch = None
            return await self._start_over()
        self._load_world(version, {b"data": data})
        for tenant in self.server.store.tenants.values():  # read back from Redis when next held
            tenant._states, tenant._limiter = Workspaces(tenant), None
            self.server.store.reindex(tenant)

    async def _write_new_world(self, epoch: bytes) -> None:
        """A new server's world (the default tenant alone, the clock at its start) and the default
        tenant's shard."""
        server = self.server
        clock = ServerClock.__new__(ServerClock)
        clock.start, clock.ticking = self.fresh_clock
        world = {"seed": server.seed, "created": 1, "clock": [clock.start, clock.ticking, 0.0, time.time()],
                 "faults": {"added": 0, "faults": []},
                 "tenants": [[DEFAULT_TENANT, 1, server.seed, True, 0.0]]}
        async with self.redis.pipeline(transaction=True) as pipe:
            for shard in (DEFAULT_TENANT, WORLD):
                pipe.delete(*self.keys(shard), self.key(shard, "journal"))
                fields = {"epoch": epoch, "fence": 1, "version": 1}
                if shard == WORLD:
                    fields["data"] = orjson.dumps(world)
                else:
                    fields["live"] = 1
                pipe.hset(self.key(shard), mapping=fields)
            await pipe.execute()

    # --- Redis ------------------------------------------------------------------------------------

    def _queue(self, pipe, script: str, keys: list, args: list) -> None:
        pipe.execute_command("EVALSHA", self.shas[script], len(keys), *keys, *args)

    async def _script(self, client, script: str, keys: list, args: list):
        async with client.pipeline(transaction=False) as pipe:
            self._queue(pipe, script, keys, args)
            return (await self._execute(pipe))[0]

    async def _execute(self, pipe, raise_on_error: bool = True) -> list:
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
        return results


def _sha(script: str) -> str:
    import hashlib

    return hashlib.sha1(script.encode()).hexdigest()


def _fields(flat) -> dict:
    """HGETALL's answer as a dict (a script returns it flat)."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2]))


def _limits(value) -> dict:
    """Rate-limit counters read back: per key, a list of times."""
    if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(times, list) and all(type(t) in (int, float) for t in times)
            for key, times in value.items()):
        raise ValueError("rate-limit counters are not a map of keys to lists of times")
    return value


def _entry_json(entry: dict) -> bytes:
    """A journal entry as JSON; one that will not serialise (it never should) keeps its body as text."""
    try:
        return orjson.dumps(entry)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(entry | {"body": repr(entry.get("body"))[:65536]}, default=repr)


@contextlib.contextmanager
def _redis_errors_as_503():
    import redis

    try:
        yield
    except redis.RedisError as exc:
        raise ApiError(503, f"The shared state (Redis) is unavailable: {exc}") from None
