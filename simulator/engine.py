"""The running simulator: current config, state, random generator and the calls' life tasks.

Accepting a call starts one background task that sleeps until the call ends, refunds a call
that did not go through, and sends its callback. Requests never wait on these tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI

from simulator.callbacks import CallbackSender
from simulator.config import SimConfig
from simulator.state import CallRecord, SimState

log = logging.getLogger("simulator")


class Simulator:
    """Everything one simulator process holds in memory."""

    def __init__(self, config: SimConfig) -> None:
        self.startup_config = config
        self.config = config
        self.rng = random.Random(config.seed)
        self.state = SimState(config.balance)
        self.callbacks = CallbackSender(lambda: self.config, self.rng, lambda: self.state.stats)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lives: dict[str, asyncio.Task[None]] = {}  # by SMSID, while running

    @property
    def pending(self) -> int:
        """Calls whose life (and callback) is still running."""
        return len(self._tasks)

    def reconfigure(self, changes: Mapping[str, object]) -> SimConfig:
        """Apply ``changes`` to the config (pydantic ValidationError if invalid)."""
        new = SimConfig.model_validate({**self.config.model_dump(), **changes})
        if "seed" in changes:
            self.rng.seed(new.seed)
        if "balance" in changes:
            self.state.balance = new.balance
        self.config = new
        return new

    async def reset(self, *, keep_config: bool = False) -> None:
        """Cancel every life, forget every call; restore the start-up config unless kept."""
        await self._cancel_all()
        if not keep_config:
            self.config = self.startup_config
        self.rng.seed(self.config.seed)
        self.state.reset(self.config.balance)

    def accept(self, record: CallRecord) -> None:
        """Put ``record`` in the ledger, charge it and start its life (sandbox: ledger only)."""
        self.state.ledger[record.smsid] = record
        log.info(
            "accepted smsid=%s kind=%s phone=%s outcome=%s sandbox=%s",
            record.smsid,
            record.kind,
            record.national,
            record.outcome,
            record.sandbox,
        )
        if record.sandbox:
            return
        if record.request_id:
            self.state.request_ids[record.request_id] = record.accepted_at
        self.state.balance -= record.price
        task = asyncio.get_running_loop().create_task(self._life(record))
        self._tasks.add(task)
        self._lives[record.smsid] = task
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(functools.partial(self._life_ended, record.smsid))

    def _life_ended(self, smsid: str, task: asyncio.Task[None]) -> None:
        if self._lives.get(smsid) is task:
            del self._lives[smsid]

    async def wait_life(self, smsid: str, timeout_s: float) -> None:
        """Wait (at most ``timeout_s`` real seconds) until the call ``smsid`` has ended and its
        callback was answered or given up; at once if it has no life running."""
        task = self._lives.get(smsid)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout_s)

    async def _life(self, record: CallRecord) -> None:
        await asyncio.sleep(max(0.0, record.plan.ends_at - time.time()))
        if not record.sent_ok:
            self.state.balance += record.price  # a call that did not go through is not charged
        log.info("finished smsid=%s answered=%s", record.smsid, record.sent_ok)
        if record.callback_url:
            await self.callbacks.send(record)

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._lives.clear()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """FastAPI lifespan: on shutdown, stop the life tasks and close the callback client."""
        yield
        await self._cancel_all()
        await self.callbacks.aclose()
