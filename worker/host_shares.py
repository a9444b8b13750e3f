"""Each webhook receiver host gets a bounded share of a worker process's webhook slots.

Without it, one host whose receivers hang holds every slot (``WEBHOOK_CONCURRENCY``) for
``WEBHOOK_TIMEOUT_S``, and every other host's webhook waits for the due set to send it again
(issue 18, finding 14: ~29 s). With it:

- at most ``share`` (``WEBHOOK_HOST_CONCURRENCY``) deliveries to one host are under way at once
  in a process; each holds one slot of the pool;
- a delivery over its host's share gives its slot back and waits in its host's line: it holds
  no slot another host needs, and it waits on a future, never a polling loop;
- when a delivery to that host ends, its slot passes straight to the first in the host's line
  (the slot never goes back to the pool in between, so no other message can take it first);
- the lines hold at most ``waiting_limit`` deliveries in all: past that, or for a job already
  in hand here, :meth:`enter` answers ``None`` and the caller lets the webhooks' due set bring
  the delivery back (``REDRIVE_AFTER_S``), so a backlog stays in Redis, not in memory.

Used from one event loop only (the engine's lane that runs webhooks); not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, Self

__all__ = ["HostShares", "Passable"]


class Passable(Protocol):
    """A slot of the pool that can be given back or passed to another delivery."""

    def release(self) -> None: ...

    def hand_over(self) -> Self: ...


class HostShares:
    """See the module docstring."""

    def __init__(self, share: int, waiting_limit: int) -> None:
        if share < 1 or waiting_limit < 0:
            raise ValueError("share must be at least 1 and waiting_limit at least 0")
        self.share = share
        self.waiting_limit = waiting_limit
        self._running: dict[str, int] = {}
        self._lines: dict[str, deque[asyncio.Future[Passable | None]]] = {}
        self._in_hand: set[str] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def running(self, host: str) -> int:
        return self._running.get(host, 0)

    async def enter(self, host: str, key: str, slot: Passable) -> Passable | None:
        """The slot to hold while delivering ``key`` to ``host``: ``slot`` itself while the
        host is under its share; else, after waiting in line without it, one passed on by a
        delivery to the same host. ``None`` (``slot`` untouched) when ``key`` is already in
        hand here, the lines are full or the shares are closed: deliver later."""
        if self._closed or key in self._in_hand:
            return None
        if self._running.get(host, 0) < self.share:
            self._running[host] = self._running.get(host, 0) + 1
            self._in_hand.add(key)
            return slot
        if self.waiting >= self.waiting_limit:
            return None
        turn: asyncio.Future[Passable | None] = asyncio.get_running_loop().create_future()
        self._lines.setdefault(host, deque()).append(turn)
        self._in_hand.add(key)
        slot.release()  # waiting holds no slot
        try:
            passed = await turn
        except asyncio.CancelledError:
            self._in_hand.discard(key)
            passed = turn.result() if turn.done() and not turn.cancelled() else None
            if passed is not None:
                self._pass_on(host, passed)  # our turn came as we were cancelled
            else:
                self._drop(host, turn)
            raise
        if passed is None:  # closed while waiting
            self._in_hand.discard(key)
        return passed

    def leave(self, host: str, key: str, slot: Passable) -> None:
        """``key``'s delivery to ``host`` has ended: its slot passes to the first in the
        host's line, or goes back to the pool."""
        self._in_hand.discard(key)
        self._pass_on(host, slot)

    def close(self) -> None:
        """The engine stops: every waiting delivery is told to give up (its due set brings it
        back); deliveries under way finish as usual."""
        self._closed = True
        for line in self._lines.values():
            for turn in line:
                if not turn.done():
                    turn.set_result(None)
        self._lines.clear()

    def _pass_on(self, host: str, slot: Passable) -> None:
        line = self._lines.get(host)
        while line:
            turn = line.popleft()
            if not turn.done():
                turn.set_result(slot.hand_over())
                if not line:
                    del self._lines[host]
                return
        self._lines.pop(host, None)
        left = self._running.get(host, 0) - 1
        if left > 0:
            self._running[host] = left
        else:
            self._running.pop(host, None)
        slot.release()

    def _drop(self, host: str, turn: asyncio.Future[Passable | None]) -> None:
        line = self._lines.get(host)
        if line is not None and turn in line:
            line.remove(turn)
            if not line:
                del self._lines[host]
