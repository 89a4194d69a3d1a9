"""Where image previews are made (ours: the real server makes them in its request goroutine): off
the event loop, in a pool of at most WORKERS threads for the whole process, at most one preview
in the making per tenant (one tenant's uploads never hold more than one worker), and each upload
awaits its preview at most PREVIEW_SECONDS, its wait for a worker included.

A thread running Pillow cannot be stopped: an upload past its deadline is answered, but its
preview goes on to its end (previews.MAX_PIXELS and previews.MAX_SCANS bound how long) and holds its
tenant's slot until then, so a tenant cannot pile up more work meanwhile."""

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mockserver.vendors.corteza.exceptions import corteza_error

WORKERS = 4  # previews made at once: each holds up to ~300 MB while it decodes 40 MP
PREVIEW_SECONDS = 20.0  # the worst image within the bounds takes ~2 s on one core

Made = TypeVar("Made")

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="corteza-preview")
_making: dict[Hashable, "asyncio.Future[Any]"] = {}  # tenant -> its preview under way (or queued)


async def made(tenant: Hashable, work: Callable[[], Made]) -> Made:
    """What `work` returns, run in the pool in the tenant's slot (once its previous preview has
    ended); "could not process image" when it has not come within PREVIEW_SECONDS."""
    try:
        async with asyncio.timeout(PREVIEW_SECONDS):
            while (busy := _making.get(tenant)) is not None and not busy.done():
                await asyncio.wait([busy])
            job = asyncio.get_running_loop().run_in_executor(_pool, work)
            _making[tenant] = job
            job.add_done_callback(lambda _: _making.pop(tenant, None) if _making.get(tenant) is job else None)
            # shielded: the deadline gives up waiting, but the job keeps the tenant's slot until it ends
            return await asyncio.shield(job)
    except TimeoutError:
        raise corteza_error("could not process image") from None
