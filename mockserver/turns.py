"""Turns: how requests take their go at the server's state, in one process or in several.

A request changes state only between its turn's `begin` and `end` (handlers never yield while
changing it), so requests for one tenant take effect one after another. One process needs
nothing for that (`LocalTurns`); workers sharing state through Redis hold a lease on each tenant
they touch (`shared.SharedTurns`). Both number each vendor request: in its tenant's sequence
once a tenant holds it, else in the server's when first needed (an error rendered, or its end).
"""

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from mockserver.errors import ApiError


@dataclass
class Turn:
    """One request's go at the state, and its change record: everything it changed, noted where
    the change is made. The one answer to "what did this request change?": the answer cache,
    the state file (persistence.StateFile.commit) and the workers' replication all read it.
    A webhook's outcome and an admin call get a turn of their own."""

    numbered: bool = False  # a vendor request: it takes a number on the server
    number: int = 0  # that number, once taken (ids may derive from it)
    open: bool = True
    world: bool = False  # anything server-wide: the tenant list, a clock, faults, the seed
    tenants: set[Any] = field(default_factory=set)  # ids of tenants created, deleted or changed (clock, switch)
    resets: set[Any] = field(default_factory=set)  # ids of tenants whose workspaces went back to their seed
    reset_all: bool = False  # every tenant's workspaces went back to their seed
    states: set[Any] = field(default_factory=set)  # (tenant id, vendor name): workspaces changed
    # (tenant id, vendor name) -> {(table, key): None}, in the order changed: the records changed
    # (tables.note; ("", None) the meta)
    items: dict[Any, dict[Any, None]] = field(default_factory=dict)
    limits: set[Any] = field(default_factory=set)  # ids of tenants whose rate-limit counters moved
    entries: list[Any] = field(default_factory=list)  # journal entries to append
    journals: set[Any] = field(default_factory=set)  # journals cleared: tenant ids (None: no tenant's), ... for all
    # shared state: shard -> this worker's hold on it the turn entered under
    held: dict[str, Any] = field(default_factory=dict)
    locks: list[Any] = field(default_factory=list)  # shared state: the shards whose lock in this worker it holds
    joined: list[Any] = field(default_factory=list)  # shared state: (name, shard) of the tenant it is under way on
    # shared state: its write failed with no answer from Redis (not a lease lost): it may have been saved
    unconfirmed: bool = False

    @property
    def changed(self) -> bool:
        """Whether it changed anything a client can see (the journal and counters aside)."""
        return bool(self.world or self.tenants or self.resets or self.reset_all or self.states)


# The turn under way in this task: where tracked workspaces record their changes (tables.note).
current: ContextVar[Turn | None] = ContextVar("mockserver_turn", default=None)


class Numbered(Protocol):
    """What numbers its requests (a tenant)."""

    requests: int


def number(turn: Turn, tenant: Numbered) -> None:
    """A vendor request held by a tenant is numbered in that tenant's sequence (a tenant's answers
    never depend on other tenants' traffic); other requests in the server's."""
    if turn.numbered and not turn.number:
        tenant.requests += 1
        turn.number = tenant.requests


class LocalTurns:
    """One process: turns cost nothing; requests are numbered here."""

    def __init__(self) -> None:
        self.served = 0

    async def begin(self, numbered: bool = False, journal: bool = False, whole: bool = False) -> Turn:
        return Turn(numbered=numbered)

    async def enter(self, turn: Turn, tenant: Numbered) -> bool:
        """Hold the tenant for the rest of the turn; True if its records were read afresh (never here).
        A request its tenant holds takes the tenant's next number."""
        number(turn, tenant)
        return False

    async def enter_world(self, turn: Turn) -> None:
        """Hold the world to take a fault: nothing to do here (faults are not kept in the state file)."""

    async def sync(self) -> None:
        pass

    async def refresh(self) -> bool:
        """Learn credentials other workers made: none here."""
        return False

    async def number(self, turn: Turn) -> int:
        return self._numbered(turn)

    async def end(self, turn: Turn) -> bool:
        if turn.open:
            turn.open = False
            self._numbered(turn)  # not through `number`: every request ends here, and a coroutine costs
        return True

    def _numbered(self, turn: Turn) -> int:
        if turn.numbered and not turn.number:
            self.served += 1
            turn.number = self.served
        return turn.number

    async def note(self, entry: dict[str, Any]) -> None:
        pass

    async def pause(self, turn: Turn, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        pass


def unsaved(turn: Turn) -> ApiError:
    """The refusal of a change that could not be written: not saved (the lease was lost, or the
    state file refused it), or not confirmed (Redis did not answer the write: it may have been)."""
    if turn.unconfirmed:
        return ApiError(503, "The change may not have been saved: the shared state did not confirm it. "
                             "Read it back before trying again.")
    return ApiError(503, "The change could not be saved; try again.")
